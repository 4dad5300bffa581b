//! Per-list settings, from a TOML ruleset (`lists.toml` by default) next
//! to the lists: what a list's entries mean when the list does not say
//! (category, confidence, source), how to read it (format, CSV columns)
//! and how long its entries stay valid.
//!
//! ```toml
//! [lists."feodo.csv"]
//! source = "abuse.ch Feodo Tracker"
//! category = "c2"
//! confidence = 90
//! format = "csv"             # plain, csv or stix; told from the file when left out
//! max_age_days = 30          # an entry expires this long after it was last seen
//! [lists."feodo.csv".columns]
//! value = "dst_ip"           # a header name, or a 1-based column number
//! first_seen = "first_seen_utc"
//! last_seen = "last_online"
//! label = "malware"
//! ```

use std::collections::BTreeMap;

use kansoku_plugin::{ConfigError, Timestamp};
use serde::Deserialize;

use crate::time;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub defaults: ListSettings,
    #[serde(default)]
    pub lists: BTreeMap<String, ListSettings>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListSettings {
    pub source: Option<String>,
    pub category: Option<String>,
    pub confidence: Option<u8>,
    pub format: Option<Format>,
    /// Reads every value as this type (`ip`, `cidr`, `domain`, `url`,
    /// `md5`, `sha1`, `sha256`) instead of telling it from its form.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Exact domains of this list also cover the names under them.
    pub subdomains: Option<bool>,
    /// No entry of the list is valid after this date (RFC 3339 or a date).
    pub expires: Option<String>,
    pub max_age_days: Option<u32>,
    pub delimiter: Option<char>,
    pub columns: Option<Columns>,
    /// Set false to keep a list's file in the rulesets without loading it.
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Plain,
    Csv,
    Stix,
}

/// A column named by its header or by its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Column {
    Number(usize),
    Name(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    pub value: Column,
    pub category: Option<Column>,
    pub confidence: Option<Column>,
    pub first_seen: Option<Column>,
    pub last_seen: Option<Column>,
    pub expires: Option<Column>,
    pub label: Option<Column>,
}

impl Settings {
    pub fn parse(name: &str, content: &[u8]) -> Result<Self, ConfigError> {
        let text = std::str::from_utf8(content)
            .map_err(|e| ConfigError::new(name, format!("not UTF-8: {e}")))?;
        let settings: Self = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| {
                    text.as_bytes()[..s.start.min(text.len())]
                        .iter()
                        .filter(|&&b| b == b'\n')
                        .count()
                        + 1
                })
                .unwrap_or(1);
            ConfigError::new(&format!("{name}:{line}"), e.message().to_owned())
        })?;
        for (list, s) in std::iter::once(("defaults", &settings.defaults))
            .chain(settings.lists.iter().map(|(k, v)| (k.as_str(), v)))
        {
            let at = format!("{name}: lists.{list}");
            if s.confidence.is_some_and(|c| c > 100) {
                return Err(ConfigError::new(
                    &at,
                    "confidence is a percentage, 0 to 100",
                ));
            }
            if let Some(expires) = &s.expires {
                time::parse(expires).map_err(|e| ConfigError::new(&at, format!("expires: {e}")))?;
            }
            if let Some(kind) = &s.kind
                && !KINDS.contains(&kind.as_str())
            {
                return Err(ConfigError::new(
                    &at,
                    format!("type `{kind}` is none of {}", KINDS.join(", ")),
                ));
            }
        }
        Ok(settings)
    }

    /// The settings of the list `name`, over the defaults.
    pub fn of(&self, name: &str) -> ListSettings {
        let d = &self.defaults;
        let Some(s) = self.lists.get(name) else {
            return d.clone();
        };
        ListSettings {
            source: s.source.clone().or_else(|| d.source.clone()),
            category: s.category.clone().or_else(|| d.category.clone()),
            confidence: s.confidence.or(d.confidence),
            format: s.format.or(d.format),
            kind: s.kind.clone().or_else(|| d.kind.clone()),
            subdomains: s.subdomains.or(d.subdomains),
            expires: s.expires.clone().or_else(|| d.expires.clone()),
            max_age_days: s.max_age_days.or(d.max_age_days),
            delimiter: s.delimiter.or(d.delimiter),
            columns: s.columns.clone().or_else(|| d.columns.clone()),
            enabled: s.enabled.or(d.enabled),
        }
    }
}

pub const KINDS: [&str; 7] = ["ip", "cidr", "domain", "url", "md5", "sha1", "sha256"];

impl ListSettings {
    /// The list-wide end of validity.
    pub fn expires(&self) -> Option<Timestamp> {
        self.expires.as_deref().and_then(|e| time::parse(e).ok())
    }
}
