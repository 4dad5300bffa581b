//! Beacon analysis, ported from RITA (to be filled in by issue 4).

use kansoku_plugin::{Batch, Finding, Timestamp};
use serde::{Deserialize, Serialize};

/// `[beacon]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Whether beacon analysis runs.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

impl Settings {
    /// Settings that switch beacon analysis off.
    pub fn disabled() -> Self {
        Self { enabled: false }
    }
}

/// Beacon state: connection pairs and their samples.
#[derive(Debug, Default)]
pub struct Beacons {}

/// What survives a hot swap.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {}

impl Beacons {
    /// Takes new settings; returns notes for the load report.
    pub fn configure(&mut self, settings: Settings) -> Vec<String> {
        let _ = settings;
        Vec::new()
    }

    /// Records the connections of a batch.
    pub fn process(&mut self, batch: &Batch) -> Vec<Finding> {
        let _ = batch;
        Vec::new()
    }

    /// Scores pairs whose window is due.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Finding> {
        let _ = now;
        Vec::new()
    }

    /// State for a replacement instance.
    pub fn state(&self) -> State {
        State {}
    }

    /// Takes over state from an earlier instance.
    pub fn restore(&mut self, state: State) {
        let _ = state;
    }
}
