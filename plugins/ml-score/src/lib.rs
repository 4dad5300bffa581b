//! `ml-score`: a built-in kansoku detector that scores behaviour rather than
//! single flows.
//!
//! Two independent parts share one plugin, one configuration and one
//! snapshot:
//!
//! * [`beacon`]: RITA's beacon analysis. Connections are grouped by
//!   source → destination address and source → server name (TLS SNI or HTTP
//!   host); regular timing, regular sizes, a steady hourly spread and long
//!   total duration make a beacon score, reported from `tick`.
//! * [`model`]: a slot for a trained ONNX model over per-flow features from a
//!   fixed catalogue ([`features`]), evaluated in the plugin with tract.
//!
//! Rulesets: every `*.toml` file is read as a [`Config`] (sections `[beacon]`
//! and `[model]`, each may appear in at most one file); `*.onnx` files are
//! models, named by the `[model]` section.

pub mod beacon;
pub mod features;
pub mod model;

use kansoku_plugin::{
    Batch, ConfigError, Description, Detector, Finding, LoadReport, Ruleset, TextField, Timestamp,
};
use serde::{Deserialize, Serialize};

/// One TOML ruleset file. Unknown keys are errors, so a typo does not
/// silently leave a default in force.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Beacon analysis settings; beacon analysis is off without them.
    pub beacon: Option<beacon::Settings>,
    /// The model slot; empty without it.
    pub model: Option<model::Spec>,
}

/// The detector.
#[derive(Debug, Default)]
pub struct MlScore {
    beacons: beacon::Beacons,
    model: Option<model::ModelSlot>,
}

/// What a replacement instance takes over. Versioned so that a plugin
/// upgrade that changes the layout starts empty instead of misreading.
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    beacons: beacon::State,
    model: Option<model::State>,
}

const SNAPSHOT_VERSION: u32 = 1;

impl Detector for MlScore {
    fn describe() -> Description {
        Description::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .summary("Beacon scoring (RITA) and trained ONNX models over flow features")
            .wants(&[TextField::TlsSni, TextField::HttpHost, TextField::Service])
            .stateful()
    }

    fn configure(&mut self, rulesets: Vec<Ruleset>) -> Result<LoadReport, ConfigError> {
        let mut beacon_settings: Option<(String, beacon::Settings)> = None;
        let mut model_spec: Option<(String, model::Spec)> = None;
        for ruleset in &rulesets {
            if ruleset.name.ends_with(".onnx") {
                continue; // read through the [model] section that names it
            }
            if !ruleset.name.ends_with(".toml") {
                return Err(ConfigError::new(
                    &ruleset.name,
                    "unknown ruleset kind: expected a .toml configuration or an .onnx model",
                ));
            }
            let config = parse(ruleset)?;
            if let Some(settings) = config.beacon {
                if let Some((first, _)) = &beacon_settings {
                    return Err(ConfigError::new(
                        &ruleset.name,
                        format!("a second [beacon] section (the first is in {first})"),
                    ));
                }
                beacon_settings = Some((ruleset.name.clone(), settings));
            }
            if let Some(spec) = config.model {
                if let Some((first, _)) = &model_spec {
                    return Err(ConfigError::new(
                        &ruleset.name,
                        format!("a second [model] section (the first is in {first})"),
                    ));
                }
                model_spec = Some((ruleset.name.clone(), spec));
            }
        }

        // Everything is checked before anything changes: on error the
        // previous configuration stays in force.
        let model = match &model_spec {
            Some((location, spec)) => Some(model::ModelSlot::configure(
                spec,
                location,
                &rulesets,
                self.model.as_ref(),
            )?),
            None => None,
        };
        let mut report = LoadReport::loaded(0);
        match beacon_settings {
            Some((_, settings)) => {
                report.loaded += 2;
                report.notes.extend(self.beacons.configure(settings));
            }
            None => {
                self.beacons.configure(beacon::Settings::disabled());
                report.notes.push("beacon analysis off: no [beacon] section".into());
            }
        }
        match &model {
            Some(slot) => {
                report.loaded += 1;
                report.notes.push(slot.summary());
            }
            None => report.notes.push("model slot empty: no [model] section".into()),
        }
        self.model = model;
        Ok(report)
    }

    fn process(&mut self, batch: &Batch) -> Vec<Finding> {
        let mut findings = self.beacons.process(batch);
        if let Some(model) = &mut self.model {
            findings.extend(model.process(batch));
        }
        findings
    }

    fn tick(&mut self, now: Timestamp) -> Vec<Finding> {
        let mut findings = self.beacons.tick(now);
        if let Some(model) = &mut self.model {
            findings.extend(model.tick(now));
        }
        findings
    }

    fn snapshot(&self) -> Vec<u8> {
        let snapshot = Snapshot {
            version: SNAPSHOT_VERSION,
            beacons: self.beacons.state(),
            model: self.model.as_ref().map(model::ModelSlot::state),
        };
        postcard::to_allocvec(&snapshot).unwrap_or_default()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), ConfigError> {
        if state.is_empty() {
            return Ok(());
        }
        let snapshot: Snapshot = postcard::from_bytes(state)
            .map_err(|e| ConfigError::new("snapshot", format!("unreadable state: {e}")))?;
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(ConfigError::new(
                "snapshot",
                format!(
                    "state version {} from another plugin version (this one reads {SNAPSHOT_VERSION})",
                    snapshot.version
                ),
            ));
        }
        self.beacons.restore(snapshot.beacons);
        if let (Some(model), Some(state)) = (&mut self.model, snapshot.model) {
            model.restore(state);
        }
        Ok(())
    }
}

fn parse(ruleset: &Ruleset) -> Result<Config, ConfigError> {
    let text = std::str::from_utf8(&ruleset.content)
        .map_err(|e| ConfigError::new(&ruleset.name, format!("not UTF-8: {e}")))?;
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start].matches('\n').count() + 1);
        let location = match line {
            Some(line) => format!("{}:{line}", ruleset.name),
            None => ruleset.name.clone(),
        };
        ConfigError::new(&location, e.message().to_owned())
    })
}

kansoku_plugin::export!(MlScore);
