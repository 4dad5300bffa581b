//! Loading plugins: from the binary's built-ins or `.wasm` files, checked,
//! described, configured and self-tested before the first flow moves.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::component::{ComponentExportIndex, InstancePre};

use super::PluginError;
use super::host::HostState;
use super::instance::{CallError, Instance};
use super::limits::PluginLimits;
use super::runtime::{Runtime, compatible, root_cause};
use crate::batch::FlowBatch;
use crate::contract::{CONTRACT_VERSION, Description, LoadReport, PLUGIN_INTERFACE, Ruleset};
use crate::flow::TextField;

/// A plugin compiled into the `kansoku` binary, with its default rulesets.
#[derive(Debug)]
pub struct Builtin {
    /// Plugin name.
    pub name: &'static str,
    /// The component.
    pub wasm: &'static [u8],
    /// Default rulesets: (file name, contents).
    pub rulesets: &'static [(&'static str, &'static [u8])],
}

include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));

/// The built-in plugin called `name`.
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTIN.iter().find(|b| b.name == name)
}

impl Builtin {
    /// The default rulesets, ready for `configure`.
    pub fn default_rulesets(&self) -> Vec<Ruleset> {
        self.rulesets
            .iter()
            .map(|(name, content)| Ruleset {
                name: (*name).to_owned(),
                content: content.to_vec(),
            })
            .collect()
    }
}

/// Where a plugin's code comes from.
#[derive(Debug, Clone)]
pub enum PluginCode {
    /// Compiled into this binary.
    Builtin(&'static Builtin),
    /// A `.wasm` component on disk.
    File(PathBuf),
}

impl std::fmt::Display for PluginCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginCode::Builtin(b) => write!(f, "built-in {}", b.name),
            PluginCode::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Everything needed to load one plugin.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// Name of this plugin instance in the engine (alerts, logs, metrics).
    pub name: String,
    /// Its code.
    pub code: PluginCode,
    /// Rulesets handed to `configure`.
    pub rulesets: Vec<Ruleset>,
    /// Limits of each instance.
    pub limits: PluginLimits,
    /// Sensitive text fields the operator granted.
    pub grants: BTreeSet<TextField>,
    /// Log lines accepted from the plugin per call.
    pub log_budget: u32,
}

impl PluginSpec {
    /// A built-in plugin with its default rulesets and default limits.
    pub fn builtin(builtin: &'static Builtin) -> Self {
        Self {
            name: builtin.name.to_owned(),
            code: PluginCode::Builtin(builtin),
            rulesets: builtin.default_rulesets(),
            limits: PluginLimits::default(),
            grants: BTreeSet::new(),
            log_budget: DEFAULT_LOG_BUDGET,
        }
    }

    /// A plugin from a `.wasm` file with no rulesets and default limits.
    pub fn file(name: &str, path: PathBuf) -> Self {
        Self {
            name: name.to_owned(),
            code: PluginCode::File(path),
            rulesets: Vec::new(),
            limits: PluginLimits::default(),
            grants: BTreeSet::new(),
            log_budget: DEFAULT_LOG_BUDGET,
        }
    }
}

/// Default log lines accepted from a plugin per call.
pub const DEFAULT_LOG_BUDGET: u32 = 20;

/// A compiled, linked component with the limits of its instances: what
/// [`Instance::new`] instantiates.
pub struct PluginImage {
    pub(crate) name: Arc<str>,
    pub(crate) limits: PluginLimits,
    pub(crate) log_budget: u32,
    runtime: Runtime,
    pre: InstancePre<HostState>,
    process_index: ComponentExportIndex,
}

impl std::fmt::Debug for PluginImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginImage")
            .field("name", &self.name)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl PluginImage {
    pub(crate) fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub(crate) fn pre(&self) -> &InstancePre<HostState> {
        &self.pre
    }

    pub(crate) fn process_index(&self) -> &ComponentExportIndex {
        &self.process_index
    }
}

/// A plugin ready to run: checked, described, configured, self-tested.
#[derive(Debug)]
pub struct LoadedPlugin {
    /// Instance name.
    pub name: Arc<str>,
    /// Where the code came from.
    pub origin: String,
    /// SHA-256 of the component, hex.
    pub digest: String,
    /// What the plugin says about itself.
    pub description: Description,
    /// Text fields lowered into its batches.
    pub fields: Vec<TextField>,
    /// Sensitive fields it asked for and was not granted.
    pub denied: Vec<TextField>,
    /// Its rulesets.
    pub rulesets: Vec<Ruleset>,
    /// What `configure` reported.
    pub load_report: LoadReport,
    pub(crate) image: Arc<PluginImage>,
}

impl LoadedPlugin {
    /// Loads a plugin: compiles (or takes from the cache), checks the
    /// contract and imports, describes, configures and runs an empty batch
    /// through it within its deadline.
    ///
    /// # Errors
    ///
    /// A [`PluginError`] naming the plugin and what is wrong.
    pub fn load(runtime: &Runtime, spec: PluginSpec) -> Result<Arc<Self>, PluginError> {
        let name = spec.name.clone();
        if spec.limits.memory > runtime.max_memory() {
            return Err(PluginError::Limits {
                plugin: name,
                reason: format!(
                    "memory limit {} MiB is above the runtime's maximum of {} MiB",
                    spec.limits.memory >> 20,
                    runtime.max_memory() >> 20
                ),
            });
        }
        let wasm: std::borrow::Cow<'static, [u8]> = match &spec.code {
            PluginCode::Builtin(b) => b.wasm.into(),
            PluginCode::File(path) => std::fs::read(path)
                .map_err(|e| PluginError::Read {
                    plugin: name.clone(),
                    path: path.clone(),
                    reason: e.to_string(),
                })?
                .into(),
        };
        let (component, digest) = runtime.compile(&name, &wasm)?;
        let pre =
            runtime
                .linker()
                .instantiate_pre(&component)
                .map_err(|e| PluginError::Imports {
                    plugin: name.clone(),
                    reason: root_cause(&e),
                })?;
        let interface = component
            .component_type()
            .exports(runtime.engine())
            .map(|(n, _)| n.to_owned())
            .find(|n| n.starts_with(PLUGIN_INTERFACE))
            .unwrap_or_default();
        let process_index = component
            .get_export_index(None, &interface)
            .and_then(|iface| component.get_export_index(Some(&iface), "process"))
            .ok_or_else(|| PluginError::NotADetector {
                plugin: name.clone(),
                exports: interface.clone(),
            })?;
        let image = Arc::new(PluginImage {
            name: name.as_str().into(),
            limits: spec.limits,
            log_budget: spec.log_budget,
            runtime: runtime.clone(),
            pre,
            process_index,
        });

        let failed = |stage: &str, e: CallError| match e {
            CallError::Refused(err) => PluginError::Config {
                plugin: name.clone(),
                location: err.location,
                message: err.message,
            },
            CallError::Trap { kind, message } => PluginError::SelfTest {
                plugin: name.clone(),
                reason: format!("{stage}: {kind}: {message}"),
            },
        };
        let mut instance = Instance::new(&image).map_err(|e| failed("instantiate", e))?;
        let description = instance.describe().map_err(|e| failed("describe", e))?;
        if !compatible(&description.contract, CONTRACT_VERSION) {
            return Err(PluginError::Contract {
                plugin: name,
                found: description.contract,
                supported: CONTRACT_VERSION.to_owned(),
            });
        }
        let (fields, denied) = grant(&description, &spec.grants);
        for field in &denied {
            tracing::warn!(
                plugin = %name,
                field = %field,
                "plugin asked for a sensitive field it was not granted; it will not receive it"
            );
        }
        let load_report = instance
            .configure(&spec.rulesets)
            .map_err(|e| failed("configure", e))?;
        let empty = FlowBatch::default();
        let mut scratch = Vec::new();
        instance
            .process(empty.view(0..0, &fields, &mut scratch))
            .map_err(|e| failed("process of an empty batch", e))?;

        Ok(Arc::new(Self {
            name: image.name.clone(),
            origin: spec.code.to_string(),
            digest: digest.iter().map(|b| format!("{b:02x}")).collect(),
            description,
            fields,
            denied,
            rulesets: spec.rulesets,
            load_report,
            image,
        }))
    }

    /// Limits of each instance.
    pub fn limits(&self) -> &PluginLimits {
        &self.image.limits
    }

    /// Whether the plugin keeps state between batches.
    pub fn is_stateful(&self) -> bool {
        self.description.stateful
    }

    /// A new, configured instance.
    ///
    /// # Errors
    ///
    /// A trap while instantiating or configuring, or a refused
    /// configuration.
    pub fn instantiate(&self) -> Result<Instance, CallError> {
        let mut instance = Instance::new(&self.image)?;
        instance.configure(&self.rulesets)?;
        Ok(instance)
    }
}

/// The text fields a plugin gets: what it asked for, minus sensitive fields
/// the operator did not grant (R3). Returns (lowered, denied).
fn grant(
    description: &Description,
    grants: &BTreeSet<TextField>,
) -> (Vec<TextField>, Vec<TextField>) {
    let asked: BTreeSet<TextField> = description
        .text_fields
        .iter()
        .map(|f| TextField::from(*f))
        .collect();
    asked
        .into_iter()
        .partition(|field| !field.is_sensitive() || grants.contains(field))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract;

    #[test]
    fn r3_sensitive_fields_need_a_grant() {
        let description = Description {
            name: "x".into(),
            version: "1".into(),
            contract: CONTRACT_VERSION.into(),
            summary: String::new(),
            text_fields: vec![
                contract::TextField::DnsQuery,
                contract::TextField::MailFrom,
                contract::TextField::FileName,
            ],
            stateful: false,
        };
        let (fields, denied) = grant(&description, &BTreeSet::new());
        assert_eq!(fields, [TextField::DnsQuery]);
        assert_eq!(denied, [TextField::MailFrom, TextField::FileName]);

        let grants = BTreeSet::from([TextField::FileName]);
        let (fields, denied) = grant(&description, &grants);
        assert_eq!(fields, [TextField::DnsQuery, TextField::FileName]);
        assert_eq!(denied, [TextField::MailFrom]);
    }

    #[test]
    fn the_binary_carries_its_builtin_plugins_and_rulesets() {
        let portscan = builtin("portscan").expect("portscan is built in");
        assert!(portscan.wasm.starts_with(b"\0asm"));
        assert!(!portscan.rulesets.is_empty());
    }
}
