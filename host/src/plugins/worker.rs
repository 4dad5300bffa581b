//! Runs one plugin over a stream of batches and survives it.
//!
//! A trap or timeout poisons only the instance that raised it. The worker
//! drops it, instantiates a fresh one and retries the batch once. If the
//! batch traps again, the worker bisects it to isolate the flow(s) that
//! trap, skips those for this plugin (counted, reported) and keeps the
//! findings of the rest. A batch that could not be processed whole counts as
//! a failure: after a failure the plugin rests (exponential backoff), and
//! after several consecutive failures it is quarantined, which is reported
//! as an engine alert. Resting and quarantined plugins are fail-open: flows
//! go on to the other plugins and the output without this plugin's verdict,
//! and are counted as skipped.
//!
//! Findings are validated before they leave: a row outside the batch, an
//! unknown institution, an oversized finding or an oversized result is
//! rejected and counted.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::instance::{CallError, Instance};
use super::limits::{MAX_EVIDENCE, MAX_EVIDENCE_VALUE, MAX_LABEL, TrapKind};
use super::registry::LoadedPlugin;
use crate::batch::FlowBatch;
use crate::contract::{Entity, Finding, Subject};

/// Default traps allowed while isolating poison flows in one batch.
pub const DEFAULT_ISOLATION_TRAPS: u32 = 16;

/// How a worker reacts to failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePolicy {
    /// Traps allowed while bisecting one batch; flows not examined when the
    /// budget runs out are skipped.
    pub isolation_traps: u32,
    /// Rest after the first failure, doubled after each further consecutive
    /// failure; zero disables resting.
    pub backoff: Duration,
    /// Consecutive failed batches that quarantine the plugin.
    pub quarantine_after: u32,
    /// First quarantine; doubled each time the plugin fails again right
    /// after release.
    pub quarantine: Duration,
    /// Longest quarantine.
    pub max_quarantine: Duration,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        Self {
            isolation_traps: DEFAULT_ISOLATION_TRAPS,
            backoff: Duration::from_secs(1),
            quarantine_after: 5,
            quarantine: Duration::from_secs(300),
            max_quarantine: Duration::from_secs(3600),
        }
    }
}

/// Why a finding was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Names a row outside the batch (or a row from `tick`).
    Row,
    /// Names an institution that does not exist.
    Institution,
    /// A label or evidence over the size limits.
    OversizedFinding,
    /// Part of a result with more findings than the limit.
    OversizedResult,
}

impl Rejection {
    /// Every reason.
    pub const ALL: [Rejection; 4] = [
        Rejection::Row,
        Rejection::Institution,
        Rejection::OversizedFinding,
        Rejection::OversizedResult,
    ];

    /// Label for reports.
    pub fn label(self) -> &'static str {
        match self {
            Rejection::Row => "row_out_of_range",
            Rejection::Institution => "unknown_institution",
            Rejection::OversizedFinding => "oversized_finding",
            Rejection::OversizedResult => "oversized_result",
        }
    }
}

/// Counters of one plugin, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct PluginStats {
    /// Calls to `process`, including retries and isolation.
    pub calls: AtomicU64,
    /// Flows examined.
    pub flows: AtomicU64,
    /// Findings accepted.
    pub findings: AtomicU64,
    /// Flows the plugin did not examine (resting, quarantined, isolation
    /// budget exhausted).
    pub skipped_flows: AtomicU64,
    /// Flows isolated as the cause of a trap.
    pub poison_flows: AtomicU64,
    /// Instances replaced after a trap.
    pub restarts: AtomicU64,
    /// Batches that trapped once and succeeded on retry.
    pub recovered: AtomicU64,
    /// Batches that could not be processed whole.
    pub failed_batches: AtomicU64,
    /// Times the plugin was quarantined.
    pub quarantines: AtomicU64,
    /// Whether it is quarantined now.
    pub quarantined: AtomicBool,
    traps: [AtomicU64; TrapKind::ALL.len()],
    rejected: [AtomicU64; Rejection::ALL.len()],
    /// Time spent in calls, nanoseconds.
    pub busy_ns: AtomicU64,
    /// Longest call, nanoseconds.
    pub max_call_ns: AtomicU64,
    /// Highest memory use of an instance, bytes.
    pub memory_peak: AtomicU64,
    /// Lines the plugin wrote to its log, stdout or stderr.
    pub log_lines: AtomicU64,
    /// Lines dropped because the plugin wrote more than its per-call
    /// budget.
    pub log_suppressed: AtomicU64,
}

impl PluginStats {
    /// Traps of `kind` so far.
    pub fn traps(&self, kind: TrapKind) -> u64 {
        let i = TrapKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.traps[i].load(Ordering::Relaxed)
    }

    /// All traps so far.
    pub fn total_traps(&self) -> u64 {
        self.traps.iter().map(|t| t.load(Ordering::Relaxed)).sum()
    }

    /// Findings rejected for `reason` so far.
    pub fn rejected(&self, reason: Rejection) -> u64 {
        let i = Rejection::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.rejected[i].load(Ordering::Relaxed)
    }

    fn count_trap(&self, kind: TrapKind) {
        let i = TrapKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.traps[i].fetch_add(1, Ordering::Relaxed);
    }

    fn reject(&self, reason: Rejection, n: u64) {
        let i = Rejection::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.rejected[i].fetch_add(n, Ordering::Relaxed);
    }
}

/// A validated finding.
#[derive(Debug, Clone)]
pub struct Detection {
    /// The row of the batch it is about, when it is about one flow.
    pub row: Option<usize>,
    /// The entity it is about, for windowed findings.
    pub entity: Option<Entity>,
    /// What the plugin found.
    pub finding: Finding,
}

/// Something the engine itself must report about a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    /// The plugin was quarantined.
    Quarantined {
        /// Consecutive failed batches.
        failures: u32,
        /// How long it stays out.
        duration: Duration,
        /// The last trap.
        last_trap: String,
    },
    /// A quarantined plugin processed a batch again.
    Released,
    /// A flow made the plugin trap on its own and was skipped.
    PoisonFlow {
        /// Its row in the batch.
        row: usize,
        /// The trap.
        trap: TrapKind,
    },
}

/// What a batch (or a tick) produced.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Accepted findings.
    pub detections: Vec<Detection>,
    /// Engine events to report.
    pub events: Vec<EngineEvent>,
}

#[derive(Debug, Default)]
struct Health {
    consecutive_failures: u32,
    rest_until: Option<Instant>,
    quarantined: bool,
    quarantine_rounds: u32,
    last_trap: String,
    last_kind: Option<TrapKind>,
}

/// Why a call in the worker did not return findings.
#[derive(Debug, Clone, Copy)]
enum Failure {
    /// No instance could be made (instantiation or `configure` failed):
    /// nothing about the batch is known.
    Setup(TrapKind),
    /// The instance trapped while processing the rows.
    Call(TrapKind),
}

/// What an isolation probe found out about a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// It went through.
    Clean,
    /// It trapped.
    Trapped,
    /// No instance could be made to try.
    NoInstance,
}

/// Runs one plugin. Owned by one thread.
#[derive(Debug)]
pub struct PluginWorker {
    plugin: Arc<LoadedPlugin>,
    instance: Option<Instance>,
    policy: FailurePolicy,
    institutions: usize,
    health: Health,
    stats: Arc<PluginStats>,
}

impl PluginWorker {
    /// A worker for `plugin`; findings naming an institution index at or
    /// above `institutions` are rejected.
    pub fn new(plugin: Arc<LoadedPlugin>, policy: FailurePolicy, institutions: usize) -> Self {
        Self {
            plugin,
            instance: None,
            policy,
            institutions,
            health: Health::default(),
            stats: Arc::new(PluginStats::default()),
        }
    }

    /// The plugin.
    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.plugin
    }

    /// Its counters.
    pub fn stats(&self) -> &Arc<PluginStats> {
        &self.stats
    }

    fn resting(&self) -> bool {
        self.health
            .rest_until
            .is_some_and(|until| Instant::now() < until)
    }

    /// Runs a batch through the plugin.
    pub fn process(&mut self, batch: &FlowBatch) -> Verdict {
        let mut verdict = Verdict::default();
        let rows = batch.len();
        if rows == 0 {
            return verdict;
        }
        if self.resting() {
            self.stats
                .skipped_flows
                .fetch_add(rows as u64, Ordering::Relaxed);
            return verdict;
        }
        for attempt in 0..2 {
            match self.call(batch, 0..rows) {
                Ok(findings) => {
                    self.accept(findings, 0..rows, &mut verdict);
                    if attempt == 1 {
                        self.stats.recovered.fetch_add(1, Ordering::Relaxed);
                    }
                    self.stats.flows.fetch_add(rows as u64, Ordering::Relaxed);
                    self.succeeded(&mut verdict);
                    return verdict;
                }
                Err(Failure::Setup(kind)) => {
                    // No instance to run the batch in: the flows are not
                    // to blame, so there is nothing to isolate.
                    tracing::warn!(
                        plugin = %self.plugin.name,
                        trap = %kind,
                        reason = %self.health.last_trap,
                        "plugin could not be instantiated; batch skipped"
                    );
                    self.stats
                        .skipped_flows
                        .fetch_add(rows as u64, Ordering::Relaxed);
                    self.failed(&mut verdict);
                    return verdict;
                }
                Err(Failure::Call(kind)) => tracing::warn!(
                    plugin = %self.plugin.name,
                    trap = %kind,
                    attempt = attempt + 1,
                    reason = %self.health.last_trap,
                    "plugin trapped; instance replaced"
                ),
            }
        }
        let mut budget = self.policy.isolation_traps;
        self.isolate(batch, 0..rows, true, &mut budget, &mut verdict);
        self.failed(&mut verdict);
        verdict
    }

    /// Advances the plugin's windows to `now`.
    pub fn tick(&mut self, now: i64) -> Verdict {
        let mut verdict = Verdict::default();
        if self.resting() {
            return verdict;
        }
        let result = match self.ensure_instance() {
            Ok(()) => match self.instance.as_mut().map(|i| i.tick(now)) {
                Some(result) => {
                    self.count_log();
                    result.map_err(|e| self.trapped(e))
                }
                None => Err(TrapKind::Instantiate),
            },
            Err(kind) => Err(kind),
        };
        match result {
            Ok(findings) => {
                self.accept(findings, 0..0, &mut verdict);
                self.succeeded(&mut verdict);
            }
            Err(_) => self.failed(&mut verdict),
        }
        verdict
    }

    /// Bisects `range` to find the rows that make the plugin trap. With
    /// `known_bad`, the range is already known to trap and is not called
    /// whole again. Every trap spends one unit of `budget`; rows not yet
    /// examined when it is spent, or when the plugin cannot even be
    /// instantiated any more, are skipped.
    fn isolate(
        &mut self,
        batch: &FlowBatch,
        range: Range<usize>,
        known_bad: bool,
        budget: &mut u32,
        verdict: &mut Verdict,
    ) {
        if range.is_empty() {
            return;
        }
        if *budget == 0 {
            self.skip(range.len());
            return;
        }
        if !known_bad {
            match self.probe(batch, range.clone(), budget, verdict) {
                Probe::Clean => return,
                Probe::Trapped => {}
                Probe::NoInstance => {
                    self.skip(range.len());
                    return;
                }
            }
        }
        if range.len() == 1 {
            self.stats.poison_flows.fetch_add(1, Ordering::Relaxed);
            verdict.events.push(EngineEvent::PoisonFlow {
                row: range.start,
                trap: self.health.last_kind.unwrap_or(TrapKind::Other),
            });
            return;
        }
        if *budget == 0 {
            self.skip(range.len());
            return;
        }
        let mid = range.start + range.len() / 2;
        let (left, right) = (range.start..mid, mid..range.end);
        match self.probe(batch, left.clone(), budget, verdict) {
            // The left half is clean, so the right half holds the trap.
            Probe::Clean => self.isolate(batch, right, true, budget, verdict),
            Probe::Trapped => {
                self.isolate(batch, left, true, budget, verdict);
                self.isolate(batch, right, false, budget, verdict);
            }
            Probe::NoInstance => self.skip(range.len()),
        }
    }

    /// Processes `range` during isolation, keeping its findings when it goes
    /// through. A trap spends budget; a failure to instantiate spends all
    /// of it, since no further probe could run.
    fn probe(
        &mut self,
        batch: &FlowBatch,
        range: Range<usize>,
        budget: &mut u32,
        verdict: &mut Verdict,
    ) -> Probe {
        match self.call(batch, range.clone()) {
            Ok(findings) => {
                self.stats
                    .flows
                    .fetch_add(range.len() as u64, Ordering::Relaxed);
                self.accept(findings, range, verdict);
                Probe::Clean
            }
            Err(Failure::Call(_)) => {
                *budget = budget.saturating_sub(1);
                Probe::Trapped
            }
            Err(Failure::Setup(_)) => {
                *budget = 0;
                Probe::NoInstance
            }
        }
    }

    fn skip(&self, flows: usize) {
        self.stats
            .skipped_flows
            .fetch_add(flows as u64, Ordering::Relaxed);
    }

    /// One `process` call on `range`, instantiating first if needed. A trap
    /// drops the instance.
    fn call(&mut self, batch: &FlowBatch, range: Range<usize>) -> Result<Vec<Finding>, Failure> {
        self.ensure_instance().map_err(Failure::Setup)?;
        let Some(instance) = self.instance.as_mut() else {
            return Err(Failure::Setup(TrapKind::Instantiate));
        };
        let mut scratch = Vec::new();
        let view = batch.view(range, &self.plugin.fields, &mut scratch);
        let started = Instant::now();
        let result = instance.process(view);
        let elapsed = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        self.stats.busy_ns.fetch_add(elapsed, Ordering::Relaxed);
        self.stats.max_call_ns.fetch_max(elapsed, Ordering::Relaxed);
        self.stats
            .memory_peak
            .fetch_max(instance.memory(), Ordering::Relaxed);
        // Read before a trap drops the instance: the lines it wrote while
        // failing (a panic message) are the most useful ones.
        self.count_log();
        result.map_err(|e| Failure::Call(self.trapped(e)))
    }

    /// Adds what the instance logged since the last look to the stats.
    fn count_log(&mut self) {
        if let Some(instance) = self.instance.as_mut() {
            let counts = instance.take_log_counts();
            self.stats
                .log_lines
                .fetch_add(counts.lines, Ordering::Relaxed);
            self.stats
                .log_suppressed
                .fetch_add(counts.suppressed, Ordering::Relaxed);
        }
    }

    fn ensure_instance(&mut self) -> Result<(), TrapKind> {
        if self.instance.is_some() {
            return Ok(());
        }
        match self.plugin.instantiate() {
            Ok(instance) => {
                self.instance = Some(instance);
                Ok(())
            }
            Err(e) => Err(self.trapped(e)),
        }
    }

    /// Records a failed call and drops the instance.
    fn trapped(&mut self, error: CallError) -> TrapKind {
        let kind = error.trap_kind().unwrap_or(TrapKind::Instantiate);
        self.stats.count_trap(kind);
        if self.instance.take().is_some() {
            self.stats.restarts.fetch_add(1, Ordering::Relaxed);
        }
        self.health.last_trap = error.to_string();
        self.health.last_kind = Some(kind);
        kind
    }

    fn succeeded(&mut self, verdict: &mut Verdict) {
        if self.health.quarantined {
            self.health.quarantined = false;
            self.stats.quarantined.store(false, Ordering::Relaxed);
            verdict.events.push(EngineEvent::Released);
        }
        self.health.consecutive_failures = 0;
        self.health.quarantine_rounds = 0;
        self.health.rest_until = None;
    }

    fn failed(&mut self, verdict: &mut Verdict) {
        self.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
        let health = &mut self.health;
        health.consecutive_failures += 1;
        let now = Instant::now();
        if health.consecutive_failures >= self.policy.quarantine_after.max(1) {
            health.quarantine_rounds += 1;
            let factor = 1u32 << (health.quarantine_rounds - 1).min(16);
            let duration = self
                .policy
                .quarantine
                .saturating_mul(factor)
                .min(self.policy.max_quarantine);
            health.rest_until = Some(now + duration);
            if !health.quarantined {
                health.quarantined = true;
                self.stats.quarantined.store(true, Ordering::Relaxed);
            }
            self.stats.quarantines.fetch_add(1, Ordering::Relaxed);
            verdict.events.push(EngineEvent::Quarantined {
                failures: health.consecutive_failures,
                duration,
                last_trap: health.last_trap.clone(),
            });
        } else if !self.policy.backoff.is_zero() {
            let factor = 1u32 << (health.consecutive_failures - 1).min(16);
            let rest = self
                .policy
                .backoff
                .saturating_mul(factor)
                .min(self.policy.quarantine);
            health.rest_until = Some(now + rest);
        }
    }

    /// Validates findings of a call on `range` and turns them into
    /// detections with rows relative to the whole batch.
    fn accept(&self, findings: Vec<Finding>, range: Range<usize>, verdict: &mut Verdict) {
        let limit = self.plugin.limits().max_findings(range.len());
        if findings.len() > limit {
            self.stats
                .reject(Rejection::OversizedResult, findings.len() as u64);
            tracing::warn!(
                plugin = %self.plugin.name,
                findings = findings.len(),
                limit,
                "plugin returned more findings than allowed; result rejected"
            );
            return;
        }
        for finding in findings {
            if let Some(reason) = oversized(&finding) {
                self.stats.reject(Rejection::OversizedFinding, 1);
                tracing::debug!(plugin = %self.plugin.name, reason, "finding rejected");
                continue;
            }
            let detection = match &finding.subject {
                Subject::Row(row) => {
                    let row = *row as usize;
                    if row >= range.len() {
                        self.stats.reject(Rejection::Row, 1);
                        continue;
                    }
                    Detection {
                        row: Some(range.start + row),
                        entity: None,
                        finding,
                    }
                }
                Subject::Entity(entity) => {
                    if usize::from(entity.institution) >= self.institutions {
                        self.stats.reject(Rejection::Institution, 1);
                        continue;
                    }
                    Detection {
                        row: None,
                        entity: Some(*entity),
                        finding,
                    }
                }
            };
            self.stats.findings.fetch_add(1, Ordering::Relaxed);
            verdict.detections.push(detection);
        }
    }
}

fn oversized(finding: &Finding) -> Option<&'static str> {
    if finding.rule_id.len() > MAX_LABEL
        || finding.title.len() > MAX_LABEL
        || finding.category.len() > MAX_LABEL
    {
        return Some("label too long");
    }
    if finding.evidence.len() > MAX_EVIDENCE {
        return Some("too much evidence");
    }
    if finding
        .evidence
        .iter()
        .any(|(k, v)| k.len() > MAX_EVIDENCE_VALUE || v.len() > MAX_EVIDENCE_VALUE)
    {
        return Some("evidence value too long");
    }
    None
}
