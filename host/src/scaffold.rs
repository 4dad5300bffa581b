//! `kansoku plugin new`: a new plugin crate that builds, tests and runs as
//! it is, for authors to edit.
//!
//! The crate is its own workspace (an empty `[workspace]` table), so it can
//! live anywhere, including inside a kansoku checkout, without joining the
//! engine's workspace. It depends on the SDK by path.

use std::fs;
use std::path::{Path, PathBuf};

/// Why a plugin crate could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScaffoldError {
    /// The name cannot be a crate name.
    #[error(
        "invalid plugin name `{0}`: use lower-case letters, digits and `-`, starting with a letter"
    )]
    Name(String),
    /// The directory exists.
    #[error("{} already exists; choose another name or --dir", .0.display())]
    Exists(PathBuf),
    /// No SDK was given and none was found around the target.
    #[error(
        "cannot find the kansoku-plugin SDK: run inside a kansoku checkout or pass --sdk PATH/TO/plugins/sdk"
    )]
    NoSdk,
    /// Writing failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// What was created.
#[derive(Debug)]
pub struct Scaffold {
    /// The crate's directory.
    pub dir: PathBuf,
    /// Files written, relative to `dir`.
    pub files: Vec<&'static str>,
}

/// Whether `name` can be a plugin (and crate) name.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && name.len() <= 64
}

/// Finds `plugins/sdk` of a kansoku checkout at or above `start`.
pub fn find_sdk(start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(|dir| {
        let sdk = dir.join("plugins").join("sdk");
        sdk.join("Cargo.toml")
            .is_file()
            .then(|| sdk.canonicalize().unwrap_or(sdk))
    })
}

/// Creates the crate `dir` for plugin `name`, depending on the SDK at
/// `sdk`.
///
/// # Errors
///
/// When the name is invalid, `dir` exists, or a file cannot be written.
pub fn create(name: &str, dir: &Path, sdk: &Path) -> Result<Scaffold, ScaffoldError> {
    if !valid_name(name) {
        return Err(ScaffoldError::Name(name.to_owned()));
    }
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir.to_owned()));
    }
    let type_name: String = name
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect();
    let sdk = sdk.display().to_string().replace('\\', "/");
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{type}}", &type_name)
            .replace("{{sdk}}", &sdk)
            .replace("{{crate}}", &name.replace('-', "_"))
    };
    let files: [(&'static str, &str); 5] = [
        ("Cargo.toml", CARGO_TOML),
        ("src/lib.rs", LIB_RS),
        ("rules/domains.txt", RULES),
        ("README.md", README),
        (".gitignore", "target/\n"),
    ];
    for (file, template) in files {
        let path = dir.join(file);
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&path, fill(template))
        };
        write().map_err(|source| ScaffoldError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(Scaffold {
        dir: dir.to_owned(),
        files: files.iter().map(|(f, _)| *f).collect(),
    })
}

const CARGO_TOML: &str = r#"[package]
name = "{{name}}"
version = "0.1.0"
edition = "2024"
description = "A kansoku detector plugin"
publish = false

[lib]
# cdylib: the Wasm component; rlib: native unit tests.
crate-type = ["cdylib", "rlib"]

[dependencies]
kansoku-plugin = { path = "{{sdk}}" }

[profile.release]
lto = true
codegen-units = 1
strip = "debuginfo"

# Its own workspace, wherever it lives.
[workspace]
"#;

const LIB_RS: &str = r##"//! {{name}}: a kansoku detector plugin.
//!
//! Flags DNS queries for the domains listed in its ruleset (one per line,
//! `#` comments), and for their subdomains.

use kansoku_plugin::{
    Batch, ConfigError, Description, Detector, Finding, LoadReport, Ruleset, Severity, TextField,
};

/// The detector's state: the listed domains.
#[derive(Debug, Default)]
pub struct {{type}} {
    domains: Vec<String>,
}

impl Detector for {{type}} {
    fn describe() -> Description {
        Description::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .summary("Flags DNS queries for listed domains")
            .wants(&[TextField::DnsQuery])
    }

    fn configure(&mut self, rulesets: Vec<Ruleset>) -> Result<LoadReport, ConfigError> {
        let mut domains = Vec::new();
        for ruleset in &rulesets {
            let text = std::str::from_utf8(&ruleset.content)
                .map_err(|_| ConfigError::new(&ruleset.name, "not UTF-8"))?;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                if line.contains(char::is_whitespace) {
                    let place = format!("{}:{}", ruleset.name, i + 1);
                    return Err(ConfigError::new(&place, "expected one domain per line"));
                }
                domains.push(line.trim_end_matches('.').to_ascii_lowercase());
            }
        }
        let report = LoadReport::loaded(u32::try_from(domains.len()).unwrap_or(u32::MAX));
        self.domains = domains;
        Ok(report)
    }

    fn process(&mut self, batch: &Batch) -> Vec<Finding> {
        batch
            .iter()
            .filter_map(|flow| {
                let query = flow.dns_query()?.trim_end_matches('.').to_ascii_lowercase();
                let domain = self.domains.iter().find(|d| {
                    query == **d || query.ends_with(&format!(".{d}"))
                })?;
                Some(
                    Finding::new(&flow, "listed-domain", format!("DNS query for listed domain {domain}"))
                        .category("Policy Violation")
                        .severity(Severity::Medium)
                        .confidence(90)
                        .evidence("query", &query),
                )
            })
            .collect()
    }
}

kansoku_plugin::export!({{type}});

#[cfg(test)]
mod tests {
    use super::*;
    use kansoku_plugin::testing::BatchBuilder;

    #[test]
    fn flags_listed_domains_and_their_subdomains_only() {
        let mut plugin = {{type}}::default();
        let rules = Ruleset { name: "domains.txt".into(), content: b"# test\nexample.org\n".to_vec() };
        assert_eq!(plugin.configure(vec![rules]).map(|r| r.loaded), Ok(1));

        let (a, b) = ("10.0.0.1".parse().unwrap(), "192.0.2.53".parse().unwrap());
        let mut batch = BatchBuilder::new();
        batch.flow(a, 5353, b, 53).dns("www.example.org", 1, Some(0));
        batch.flow(a, 5353, b, 53).dns("example.com", 1, Some(0));
        let findings = plugin.process(&batch.build());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].rule_id, "listed-domain");
    }

    #[test]
    fn a_bad_line_names_its_place() {
        let rules = Ruleset { name: "domains.txt".into(), content: b"a.org\nb c\n".to_vec() };
        let err = {{type}}::default().configure(vec![rules]).unwrap_err();
        assert_eq!(err.location, "domains.txt:2");
    }
}
"##;

const RULES: &str = "# Domains to flag, one per line; subdomains match too.\nexample.org\n";

const README: &str = r#"# {{name}}

A kansoku detector plugin.

```sh
cargo test                                          # native unit tests
cargo build --release --target wasm32-wasip2        # the plugin component
kansoku plugin test target/wasm32-wasip2/release/{{crate}}.wasm \
    --rules rules/domains.txt --input dns.log       # run it on real flows
```

To run it in the engine, add to `kansoku.toml`:

```toml
[plugins.{{name}}]
path = "target/wasm32-wasip2/release/{{crate}}.wasm"
rulesets = ["rules/domains.txt"]
```
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_crate_names() {
        assert!(valid_name("dns-watch"));
        assert!(valid_name("x1"));
        for bad in ["", "Dns", "1x", "a_b", "a-", "a b", "../x"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn refuses_to_overwrite_and_fills_the_templates() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("dns-watch");
        let made = create("dns-watch", &dir, Path::new("/sdk")).unwrap();
        assert_eq!(made.files.len(), 5);
        let lib = fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        assert!(lib.contains("pub struct DnsWatch"));
        assert!(!lib.contains("{{"));
        let cargo = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(cargo.contains(r#"kansoku-plugin = { path = "/sdk" }"#));
        assert!(matches!(
            create("dns-watch", &dir, Path::new("/sdk")),
            Err(ScaffoldError::Exists(_))
        ));
    }
}
