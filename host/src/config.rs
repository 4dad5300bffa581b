//! `kansoku.toml`: what a run reads, which plugins it loads, and where
//! alerts go.
//!
//! Every section is optional; an empty file (or none) gives the embedded
//! defaults: the bundled institutions, every built-in plugin with its default
//! rulesets, alerts on stdout. Relative paths are relative to the file.
//!
//! ```toml
//! institutions = "institutions.toml"
//!
//! [ingest]
//! format = "auto"          # auto, zeek, zeek-json, eve, csv
//! batch_rows = 4096
//! flush_interval = "200ms"
//! parse_threads = 0        # 0: one per core
//!
//! [scope]
//! exclude = ["192.0.2.0/24"]
//!
//! [enrich]
//! country_db = "GeoLite2-Country.mmdb"
//!
//! [output]
//! alerts = "alerts.json"   # "-" for stdout
//!
//! [storage]               # absent: no partitions are written
//! data_dir = "/srv/kansoku"  # <data_dir>/<table>/institution=…/date=…/
//! key_registry = "/srv/kansoku/keys.sqlite"   # the default
//! key_period_days = 7        # 7: ISO weeks
//! retention_months = 3       # R6; institutions may set their own
//!
//! [runtime]
//! cache_dir = "/var/cache/kansoku"
//! quarantine_after = 5
//! quarantine = "5m"
//!
//! [plugins.portscan]       # a built-in: no `path`
//! rulesets = ["rules/portscan.toml"]
//!
//! [plugins.mine]
//! path = "mine.wasm"
//! memory_mib = 128
//! deadline = "2s"              # per batch
//! configure_deadline = "2m"    # loading rulesets, moving state
//! grant = ["mail-from"]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::batch::DEFAULT_BATCH_ROWS;
use crate::contract::Ruleset;
use crate::flow::TextField;
use crate::ingest::{DEFAULT_MAX_LINE_BYTES, Format};
use crate::pipeline::BUNDLED_INSTITUTIONS;
use crate::plugins::{
    BUILTIN, DEFAULT_CONFIGURE_DEADLINE, DEFAULT_DEADLINE, DEFAULT_FINDINGS_PER_ROW,
    DEFAULT_MEMORY_LIMIT, FailurePolicy, PluginLimits, PluginSpec, builtin,
};
use crate::scope::{Institutions, ScopeError};
use crate::storage::keys::PeriodLength;
use crate::storage::retention::DEFAULT_RETENTION_MONTHS;

/// Default wait before a partly filled batch is sent on, so a slow stream
/// still reaches the plugins promptly.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(200);

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("{origin}:{line}: {message}")]
    Syntax {
        /// The file.
        origin: String,
        /// Line of the problem.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("{origin}: {key}: {message}")]
    Invalid {
        /// The file.
        origin: String,
        /// The offending key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    institutions: Option<PathBuf>,
    #[serde(default)]
    ingest: IngestFile,
    #[serde(default)]
    scope: ScopeFile,
    #[serde(default)]
    enrich: EnrichFile,
    #[serde(default)]
    output: OutputFile,
    #[serde(default)]
    runtime: RuntimeFile,
    storage: Option<StorageFile>,
    #[serde(default)]
    plugins: BTreeMap<String, PluginFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IngestFile {
    format: Option<String>,
    batch_rows: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    flush_interval: Option<Duration>,
    max_line_bytes: Option<usize>,
    parse_threads: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeFile {
    #[serde(default)]
    exclude: Vec<IpNet>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrichFile {
    country_db: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputFile {
    alerts: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageFile {
    data_dir: PathBuf,
    key_registry: Option<PathBuf>,
    key_period_days: Option<u32>,
    retention_months: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuntimeFile {
    cache_dir: Option<PathBuf>,
    #[serde(default, with = "humantime_serde")]
    backoff: Option<Duration>,
    quarantine_after: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    quarantine: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    max_quarantine: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginFile {
    #[serde(default = "yes")]
    enabled: bool,
    path: Option<PathBuf>,
    rulesets: Option<Vec<PathBuf>>,
    memory_mib: Option<u64>,
    #[serde(default, with = "humantime_serde")]
    deadline: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    configure_deadline: Option<Duration>,
    findings_per_row: Option<u32>,
    #[serde(default)]
    grant: Vec<String>,
}

fn yes() -> bool {
    true
}

/// Where the run's institutions come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstitutionsSource {
    /// The file bundled into the binary (`data/institutions.toml`).
    Bundled,
    /// A file.
    File(PathBuf),
}

impl InstitutionsSource {
    /// Reads the institutions.
    ///
    /// # Errors
    ///
    /// When the file cannot be read or is invalid; the error names where.
    pub fn load(&self) -> Result<Institutions, ScopeError> {
        match self {
            Self::Bundled => Institutions::parse(BUNDLED_INSTITUTIONS, "data/institutions.toml"),
            Self::File(path) => Institutions::load(path),
        }
    }
}

/// Most parse threads a run may ask for.
pub const MAX_PARSE_THREADS: usize = 64;

/// Ingest settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestConfig {
    /// Input format, or auto-detection.
    pub format: Format,
    /// Flows per batch.
    pub batch_rows: usize,
    /// Longest wait before a partial batch is sent.
    pub flush_interval: Duration,
    /// Longer lines are skipped and counted.
    pub max_line_bytes: usize,
    /// Threads that parse, scope and batch lines; 0 for one per core.
    pub parse_threads: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            format: Format::Auto,
            batch_rows: DEFAULT_BATCH_ROWS,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            parse_threads: 0,
        }
    }
}

/// A validated run configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it was read from (`<defaults>` when built in).
    pub origin: String,
    /// Institutions file.
    pub institutions: InstitutionsSource,
    /// Ingest settings.
    pub ingest: IngestConfig,
    /// Prefixes never monitored.
    pub exclude: Vec<IpNet>,
    /// MaxMind-format country database.
    pub country_db: Option<PathBuf>,
    /// Alerts file; `None` is stdout.
    pub alerts: Option<PathBuf>,
    /// Compiled-component cache.
    pub cache_dir: Option<PathBuf>,
    /// How plugin workers react to failures.
    pub failure: FailurePolicy,
    /// Plugins to load, in order.
    pub plugins: Vec<PluginSpec>,
    /// Where partitions and keys are kept; `None`: nothing is stored.
    pub storage: Option<StorageConfig>,
}

/// Storage settings (`[storage]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// Root of the partitions.
    pub data_dir: PathBuf,
    /// The key registry (SQLite); `<data_dir>/keys.sqlite` by default.
    pub key_registry: PathBuf,
    /// Length of a key period.
    pub key_period: PeriodLength,
    /// Months detection data is kept, for institutions without their own
    /// `retention_months` (R6).
    pub retention_months: u32,
}

impl Default for Config {
    /// The embedded defaults: bundled institutions, every built-in plugin.
    fn default() -> Self {
        Self {
            origin: "<defaults>".into(),
            institutions: InstitutionsSource::Bundled,
            ingest: IngestConfig::default(),
            exclude: Vec::new(),
            country_db: None,
            alerts: None,
            cache_dir: None,
            failure: FailurePolicy::default(),
            plugins: BUILTIN.iter().map(PluginSpec::builtin).collect(),
            storage: None,
        }
    }
}

impl Config {
    /// Reads a configuration file, and the rulesets it names.
    ///
    /// # Errors
    ///
    /// When a file cannot be read, or a value is wrong; the error names the
    /// file, the line or key, and the reason.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, &path.display().to_string(), base)
    }

    /// Parses a configuration; relative paths are resolved against `base`.
    ///
    /// # Errors
    ///
    /// As [`Config::load`].
    pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Self, ConfigError> {
        let file: File = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            origin: origin.to_owned(),
            line: e.span().map_or(1, |span| line_of(text, span.start)),
            message: e.message().to_owned(),
        })?;
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            origin: origin.to_owned(),
            key: key.to_owned(),
            message,
        };
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };

        let defaults = IngestConfig::default();
        let format = match &file.ingest.format {
            Some(name) => name
                .parse::<Format>()
                .map_err(|e| invalid("ingest.format", e.to_string()))?,
            None => defaults.format,
        };
        let batch_rows = file.ingest.batch_rows.unwrap_or(defaults.batch_rows);
        if !(1..=1 << 20).contains(&batch_rows) {
            return Err(invalid(
                "ingest.batch_rows",
                format!("{batch_rows} is out of range 1..=1048576"),
            ));
        }
        let flush_interval = file
            .ingest
            .flush_interval
            .unwrap_or(defaults.flush_interval);
        if flush_interval.is_zero() {
            return Err(invalid(
                "ingest.flush_interval",
                "must be above zero".into(),
            ));
        }
        let max_line_bytes = file
            .ingest
            .max_line_bytes
            .unwrap_or(defaults.max_line_bytes);
        if max_line_bytes < 1024 {
            return Err(invalid(
                "ingest.max_line_bytes",
                format!("{max_line_bytes} is below the minimum of 1024"),
            ));
        }
        let parse_threads = file.ingest.parse_threads.unwrap_or(defaults.parse_threads);
        if parse_threads > MAX_PARSE_THREADS {
            return Err(invalid(
                "ingest.parse_threads",
                format!("{parse_threads} is above the maximum of {MAX_PARSE_THREADS}"),
            ));
        }

        let mut failure = FailurePolicy::default();
        let runtime = &file.runtime;
        failure.backoff = runtime.backoff.unwrap_or(failure.backoff);
        failure.quarantine_after = runtime.quarantine_after.unwrap_or(failure.quarantine_after);
        if failure.quarantine_after == 0 {
            return Err(invalid(
                "runtime.quarantine_after",
                "must be at least 1".into(),
            ));
        }
        failure.quarantine = runtime.quarantine.unwrap_or(failure.quarantine);
        failure.max_quarantine = runtime
            .max_quarantine
            .unwrap_or(failure.max_quarantine)
            .max(failure.quarantine);

        let storage = match &file.storage {
            Some(storage) => {
                let data_dir = resolve(&storage.data_dir);
                let key_period = match storage.key_period_days {
                    Some(days) => PeriodLength::days(days)
                        .map_err(|e| invalid("storage.key_period_days", e.to_string()))?,
                    None => PeriodLength::WEEK,
                };
                Some(StorageConfig {
                    key_registry: storage
                        .key_registry
                        .as_deref()
                        .map_or_else(|| data_dir.join("keys.sqlite"), resolve),
                    data_dir,
                    key_period,
                    retention_months: storage.retention_months.unwrap_or(DEFAULT_RETENTION_MONTHS),
                })
            }
            None => None,
        };

        let plugins = if file.plugins.is_empty() {
            Config::default().plugins
        } else {
            let mut specs = Vec::new();
            for (name, plugin) in &file.plugins {
                if !plugin.enabled {
                    continue;
                }
                specs.push(plugin_spec(name, plugin, &resolve, &invalid)?);
            }
            specs
        };

        Ok(Self {
            origin: origin.to_owned(),
            institutions: file
                .institutions
                .as_deref()
                .map_or(InstitutionsSource::Bundled, |p| {
                    InstitutionsSource::File(resolve(p))
                }),
            ingest: IngestConfig {
                format,
                batch_rows,
                flush_interval,
                max_line_bytes,
                parse_threads,
            },
            exclude: file.scope.exclude,
            country_db: file.enrich.country_db.as_deref().map(resolve),
            alerts: file
                .output
                .alerts
                .filter(|p| p.as_os_str() != "-")
                .map(|p| resolve(&p)),
            cache_dir: file.runtime.cache_dir.as_deref().map(resolve),
            failure,
            plugins,
            storage,
        })
    }
}

fn plugin_spec(
    name: &str,
    plugin: &PluginFile,
    resolve: &impl Fn(&Path) -> PathBuf,
    invalid: &impl Fn(&str, String) -> ConfigError,
) -> Result<PluginSpec, ConfigError> {
    let key = |k: &str| format!("plugins.{name}.{k}");
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid(
            &format!("plugins.{name}"),
            "a plugin name uses only letters, digits, `-` and `_`".into(),
        ));
    }
    let mut spec = match &plugin.path {
        Some(path) => PluginSpec::file(name, resolve(path)),
        None => match builtin(name) {
            Some(b) => PluginSpec::builtin(b),
            None => {
                let known: Vec<&str> = BUILTIN.iter().map(|b| b.name).collect();
                return Err(invalid(
                    &format!("plugins.{name}"),
                    format!(
                        "no built-in plugin of that name (built-in: {}); give `path` for a .wasm file",
                        known.join(", ")
                    ),
                ));
            }
        },
    };
    if let Some(files) = &plugin.rulesets {
        spec.rulesets = files
            .iter()
            .map(|f| read_ruleset(&resolve(f)).map_err(|e| invalid(&key("rulesets"), e)))
            .collect::<Result<_, _>>()?;
    }
    let memory = match plugin.memory_mib {
        Some(mib) if !(1..=4096).contains(&mib) => {
            return Err(invalid(
                &key("memory_mib"),
                format!("{mib} is out of range 1..=4096"),
            ));
        }
        Some(mib) => mib << 20,
        None => DEFAULT_MEMORY_LIMIT,
    };
    let deadline = plugin.deadline.unwrap_or(DEFAULT_DEADLINE);
    if deadline < Duration::from_millis(10) {
        return Err(invalid(&key("deadline"), "must be at least 10ms".into()));
    }
    let configure_deadline = plugin
        .configure_deadline
        .unwrap_or(DEFAULT_CONFIGURE_DEADLINE);
    if configure_deadline < deadline {
        return Err(invalid(
            &key("configure_deadline"),
            "must be at least the deadline".into(),
        ));
    }
    spec.limits = PluginLimits {
        memory,
        deadline,
        configure_deadline,
        findings_per_row: plugin.findings_per_row.unwrap_or(DEFAULT_FINDINGS_PER_ROW),
    };
    for field in &plugin.grant {
        match TextField::from_name(field) {
            Some(f) if f.is_sensitive() => {
                spec.grants.insert(f);
            }
            Some(_) => {
                return Err(invalid(
                    &key("grant"),
                    format!("`{field}` is not sensitive; every plugin that asks gets it"),
                ));
            }
            None => {
                let sensitive: Vec<&str> = TextField::ALL
                    .iter()
                    .filter(|f| f.is_sensitive())
                    .map(|f| f.name())
                    .collect();
                return Err(invalid(
                    &key("grant"),
                    format!(
                        "unknown field `{field}` (sensitive fields: {})",
                        sensitive.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(spec)
}

/// Reads a ruleset file; its name is the file name, so plugins' error
/// locations read `name:line`.
///
/// # Errors
///
/// When the file cannot be read; the message names it.
pub fn read_ruleset(path: &Path) -> Result<Ruleset, String> {
    let content =
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(Ruleset { name, content })
}

/// 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, "kansoku.toml", Path::new("/etc/kansoku")).map_err(|e| e.to_string())
    }

    #[test]
    fn an_empty_file_gives_the_embedded_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config.institutions, InstitutionsSource::Bundled);
        assert_eq!(config.ingest, IngestConfig::default());
        assert_eq!(config.alerts, None);
        let names: Vec<&str> = config.plugins.iter().map(|p| p.name.as_str()).collect();
        assert!(names.contains(&"portscan"), "{names:?}");
    }

    #[test]
    fn paths_are_relative_to_the_file_and_plugins_are_configured() {
        let config = parse(
            r#"
institutions = "inst.toml"
[ingest]
format = "eve"
flush_interval = "50ms"
[output]
alerts = "out/alerts.json"
[plugins.mine]
path = "mine.wasm"
memory_mib = 16
deadline = "250ms"
grant = ["mail-from"]
[plugins.portscan]
enabled = false
"#,
        )
        .unwrap();
        assert_eq!(
            config.institutions,
            InstitutionsSource::File("/etc/kansoku/inst.toml".into())
        );
        assert_eq!(config.ingest.format, Format::Eve);
        assert_eq!(config.ingest.flush_interval, Duration::from_millis(50));
        assert_eq!(config.alerts, Some("/etc/kansoku/out/alerts.json".into()));
        assert_eq!(config.plugins.len(), 1);
        let mine = &config.plugins[0];
        assert_eq!(mine.name, "mine");
        assert_eq!(mine.limits.memory, 16 << 20);
        assert_eq!(mine.limits.deadline, Duration::from_millis(250));
        assert!(mine.grants.contains(&TextField::MailFrom));
        assert_eq!(mine.code.to_string(), "/etc/kansoku/mine.wasm");
    }

    #[test]
    fn storage_is_off_unless_configured_and_defaults_sensibly() {
        assert_eq!(parse("").unwrap().storage, None);
        let storage = parse("[storage]\ndata_dir = \"data\"\n")
            .unwrap()
            .storage
            .unwrap();
        assert_eq!(storage.data_dir, Path::new("/etc/kansoku/data"));
        assert_eq!(
            storage.key_registry,
            Path::new("/etc/kansoku/data/keys.sqlite")
        );
        assert_eq!(storage.key_period, PeriodLength::WEEK);
        assert_eq!(storage.retention_months, 3);
        let storage = parse(
            "[storage]\ndata_dir = \"/srv/k\"\nkey_registry = \"keys.db\"\nkey_period_days = 1\nretention_months = 6\n",
        )
        .unwrap()
        .storage
        .unwrap();
        assert_eq!(storage.key_registry, Path::new("/etc/kansoku/keys.db"));
        assert_eq!(storage.key_period.in_days(), 1);
        assert_eq!(storage.retention_months, 6);
        let e = parse("[storage]\ndata_dir = \"d\"\nkey_period_days = 0\n").unwrap_err();
        assert!(e.to_string().contains("storage.key_period_days"), "{e}");
        assert!(parse("[storage]\n").is_err(), "data_dir is required");
    }

    #[test]
    fn errors_name_the_file_the_line_or_key_and_the_reason() {
        let e = parse("[ingest]\nbatch_size = 4\n").unwrap_err();
        assert!(
            e.starts_with("kansoku.toml:2: unknown field `batch_size`"),
            "{e}"
        );
        let e = parse("[ingest]\nformat = \"pcap\"\n").unwrap_err();
        assert!(
            e.starts_with("kansoku.toml: ingest.format: unknown format `pcap`"),
            "{e}"
        );
        let e = parse("[plugins.nosuch]\n").unwrap_err();
        assert!(e.contains("plugins.nosuch: no built-in plugin"), "{e}");
        let e = parse("[plugins.portscan]\ngrant = [\"dns-query\"]\n").unwrap_err();
        assert!(
            e.contains("plugins.portscan.grant: `dns-query` is not sensitive"),
            "{e}"
        );
        let e = parse("[plugins.portscan]\nrulesets = [\"missing.toml\"]\n").unwrap_err();
        assert!(
            e.contains("plugins.portscan.rulesets: cannot read /etc/kansoku/missing.toml"),
            "{e}"
        );
        let e = parse("[plugins.portscan]\nmemory_mib = 0\n").unwrap_err();
        assert!(e.contains("memory_mib: 0 is out of range"), "{e}");
        let e = parse("[runtime]\nquarantine_after = 0\n").unwrap_err();
        assert!(e.contains("runtime.quarantine_after"), "{e}");
    }
}
