//! Plugins: the sandboxed Wasm detectors flows are streamed through.
//!
//! In: [`FlowBatch`](crate::batch::FlowBatch)es. Out: validated
//! [`Detection`]s and [`EngineEvent`]s (quarantine, poison flows).
//!
//! * [`Runtime`] owns the wasmtime engine (pooling allocator, epoch
//!   deadlines, compiled-component cache) and the linker.
//! * [`LoadedPlugin::load`] turns a [`PluginSpec`] (built-in or `.wasm`
//!   file, rulesets, limits, grants) into a checked, configured plugin.
//! * [`PluginWorker`] runs one plugin over a stream: retries, isolates
//!   poison flows, backs off and quarantines, and validates findings.
//!
//! Plugins get no filesystem, network, environment or arguments; their
//! stdout, stderr and log lines go to the engine's log under their name.
//! Sensitive text fields (R3) reach a plugin only when granted.

mod host;
mod instance;
mod limits;
mod registry;
mod runtime;
mod worker;

use std::path::PathBuf;

pub use host::LogCounts;
pub use instance::{CallError, Instance};
pub use limits::{
    DEFAULT_CONFIGURE_DEADLINE, DEFAULT_DEADLINE, DEFAULT_FINDINGS_PER_ROW, DEFAULT_MEMORY_LIMIT,
    MemoryCapExceeded, PluginLimits, TrapKind,
};
pub use registry::{
    BUILTIN, Builtin, DEFAULT_LOG_BUDGET, LoadedPlugin, PluginCode, PluginImage, PluginSpec,
    builtin,
};
pub use runtime::{Runtime, RuntimeConfig, compatible};
pub use worker::{
    DEFAULT_ISOLATION_TRAPS, Detection, EngineEvent, FailurePolicy, PluginStats, PluginWorker,
    Rejection, Verdict,
};

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The runtime itself could not start.
    #[error("plugin runtime: {0}")]
    Runtime(String),
    /// The `.wasm` file could not be read.
    #[error("plugin {plugin}: cannot read {}: {reason}", path.display())]
    Read {
        /// Plugin name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
    /// The bytes are not a valid component.
    #[error("plugin {plugin}: not a valid WebAssembly component: {reason}")]
    Compile {
        /// Plugin name.
        plugin: String,
        /// The cause.
        reason: String,
    },
    /// The component does not export the detector interface.
    #[error(
        "plugin {plugin}: not a kansoku detector: it does not export kansoku:detector/plugin (it exports: {exports})"
    )]
    NotADetector {
        /// Plugin name.
        plugin: String,
        /// What it exports instead.
        exports: String,
    },
    /// The component was built against an unsupported contract version.
    #[error(
        "plugin {plugin}: built for contract kansoku:detector@{found}, but this kansoku supports {supported}; rebuild it against kansoku-plugin {supported}"
    )]
    Contract {
        /// Plugin name.
        plugin: String,
        /// Its contract version.
        found: String,
        /// Ours.
        supported: String,
    },
    /// The component imports something the host does not provide.
    #[error(
        "plugin {plugin}: imports something kansoku does not provide (plugins may import only kansoku:detector/log and WASI): {reason}"
    )]
    Imports {
        /// Plugin name.
        plugin: String,
        /// The cause.
        reason: String,
    },
    /// The configured limits are impossible.
    #[error("plugin {plugin}: {reason}")]
    Limits {
        /// Plugin name.
        plugin: String,
        /// What is wrong.
        reason: String,
    },
    /// The plugin refused its rulesets.
    #[error("plugin {plugin}: ruleset {location}: {message}")]
    Config {
        /// Plugin name.
        plugin: String,
        /// `ruleset:line`.
        location: String,
        /// The plugin's reason.
        message: String,
    },
    /// The plugin trapped while being described, configured or tested.
    #[error("plugin {plugin}: failed its self-test: {reason}")]
    SelfTest {
        /// Plugin name.
        plugin: String,
        /// What happened.
        reason: String,
    },
}
