//! The Wasm runtime shared by every plugin: one wasmtime engine with a
//! pooling allocator, an epoch ticker for call deadlines, a linker holding
//! the sandboxed WASI and the `log` import, and compiled components cached
//! by content hash (in memory, and on disk when a cache directory is set).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::PluginError;
use super::host::HostState;
use crate::contract::{CONTRACT_VERSION, PLUGIN_INTERFACE};

/// Default interval of the epoch ticker: the granularity of call deadlines.
pub const DEFAULT_EPOCH_TICK: Duration = Duration::from_millis(5);

/// Default number of plugin instances that may be alive at once.
pub const DEFAULT_MAX_INSTANCES: u32 = 64;

/// Default largest linear memory any plugin may be given.
pub const DEFAULT_MAX_MEMORY: u64 = 4 << 30;

/// How the runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Granularity of call deadlines.
    pub epoch_tick: Duration,
    /// Instances alive at once (pool size). Each plugin worker keeps one,
    /// plus one while it is being replaced.
    pub max_instances: u32,
    /// Largest memory cap any plugin may be configured with.
    pub max_memory: u64,
    /// Where compiled components are cached across runs; `None` keeps the
    /// cache in memory only.
    pub cache_dir: Option<PathBuf>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            epoch_tick: DEFAULT_EPOCH_TICK,
            max_instances: DEFAULT_MAX_INSTANCES,
            max_memory: DEFAULT_MAX_MEMORY,
            cache_dir: None,
        }
    }
}

/// The shared runtime. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    compiled: Mutex<HashMap<[u8; 32], Component>>,
    epoch_tick: Duration,
    max_memory: u64,
    ticker: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("epoch_tick", &self.inner.epoch_tick)
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}

impl Runtime {
    /// Starts the runtime.
    ///
    /// # Errors
    ///
    /// When wasmtime rejects the configuration, or the cache directory
    /// cannot be used.
    pub fn new(config: &RuntimeConfig) -> Result<Self, PluginError> {
        let runtime_error =
            |what: &str, e: wasmtime::Error| PluginError::Runtime(format!("{what}: {e:#}"));
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances * 8)
            .total_memories(config.max_instances * 2)
            .total_tables(config.max_instances * 4)
            .max_memory_size(usize::try_from(config.max_memory).unwrap_or(usize::MAX));
        let mut wasm = Config::new();
        wasm.epoch_interruption(true)
            .max_wasm_stack(512 << 10)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        if let Some(dir) = &config.cache_dir {
            let mut cache = wasmtime::CacheConfig::new();
            cache.with_directory(dir);
            let cache =
                wasmtime::Cache::new(cache).map_err(|e| runtime_error("compiled-code cache", e))?;
            wasm.cache(Some(cache));
        }
        let engine = Engine::new(&wasm).map_err(|e| runtime_error("wasmtime engine", e))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| runtime_error("WASI", e))?;
        crate::contract::kansoku::detector::log::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut linker,
            |state| state,
        )
        .map_err(|e| runtime_error("log import", e))?;

        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.clone();
            let stop = stop.clone();
            let tick = config.epoch_tick;
            std::thread::Builder::new()
                .name("kansoku-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| PluginError::Runtime(format!("cannot start the epoch ticker: {e}")))?
        };

        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                compiled: Mutex::new(HashMap::new()),
                epoch_tick: config.epoch_tick,
                max_memory: config.max_memory,
                ticker: Some(ticker),
                stop,
            }),
        })
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.inner.linker
    }

    /// Largest memory cap a plugin may have.
    pub fn max_memory(&self) -> u64 {
        self.inner.max_memory
    }

    /// Epoch ticks that make up `deadline` (at least one full tick, plus
    /// one for the tick in progress).
    pub(crate) fn deadline_ticks(&self, deadline: Duration) -> u64 {
        let tick = self.inner.epoch_tick.as_nanos().max(1);
        let ticks = deadline.as_nanos().div_ceil(tick);
        u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1)
    }

    /// Compiles `wasm` (or takes it from the cache) and checks that it is a
    /// detector of a contract version this host supports.
    ///
    /// # Errors
    ///
    /// [`PluginError::Compile`], [`PluginError::NotADetector`] or
    /// [`PluginError::Contract`], naming `plugin`.
    pub fn compile(&self, plugin: &str, wasm: &[u8]) -> Result<(Component, [u8; 32]), PluginError> {
        let digest: [u8; 32] = Sha256::digest(wasm).into();
        let cached = self
            .inner
            .compiled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&digest)
            .cloned();
        let component = match cached {
            Some(component) => component,
            None => {
                let component =
                    Component::new(&self.inner.engine, wasm).map_err(|e| PluginError::Compile {
                        plugin: plugin.to_owned(),
                        reason: not_a_component(wasm).unwrap_or_else(|| root_cause(&e)),
                    })?;
                self.inner
                    .compiled
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(digest, component.clone());
                component
            }
        };
        self.check_contract(plugin, &component)?;
        Ok((component, digest))
    }

    fn check_contract(&self, plugin: &str, component: &Component) -> Result<(), PluginError> {
        let ty = component.component_type();
        let exported: Vec<String> = ty
            .exports(&self.inner.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let prefix = format!("{PLUGIN_INTERFACE}@");
        let Some(found) = exported.iter().find_map(|name| name.strip_prefix(&prefix)) else {
            return Err(PluginError::NotADetector {
                plugin: plugin.to_owned(),
                exports: if exported.is_empty() {
                    "nothing".to_owned()
                } else {
                    exported.join(", ")
                },
            });
        };
        if !compatible(found, CONTRACT_VERSION) {
            return Err(PluginError::Contract {
                plugin: plugin.to_owned(),
                found: found.to_owned(),
                supported: CONTRACT_VERSION.to_owned(),
            });
        }
        Ok(())
    }
}

/// Whether a plugin built against contract `found` runs on a host of
/// `supported`: same major version, or while the major is 0, same minor (the
/// semver rule for 0.x), and not newer than the host.
pub fn compatible(found: &str, supported: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64, u64)> {
        let core = v.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        Some((parts.next()??, parts.next()??, parts.next()??))
    };
    match (parse(found), parse(supported)) {
        (Some(f), Some(s)) if f.0 == 0 && s.0 == 0 => f.1 == s.1 && f.2 <= s.2,
        (Some(f), Some(s)) => f.0 == s.0 && (f.1, f.2) <= (s.1, s.2),
        _ => false,
    }
}

/// Why `wasm` cannot be a component, when it is one of the usual mistakes:
/// the parser's own message ("bad magic number - expected=[0x0, …]",
/// "attempted to parse a wasm module with a component parser") does not tell
/// a plugin author what to do.
fn not_a_component(wasm: &[u8]) -> Option<String> {
    const MAGIC: &[u8] = b"\0asm";
    const CORE_MODULE: &[u8] = &[1, 0, 0, 0];
    if !wasm.starts_with(MAGIC) {
        return Some(format!(
            "not a WebAssembly file ({} bytes, without the `\\0asm` header)",
            wasm.len()
        ));
    }
    if wasm.get(4..8) == Some(CORE_MODULE) {
        return Some(
            "this is a core WebAssembly module, not a component; build the plugin with \
             `cargo build --target wasm32-wasip2` (or wrap the module with \
             `wasm-tools component new`)"
                .to_owned(),
        );
    }
    None
}

/// The innermost cause of a wasmtime error, which is what an operator needs
/// (the outer layers are wasmtime's own context).
pub(crate) fn root_cause(error: &wasmtime::Error) -> String {
    error.root_cause().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_versions_follow_semver() {
        assert!(compatible("0.1.0", "0.1.0"));
        assert!(compatible("0.1.0", "0.1.3"));
        assert!(!compatible("0.1.4", "0.1.3"), "newer patch than the host");
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(!compatible("1.0.0", "0.1.0"));
        assert!(compatible("1.2.0", "1.3.0"));
        assert!(!compatible("2.0.0", "1.3.0"));
        assert!(!compatible("banana", "0.1.0"));
    }

    #[test]
    fn deadlines_round_up_to_whole_ticks() {
        let runtime = Runtime::new(&RuntimeConfig {
            epoch_tick: Duration::from_millis(10),
            max_instances: 2,
            ..RuntimeConfig::default()
        })
        .unwrap();
        assert_eq!(runtime.deadline_ticks(Duration::from_millis(100)), 11);
        assert_eq!(runtime.deadline_ticks(Duration::from_millis(101)), 12);
        assert_eq!(runtime.deadline_ticks(Duration::ZERO), 1);
    }
}
