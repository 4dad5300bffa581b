//! `signature`: a built-in kansoku detector running Suricata rules over
//! flow metadata.
//!
//! Rules come from the rulesets (`*.rules`, with `classification.config`,
//! an optional `vars.toml` and dataset files; see [`ruleset`]). What a rule
//! may inspect is what flow logs carry: the header (protocol, addresses,
//! `$HOME_NET` as the flow's own institution, ports, direction), the `flow`
//! keyword where the log decides it, and the sticky buffers `dns.query`,
//! `tls.sni`, `tls.cert_subject`, `tls.cert_issuer`, `http.host`,
//! `http.uri`, `http.user_agent`, `http.method`, `ja3.hash` and
//! `ja3s.hash` (and their legacy forms). A rule that needs more is skipped,
//! whole, and listed in the load report with its place and reason.

mod anchor;
pub mod check;
pub mod engine;
mod memo;
pub mod rule;
pub mod ruleset;
mod state;
mod substrings;
mod trie;
mod values;

use std::collections::HashMap;

use kansoku_plugin::{
    Batch, ConfigError, Description, Detector, Finding, LoadReport, Ruleset, Severity, TextField,
    Timestamp,
};

use check::Datasets;
use engine::{Index, Scratch};
use rule::Rule;
use ruleset::{Class, Loaded};
use state::State;
use values::{Columns, Values};

/// The detector.
#[derive(Debug, Default)]
pub struct Signature {
    rules: Vec<Rule>,
    classes: HashMap<String, Class>,
    datasets: Datasets,
    index: Index,
    state: State,
    scratch: Scratch,
}

/// The text fields the buffers read.
const FIELDS: [TextField; 10] = [
    TextField::DnsQuery,
    TextField::TlsSni,
    TextField::TlsSubject,
    TextField::TlsIssuer,
    TextField::HttpHost,
    TextField::HttpUri,
    TextField::HttpUserAgent,
    TextField::HttpMethod,
    TextField::Ja3,
    TextField::Ja3s,
];

impl Signature {
    /// Loads rulesets into a fresh detector.
    pub fn with_rulesets(rulesets: &[Ruleset]) -> Result<(Self, LoadReport), ConfigError> {
        let loaded = Loaded::load(rulesets)?;
        let mut report = loaded.report();
        let index = Index::build(&loaded.rules);
        report.notes.push(index.summary());
        let detector = Self {
            scratch: Scratch::new(loaded.rules.len()),
            rules: loaded.rules,
            classes: loaded.classes,
            datasets: loaded.datasets,
            index,
            state: State::default(),
        };
        Ok((detector, report))
    }

    /// The loaded rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// A rule's severity: from its own priority, else its class's.
fn severity(classes: &HashMap<String, Class>, rule: &Rule) -> Severity {
    let priority = rule
        .priority
        .or_else(|| {
            let class = rule.classtype.as_ref()?;
            classes.get(class).map(|c| c.priority)
        })
        .unwrap_or(3);
    match priority {
        0 | 1 => Severity::High,
        2 => Severity::Medium,
        3 => Severity::Low,
        _ => Severity::Info,
    }
}

/// The finding of `rule` on `flow`.
fn finding(
    classes: &HashMap<String, Class>,
    rule: &Rule,
    flow: &kansoku_plugin::Flow<'_>,
) -> Finding {
    let mut finding = Finding::new(flow, &rule.sid.to_string(), rule.msg.as_str())
        .severity(severity(classes, rule))
        .evidence("gid", rule.gid)
        .evidence("sid", rule.sid)
        .evidence("rev", rule.rev);
    if let Some(class) = &rule.classtype {
        finding = finding.category(class).evidence("classtype", class);
    }
    if let Some(b) = rule.buffers.first()
        && let Some(value) = engine::buffer_value(flow, b.buffer)
    {
        let shown: String = value.chars().take(256).collect();
        finding = finding
            .evidence("buffer", b.buffer.name())
            .evidence("matched", shown);
    }
    finding
}

impl Detector for Signature {
    fn describe() -> Description {
        Description::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .summary("Suricata rules over flow metadata: addresses, ports, DNS, TLS, HTTP, JA3")
            .wants(&FIELDS)
            .stateful()
    }

    fn configure(&mut self, rulesets: Vec<Ruleset>) -> Result<LoadReport, ConfigError> {
        let (mut fresh, report) = Self::with_rulesets(&rulesets)?;
        // Flowbits and thresholds belong to the flows, not the rules: keep them.
        fresh.state = std::mem::take(&mut self.state);
        *self = fresh;
        Ok(report)
    }

    fn process(&mut self, batch: &Batch) -> Vec<Finding> {
        let mut findings = Vec::new();
        let columns = Columns::of(batch);
        for flow in batch.iter() {
            let values = Values::read(&columns, &flow, self.index.watched(flow.kind()));
            let candidates = self.index.candidates(&flow, &values, &mut self.scratch);
            for &id in candidates {
                let Some(rule) = self.rules.get(id as usize) else {
                    continue;
                };
                if !check::header_holds(rule, &flow)
                    || !check::buffers_hold(rule, &values, &self.datasets)
                {
                    continue;
                }
                if !self.state.flowbits_hold(rule, &flow) {
                    continue;
                }
                self.state.apply_flowbits(rule, &flow);
                if rule.noalert || !self.state.threshold_allows(rule, &flow) {
                    continue;
                }
                findings.push(finding(&self.classes, rule, &flow));
            }
        }
        findings
    }

    fn snapshot(&self) -> Vec<u8> {
        self.state.to_bytes()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), ConfigError> {
        self.state = State::from_bytes(state)
            .map_err(|e| ConfigError::new("snapshot", format!("unreadable state: {e}")))?;
        Ok(())
    }

    fn tick(&mut self, now: Timestamp) -> Vec<Finding> {
        self.state.expire(now);
        Vec::new()
    }
}

kansoku_plugin::export!(Signature);
