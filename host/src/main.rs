//! The `kansoku` command line.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use kansoku::config::{Config, InstitutionsSource, StorageConfig, read_ruleset};
use kansoku::ingest::{Format, InputPath};
use kansoku::pipeline::Engine;
use kansoku::plugins::{BUILTIN, LoadedPlugin, PluginSpec};
use kansoku::storage::Table;
use kansoku::storage::consent::{Consent, Filter, Scope as ConsentScope, load_private_key};
use kansoku::storage::keys::KeyRegistry;
use kansoku::storage::retention::{self, RetentionPolicy};
use kansoku::summary::Summary;
use kansoku::{demo, scaffold};

/// Detection engine for research-network SOCs: flow logs through sandboxed
/// WebAssembly detectors, alerts out as Suricata-EVE-style JSON lines.
#[derive(Debug, Parser)]
#[command(name = "kansoku", version, propagate_version = true)]
struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors in the log.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Stream flow logs through the plugins and write alerts.
    ///
    /// Without --config and --input, runs the demo on the bundled data.
    Run(RunArgs),
    /// Run on the bundled sample data, institutions and built-in plugins.
    Demo(OutputArgs),
    /// Check a configuration: institutions, country database, every plugin
    /// and its rulesets; print what would run.
    Validate {
        /// Configuration file (default: the embedded defaults).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Write and try plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// The institutions' period keys (wrapped; never the plaintext).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Decryption by consent (R5): a request (who, what, why), the
    /// institution's decision, and the logged viewing.
    #[command(subcommand)]
    Decrypt(DecryptCommand),
    /// Delete date partitions past their retention (R6): the first day of
    /// the month after collection plus the institution's retention months.
    Retention {
        /// Configuration file with a `[storage]` section.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// List what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Judge as of this date (YYYY-MM-DD) instead of today (UTC).
        #[arg(long, value_name = "DATE")]
        as_of: Option<jiff::civil::Date>,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List the period keys of the key registry: institution, period,
    /// version, certificate fingerprint, KEK id, when made.
    List {
        /// Configuration file naming the registry (`[storage]`).
        #[arg(short, long, value_name = "FILE", required_unless_present = "registry")]
        config: Option<PathBuf>,
        /// The registry file itself (overrides the configuration).
        #[arg(long, value_name = "FILE")]
        registry: Option<PathBuf>,
        /// Only this institution's keys.
        #[arg(long, value_name = "ID")]
        institution: Option<String>,
        /// Print JSON lines, wrapped keys included.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DecryptCommand {
    /// Ask to see an institution's encrypted columns; prints the request id.
    Request {
        /// Configuration file with a `[storage]` section.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Whose data.
        #[arg(long, value_name = "ID")]
        institution: String,
        /// Which table: flows or alerts.
        #[arg(long, value_name = "TABLE", value_parser = parse_table)]
        table: Table,
        /// First date (YYYY-MM-DD, UTC), inclusive.
        #[arg(long, value_name = "DATE")]
        from: jiff::civil::Date,
        /// Last date, inclusive.
        #[arg(long, value_name = "DATE")]
        to: jiff::civil::Date,
        /// Only rows where COLUMN has VALUE (as `show` prints it); repeat
        /// for several conditions, all of which must hold.
        #[arg(long, value_name = "COLUMN=VALUE")]
        filter: Vec<Filter>,
        /// Why: the institution decides on it.
        #[arg(long)]
        reason: String,
        /// Who asks (default: $USER).
        #[arg(long = "as", value_name = "NAME")]
        actor: Option<String>,
    },
    /// Approve a request (the institution): unwraps the period keys of the
    /// request's files with the private key, locally, and releases only
    /// those keys. The private key is neither sent nor stored.
    Approve {
        /// The request.
        id: i64,
        /// The institution's private key (PEM).
        #[arg(long, value_name = "FILE")]
        private_key: PathBuf,
        /// Configuration file with a `[storage]` section.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Who decides (default: $USER).
        #[arg(long = "as", value_name = "NAME")]
        actor: Option<String>,
    },
    /// Refuse a request (the institution): nothing of it is ever decrypted.
    Refuse {
        /// The request.
        id: i64,
        /// Configuration file with a `[storage]` section.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Who decides (default: $USER).
        #[arg(long = "as", value_name = "NAME")]
        actor: Option<String>,
    },
    /// Print the decrypted rows of an approved request, as JSON lines. The
    /// viewing is logged.
    Show {
        /// The request.
        id: i64,
        /// Configuration file with a `[storage]` section.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Who views (default: $USER).
        #[arg(long = "as", value_name = "NAME")]
        actor: Option<String>,
    },
    /// List the requests and where they stand.
    List {
        /// Configuration file with a `[storage]` section.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// The log of every step (of one request when given), as JSON lines.
    Log {
        /// Only this request.
        id: Option<i64>,
        /// Configuration file with a `[storage]` section.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
}

fn parse_table(name: &str) -> Result<Table, String> {
    Table::from_name(name).ok_or_else(|| format!("{name:?}: the tables are flows and alerts"))
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Configuration file (default: the embedded defaults).
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Flow logs to read, in order: files (plain or gzip), `-` for stdin.
    #[arg(short, long = "input", value_name = "PATH", num_args = 1..)]
    inputs: Vec<InputPath>,
    /// Input format (overrides the configuration): auto, zeek, zeek-json,
    /// eve, csv.
    #[arg(short, long, value_name = "FORMAT")]
    format: Option<Format>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
struct OutputArgs {
    /// Write alerts here instead of the configured place (`-`: stdout).
    #[arg(short, long, value_name = "FILE")]
    alerts: Option<PathBuf>,
    /// Also write the run summary as JSON here.
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Create a new plugin crate (builds, tests and runs as it is).
    New {
        /// Plugin name: lower-case letters, digits and `-`.
        name: String,
        /// Where to create it (default: ./NAME).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The kansoku-plugin SDK (default: plugins/sdk of the kansoku
        /// checkout around DIR or the current directory).
        #[arg(long, value_name = "DIR")]
        sdk: Option<PathBuf>,
    },
    /// Run a plugin on flow logs and print its findings as alerts.
    Test {
        /// The plugin: a `.wasm` component or the name of a built-in.
        plugin: String,
        /// Ruleset files handed to the plugin's `configure`.
        #[arg(short, long = "rules", value_name = "FILE", num_args = 1..)]
        rules: Vec<PathBuf>,
        /// Flow logs to run it on (`-` for stdin).
        #[arg(short, long = "input", value_name = "PATH", num_args = 1.., required = true)]
        inputs: Vec<InputPath>,
        /// Institutions file (default: the bundled one).
        #[arg(long, value_name = "FILE")]
        institutions: Option<PathBuf>,
        /// Input format: auto, zeek, zeek-json, eve, csv.
        #[arg(short, long, value_name = "FORMAT")]
        format: Option<Format>,
        /// Grant a sensitive text field (mail-from, mail-to, file-name,
        /// detected-substring).
        #[arg(long, value_name = "FIELD")]
        grant: Vec<String>,
    },
    /// List the built-in plugins.
    List,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug,wasmtime=info,cranelift=info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn dispatch(command: Option<Command>) -> Result<ExitCode> {
    match command.unwrap_or(Command::Demo(OutputArgs {
        alerts: None,
        summary_json: None,
        no_progress: false,
    })) {
        Command::Run(args) if args.config.is_none() && args.inputs.is_empty() => {
            run_demo(&args.output)
        }
        Command::Run(args) => run(args),
        Command::Demo(output) => run_demo(&output),
        Command::Validate { config } => validate(config.as_deref()),
        Command::Plugin(PluginCommand::New { name, dir, sdk }) => plugin_new(&name, dir, sdk),
        Command::Plugin(PluginCommand::Test {
            plugin,
            rules,
            inputs,
            institutions,
            format,
            grant,
        }) => plugin_test(&plugin, &rules, inputs, institutions, format, &grant),
        Command::Keys(KeysCommand::List {
            config,
            registry,
            institution,
            json,
        }) => keys_list(
            config.as_deref(),
            registry.as_deref(),
            institution.as_deref(),
            json,
        ),
        Command::Decrypt(command) => decrypt(command),
        Command::Retention {
            config,
            dry_run,
            as_of,
        } => retention(&config, dry_run, as_of),
        Command::Plugin(PluginCommand::List) => {
            for builtin in BUILTIN {
                println!(
                    "{:<16} {:>8} KiB  rulesets: {}",
                    builtin.name,
                    builtin.wasm.len() / 1024,
                    builtin
                        .rulesets
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load_config(path: Option<&Path>) -> Result<Config> {
    match path {
        Some(path) => Ok(Config::load(path)?),
        None => Ok(Config::default()),
    }
}

fn run(args: RunArgs) -> Result<ExitCode> {
    let mut config = load_config(args.config.as_deref())?;
    if let Some(format) = args.format {
        config.ingest.format = format;
    }
    if args.inputs.is_empty() {
        bail!("no input: give --input PATH… (`-` for stdin), or run `kansoku demo`");
    }
    execute(config, args.inputs, &args.output)
}

fn run_demo(output: &OutputArgs) -> Result<ExitCode> {
    eprintln!(
        "kansoku demo: bundled sample data ({}), bundled institutions, built-in plugins",
        demo::SAMPLES
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    execute(Config::default(), demo::SAMPLES.to_vec(), output)
}

fn execute(config: Config, inputs: Vec<InputPath>, output: &OutputArgs) -> Result<ExitCode> {
    let alerts_path = match &output.alerts {
        Some(p) if p.as_os_str() == "-" => None,
        Some(p) => Some(p.clone()),
        None => config.alerts.clone(),
    };
    let engine = Engine::prepare(config)?;
    let out: Box<dyn Write + Send> = match &alerts_path {
        Some(path) => Box::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let progress = !output.no_progress && std::io::stderr().is_terminal();
    let summary = engine.run(inputs, out, progress)?;
    report(
        &summary,
        output.summary_json.as_deref(),
        alerts_path.as_deref(),
    )?;
    Ok(ExitCode::SUCCESS)
}

fn report(summary: &Summary, json: Option<&Path>, alerts: Option<&Path>) -> Result<()> {
    eprintln!("{summary}");
    if let Some(path) = alerts {
        eprintln!("  alerts in {}", path.display());
    }
    if let Some(path) = json {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        serde_json::to_writer_pretty(file, summary)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn keys_list(
    config: Option<&Path>,
    registry: Option<&Path>,
    institution: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let path = match (registry, config) {
        (Some(path), _) => path.to_owned(),
        (None, Some(config)) => {
            let config = Config::load(config)?;
            let Some(storage) = config.storage else {
                bail!(
                    "{}: no [storage] section, so no key registry",
                    config.origin
                );
            };
            storage.key_registry
        }
        (None, None) => bail!("give --config or --registry"),
    };
    if !path.exists() {
        bail!(
            "{}: no key registry here (none is made before the first stored data)",
            path.display()
        );
    }
    let registry = KeyRegistry::open(&path)?;
    let records = registry.list(institution)?;
    let mut out = std::io::stdout().lock();
    if json {
        for r in &records {
            let line = serde_json::json!({
                "institution": r.institution,
                "period": r.period,
                "period_start": r.period_start,
                "period_days": r.period_days,
                "version": r.version,
                "kek_id": r.kek_id,
                "certificate_fingerprint": r.certificate_fingerprint,
                "wrapped_kek": r.wrapped_kek,
                "created": r.created,
            });
            writeln!(out, "{line}")?;
        }
    } else {
        writeln!(
            out,
            "{:<16} {:<16} {:>7}  {:<24} {:<16}  created",
            "institution", "period", "version", "kek id", "certificate"
        )?;
        for r in &records {
            writeln!(
                out,
                "{:<16} {:<16} {:>7}  {:<24} {:<16}  {}",
                r.institution,
                r.period,
                r.version,
                r.kek_id,
                r.certificate_fingerprint
                    .get(..16)
                    .unwrap_or(&r.certificate_fingerprint),
                r.created
            )?;
        }
        if records.is_empty() {
            writeln!(out, "(no keys)")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The configuration at `path` and its storage section.
fn storage_config(path: &Path) -> Result<(Config, StorageConfig)> {
    let config = Config::load(path)?;
    let Some(storage) = config.storage.clone() else {
        bail!(
            "{}: no [storage] section: nothing is stored, so there are no keys or requests",
            config.origin
        );
    };
    Ok((config, storage))
}

fn actor(name: Option<String>) -> String {
    name.or_else(|| std::env::var("USER").ok())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn decrypt(command: DecryptCommand) -> Result<ExitCode> {
    let config_path = match &command {
        DecryptCommand::Request { config, .. }
        | DecryptCommand::Approve { config, .. }
        | DecryptCommand::Refuse { config, .. }
        | DecryptCommand::Show { config, .. }
        | DecryptCommand::List { config }
        | DecryptCommand::Log { config, .. } => config.clone(),
    };
    let (_, storage) = storage_config(&config_path)?;
    let registry = KeyRegistry::open(&storage.key_registry)?;
    let consent = Consent::open(&registry)?;
    let mut out = std::io::stdout().lock();
    match command {
        DecryptCommand::Request {
            institution,
            table,
            from,
            to,
            filter,
            reason,
            actor: who,
            ..
        } => {
            let scope = ConsentScope {
                institution,
                table,
                from,
                to,
                filters: filter,
            };
            let id = consent.request(&actor(who), &scope, &reason)?;
            writeln!(out, "{id}")?;
            eprintln!(
                "request {id} recorded: {} of {} from {} to {}; the institution decides with \
                 `kansoku decrypt approve {id} --private-key …` or `kansoku decrypt refuse {id}`",
                scope.table, scope.institution, scope.from, scope.to
            );
        }
        DecryptCommand::Approve {
            id,
            private_key,
            actor: who,
            ..
        } => {
            let key = load_private_key(&private_key)?;
            let released = consent.approve(id, &actor(who), &key)?;
            eprintln!("request {id} approved: {released} period keys released");
        }
        DecryptCommand::Refuse { id, actor: who, .. } => {
            consent.refuse(id, &actor(who))?;
            eprintln!("request {id} refused: nothing of it will be decrypted");
        }
        DecryptCommand::Show { id, actor: who, .. } => {
            let rows = consent.show(id, &actor(who), &storage.data_dir)?;
            for row in &rows {
                writeln!(out, "{}", serde_json::Value::Object(row.clone()))?;
            }
            eprintln!("request {id}: {} rows (this viewing is logged)", rows.len());
        }
        DecryptCommand::List { .. } => {
            writeln!(
                out,
                "{:>4}  {:<9} {:<14} {:<7} {:<23} {:<12} reason",
                "id", "status", "institution", "table", "dates", "requester"
            )?;
            for r in consent.list()? {
                writeln!(
                    out,
                    "{:>4}  {:<9} {:<14} {:<7} {:<23} {:<12} {}",
                    r.id,
                    r.status.to_string(),
                    r.scope.institution,
                    r.scope.table.name(),
                    format!("{}..{}", r.scope.from, r.scope.to),
                    r.requester,
                    r.reason
                )?;
            }
        }
        DecryptCommand::Log { id, .. } => {
            for entry in consent.history(id)? {
                writeln!(out, "{}", serde_json::to_string(&entry)?)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn retention(config: &Path, dry_run: bool, as_of: Option<jiff::civil::Date>) -> Result<ExitCode> {
    let config = Config::load(config)?;
    let Some(storage) = &config.storage else {
        bail!(
            "{}: no [storage] section: nothing is stored, so nothing expires",
            config.origin
        );
    };
    let institutions = config.institutions.load()?;
    let policy = RetentionPolicy::new(storage.retention_months, &institutions);
    let today = as_of.unwrap_or_else(|| {
        jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
    });
    let report = retention::apply(&storage.data_dir, &policy, today, dry_run)?;
    let verb = if dry_run { "due" } else { "deleted" };
    for (partition, due) in &report.expired {
        println!("{verb}: {} (since {due})", partition.path.display());
    }
    println!(
        "{}: {} date partitions {verb}, {} kept, as of {today}{}",
        storage.data_dir.display(),
        report.expired.len(),
        report.kept,
        if dry_run {
            " (dry run: nothing deleted)"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn validate(path: Option<&Path>) -> Result<ExitCode> {
    let config = load_config(path)?;
    let origin = config.origin.clone();
    let engine = Engine::prepare(config)?;
    println!("{origin}: ok");
    println!("  institutions: {}", engine.institutions().len());
    for institution in engine.institutions().iter() {
        let prefixes: Vec<String> = institution
            .prefixes
            .iter()
            .map(ToString::to_string)
            .collect();
        println!(
            "    {:<12} {} ({})",
            institution.id,
            institution.name,
            prefixes.join(", ")
        );
    }
    println!("  plugins:");
    for plugin in engine.plugins() {
        println!("    {}", load_report(plugin).replace('\n', "\n    "));
        if !plugin.denied.is_empty() {
            let denied: Vec<&str> = plugin.denied.iter().map(|f| f.name()).collect();
            println!("      not granted: {}", denied.join(", "));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn plugin_new(name: &str, dir: Option<PathBuf>, sdk: Option<PathBuf>) -> Result<ExitCode> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let sdk = match sdk {
        Some(sdk) => sdk,
        None => {
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            let around = dir.parent().map(|p| cwd.join(p)).unwrap_or(cwd.clone());
            scaffold::find_sdk(&around)
                .or_else(|| scaffold::find_sdk(&cwd))
                .ok_or(scaffold::ScaffoldError::NoSdk)?
        }
    };
    let made = scaffold::create(name, &dir, &sdk)?;
    println!("created plugin {name} in {}:", made.dir.display());
    for file in &made.files {
        println!("  {file}");
    }
    println!(
        "next:\n  cd {}\n  cargo test\n  cargo build --release --target wasm32-wasip2\n  kansoku plugin test target/wasm32-wasip2/release/{}.wasm --rules rules/domains.txt --input YOUR/dns.log",
        made.dir.display(),
        name.replace('-', "_")
    );
    Ok(ExitCode::SUCCESS)
}

fn plugin_test(
    plugin: &str,
    rules: &[PathBuf],
    inputs: Vec<InputPath>,
    institutions: Option<PathBuf>,
    format: Option<Format>,
    grant: &[String],
) -> Result<ExitCode> {
    let mut config = Config::default();
    let mut spec = match kansoku::plugins::builtin(plugin) {
        Some(builtin) if !Path::new(plugin).exists() => PluginSpec::builtin(builtin),
        _ => {
            let path = PathBuf::from(plugin);
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().replace('_', "-"))
                .unwrap_or_else(|| "plugin".into());
            PluginSpec::file(&name, path)
        }
    };
    if !rules.is_empty() {
        spec.rulesets = rules
            .iter()
            .map(|r| read_ruleset(r).map_err(anyhow::Error::msg))
            .collect::<Result<_>>()?;
    }
    for field in grant {
        match kansoku::flow::TextField::from_name(field) {
            Some(f) if f.is_sensitive() => {
                spec.grants.insert(f);
            }
            _ => bail!(
                "--grant {field}: not a sensitive text field (mail-from, mail-to, file-name, detected-substring)"
            ),
        }
    }
    config.plugins = vec![spec];
    if let Some(path) = institutions {
        config.institutions = InstitutionsSource::File(path);
    }
    if let Some(format) = format {
        config.ingest.format = format;
    }
    // Small batches so a plugin author sees findings of a short file at once.
    config.ingest.batch_rows = 1024;
    let engine = Engine::prepare(config)?;
    if let Some(loaded) = engine.plugins().first() {
        eprintln!("{}", load_report(loaded));
    }
    let summary = engine.run(inputs, Box::new(std::io::stdout()), false)?;
    report(&summary, None, None)?;
    Ok(ExitCode::SUCCESS)
}

/// `NAME VERSION (ORIGIN): N rules loaded, M skipped`, then one line per
/// skipped rule with its place and reason.
fn load_report(plugin: &LoadedPlugin) -> String {
    let report = &plugin.load_report;
    let mut text = format!(
        "{} {} ({}): {} rules loaded, {} skipped",
        plugin.name,
        plugin.description.version,
        plugin.origin,
        report.loaded,
        report.skipped.len()
    );
    for skipped in &report.skipped {
        text.push_str(&format!(
            "\n  skipped {} {}: {}",
            skipped.location, skipped.id, skipped.reason
        ));
    }
    text
}
