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
use crate::summary::{PluginSummary, Summary};
use crate::triage::{AlertWriter, Origin, Triage};
use ingest::Ingest;

/// Data time between plugin ticks.
pub const TICK_EVERY: Duration = Duration::from_secs(60);

/// How far past the last flow the closing tick is: far enough to close any
/// window a detector keeps.
pub const END_OF_INPUT_HORIZON: Duration = Duration::from_secs(24 * 3600);

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
}

/// Everything a run needs, loaded and checked.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    institutions: Institutions,
    scope: Scope,
    countries: Option<Arc<CountryDb>>,
    plugins: Vec<Arc<LoadedPlugin>>,
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
        Ok(Self {
            config,
            institutions,
            scope,
            countries,
            plugins,
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
                move || write_alerts(out_rx, triage, plugins, out)
            });
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
            let mut ingest = Ingest::new(self, &senders, unit_tx, parsed_rx, threads);
            ingest.run(&source);
            let mut summary = ingest.finish();
            drop(senders);
            // Workers end when their queue closes; the output thread when
            // every worker has ended. Only then are the counters final.
            let output = output.join();
            summary.plugins = self
                .plugins
                .iter()
                .zip(&stats)
                .map(|(plugin, stats)| plugin_summary(plugin, stats))
                .collect();
            (summary, output)
        });
        // The reader ends once its receiver is gone; a panic there is a bug
        // in the reader, already reported by the panic hook.
        drop(source);
        let _ = reader.join();
        summary.elapsed = started.elapsed();
        match output {
            Ok(Ok(alerts)) => {
                summary.alerts = alerts;
                Ok(summary)
            }
            Ok(Err(e)) => Err(RunError::Output(e)),
            Err(_) => Err(RunError::Output(std::io::Error::other(
                "alert writer panicked",
            ))),
        }
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

/// The output thread: alerts per plugin name, or the first write error.
fn write_alerts(
    rx: Receiver<Outcome>,
    triage: &Triage<'_>,
    plugins: &[Arc<LoadedPlugin>],
    out: Box<dyn Write + Send>,
) -> std::io::Result<std::collections::BTreeMap<String, u64>> {
    let mut writer = AlertWriter::new(std::io::BufWriter::with_capacity(1 << 16, out));
    let mut alerts = std::collections::BTreeMap::new();
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
            writer.write(&triage.alert(origin, detection, batch))?;
            *alerts.entry(plugin.name.to_string()).or_insert(0) += 1;
        }
        for event in &outcome.verdict.events {
            log_event(&plugin.name, event);
            writer.write(&triage.engine_alert(&plugin.name, event, batch, outcome.now))?;
            *alerts.entry("engine".to_owned()).or_insert(0) += 1;
        }
        // A slow stream's alerts should not wait in the buffer.
        if rx.is_empty() {
            writer.flush()?;
        }
    }
    writer.flush()?;
    Ok(alerts)
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
