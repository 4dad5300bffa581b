//! Triage: detections become alerts, written as JSON lines that read as
//! Suricata EVE `alert` events plus kansoku's own fields.
//!
//! ```json
//! {"timestamp":"2024-05-01T10:00:00.000000+0000","event_type":"alert",
//!  "src_ip":"…","src_port":…,"dest_ip":"…","dest_port":…,"proto":"TCP",
//!  "alert":{"action":"allowed","gid":1,"signature_id":…,"rev":1,
//!           "signature":"…","category":"…","severity":2},
//!  "institution":{"id":"…","name":"…"},"direction":"inbound",
//!  "kansoku":{"plugin":"portscan","plugin_version":"0.1.0","rule_id":"…",
//!             "severity":"medium","urgency":null,"confidence":80,
//!             "evidence":{…},"source":{"input":"conn.log","line":12}}}
//! ```
//!
//! EVE readers (jq filters, SIEM parsers) keep working on `alert.*` and the
//! five-tuple; `kansoku.urgency` is a placeholder that later triage fills.
//! Sensitive text (R3) is never copied from the flow into an alert; only
//! what a plugin was granted and chose to cite reaches `evidence`.

use std::io::{self, Write};
use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::batch::{FlowBatch, NO_INSTITUTION};
use crate::contract::{Severity, Subject};
use crate::flow::{Micros, TextField, proto_name};
use crate::plugins::{Detection, EngineEvent};
use crate::scope::{Direction, Institutions};

/// Generator id of alerts from plugins whose rule ids are not numbers, and
/// of engine alerts: kansoku's own signature space.
pub const KANSOKU_GID: u32 = 1_000_001;

/// A plugin, as an alert names it.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// Instance name.
    pub plugin: &'a str,
    /// Its version.
    pub version: &'a str,
}

/// One alert line.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// Time of the flow (or the entity's last sighting), EVE style.
    pub timestamp: String,
    /// The same time, for storage.
    #[serde(skip)]
    pub ts: Micros,
    /// The sensor's flow id, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<u64>,
    /// Always `alert`.
    pub event_type: &'static str,
    /// Source address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<IpAddr>,
    /// Source port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    /// Destination address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_ip: Option<IpAddr>,
    /// Destination port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    /// Protocol, as EVE spells it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    /// The protocol number, for storage.
    #[serde(skip)]
    pub proto_number: Option<u8>,
    /// Application protocol of the flow, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<String>,
    /// The EVE `alert` object.
    pub alert: AlertBody,
    /// Non-sensitive metadata of the flow, EVE style (`dns`, `tls`,
    /// `http`).
    #[serde(flatten)]
    pub metadata: Map<String, Value>,
    /// Owner of the flow; absent for engine alerts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub institution: Option<InstitutionRef>,
    /// Its index, for storage.
    #[serde(skip)]
    pub institution_index: Option<u16>,
    /// Direction seen from the institution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<&'static str>,
    /// kansoku's fields.
    pub kansoku: KansokuFields,
}

impl Alert {
    /// An alert of `origin`'s rule, not yet placed on a flow or entity.
    fn new(
        origin: Origin<'_>,
        rule_id: &str,
        title: String,
        category: String,
        severity: Severity,
        confidence: u8,
        evidence: Map<String, Value>,
    ) -> Self {
        let (gid, signature_id) = signature_id(origin.plugin, rule_id);
        Self {
            timestamp: String::new(),
            ts: 0,
            flow_id: None,
            event_type: "alert",
            src_ip: None,
            src_port: None,
            dest_ip: None,
            dest_port: None,
            proto: None,
            proto_number: None,
            app_proto: None,
            alert: AlertBody {
                action: "allowed",
                gid,
                signature_id,
                rev: 1,
                signature: title,
                category,
                severity: suricata_priority(severity),
            },
            metadata: Map::new(),
            institution: None,
            institution_index: None,
            direction: None,
            kansoku: KansokuFields {
                plugin: origin.plugin.to_owned(),
                plugin_version: origin.version.to_owned(),
                rule_id: rule_id.to_owned(),
                severity: severity_name(severity),
                urgency: None,
                confidence: confidence.min(100),
                evidence,
                source: None,
                peer_institution: None,
            },
        }
    }
}

impl Alert {
    fn set_time(&mut self, ts: Micros) {
        self.ts = ts;
        self.timestamp = eve_timestamp(ts);
    }

    fn set_proto(&mut self, number: Option<u8>) {
        self.proto_number = number;
        self.proto = number.map(|n| proto_name(n).into_owned());
    }
}

/// EVE's `alert` object.
#[derive(Debug, Clone, Serialize)]
pub struct AlertBody {
    /// Always `allowed`: kansoku watches, it does not block.
    pub action: &'static str,
    /// Generator id: 1 for Suricata-style numeric rule ids.
    pub gid: u32,
    /// Numeric rule id.
    pub signature_id: u32,
    /// Rule revision.
    pub rev: u32,
    /// Title.
    pub signature: String,
    /// Category (Suricata classtype text or the plugin's category).
    pub category: String,
    /// Suricata priority: 1 high … 4 informational.
    pub severity: u8,
}

/// The institution an alert belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct InstitutionRef {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// kansoku's own alert fields.
#[derive(Debug, Clone, Serialize)]
pub struct KansokuFields {
    /// Plugin instance, or `engine`.
    pub plugin: String,
    /// Plugin version.
    pub plugin_version: String,
    /// The plugin's rule id, as it gave it.
    pub rule_id: String,
    /// Severity name.
    pub severity: &'static str,
    /// Filled by triage in a later stage; `null` until then.
    pub urgency: Option<&'static str>,
    /// 0–100.
    pub confidence: u8,
    /// What the plugin cites.
    pub evidence: Map<String, Value>,
    /// Where the flow was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRef>,
    /// Other institution of an internal-to-internal flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_institution: Option<String>,
}

/// Where a flow was read.
#[derive(Debug, Clone, Serialize)]
pub struct SourceRef {
    /// Input name.
    pub input: String,
    /// Line.
    pub line: u64,
}

/// Name of a severity.
pub fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

/// Suricata's priority number for a severity (1 is the most severe).
pub fn suricata_priority(severity: Severity) -> u8 {
    match severity {
        Severity::Critical | Severity::High => 1,
        Severity::Medium => 2,
        Severity::Low => 3,
        Severity::Info => 4,
    }
}

/// EVE's timestamp format, `2024-05-01T10:00:00.123456+0000`.
pub fn eve_timestamp(ts: Micros) -> String {
    match jiff::Timestamp::from_microsecond(ts) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S%.6f+0000").to_string(),
        Err(_) => "1970-01-01T00:00:00.000000+0000".to_owned(),
    }
}

/// The numeric id and generator of a rule: numeric rule ids (Suricata sids)
/// are kept under gid 1; others get a stable id from a hash of plugin and
/// rule, under kansoku's gid.
pub fn signature_id(plugin: &str, rule_id: &str) -> (u32, u32) {
    if let Ok(sid) = rule_id.parse::<u32>() {
        return (1, sid);
    }
    // FNV-1a: stable across runs and versions, unlike std's hasher.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in plugin.bytes().chain([0]).chain(rule_id.bytes()) {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    (KANSOKU_GID, hash % 1_000_000_000)
}

/// Builds alerts; knows the institutions and input names.
#[derive(Debug)]
pub struct Triage<'a> {
    institutions: &'a Institutions,
    inputs: &'a [String],
}

impl<'a> Triage<'a> {
    /// A triage stage for a run over `inputs`.
    pub fn new(institutions: &'a Institutions, inputs: &'a [String]) -> Self {
        Self {
            institutions,
            inputs,
        }
    }

    /// Gives `alert` to institution `index`.
    fn place(&self, alert: &mut Alert, index: u16) {
        alert.institution = self.institution(index);
        alert.institution_index = alert.institution.is_some().then_some(index);
    }

    fn institution(&self, index: u16) -> Option<InstitutionRef> {
        (index != NO_INSTITUTION)
            .then(|| self.institutions.get(index))
            .flatten()
            .map(|i| InstitutionRef {
                id: i.id.clone(),
                name: i.name.clone(),
            })
    }

    /// The alert for a plugin's detection on `batch`.
    pub fn alert(
        &self,
        origin: Origin<'_>,
        detection: &Detection,
        batch: Option<&FlowBatch>,
    ) -> Alert {
        let finding = &detection.finding;
        let evidence = finding
            .evidence
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let mut alert = Alert::new(
            origin,
            &finding.rule_id,
            finding.title.clone(),
            finding.category.clone(),
            finding.severity,
            finding.confidence,
            evidence,
        );
        match (&finding.subject, detection.row, batch) {
            (Subject::Row(_), Some(row), Some(batch)) if row < batch.len() => {
                self.fill_from_row(&mut alert, batch, row);
            }
            (Subject::Entity(entity), _, _) => {
                // Input out of time order can leave the plugin's first
                // sighting after its last; report the span in order.
                let (first, last) = if entity.first_seen <= entity.last_seen {
                    (entity.first_seen, entity.last_seen)
                } else {
                    (entity.last_seen, entity.first_seen)
                };
                alert.set_time(last);
                let src = entity.src.ip();
                let dst = entity.dst.as_ref().map(|a| a.ip());
                alert.src_ip = Some(src);
                alert.dest_ip = dst;
                alert.dest_port = entity.dst_port;
                alert.set_proto((entity.proto != 0).then_some(entity.proto));
                self.place(&mut alert, entity.institution);
                alert
                    .kansoku
                    .evidence
                    .insert("first_seen".into(), Value::String(eve_timestamp(first)));
                let owns = |ip| self.institution_owns(entity.institution, ip);
                alert.direction = Some(
                    match (owns(src), dst.map(owns)) {
                        (true, Some(true)) => Direction::Internal,
                        (true, _) => Direction::Outbound,
                        (false, _) => Direction::Inbound,
                    }
                    .name(),
                );
            }
            // The worker rejects rows outside the batch; nothing to place.
            (Subject::Row(_), _, _) => {}
        }
        alert
    }

    /// Whether `ip` lies in a prefix of institution `index`.
    fn institution_owns(&self, index: u16, ip: IpAddr) -> bool {
        self.institutions
            .get(index)
            .is_some_and(|i| i.prefixes.iter().any(|p| p.contains(&ip)))
    }

    fn fill_from_row(&self, alert: &mut Alert, batch: &FlowBatch, row: usize) {
        alert.set_time(batch.ts[row]);
        alert.flow_id = Some(batch.flow_id[row]).filter(|id| *id != 0);
        alert.src_ip = Some(batch.src(row));
        alert.src_port = Some(batch.src_port[row]);
        alert.dest_ip = Some(batch.dst(row));
        alert.dest_port = Some(batch.dst_port[row]);
        alert.set_proto(Some(batch.proto[row]));
        alert.app_proto = batch.text(row, TextField::Service).map(str::to_owned);
        self.place(alert, batch.institution[row]);
        alert.direction = Some(batch.direction(row).name());
        alert.kansoku.peer_institution =
            self.institution(batch.peer_institution[row]).map(|i| i.id);
        alert.kansoku.source = Some(SourceRef {
            input: self
                .inputs
                .get(usize::from(batch.input[row]))
                .cloned()
                .unwrap_or_default(),
            line: batch.line[row],
        });
        alert.metadata = metadata(batch, row);
    }

    /// The alert for something the engine saw about a plugin (fail-open
    /// quarantine, a flow that crashes a detector).
    pub fn engine_alert(
        &self,
        plugin: &str,
        event: &EngineEvent,
        batch: Option<&FlowBatch>,
        now: Micros,
    ) -> Alert {
        let (rule, title, severity, evidence) = match event {
            EngineEvent::Quarantined {
                failures,
                duration,
                last_trap,
            } => (
                "plugin-quarantined",
                format!("kansoku plugin {plugin} quarantined: flows pass unexamined"),
                Severity::High,
                vec![
                    ("failures", failures.to_string()),
                    ("quarantine_secs", duration.as_secs().to_string()),
                    ("last_trap", last_trap.clone()),
                ],
            ),
            EngineEvent::Released => (
                "plugin-released",
                format!("kansoku plugin {plugin} released from quarantine"),
                Severity::Info,
                vec![],
            ),
            EngineEvent::PoisonFlow { trap, .. } => (
                "plugin-poison-flow",
                format!("flow makes kansoku plugin {plugin} fail; skipped by it"),
                Severity::Medium,
                vec![("trap", trap.to_string())],
            ),
        };
        let evidence = std::iter::once(("plugin".to_owned(), Value::String(plugin.into())))
            .chain(
                evidence
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), Value::String(v))),
            )
            .collect();
        let engine = Origin {
            plugin: "engine",
            version: env!("CARGO_PKG_VERSION"),
        };
        let mut alert = Alert::new(
            engine,
            rule,
            title,
            "Detection engine health".into(),
            severity,
            100,
            evidence,
        );
        alert.set_time(now);
        if let (EngineEvent::PoisonFlow { row, .. }, Some(batch)) = (event, batch)
            && *row < batch.len()
        {
            self.fill_from_row(&mut alert, batch, *row);
        }
        alert
    }
}

/// The flow's non-sensitive application fields, as EVE nests them.
fn metadata(batch: &FlowBatch, row: usize) -> Map<String, Value> {
    let text = |field| batch.text(row, field).map(|s| Value::String(s.to_owned()));
    let object = |pairs: &[(&str, Option<Value>)]| -> Option<Value> {
        let map: Map<String, Value> = pairs
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| ((*k).to_owned(), v)))
            .collect();
        (!map.is_empty()).then_some(Value::Object(map))
    };
    let mut out = Map::new();
    if let Some(query) = text(TextField::DnsQuery) {
        let mut q = Map::new();
        q.insert("rrname".into(), query);
        if batch.dns_qtype[row] != 0 {
            q.insert("rrtype".into(), Value::from(batch.dns_qtype[row]));
        }
        out.insert(
            "dns".into(),
            serde_json::json!({ "query": [Value::Object(q)] }),
        );
    }
    if let Some(tls) = object(&[
        ("sni", text(TextField::TlsSni)),
        ("version", text(TextField::TlsVersion)),
        ("subject", text(TextField::TlsSubject)),
        ("issuerdn", text(TextField::TlsIssuer)),
        (
            "ja3",
            text(TextField::Ja3).map(|h| serde_json::json!({ "hash": h })),
        ),
        (
            "ja3s",
            text(TextField::Ja3s).map(|h| serde_json::json!({ "hash": h })),
        ),
    ]) {
        out.insert("tls".into(), tls);
    }
    let status = batch.http_status[row];
    if let Some(http) = object(&[
        ("hostname", text(TextField::HttpHost)),
        ("url", text(TextField::HttpUri)),
        ("http_user_agent", text(TextField::HttpUserAgent)),
        ("http_method", text(TextField::HttpMethod)),
        ("status", (status != 0).then(|| Value::from(status))),
    ]) {
        out.insert("http".into(), http);
    }
    out
}

/// Writes alerts as JSON lines.
#[derive(Debug)]
pub struct AlertWriter<W: Write> {
    out: W,
    written: u64,
}

impl<W: Write> AlertWriter<W> {
    /// A writer onto `out` (buffer it).
    pub fn new(out: W) -> Self {
        Self { out, written: 0 }
    }

    /// Writes one alert.
    ///
    /// # Errors
    ///
    /// When the output fails.
    pub fn write(&mut self, alert: &Alert) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, alert)?;
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    /// Alerts written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes the output.
    ///
    /// # Errors
    ///
    /// When the output fails.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_rule_ids_are_sids_and_others_hash_stably() {
        assert_eq!(signature_id("signature", "2027865"), (1, 2027865));
        let a = signature_id("portscan", "vertical");
        assert_eq!(a.0, KANSOKU_GID);
        assert_eq!(a, signature_id("portscan", "vertical"));
        assert_ne!(a, signature_id("portscan", "horizontal"));
        assert_ne!(a, signature_id("portscanv", "ertical"));
    }

    #[test]
    fn timestamps_read_like_eve() {
        assert_eq!(
            eve_timestamp(1_714_557_600_123_456),
            "2024-05-01T10:00:00.123456+0000"
        );
        assert_eq!(eve_timestamp(0), "1970-01-01T00:00:00.000000+0000");
    }

    #[test]
    fn severities_map_to_suricata_priorities() {
        assert_eq!(suricata_priority(Severity::Critical), 1);
        assert_eq!(suricata_priority(Severity::Medium), 2);
        assert_eq!(severity_name(Severity::Low), "low");
    }
}
