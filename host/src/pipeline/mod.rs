//! The pipeline: the stages of a run, on threads, joined by bounded
//! channels.
//!
//! ```text
//! source thread ──chunks──→ ingest (caller's thread) ──units──→ parse threads (one per core)
//!  (read, gunzip)            (split lines, cut units;   ←─batches─ (parse, scope, enrich, batch)
//!                             put batches back in order,
//!                             ticks)
//!                                 │ Arc<FlowBatch>, in input order
//!                                 ▼
//!                            one thread per plugin ──verdicts──→ output thread (triage → alerts)
//!                            (PluginWorker: sandbox,
//!                             retries, quarantine)
//! ```
//!
//! Every channel is bounded, or its backlog is (units in flight), so a slow
//! plugin slows reading instead of filling memory. Plugins see batches in
//! input order whatever the number of parse threads (`pipeline/ingest.rs`).
//! A partial batch is sent after the flush interval so a slow stream still
//! reaches the plugins. Plugins get `tick(now)` on data
//! time every [`TICK_EVERY`] and once more at the end of the input, a day
//! past the last flow, to close every window.

mod ingest;
mod parse;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use crate::batch::FlowBatch;
use crate::config::Config;
use crate::enrich::{CountryCache, CountryDb, EnrichError};
use crate::flow::Micros;
use crate::ingest::{InputPath, SourceReader};
use crate::plugins::{
    EngineEvent, LoadedPlugin, PluginError, PluginStats, PluginWorker, Rejection, Runtime,
    RuntimeConfig, TrapKind, Verdict,
};
use crate::scope::{Institutions, Scope, ScopeError};
use crate::storage::table::{AlertRows, FlowRows, day_of};
use crate::storage::{FileLimits, Shard, StorageError, Store, StoredCounts, Table, TableWriter};
use crate::summary::{PluginSummary, Summary};
use crate::triage::{AlertWriter, Origin, Triage};
use ingest::Ingest;

/// Data time between plugin ticks.
pub const TICK_EVERY: Duration = Duration::from_secs(60);

/// How far past the last flow the closing tick is: far enough to close any
/// window a detector keeps.
pub const END_OF_INPUT_HORIZON: Duration = Duration::from_secs(24 * 3600);

/// How often an idle storage thread checks its files' age.
const STORE_IDLE_CHECK: Duration = Duration::from_secs(5);

/// Wall-clock time between retention passes while a run goes on.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Batches queued per plugin before ingest waits.
const WORKER_QUEUE: usize = 4;

/// Bad lines per input logged one by one; the rest are only counted.
const LOGGED_ERRORS_PER_INPUT: u64 = 10;

/// The institutions file compiled into the binary.
pub const BUNDLED_INSTITUTIONS: &str = include_str!("../../../data/institutions.toml");

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The institutions file is unusable.
    #[error(transparent)]
    Scope(#[from] ScopeError),
    /// The country database is unusable.
    #[error(transparent)]
    Enrich(#[from] EnrichError),
    /// A plugin could not be loaded.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// Storage is configured but cannot work.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// No plugin is enabled.
    #[error("{0}: no plugin is enabled; enable at least one under [plugins]")]
    NoPlugins(String),
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// Alerts could not be written.
    #[error("cannot write alerts: {0}")]
    Output(#[source] std::io::Error),
    /// The tables could not be written: writing stopped, no partial file
    /// is left.
    #[error("storage stopped: {0}")]
    Storage(#[source] StorageError),
}

/// Everything a run needs, loaded and checked.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    institutions: Institutions,
    scope: Scope,
    countries: Option<Arc<CountryDb>>,
    plugins: Vec<Arc<LoadedPlugin>>,
    store: Option<Store>,
}

impl Engine {
    /// Loads institutions, the country database and every enabled plugin.
    ///
    /// # Errors
    ///
    /// When any of them is unusable; the error names which and why.
    pub fn prepare(config: Config) -> Result<Self, SetupError> {
        let institutions = config.institutions.load()?;
        let scope = Scope::new(&institutions, &config.exclude);
        let countries = match &config.country_db {
            Some(path) => Some(Arc::new(CountryDb::open(path)?)),
            None => None,
        };
        if config.plugins.is_empty() {
            return Err(SetupError::NoPlugins(config.origin.clone()));
        }
        let runtime = Runtime::new(&RuntimeConfig {
            cache_dir: config.cache_dir.clone(),
            ..RuntimeConfig::default()
        })?;
        let mut plugins = Vec::with_capacity(config.plugins.len());
        for spec in &config.plugins {
            let plugin = LoadedPlugin::load(&runtime, spec.clone())?;
            let report = &plugin.load_report;
            tracing::info!(
                plugin = %plugin.name,
                version = %plugin.description.version,
                origin = %plugin.origin,
                rules = report.loaded,
                skipped = report.skipped.len(),
                "plugin loaded"
            );
            for skipped in &report.skipped {
                tracing::debug!(plugin = %plugin.name, location = %skipped.location, rule = %skipped.id, reason = %skipped.reason, "rule skipped");
            }
            plugins.push(plugin);
        }
        let store = match &config.storage {
            Some(storage) => {
                let store = Store::open(storage, &institutions, FileLimits::default())?;
                tracing::info!(data_dir = %store.data_dir().display(), "storing flows and alerts");
                Some(store)
            }
            None => None,
        };
        Ok(Self {
            config,
            institutions,
            scope,
            countries,
            plugins,
            store,
        })
    }

    /// The registered institutions.
    pub fn institutions(&self) -> &Institutions {
        &self.institutions
    }

    /// The loaded plugins, in order.
    pub fn plugins(&self) -> &[Arc<LoadedPlugin>] {
        &self.plugins
    }

    /// The storage of this engine's runs, when configured.
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Parse threads for a run: as configured, or one per core.
    fn parse_threads(&self) -> usize {
        match self.config.ingest.parse_threads {
            0 => thread::available_parallelism().map_or(1, std::num::NonZero::get),
            n => n,
        }
    }

    /// Streams `inputs` through the plugins and writes alerts to `out`.
    /// With `progress`, files show a progress bar on a terminal.
    ///
    /// Bad lines and unreadable inputs are counted in the summary, not
    /// errors; the run goes on.
    ///
    /// # Errors
    ///
    /// When alerts cannot be written.
    pub fn run(
        &self,
        inputs: Vec<InputPath>,
        out: Box<dyn Write + Send>,
        progress: bool,
    ) -> Result<Summary, RunError> {
        let started = Instant::now();
        let names: Vec<String> = inputs.iter().map(ToString::to_string).collect();
        let (source, reader) = SourceReader::spawn(inputs, progress);
        let triage = Triage::new(&self.institutions, &names);
        let policy = self.config.failure;

        let (mut summary, output) = thread::scope(|s| {
            let (out_tx, out_rx) = bounded::<Outcome>(WORKER_QUEUE * self.plugins.len().max(1));
            let output = s.spawn({
                let plugins = &self.plugins;
                let triage = &triage;
                let store = self.store.as_ref();
                move || write_alerts(out_rx, triage, plugins, out, store)
            });
            // Storage threads, each writing the flows of its share of the
            // institutions: Parquet encoding is the costliest stage.
            let mut store_tx = Vec::new();
            let mut stored = Vec::new();
            if let Some(store) = &self.store {
                let shards = Shard::per_core();
                for index in 0..shards {
                    let (tx, rx) = bounded::<Work>(WORKER_QUEUE);
                    let shard = Shard {
                        index,
                        count: shards,
                    };
                    let spawned = thread::Builder::new()
                        .name(format!("kansoku-store-{index}"))
                        .spawn_scoped(s, move || store_flows(store, shard, &rx));
                    match spawned {
                        Ok(handle) => {
                            store_tx.push(tx);
                            stored.push(handle);
                        }
                        Err(e) => {
                            // Not fail-open: a run configured to store must
                            // not silently detect without storing.
                            let e = StorageError::Io {
                                path: store.data_dir().to_owned(),
                                source: e,
                            };
                            return (Summary::default(), Err(RunError::Storage(e)));
                        }
                    }
                }
            }
            let mut senders = Vec::with_capacity(self.plugins.len());
            let mut stats = Vec::with_capacity(self.plugins.len());
            for (index, plugin) in self.plugins.iter().enumerate() {
                let (tx, rx) = bounded::<Work>(WORKER_QUEUE);
                let worker = PluginWorker::new(plugin.clone(), policy, self.institutions.len());
                stats.push(worker.stats().clone());
                let out_tx = out_tx.clone();
                let spawned = thread::Builder::new()
                    .name(format!("plugin-{}", plugin.name))
                    .spawn_scoped(s, move || run_worker(index, worker, rx, out_tx));
                if let Err(e) = spawned {
                    // Fail-open: flows still reach the other plugins.
                    tracing::error!(plugin = %plugin.name, error = %e, "cannot start plugin thread; plugin disabled for this run");
                    continue;
                }
                senders.push(tx);
            }
            drop(out_tx);
            let (unit_tx, unit_rx) = unbounded::<parse::Unit>();
            let (parsed_tx, parsed_rx) = unbounded::<parse::Output>();
            let threads = self.parse_threads();
            for i in 0..threads {
                let (units, outputs) = (unit_rx.clone(), parsed_tx.clone());
                let countries = self.countries.clone().map(CountryCache::new);
                let scope = &self.scope;
                let spawned = thread::Builder::new()
                    .name(format!("kansoku-parse-{i}"))
                    .spawn_scoped(s, move || parse::run(scope, countries, &units, &outputs));
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "cannot start a parse thread; going on with fewer");
                }
            }
            // Only the threads hold these now: the channels close with them.
            drop((unit_rx, parsed_tx));
            let mut ingest = Ingest::new(self, &senders, store_tx, unit_tx, parsed_rx, threads);
            ingest.run(&source);
            let mut summary = ingest.finish();
            drop(senders);
            let flows_stored = (!stored.is_empty()).then(|| {
                let mut total = StoredCounts::default();
                for handle in stored {
                    let counts = handle.join().unwrap_or_else(|_| {
                        Err(StorageError::Setup("a storage thread panicked".into()))
                    })?;
                    total.rows += counts.rows;
                    total.files += counts.files;
                }
                Ok(total)
            });
            // Workers end when their queue closes; the output thread when
            // every worker has ended. Only then are the counters final.
            let output = output.join();
            let output = match (output, flows_stored) {
                (_, Some(Err(e))) => Err(RunError::Storage(e)),
                (Ok(Ok((alerts, alerts_stored))), flows_stored) => {
                    if let Some(Ok(flows)) = flows_stored {
                        summary.stored.insert(Table::Flows.name(), flows);
                    }
                    if let Some(counts) = alerts_stored {
                        summary.stored.insert(Table::Alerts.name(), counts);
                    }
                    Ok(alerts)
                }
                (Ok(Err(e)), _) => Err(e),
                (Err(_), _) => Err(RunError::Output(std::io::Error::other(
                    "alert writer panicked",
                ))),
            };
            summary.plugins = self
                .plugins
                .iter()
                .zip(&stats)
                .map(|(plugin, stats)| plugin_summary(plugin, stats))
                .collect();
            (summary, output)
        });
        let output = output?;
        // The reader ends once its receiver is gone; a panic there is a bug
        // in the reader, already reported by the panic hook.
        drop(source);
        let _ = reader.join();
        summary.elapsed = started.elapsed();
        summary.alerts = output;
        Ok(summary)
    }
}

/// What ingest sends a plugin thread.
enum Work {
    Batch(Arc<FlowBatch>),
    Tick(Micros),
}

/// What a plugin thread sends the output thread.
struct Outcome {
    plugin: usize,
    batch: Option<Arc<FlowBatch>>,
    now: Micros,
    verdict: Verdict,
}

fn run_worker(index: usize, mut worker: PluginWorker, rx: Receiver<Work>, out: Sender<Outcome>) {
    for work in rx {
        let (verdict, batch, now) = match work {
            Work::Batch(batch) => {
                let verdict = worker.process(&batch);
                let now = batch.max_ts().unwrap_or_default();
                (verdict, Some(batch), now)
            }
            Work::Tick(now) => (worker.tick(now), None, now),
        };
        if verdict.detections.is_empty() && verdict.events.is_empty() {
            continue;
        }
        let outcome = Outcome {
            plugin: index,
            batch,
            now,
            verdict,
        };
        if out.send(outcome).is_err() {
            // The output failed; the run is ending.
            return;
        }
    }
}

/// Alerts written per plugin name, and the alerts stored.
type AlertCounts = (BTreeMap<String, u64>, Option<StoredCounts>);

/// The output thread: writes alerts, and stores those of an institution.
fn write_alerts(
    rx: Receiver<Outcome>,
    triage: &Triage<'_>,
    plugins: &[Arc<LoadedPlugin>],
    out: Box<dyn Write + Send>,
    store: Option<&Store>,
) -> Result<AlertCounts, RunError> {
    let mut stored = store.map(Store::writer::<AlertRows>);
    let result = output_alerts(&rx, triage, plugins, out, stored.as_mut());
    if result.is_err() {
        // Ingest stops once every plugin thread has; they stop when this
        // receiver is gone.
        drop(rx);
        return result.map(|alerts| (alerts, None));
    }
    let counts = stored.map(TableWriter::finish).transpose();
    match (result, counts) {
        (Ok(alerts), Ok(counts)) => Ok((alerts, counts)),
        (Err(e), _) => Err(e),
        (_, Err(e)) => Err(RunError::Storage(e)),
    }
}

fn output_alerts(
    rx: &Receiver<Outcome>,
    triage: &Triage<'_>,
    plugins: &[Arc<LoadedPlugin>],
    out: Box<dyn Write + Send>,
    mut stored: Option<&mut TableWriter<'_, AlertRows>>,
) -> Result<BTreeMap<String, u64>, RunError> {
    let mut writer = AlertWriter::new(std::io::BufWriter::with_capacity(1 << 16, out));
    let mut alerts = BTreeMap::new();
    for outcome in rx.iter() {
        let Some(plugin) = plugins.get(outcome.plugin) else {
            continue;
        };
        let origin = Origin {
            plugin: &plugin.name,
            version: &plugin.description.version,
        };
        let batch = outcome.batch.as_deref();
        for detection in &outcome.verdict.detections {
            let alert = triage.alert(origin, detection, batch);
            writer.write(&alert).map_err(RunError::Output)?;
            *alerts.entry(plugin.name.to_string()).or_insert(0) += 1;
            if let Some(stored) = stored.as_deref_mut() {
                store_alert(stored, &alert, batch.zip(detection.row))?;
            }
        }
        for event in &outcome.verdict.events {
            log_event(&plugin.name, event);
            writer
                .write(&triage.engine_alert(&plugin.name, event, batch, outcome.now))
                .map_err(RunError::Output)?;
            *alerts.entry("engine".to_owned()).or_insert(0) += 1;
        }
        // A slow stream's alerts should not wait in the buffer.
        if rx.is_empty() {
            writer.flush().map_err(RunError::Output)?;
            if let Some(stored) = stored.as_deref_mut() {
                stored.roll(None).map_err(RunError::Storage)?;
            }
        }
    }
    writer.flush().map_err(RunError::Output)?;
    Ok(alerts)
}

/// Stores an alert under its institution and day. Engine alerts belong to
/// no institution and are not detection data: they stay in the alert
/// stream and the log.
fn store_alert(
    stored: &mut TableWriter<'_, AlertRows>,
    alert: &crate::triage::Alert,
    row: Option<(&FlowBatch, usize)>,
) -> Result<(), RunError> {
    let Some(institution) = alert.institution_index else {
        return Ok(());
    };
    let day = day_of(alert.ts);
    stored
        .append(institution, day, |rows| rows.append(alert, row))
        .map_err(RunError::Storage)
}

/// The storage thread: flows of each batch to their institution's and
/// day's file; files rolled as data time moves on and as they age;
/// retention applied at the start and every hour.
fn store_flows(
    store: &Store,
    shard: Shard,
    rx: &Receiver<Work>,
) -> Result<StoredCounts, StorageError> {
    let mut writer = store.writer::<FlowRows>();
    let today = || day_of(jiff::Timestamp::now().as_microsecond());
    // One pass is enough: the first shard runs retention.
    let retains = shard.index == 0;
    if retains {
        store.apply_retention(today());
    }
    let mut last_retention = Instant::now();
    let result = (|| {
        loop {
            match rx.recv_timeout(STORE_IDLE_CHECK) {
                Ok(Work::Batch(batch)) => writer.append_batch(&batch, shard)?,
                Ok(Work::Tick(now)) => writer.roll(Some(day_of(now)))?,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => writer.roll(None)?,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return Ok(()),
            }
            if retains && last_retention.elapsed() >= RETENTION_EVERY {
                store.apply_retention(today());
                last_retention = Instant::now();
            }
        }
    })();
    match result {
        Ok(()) => writer.finish(),
        Err(e) => {
            tracing::error!(error = %e, "storage stopped; files not yet complete are removed");
            Err(e)
        }
    }
}

fn log_event(plugin: &str, event: &EngineEvent) {
    match event {
        EngineEvent::Quarantined {
            failures,
            duration,
            last_trap,
        } => tracing::error!(
            plugin,
            failures,
            quarantine = ?duration,
            last_trap = %last_trap,
            "plugin quarantined: flows pass it unexamined (fail-open)"
        ),
        EngineEvent::Released => tracing::info!(plugin, "plugin released from quarantine"),
        EngineEvent::PoisonFlow { row, trap } => {
            tracing::warn!(plugin, row, %trap, "flow makes the plugin fail; skipped by it")
        }
    }
}

fn plugin_summary(plugin: &LoadedPlugin, stats: &PluginStats) -> PluginSummary {
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    PluginSummary {
        name: plugin.name.to_string(),
        version: plugin.description.version.clone(),
        flows: load(&stats.flows),
        skipped_flows: load(&stats.skipped_flows),
        findings: load(&stats.findings),
        rejected: Rejection::ALL
            .iter()
            .map(|r| (r.label(), stats.rejected(*r)))
            .filter(|(_, n)| *n > 0)
            .collect(),
        traps: TrapKind::ALL
            .iter()
            .map(|k| (k.label(), stats.traps(*k)))
            .filter(|(_, n)| *n > 0)
            .collect(),
        restarts: load(&stats.restarts),
        poison_flows: load(&stats.poison_flows),
        quarantines: load(&stats.quarantines),
        busy: Duration::from_nanos(load(&stats.busy_ns)),
    }
}
