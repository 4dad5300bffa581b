//! One live plugin instance: its store, its exports, and calls into it under
//! a deadline.
//!
//! A call that traps (deadline, memory cap, panic, fault) leaves the
//! instance unusable; the caller drops it and makes a new one. Nothing here
//! retries: that policy lives in the worker.

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::{Func, Instance as WasmInstance, TypedFunc};

use super::host::{HostState, LogCounts, PluginLog};
use super::limits::{Limiter, TrapKind};
use super::registry::PluginImage;
use super::runtime::root_cause;
use crate::contract::{
    BatchView, ConfigError, Description, Detector, Finding, LoadReport, Ruleset,
};

/// Parameters of `process`, borrowing the host's batch.
type ProcessParams<'a> = (BatchView<'a>,);

/// Results of `process`.
type ProcessResults = (Vec<Finding>,);

/// Why a call into a plugin failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The instance trapped; it must be dropped.
    #[error("{kind}: {message}")]
    Trap {
        /// What kind of trap.
        kind: TrapKind,
        /// Root cause, for the log.
        message: String,
    },
    /// The plugin refused its configuration or snapshot (the instance is
    /// still usable).
    #[error("{}: {}", .0.location, .0.message)]
    Refused(ConfigError),
}

impl CallError {
    fn trap(error: &wasmtime::Error) -> Self {
        CallError::Trap {
            kind: TrapKind::classify(error),
            message: root_cause(error),
        }
    }

    /// The trap kind, if this is a trap.
    pub fn trap_kind(&self) -> Option<TrapKind> {
        match self {
            CallError::Trap { kind, .. } => Some(*kind),
            CallError::Refused(_) => None,
        }
    }
}

/// A live instance.
pub struct Instance {
    plugin: Arc<PluginImage>,
    store: Store<HostState>,
    bindings: Detector,
    process: Func,
    /// Log lines since the last [`Instance::take_log_counts`].
    log: LogCounts,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("plugin", &self.plugin.name)
            .finish_non_exhaustive()
    }
}

impl Instance {
    /// Instantiates `plugin` in a fresh store, without configuring it.
    ///
    /// # Errors
    ///
    /// A [`CallError::Trap`] of kind `Instantiate` (or the trap raised by the
    /// plugin's start-up code).
    pub fn new(plugin: &Arc<PluginImage>) -> Result<Self, CallError> {
        let runtime = plugin.runtime();
        let log = Arc::new(PluginLog::new(plugin.name.clone(), plugin.log_budget));
        let mut store = Store::new(
            runtime.engine(),
            HostState::new(log, Limiter::new(plugin.limits.memory)),
        );
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(runtime.deadline_ticks(plugin.limits.deadline));
        let instantiated =
            plugin
                .pre()
                .instantiate(&mut store)
                .and_then(|instance: WasmInstance| {
                    let bindings = Detector::new(&mut store, &instance)?;
                    let process = instance
                        .get_func(&mut store, plugin.process_index())
                        .ok_or_else(|| {
                            wasmtime::format_err!("the plugin does not export `process`")
                        })?;
                    // Checked once here rather than on every call: see
                    // `Instance::process`.
                    process.typed::<ProcessParams<'_>, ProcessResults>(&store)?;
                    Ok((bindings, process))
                });
        match instantiated {
            Ok((bindings, process)) => Ok(Self {
                plugin: plugin.clone(),
                store,
                bindings,
                process,
                log: LogCounts::default(),
            }),
            Err(e) => {
                let mut error = CallError::trap(&e);
                if let CallError::Trap { kind, .. } = &mut error
                    && *kind == TrapKind::Other
                {
                    *kind = TrapKind::Instantiate;
                }
                Err(error)
            }
        }
    }

    /// Runs `f` under the plugin's deadline, with the log budget refilled.
    fn call<R>(
        &mut self,
        f: impl FnOnce(&Detector, &mut Store<HostState>, &Func) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let deadline = self.plugin.limits.deadline;
        self.call_within(deadline, f)
    }

    /// [`Self::call`] for the calls that load or move state.
    fn configure_call<R>(
        &mut self,
        f: impl FnOnce(&Detector, &mut Store<HostState>, &Func) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let deadline = self.plugin.limits.configure_deadline;
        self.call_within(deadline, f)
    }

    fn call_within<R>(
        &mut self,
        deadline: std::time::Duration,
        f: impl FnOnce(&Detector, &mut Store<HostState>, &Func) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let ticks = self.plugin.runtime().deadline_ticks(deadline);
        self.store.set_epoch_deadline(ticks);
        self.store.data().log.begin_call();
        let result = f(&self.bindings, &mut self.store, &self.process);
        let counts = self.store.data().log.end_call();
        self.log.lines += counts.lines;
        self.log.suppressed += counts.suppressed;
        result.map_err(|e| CallError::trap(&e))
    }

    /// `describe()`.
    ///
    /// # Errors
    ///
    /// A trap.
    pub fn describe(&mut self) -> Result<Description, CallError> {
        self.call(|b, store, _| b.kansoku_detector_plugin().call_describe(store))
    }

    /// `configure(rulesets)`.
    ///
    /// # Errors
    ///
    /// A trap, or [`CallError::Refused`] with the plugin's reason.
    pub fn configure(&mut self, rulesets: &[Ruleset]) -> Result<LoadReport, CallError> {
        self.configure_call(|b, store, _| {
            b.kansoku_detector_plugin().call_configure(store, rulesets)
        })?
        .map_err(CallError::Refused)
    }

    /// `process(batch)`.
    ///
    /// # Errors
    ///
    /// A trap (including a result the host could not read).
    pub fn process(&mut self, batch: BatchView<'_>) -> Result<Vec<Finding>, CallError> {
        self.call(|_, store, func| {
            // SAFETY: `Instance::new` type-checked `process` against exactly
            // these parameter and result types, and an instance's exports
            // never change; lifetimes take no part in component types.
            // Checking again per call (`Func::typed`) walks the whole
            // `flow-batch` record and costs a few percent of a full batch.
            let typed =
                unsafe { TypedFunc::<ProcessParams<'_>, ProcessResults>::new_unchecked(*func) };
            Ok(typed.call(store, (batch,))?.0)
        })
    }

    /// `tick(now)`.
    ///
    /// # Errors
    ///
    /// A trap.
    pub fn tick(&mut self, now: i64) -> Result<Vec<Finding>, CallError> {
        self.call(|b, store, _| b.kansoku_detector_plugin().call_tick(store, now))
    }

    /// `snapshot()`.
    ///
    /// # Errors
    ///
    /// A trap.
    pub fn snapshot(&mut self) -> Result<Vec<u8>, CallError> {
        self.configure_call(|b, store, _| b.kansoku_detector_plugin().call_snapshot(store))
    }

    /// `restore(state)`.
    ///
    /// # Errors
    ///
    /// A trap, or [`CallError::Refused`].
    pub fn restore(&mut self, state: &[u8]) -> Result<(), CallError> {
        self.configure_call(|b, store, _| b.kansoku_detector_plugin().call_restore(store, state))?
            .map_err(CallError::Refused)
    }

    /// Log lines written (and suppressed) since the last time this was
    /// called, trapped calls included.
    pub fn take_log_counts(&mut self) -> LogCounts {
        std::mem::take(&mut self.log)
    }

    /// Linear memory the instance holds now, in bytes.
    pub fn memory(&self) -> u64 {
        self.store.data().limiter.current()
    }
}
