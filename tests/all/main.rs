//! End-to-end tests of kansoku, one module per area.

// Test helpers fail the test by panicking; that is their job.
#![allow(clippy::unwrap_used, reason = "test helpers panic to fail the test")]

mod keys;
mod run;
mod sandbox;
mod storage;
mod store;
mod swap;

use std::net::IpAddr;
use std::sync::OnceLock;

use kansoku::batch::Placement;
use kansoku::plugins::{Runtime, RuntimeConfig};
use kansoku::scope::Direction;

/// One runtime for the whole test binary: components are compiled once
/// (the in-memory cache; no cache directory, so nothing is written to disk)
/// and every test shares the epoch ticker, as plugins do in the engine.
pub(crate) fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(&RuntimeConfig {
            max_instances: 32,
            max_memory: 256 << 20,
            cache_dir: None,
            ..RuntimeConfig::default()
        })
        .expect("the runtime starts")
    })
}

/// Where a test record comes from: institution 0, going `direction`,
/// line `line` of input 0.
pub(crate) fn placed(direction: Direction, line: u64) -> Placement {
    Placement {
        institution: 0,
        peer_institution: None,
        direction,
        src_country: None,
        dst_country: None,
        input: 0,
        line,
    }
}

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().expect("a valid address literal")
}

/// The workspace's Python (`make venv`), with `clients/python` importable.
pub(crate) fn venv_python() -> std::process::Command {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make venv`",
        python.display()
    );
    let mut command = std::process::Command::new(python);
    command.env("PYTHONPATH", root.join("clients/python"));
    command
}
