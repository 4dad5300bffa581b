//! `reputation`: a built-in kansoku detector matching flows against lists
//! of indicators of compromise.
//!
//! Lists arrive as rulesets, each named by its file: plain lists (one
//! indicator per line, type told from the value), Spamhaus DROP, CSV feeds
//! with a column mapping, and STIX 2.1 bundles. A TOML ruleset (by default
//! `lists.toml`) says what each list means (category, confidence, source),
//! how to read it and when its entries expire; see [`settings`]. Both ends
//! of a flow, DNS query names and their parents, DNS answers, TLS SNI,
//! HTTP host and URL, and file hashes are looked up. An indicator outside
//! its validity at the flow's time never matches.
//!
//! Noise (scanners, honeypots, darknet) is reported at info severity; a
//! sinkhole contacted from inside means the inside host is infected.

mod entry;
mod format;
pub mod index;
pub mod indicator;
pub mod settings;
mod time;

use kansoku_plugin::{
    Batch, ConfigError, Description, Detector, Direction, Finding, Flow, LoadReport, Ruleset,
    Severity, TextField,
};

use entry::{Category, lower};
use index::{Field, Hit, Index};
use settings::Settings;

/// The detector.
#[derive(Debug, Default)]
pub struct Reputation {
    index: Index,
    hits: Vec<Hit>,
}

const FIELDS: [TextField; 8] = [
    TextField::DnsQuery,
    TextField::DnsAnswers,
    TextField::TlsSni,
    TextField::HttpHost,
    TextField::HttpUri,
    TextField::FileMd5,
    TextField::FileSha1,
    TextField::FileSha256,
];

impl Reputation {
    /// Loads lists into a fresh detector. A list that cannot be read at all
    /// (a malformed bundle, a CSV without its column mapping) is an error
    /// naming it; entries that cannot be read are skipped and reported.
    pub fn with_rulesets(rulesets: &[Ruleset]) -> Result<(Self, LoadReport), ConfigError> {
        let mut settings = Settings::default();
        for r in rulesets.iter().filter(|r| is_settings(&r.name)) {
            let more = Settings::parse(&r.name, &r.content)?;
            settings.lists.extend(more.lists);
            if more.defaults.category.is_some() || more.defaults.confidence.is_some() {
                settings.defaults = more.defaults;
            }
        }
        let mut builder = index::Builder::default();
        for r in rulesets.iter().filter(|r| !is_settings(&r.name)) {
            let list = settings.of(&r.name);
            if list.enabled == Some(false) {
                builder.note(format!("{}: disabled in the list settings", r.name));
                continue;
            }
            builder
                .begin(&r.name, &list)
                .map_err(|e| ConfigError::new(&r.name, e))?;
            format::read(&r.name, &r.content, &list, &mut builder)?;
        }
        for name in settings.lists.keys() {
            if !rulesets.iter().any(|r| r.name == *name) {
                builder.note(format!(
                    "{name}: has settings but no list of that name was given"
                ));
            }
        }
        let (index, report) = builder.finish();
        Ok((
            Self {
                index,
                hits: Vec::new(),
            },
            report,
        ))
    }

    /// Indicators loaded.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether nothing is loaded.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn finding(&self, flow: &Flow<'_>, hit: &Hit, also: &[&str]) -> Option<Finding> {
        let entry = self.index.entries.get(hit.entry as usize)?;
        let list = self.index.lists.get(usize::from(entry.list))?;
        let category = self.index.categories.get(usize::from(entry.category))?;
        let label = entry.label.and_then(|l| self.index.labels.get(l as usize));
        let side = match hit.field {
            Field::Src => "source",
            Field::Dst => "destination",
            _ => "name",
        };
        let title = if *category == Category::Sinkhole {
            format!(
                "Contact with sinkhole {}: the inside host is likely infected",
                hit.indicator
            )
        } else {
            format!(
                "Known {} {} {} ({})",
                category.name(),
                side,
                hit.indicator,
                list.source
            )
        };
        let mut severity = category.severity();
        // An outside indicator knocking on a closed door is less than an
        // inside host talking to it.
        if hit.field == Field::Src
            && flow.direction() == Direction::Inbound
            && flow.conn_state().is_failed_attempt()
        {
            severity = lower(severity);
        }
        let mut finding = Finding::new(flow, &list.name, title)
            .category(category.name())
            .severity(severity)
            .confidence(entry.confidence)
            .evidence("indicator", &hit.indicator)
            .evidence("field", hit.field.name())
            .evidence("list", &list.name)
            .evidence("source", &list.source);
        if let Some(label) = label {
            finding = finding.evidence("label", label);
        }
        if category.is_noise() {
            finding = finding.evidence("noise", true);
        }
        if entry.until != i64::MAX {
            finding = finding.evidence("valid_until_us", entry.until);
        }
        if !also.is_empty() {
            finding = finding.evidence("also_in", also.join(","));
        }
        Some(finding)
    }
}

fn is_settings(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".toml")
}

impl Detector for Reputation {
    fn describe() -> Description {
        Description::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .summary("Indicators of compromise: addresses, networks, domains, URLs, file hashes")
            .wants(&FIELDS)
    }

    fn configure(&mut self, rulesets: Vec<Ruleset>) -> Result<LoadReport, ConfigError> {
        let (fresh, report) = Self::with_rulesets(&rulesets)?;
        *self = fresh;
        Ok(report)
    }

    fn process(&mut self, batch: &Batch) -> Vec<Finding> {
        let mut findings = Vec::new();
        let mut hits = std::mem::take(&mut self.hits);
        for flow in batch.iter() {
            hits.clear();
            self.index.scan(&flow, &mut hits);
            if hits.is_empty() {
                continue;
            }
            // One finding per indicator seen: the most severe of its
            // entries, naming the other lists that hold it.
            let mut i = 0;
            while i < hits.len() {
                let same = hits[i..]
                    .iter()
                    .take_while(|h| h.field == hits[i].field && h.indicator == hits[i].indicator)
                    .count();
                let group = &hits[i..i + same];
                let rank = |h: &Hit| {
                    let e = self.index.entries.get(h.entry as usize);
                    let severity = e
                        .and_then(|e| self.index.categories.get(usize::from(e.category)))
                        .map_or(Severity::Info, Category::severity);
                    let labelled = e.is_some_and(|e| e.label.is_some());
                    (
                        severity as u8,
                        e.map_or(0, |e| e.confidence),
                        labelled,
                        std::cmp::Reverse(h.entry),
                    )
                };
                if let Some(best) = group.iter().max_by_key(|h| rank(h)) {
                    let mut also: Vec<&str> = group
                        .iter()
                        .filter(|h| h.entry != best.entry)
                        .filter_map(|h| self.index.entries.get(h.entry as usize))
                        .filter_map(|e| self.index.lists.get(usize::from(e.list)))
                        .map(|l| &*l.name)
                        .collect();
                    also.sort_unstable();
                    also.dedup();
                    findings.extend(self.finding(&flow, best, &also));
                }
                i += same;
            }
        }
        self.hits = hits;
        findings
    }
}

kansoku_plugin::export!(Reputation);

#[cfg(test)]
mod tests;
