//! The model slot: a trained ONNX model over catalogue features, scored a
//! batch at a time inside the plugin.
//!
//! The `[model]` section of a ruleset names the model file (another ruleset,
//! `*.onnx`), the features in input order and how a score becomes a
//! finding. A model or spec that cannot be used is refused as a whole, so
//! the slot in force keeps running.

mod runtime;

use kansoku_plugin::{Batch, ConfigError, Finding, Flow, Ruleset, Severity, Timestamp, warn};
use serde::{Deserialize, Serialize};

use crate::features::{Extractor, Feature, Windows, WindowsState, source_key};
use runtime::Runtime;

/// `[model]` section: which model, which features, when to report.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Model name, reported in evidence.
    pub name: String,
    /// Model version, reported in evidence.
    pub version: String,
    /// Ruleset file holding the ONNX model.
    pub file: String,
    /// Features, in the order of the model's input columns.
    pub features: Vec<Feature>,
    /// Output to read the score from (skl2onnx classifiers: `probabilities`).
    #[serde(default = "default_output")]
    pub output: String,
    /// Column of that output holding the score (the positive class).
    #[serde(default = "default_column")]
    pub column: usize,
    /// Flows scoring at least this much are reported.
    pub threshold: f32,
    /// Rule id of the findings.
    #[serde(default = "default_rule_id")]
    pub rule_id: String,
    /// Length of the per-source windows, in seconds: window features count
    /// over it, and the finding limit applies per window.
    #[serde(default = "default_window_secs")]
    pub window_secs: u32,
    /// Findings per source and window; further crossings are counted only.
    #[serde(default = "default_findings_per_source")]
    pub findings_per_source: u32,
    /// Sources tracked at most; beyond, windows are evicted.
    #[serde(default = "default_max_hosts")]
    pub max_hosts: usize,
    /// A typical value of each feature (the training medians); the
    /// features whose replacement by it lowers a flagged flow's score most
    /// are named in the evidence. Zeros when absent.
    #[serde(default)]
    pub baseline: Vec<f32>,
}

fn default_output() -> String {
    "probabilities".into()
}
fn default_column() -> usize {
    1
}
fn default_rule_id() -> String {
    "model-flows".into()
}
fn default_window_secs() -> u32 {
    300
}
fn default_findings_per_source() -> u32 {
    1
}
fn default_max_hosts() -> usize {
    200_000
}

/// Features named in a finding's evidence.
const TOP_FEATURES: usize = 3;

/// A loaded model with its feature windows.
#[derive(Debug)]
pub struct ModelSlot {
    spec: Spec,
    file: String,
    extractor: Extractor,
    runtime: Runtime,
    windows: Windows,
    baseline: Vec<f32>,
    /// Feature matrix of the current batch's connections, reused.
    features: Vec<f32>,
    /// Batch row of each row of `features`.
    rows: Vec<u32>,
    /// Rows of the current batch at or above the threshold.
    flagged: Vec<(u32, f32)>,
    counters: Counters,
}

/// Running totals, carried across hot swaps.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Flows scored.
    pub scored: u64,
    /// Flows at or above the threshold.
    pub flagged: u64,
    /// Flagged flows not reported: their source had reached its limit.
    pub suppressed: u64,
    /// Batches the model failed on (their flows are not scored).
    pub failed_batches: u64,
}

/// What survives a hot swap: the per-host feature windows and counters.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    windows: WindowsState,
    counters: Counters,
}

impl ModelSlot {
    /// Loads the model `spec` names from `rulesets`. `previous` is the slot
    /// in force, whose windows carry over.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the spec (`location`) or model file that is
    /// wrong.
    pub fn configure(
        spec: &Spec,
        location: &str,
        rulesets: &[Ruleset],
        previous: Option<&ModelSlot>,
    ) -> Result<Self, ConfigError> {
        check(spec).map_err(|e| ConfigError::new(location, e))?;
        let model = rulesets
            .iter()
            .find(|r| r.name == spec.file)
            .ok_or_else(|| {
                let models: Vec<&str> = rulesets
                    .iter()
                    .filter(|r| r.name.ends_with(".onnx"))
                    .map(|r| r.name.as_str())
                    .collect();
                ConfigError::new(
                    location,
                    format!(
                        "model file {:?} is not among the rulesets (models present: {})",
                        spec.file,
                        if models.is_empty() {
                            "none".to_owned()
                        } else {
                            models.join(", ")
                        }
                    ),
                )
            })?;
        let runtime = Runtime::load(
            &model.content,
            spec.features.len(),
            &spec.output,
            spec.column,
        )
        .map_err(|e| ConfigError::new(&model.name, format!("{e} (model named in {location})")))?;
        let window_us = i64::from(spec.window_secs) * 1_000_000;
        let (windows, counters) = match previous {
            Some(previous) => (
                previous.windows.reconfigured(window_us, spec.max_hosts),
                previous.counters,
            ),
            None => (Windows::new(window_us, spec.max_hosts), Counters::default()),
        };
        let baseline = if spec.baseline.is_empty() {
            vec![0.0; spec.features.len()]
        } else {
            spec.baseline.clone()
        };
        Ok(Self {
            spec: spec.clone(),
            file: model.name.clone(),
            extractor: Extractor::new(spec.features.clone()),
            runtime,
            windows,
            baseline,
            features: Vec::new(),
            rows: Vec::new(),
            flagged: Vec::new(),
            counters,
        })
    }

    /// One line for the load report.
    pub fn summary(&self) -> String {
        format!(
            "model {} {} ({}): {} features, threshold {}, rule {}, {} s windows",
            self.spec.name,
            self.spec.version,
            self.file,
            self.spec.features.len(),
            self.spec.threshold,
            self.spec.rule_id,
            self.spec.window_secs
        )
    }

    /// The spec in force.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Running totals.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The per-source windows.
    pub fn windows(&self) -> &Windows {
        &self.windows
    }

    /// Scores the connections of a batch; reports those at or above the
    /// threshold, within each source's limit.
    pub fn process(&mut self, batch: &Batch) -> Vec<Finding> {
        self.features.clear();
        self.rows.clear();
        self.extractor
            .extract(batch, &mut self.windows, &mut self.rows, &mut self.features);
        if self.rows.is_empty() {
            return Vec::new();
        }
        let threshold = self.spec.threshold;
        self.flagged.clear();
        match self.runtime.score(&self.features) {
            Ok(scores) => {
                self.counters.scored += scores.len() as u64;
                self.flagged.extend(
                    scores
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| **s >= threshold)
                        .map(|(row, s)| (row as u32, *s)),
                );
            }
            Err(e) => {
                if self.counters.failed_batches == 0 {
                    warn!("model {}: a batch could not be scored: {e}", self.spec.name);
                }
                self.counters.failed_batches += 1;
                return Vec::new();
            }
        }
        self.counters.flagged += self.flagged.len() as u64;
        let mut flagged = std::mem::take(&mut self.flagged);
        flagged.retain(|&(row, _)| {
            let Some(flow) = record(&self.rows, batch, row) else {
                return false;
            };
            let allowed = self.windows.allow_finding(
                source_key(&flow),
                flow.ts(),
                self.spec.findings_per_source,
            );
            if !allowed {
                self.counters.suppressed += 1;
            }
            allowed
        });
        let tops = self.top_features(&flagged);
        let mut findings = Vec::with_capacity(flagged.len());
        for (&(row, score), top) in flagged.iter().zip(tops) {
            let Some(flow) = record(&self.rows, batch, row) else {
                continue;
            };
            findings.push(
                Finding::new(
                    flow,
                    &self.spec.rule_id,
                    format!("flow scored {score:.3} by model {}", self.spec.name),
                )
                .category("anomaly")
                .severity(Severity::Medium)
                .confidence((score.clamp(0.0, 1.0) * 100.0) as u8)
                .evidence("score", format!("{score:.6}"))
                .evidence("model", &self.spec.name)
                .evidence("model_version", &self.spec.version)
                .evidence("top_features", top),
            );
        }
        self.flagged = flagged;
        findings
    }

    /// For each reported row, the features whose replacement by their
    /// baseline value lowers its score most, as `name=value (-drop)`. One
    /// extra model run per batch with findings, over every probe at once
    /// (a run's fixed cost is larger than a few rows'); the per-source
    /// limit keeps the rows few.
    fn top_features(&mut self, reported: &[(u32, f32)]) -> Vec<String> {
        let width = self.extractor.width();
        let mut probes = Vec::with_capacity(reported.len() * width * width);
        for &(row, _) in reported {
            let start = row as usize * width;
            let Some(values) = self.features.get(start..start + width) else {
                return vec![String::new(); reported.len()];
            };
            for i in 0..width {
                let probe = probes.len();
                probes.extend_from_slice(values);
                probes[probe + i] = self.baseline[i];
            }
        }
        let Ok(scores) = self.runtime.score(&probes) else {
            return vec![String::new(); reported.len()];
        };
        let features = self.extractor.features();
        reported
            .iter()
            .zip(scores.chunks(width))
            .map(|(&(row, score), probe_scores)| {
                let values = &self.features[row as usize * width..(row as usize + 1) * width];
                let mut drops: Vec<(usize, f32)> = probe_scores
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (i, score - s))
                    .filter(|(_, d)| *d > 0.0)
                    .collect();
                drops.sort_by(|a, b| b.1.total_cmp(&a.1));
                drops
                    .iter()
                    .take(TOP_FEATURES)
                    .map(|&(i, d)| format!("{}={} (-{d:.3})", features[i].name(), values[i]))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect()
    }

    /// Expires feature windows.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Finding> {
        self.windows.expire(now);
        Vec::new()
    }

    /// State for a replacement instance.
    pub fn state(&self) -> State {
        State {
            windows: self.windows.state(),
            counters: self.counters,
        }
    }

    /// Takes over state from an earlier instance.
    pub fn restore(&mut self, state: State) {
        self.windows.restore(state.windows);
        self.counters = state.counters;
    }
}

/// The batch record of row `row` of the feature matrix, whose batch rows
/// are `rows`.
fn record<'b>(rows: &[u32], batch: &'b Batch, row: u32) -> Option<Flow<'b>> {
    rows.get(row as usize).and_then(|&r| batch.get(r as usize))
}

/// Checks a spec on its own, before its model is read.
fn check(spec: &Spec) -> Result<(), String> {
    if spec.features.is_empty() {
        return Err("[model] features is empty".into());
    }
    for (i, f) in spec.features.iter().enumerate() {
        if spec.features[..i].contains(f) {
            return Err(format!("[model] features lists {} twice", f.name()));
        }
    }
    if !spec.threshold.is_finite() {
        return Err("[model] threshold must be a finite number".into());
    }
    if spec.window_secs == 0 {
        return Err("[model] window_secs must be at least 1".into());
    }
    if spec.max_hosts == 0 {
        return Err("[model] max_hosts must be at least 1".into());
    }
    if !spec.baseline.is_empty() && spec.baseline.len() != spec.features.len() {
        return Err(format!(
            "[model] baseline has {} values for {} features",
            spec.baseline.len(),
            spec.features.len()
        ));
    }
    if !spec.file.ends_with(".onnx") {
        return Err(format!(
            "[model] file {:?} must be an .onnx ruleset",
            spec.file
        ));
    }
    Ok(())
}
