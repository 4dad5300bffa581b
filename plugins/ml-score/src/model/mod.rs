//! The model slot (to be filled in by issue 4).

use kansoku_plugin::{Batch, ConfigError, Finding, Ruleset, Timestamp};
use serde::{Deserialize, Serialize};

/// `[model]` section: which model file, which features.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Ruleset file holding the ONNX model.
    pub file: String,
}

/// A loaded model with its feature windows.
#[derive(Debug)]
pub struct ModelSlot {}

/// What survives a hot swap: the per-host feature windows.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {}

impl ModelSlot {
    /// Loads the model `spec` names from `rulesets`. `previous` is the slot
    /// in force, whose windows carry over.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the spec or model file that is wrong.
    pub fn configure(
        spec: &Spec,
        location: &str,
        rulesets: &[Ruleset],
        previous: Option<&ModelSlot>,
    ) -> Result<Self, ConfigError> {
        let _ = (previous, spec, rulesets);
        Err(ConfigError::new(location, "the model slot is not built yet"))
    }

    /// One line for the load report.
    pub fn summary(&self) -> String {
        String::new()
    }

    /// Scores the flows of a batch.
    pub fn process(&mut self, batch: &Batch) -> Vec<Finding> {
        let _ = batch;
        Vec::new()
    }

    /// Expires feature windows.
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
