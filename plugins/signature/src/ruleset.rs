//! Loading what `configure` receives: `.rules` files, Suricata's
//! `classification.config`, a `vars.toml` with address and port groups, and
//! the files datasets load.
//!
//! ```toml
//! # vars.toml: as `vars:` in suricata.yaml. $HOME_NET is each flow's own
//! # institution and cannot be redefined.
//! [address-groups]
//! DNS_SERVERS = "[$HOME_NET,192.0.2.53]"
//! [port-groups]
//! HTTP_PORTS = "[80,8080]"
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};

use base64::Engine as _;
use kansoku_plugin::{ConfigError, LoadReport, Ruleset, SkippedRule};
use serde::Deserialize;

use crate::rule::header::Vars;
use crate::rule::{DatasetKind, Line, Location, Reason, Rule, Skip, parse_line};

/// A classtype: its description and priority (1 is the most urgent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    pub description: String,
    pub priority: u8,
}

/// Everything loaded.
#[derive(Debug, Default)]
pub struct Loaded {
    pub rules: Vec<Rule>,
    pub skipped: Vec<Skip>,
    /// Rules commented out in their files.
    pub disabled: usize,
    pub classes: HashMap<String, Class>,
    /// Dataset contents by their `load` file name.
    pub datasets: HashMap<String, HashSet<Vec<u8>>>,
    pub files: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct VarsFile {
    #[serde(default, rename = "address-groups")]
    addresses: BTreeMap<String, String>,
    #[serde(default, rename = "port-groups")]
    ports: BTreeMap<String, String>,
}

/// The name a file is known by: its last path component.
fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

impl Loaded {
    /// Loads every ruleset. Bad rules are skipped and reported; only an
    /// unusable `vars.toml` or `classification.config`, or a rules file that
    /// is not text, fails the whole load.
    pub fn load(rulesets: &[Ruleset]) -> Result<Self, ConfigError> {
        let mut loaded = Loaded::default();
        let mut vars = Vars::default();
        let mut data: HashMap<&str, &[u8]> = HashMap::new();
        let mut rule_files = Vec::new();
        for set in rulesets {
            let name = base_name(&set.name);
            if name.ends_with(".rules") {
                rule_files.push(set);
            } else if name == "classification.config" {
                loaded.classes = classifications(set)?;
            } else if name.ends_with("vars.toml") {
                read_vars(set, &mut vars)?;
            } else {
                data.insert(name, &set.content);
            }
        }
        let mut seen = HashSet::new();
        for set in rule_files {
            loaded.files.push(set.name.clone());
            let text = std::str::from_utf8(&set.content)
                .map_err(|e| ConfigError::new(&set.name, format!("not UTF-8 text: {e}")))?;
            for (line, logical) in logical_lines(text) {
                let location = Location {
                    file: set.name.clone(),
                    line,
                };
                match parse_line(logical.as_ref(), &location, &vars) {
                    Line::Rule(rule) => {
                        if !seen.insert((rule.gid, rule.sid)) {
                            loaded.skipped.push(Skip {
                                location,
                                sid: Some(rule.sid),
                                reason: Reason::Syntax,
                                detail: format!("duplicate sid {}:{}", rule.gid, rule.sid),
                            });
                            continue;
                        }
                        match loaded.attach_datasets(&rule, &data) {
                            Ok(()) => loaded.rules.push(*rule),
                            Err(skip) => loaded.skipped.push(skip),
                        }
                    }
                    Line::Skipped(skip) => loaded.skipped.push(skip),
                    Line::Disabled => loaded.disabled += 1,
                    Line::Nothing => {}
                }
            }
        }
        Ok(loaded)
    }

    /// Loads the files the rule's datasets name, once each.
    fn attach_datasets(&mut self, rule: &Rule, data: &HashMap<&str, &[u8]>) -> Result<(), Skip> {
        for check in rule.buffers.iter().flat_map(|b| &b.datasets) {
            let file = base_name(&check.load);
            if self.datasets.contains_key(file) {
                continue;
            }
            let skip = |detail: String| Skip {
                location: rule.location.clone(),
                sid: Some(rule.sid),
                reason: Reason::MissingDataset,
                detail,
            };
            let bytes = data.get(file).ok_or_else(|| {
                skip(format!(
                    "dataset {} loads {file}, which is not among the rulesets",
                    check.name
                ))
            })?;
            let set = dataset(bytes, check.kind)
                .map_err(|line| skip(format!("{file}:{line}: not a {:?} entry", check.kind)))?;
            self.datasets.insert(file.to_owned(), set);
        }
        Ok(())
    }

    /// The report `configure` returns.
    pub fn report(&self) -> LoadReport {
        let mut per_reason: BTreeMap<&str, usize> = BTreeMap::new();
        for skip in &self.skipped {
            *per_reason.entry(skip.reason.label()).or_default() += 1;
        }
        let mut notes = vec![format!(
            "{} rules loaded, {} skipped, {} disabled in {} files",
            self.rules.len(),
            self.skipped.len(),
            self.disabled,
            self.files.len()
        )];
        notes.extend(
            per_reason
                .iter()
                .map(|(reason, n)| format!("skipped, {reason}: {n}")),
        );
        LoadReport {
            loaded: u32::try_from(self.rules.len()).unwrap_or(u32::MAX),
            skipped: self
                .skipped
                .iter()
                .map(|s| SkippedRule {
                    location: s.location.to_string(),
                    id: s.sid.map(|sid| format!("sid:{sid}")).unwrap_or_default(),
                    reason: format!("{}: {}", s.reason.label(), s.detail),
                })
                .collect(),
            notes,
        }
    }
}

/// Lines with `\` continuations joined, each with its first line number.
fn logical_lines(text: &str) -> Vec<(usize, std::borrow::Cow<'_, str>)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let (body, continues) = match line.trim_end().strip_suffix('\\') {
            Some(body) => (body, true),
            None => (line, false),
        };
        match (&mut pending, continues) {
            (Some((_, joined)), _) => {
                joined.push_str(body);
                if !continues && let Some((start, joined)) = pending.take() {
                    out.push((start, joined.into()));
                }
            }
            (None, true) => pending = Some((number, body.to_owned())),
            (None, false) => out.push((number, line.into())),
        }
    }
    if let Some((start, joined)) = pending {
        out.push((start, joined.into()));
    }
    out
}

/// `config classification: shortname,description,priority` lines.
fn classifications(set: &Ruleset) -> Result<HashMap<String, Class>, ConfigError> {
    let text = std::str::from_utf8(&set.content)
        .map_err(|e| ConfigError::new(&set.name, format!("not UTF-8 text: {e}")))?;
    let mut classes = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("config classification:") else {
            continue;
        };
        let fields: Vec<&str> = rest.split(',').map(str::trim).collect();
        let location = format!("{}:{}", set.name, i + 1);
        let [name, description, priority] = fields[..] else {
            return Err(ConfigError::new(
                &location,
                "expected `name,description,priority`",
            ));
        };
        let priority = priority.parse().map_err(|_| {
            ConfigError::new(&location, format!("priority `{priority}` is not a number"))
        })?;
        classes.insert(
            name.to_owned(),
            Class {
                description: description.to_owned(),
                priority,
            },
        );
    }
    Ok(classes)
}

fn read_vars(set: &Ruleset, vars: &mut Vars) -> Result<(), ConfigError> {
    let text = std::str::from_utf8(&set.content)
        .map_err(|e| ConfigError::new(&set.name, format!("not UTF-8 text: {e}")))?;
    let file: VarsFile =
        toml::from_str(text).map_err(|e| ConfigError::new(&set.name, e.to_string()))?;
    for name in file.addresses.keys() {
        if name == "HOME_NET" || name == "EXTERNAL_NET" {
            return Err(ConfigError::new(
                &set.name,
                format!("{name} is each flow's institution and cannot be redefined"),
            ));
        }
    }
    vars.addresses.extend(file.addresses);
    vars.ports.extend(file.ports);
    Ok(())
}

/// A dataset file: one entry per line, as Suricata writes them. The error
/// is the line number of a bad entry.
fn dataset(bytes: &[u8], kind: DatasetKind) -> Result<HashSet<Vec<u8>>, usize> {
    let text = std::str::from_utf8(bytes).map_err(|_| 0usize)?;
    let mut set = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        // Entries may carry a `,value` (datarep); only the key matters here.
        let entry = line.split(',').next().unwrap_or_default().trim();
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        let value = match kind {
            DatasetKind::String => base64::engine::general_purpose::STANDARD
                .decode(entry)
                .map_err(|_| i + 1)?,
            DatasetKind::Md5 | DatasetKind::Sha256 => {
                let len = if kind == DatasetKind::Md5 { 32 } else { 64 };
                if entry.len() != len || !entry.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return Err(i + 1);
                }
                entry.to_ascii_lowercase().into_bytes()
            }
        };
        set.insert(value);
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, text: &str) -> Ruleset {
        Ruleset {
            name: name.into(),
            content: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn continuations_join_and_keep_the_first_line_number() {
        let lines = logical_lines("a\nb \\\n c\\\nd\ne");
        let got: Vec<(usize, &str)> = lines.iter().map(|(n, l)| (*n, l.as_ref())).collect();
        assert_eq!(got, [(1, "a"), (2, "b  cd"), (5, "e")]);
    }

    #[test]
    fn classification_vars_and_datasets_load_and_bad_ones_are_named() {
        let loaded = Loaded::load(&[
            set("classification.config", "# c\nconfig classification: trojan-activity,A Network Trojan was detected,1\n"),
            set("vars.toml", "[address-groups]\nDNS_SERVERS = \"[192.0.2.53]\"\n"),
            set("bad.lst", "ZXZpbC5leGFtcGxl\n"),
            set(
                "local.rules",
                "alert dns $HOME_NET any -> $DNS_SERVERS any (msg:\"x\"; dns.query; dataset:isset,bad,type string,load bad.lst; classtype:trojan-activity; sid:1;)\n\
                 alert dns any any -> any any (msg:\"y\"; dns.query; dataset:isset,gone,type string,load gone.lst; sid:2;)\n\
                 alert dns any any -> any any (msg:\"dup\"; dns.query; content:\"a\"; sid:1;)\n\
                 # alert dns any any -> any any (msg:\"off\"; sid:3;)\n",
            ),
        ])
        .unwrap();
        assert_eq!(loaded.classes["trojan-activity"].priority, 1);
        assert_eq!(loaded.rules.len(), 1);
        assert_eq!(loaded.disabled, 1);
        assert!(loaded.datasets["bad.lst"].contains(b"evil.example".as_slice()));
        let reasons: Vec<_> = loaded
            .skipped
            .iter()
            .map(|s| (s.location.line, s.reason))
            .collect();
        assert_eq!(reasons, [(2, Reason::MissingDataset), (3, Reason::Syntax)]);
        let report = loaded.report();
        assert_eq!(report.loaded, 1);
        assert_eq!(report.skipped[0].location, "local.rules:2");
        assert_eq!(report.skipped[0].id, "sid:2");

        let redefined = Loaded::load(&[set(
            "vars.toml",
            "[address-groups]\nHOME_NET = \"[10.0.0.0/8]\"\n",
        )]);
        assert!(
            redefined
                .unwrap_err()
                .message
                .contains("cannot be redefined")
        );
        let bad_class =
            Loaded::load(&[set("classification.config", "config classification: x,y\n")]);
        assert_eq!(bad_class.unwrap_err().location, "classification.config:1");
    }
}
