//! `dns-anomaly`: a built-in kansoku detector for random-subdomain ("water
//! torture") attacks, DGA names and DNS tunnelling.

pub mod dga;
pub mod names;

use kansoku_plugin::{
    Batch, ConfigError, Description, Detector, Finding, LoadReport, Ruleset, Timestamp,
};

/// The detector.
#[derive(Debug, Default)]
pub struct DnsAnomaly {}

impl Detector for DnsAnomaly {
    fn describe() -> Description {
        Description::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .summary("Random-subdomain attacks, DGA names and DNS tunnelling")
            .stateful()
    }

    fn configure(&mut self, _rulesets: Vec<Ruleset>) -> Result<LoadReport, ConfigError> {
        Ok(LoadReport::loaded(0))
    }

    fn process(&mut self, _batch: &Batch) -> Vec<Finding> {
        Vec::new()
    }

    fn tick(&mut self, _now: Timestamp) -> Vec<Finding> {
        Vec::new()
    }

    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }

    fn restore(&mut self, _state: &[u8]) -> Result<(), ConfigError> {
        Ok(())
    }
}

kansoku_plugin::export!(DnsAnomaly);
