//! `dns-anomaly`: a built-in kansoku detector for random-subdomain ("water
//! torture") attacks, DGA names and DNS tunnelling.
//!
//! Every query name is cut at its registered domain (public suffix list)
//! and counted in tumbling windows of data time:
//!
//! * per (institution, registered domain): distinct names, failures
//!   (NXDOMAIN, SERVFAIL, no answer) and resolvers, for `water-torture`;
//! * per (institution, client): distinct registered domains that failed
//!   with NXDOMAIN and that the DGA model scores as generated, for
//!   `dga-nxdomain`;
//! * per (client, registered domain), for names with a long subdomain part
//!   only: distinct names, their length and entropy, query types, for
//!   `dns-tunnel`.
//!
//! A finding is raised when a window crosses its thresholds, once per
//! attack and window. Thresholds, allow-list and caps come from
//! `rulesets/dns-anomaly/default.toml`, the model from `dga-model.toml`.

pub mod counter;
pub mod dga;
pub mod names;
pub mod rules;
pub mod state;

use kansoku_plugin::{
    Batch, ConfigError, Description, Detector, Entity, Finding, Kind, LoadReport, Ruleset,
    Severity, TextField, Timestamp,
};

use names::{MAX_NAME, Name, normalise};
pub use rules::Rules;
use state::{Alert, Query, State};

/// The detector.
#[derive(Debug, Default)]
pub struct DnsAnomaly {
    rules: Rules,
    state: State,
}

impl Detector for DnsAnomaly {
    fn describe() -> Description {
        Description::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .summary("Random-subdomain attacks, DGA names and DNS tunnelling")
            .wants(&[TextField::DnsQuery])
            .stateful()
    }

    fn configure(&mut self, rulesets: Vec<Ruleset>) -> Result<LoadReport, ConfigError> {
        let rules = Rules::from_rulesets(&rulesets)?;
        let [domains, clients, tunnels] = self.state.evicted;
        let mut notes = vec![rules.summary()];
        if domains + clients + tunnels > 0 {
            notes.push(format!(
                "evicted so far: {domains} domains, {clients} DGA clients, {tunnels} tunnel windows"
            ));
        }
        let loaded = 2 + u32::from(rules.model.is_some());
        self.rules = rules;
        Ok(LoadReport {
            loaded,
            skipped: Vec::new(),
            notes,
        })
    }

    fn process(&mut self, batch: &Batch) -> Vec<Finding> {
        let mut findings = Vec::new();
        let Some(column) = batch.text(TextField::DnsQuery) else {
            return findings;
        };
        let mut buf = [0u8; MAX_NAME];
        let mut alerts = Vec::new();
        for flow in batch.iter() {
            if flow.kind() != Kind::Dns {
                continue;
            }
            let Some(raw) = column.get_bytes(flow.row() as usize) else {
                continue;
            };
            let Some(full) = normalise(raw, &mut buf) else {
                continue;
            };
            let query = Query {
                institution: flow.institution(),
                src: flow.src_octets(),
                ts: flow.ts(),
                name: Name::split(full),
                qtype: flow.dns_qtype().unwrap_or(0),
                rcode: flow.dns_rcode(),
                bytes: flow.src_bytes().saturating_add(flow.dst_bytes()),
            };
            self.state.observe(&self.rules, &query, &mut alerts);
            for alert in alerts.drain(..) {
                findings.push(self.finding(&flow, alert));
            }
        }
        findings
    }

    fn tick(&mut self, now: Timestamp) -> Vec<Finding> {
        self.state.expire(&self.rules, now);
        Vec::new()
    }

    fn snapshot(&self) -> Vec<u8> {
        self.state.to_bytes()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), ConfigError> {
        self.state = State::from_bytes(state)
            .map_err(|e| ConfigError::new("snapshot", format!("unreadable state: {e}")))?;
        Ok(())
    }
}

impl DnsAnomaly {
    /// The state, for benchmarks: entries per table and approximate bytes.
    pub fn state_size(&self) -> ([usize; 3], usize) {
        (self.state.len(), self.state.heap_bytes())
    }

    fn finding(&self, flow: &kansoku_plugin::Flow<'_>, alert: Alert) -> Finding {
        let window = self.rules.thresholds.window_secs;
        let [ev_domains, ev_clients, ev_tunnels] = self.state.evicted;
        let mut entity = Entity::new(flow.institution(), flow.src_address(), flow.ts());
        entity.proto = flow.proto();
        match alert {
            Alert::WaterTorture {
                domain,
                first_seen,
                queries,
                failures,
                unique,
                resolvers,
                baseline,
                samples,
            } => {
                entity.first_seen = first_seen;
                entity.flows = queries;
                let secs = ((flow.ts() - first_seen) as f64 / 1e6).max(1.0);
                let randomness = mean_randomness(&samples, &domain);
                Finding::new(
                    entity,
                    "water-torture",
                    format!("Random-subdomain attack on {domain}"),
                )
                .category("dos")
                .severity(Severity::High)
                .confidence(if randomness > 0.5 { 85 } else { 70 })
                .evidence("domain", &domain)
                .evidence("unique_subdomains", unique)
                .evidence("queries", queries)
                .evidence("failures", failures)
                .evidence("failure_ratio", format!("{:.2}", ratio(failures, queries)))
                .evidence(
                    "queries_per_sec",
                    format!("{:.1}", f64::from(queries) / secs),
                )
                .evidence("randomness", format!("{randomness:.2}"))
                .evidence("resolvers", resolvers)
                .evidence("baseline_unique", format!("{baseline:.0}"))
                .evidence("sample_names", samples.join(","))
                .evidence("window_secs", window)
                .evidence("evicted_domains", ev_domains)
            }
            Alert::Dga {
                first_seen,
                failed_names,
                failures,
                mean_score,
                samples,
            } => {
                entity.first_seen = first_seen;
                entity.flows = failures;
                Finding::new(
                    entity,
                    "dga-nxdomain",
                    "Client failing to resolve many generated domain names",
                )
                .category("dga")
                .severity(Severity::High)
                .confidence(if mean_score > 0.95 { 85 } else { 70 })
                .evidence("failed_generated_domains", failed_names)
                .evidence("nxdomain_answers", failures)
                .evidence("mean_score", format!("{mean_score:.3}"))
                .evidence("sample_names", samples.join(","))
                .evidence("window_secs", window)
                .evidence("evicted_clients", ev_clients)
            }
            Alert::Tunnel {
                domain,
                first_seen,
                queries,
                unique,
                mean_len,
                mean_entropy,
                unusual_types,
                bytes,
                samples,
            } => {
                entity.first_seen = first_seen;
                entity.flows = queries;
                entity.dst = Some(flow.dst_address());
                let unusual = ratio(unusual_types, queries);
                Finding::new(entity, "dns-tunnel", format!("DNS tunnel through {domain}"))
                    .category("exfiltration")
                    .severity(if unusual > 0.5 {
                        Severity::High
                    } else {
                        Severity::Medium
                    })
                    .confidence(if unusual > 0.5 { 80 } else { 60 })
                    .evidence("domain", &domain)
                    .evidence("unique_names", unique)
                    .evidence("queries", queries)
                    .evidence("mean_subdomain_len", format!("{mean_len:.1}"))
                    .evidence("mean_entropy", format!("{mean_entropy:.2}"))
                    .evidence("txt_null_cname_mx_share", format!("{unusual:.2}"))
                    .evidence("bytes_per_query", bytes / u64::from(queries.max(1)))
                    .evidence("sample_names", samples.join(","))
                    .evidence("window_secs", window)
                    .evidence("evicted_tunnels", ev_tunnels)
            }
        }
    }
}

fn ratio(part: u32, whole: u32) -> f64 {
    f64::from(part) / f64::from(whole.max(1))
}

/// Mean randomness of the sample names' parts below `domain`.
fn mean_randomness(samples: &[String], domain: &str) -> f32 {
    let scores: Vec<f32> = samples
        .iter()
        .map(|s| {
            let sub = s
                .strip_suffix(domain)
                .map_or(s.as_str(), |p| p.trim_end_matches('.'));
            names::Stats::of(sub.as_bytes()).randomness()
        })
        .collect();
    scores.iter().sum::<f32>() / scores.len().max(1) as f32
}

kansoku_plugin::export!(DnsAnomaly);
