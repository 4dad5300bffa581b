//! List formats. Each reads one ruleset and hands every indicator to the
//! [`Builder`]; what it cannot read is skipped with its line and reason,
//! and only a file that cannot be read at all is an error.

mod csv;
mod pattern;
mod plain;
mod stix;

use kansoku_plugin::{ConfigError, Timestamp};

use crate::entry::Category;
use crate::index::Builder;
use crate::indicator::{HashKind, Indicator};
use crate::settings::{Format, ListSettings};

/// One indicator as a list gives it; what the list leaves out comes from
/// its settings.
#[derive(Debug, Default)]
pub struct Item {
    pub indicator: Option<Indicator>,
    /// Further indicators the same flow must show (STIX `AND`).
    pub and: Vec<Indicator>,
    pub category: Option<Category>,
    pub confidence: Option<u8>,
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
    pub label: Option<String>,
}

/// Reads `content` as the list `name` into `builder`.
pub fn read(
    name: &str,
    content: &[u8],
    settings: &ListSettings,
    builder: &mut Builder,
) -> Result<(), ConfigError> {
    let text = std::str::from_utf8(content).map_err(|e| {
        let line = content[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        ConfigError::new(&format!("{name}:{line}"), "not UTF-8 text")
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match settings
        .format
        .unwrap_or_else(|| detect(name, text, settings))
    {
        Format::Plain => {
            plain::read(name, text, settings, builder);
            Ok(())
        }
        Format::Csv => csv::read(name, text, settings, builder),
        Format::Stix => stix::read(name, text, builder),
    }
}

/// The format, from the file name, the settings and the first character.
fn detect(name: &str, text: &str, settings: &ListSettings) -> Format {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".json") || text.trim_start().starts_with('{') {
        Format::Stix
    } else if lower.ends_with(".csv") || settings.columns.is_some() {
        Format::Csv
    } else {
        Format::Plain
    }
}

/// A value read as the list's forced type, or by its form.
pub fn indicator(text: &str, settings: &ListSettings) -> Result<Indicator, String> {
    let indicator = match settings.kind.as_deref() {
        None => Indicator::parse(text),
        Some("ip") => Indicator::address(text),
        Some("cidr") => Indicator::network(text),
        Some("domain") => Indicator::domain(text),
        Some("url") => Indicator::url(text),
        Some("md5") => Indicator::hash(HashKind::Md5, text),
        Some("sha1") => Indicator::hash(HashKind::Sha1, text),
        Some("sha256") => Indicator::hash(HashKind::Sha256, text),
        Some(other) => Err(format!("unknown type `{other}`")),
    }?;
    Ok(match indicator {
        Indicator::Domain(domain) if settings.subdomains == Some(true) => {
            Indicator::Suffix { domain, apex: true }
        }
        other => other,
    })
}
