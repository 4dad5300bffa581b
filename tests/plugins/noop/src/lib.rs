//! A plugin that asks for two text fields and finds nothing: the boundary
//! benchmark measures the cost of getting a batch into a plugin and back.

use kansoku_plugin::{Batch, Description, Detector, Finding, TextField};

#[derive(Debug, Default)]
pub struct Noop;

impl Detector for Noop {
    fn describe() -> Description {
        Description::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .summary("Finds nothing; measures the plugin boundary")
            .wants(&[TextField::DnsQuery, TextField::TlsSni])
    }

    fn process(&mut self, batch: &Batch) -> Vec<Finding> {
        // Touch the batch so the work cannot be optimised away.
        std::hint::black_box(batch.len());
        Vec::new()
    }
}

kansoku_plugin::export!(Noop);
