//! Suricata EVE JSON: one event per line.
//!
//! Events of type `flow`, `dns`, `tls`, `http`, `smtp`, `fileinfo` and
//! `alert` become records; every other type (`anomaly`, `stats`, `netflow`…)
//! is skipped as [`SkipReason::IgnoredEventType`].
//!
//! **R3:** events are read into typed structs that have no field for
//! `payload`, `payload_printable`, `packet`, `packet_info`, HTTP bodies or any
//! other content, so serde skips those while parsing: payload is dropped
//! here and never reaches a record, a log or an error message.
//!
//! Flow events carry no Zeek connection state; [`conn_state`] derives a
//! best-effort one from the TCP flags each side sent.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::error::{LineError, LineErrorKind};
use super::time;
use super::{Parsed, SkipReason};
use crate::flow::{ConnState, FlowRecord, Kind, TextField, proto_number};

/// Parses Suricata EVE lines; it keeps no state between lines.
#[derive(Debug, Clone, Default)]
pub(crate) struct EveParser;

impl EveParser {
    pub(crate) fn parse<'a>(&mut self, line: &'a [u8]) -> Result<Parsed<'a>, LineError> {
        let text = std::str::from_utf8(line).map_err(|_| LineError::invalid_utf8(None))?;
        let event: Event<'a> = match serde_json::from_str(text) {
            Ok(event) => event,
            Err(error) => {
                // An event type kansoku skips may use our field names with
                // other shapes; that is not an error.
                if let Ok(Head {
                    event_type: Some(Lenient(Some(event_type))),
                }) = serde_json::from_str::<Head<'_>>(text)
                    && kind_of(&event_type).is_none()
                {
                    return Ok(Parsed::Skip(SkipReason::IgnoredEventType));
                }
                return Err(LineError::from_json(
                    &error,
                    None,
                    LineErrorKind::InvalidJson,
                ));
            }
        };
        let Some(event_type) = &event.event_type else {
            return Err(LineError::missing("event_type"));
        };
        match kind_of(event_type) {
            Some(kind) => event.into_record(kind).map(Parsed::Record),
            None => Ok(Parsed::Skip(SkipReason::IgnoredEventType)),
        }
    }
}

fn kind_of(event_type: &str) -> Option<Kind> {
    Some(match event_type {
        "flow" => Kind::Connection,
        "dns" => Kind::Dns,
        "tls" => Kind::Tls,
        "http" => Kind::Http,
        "smtp" => Kind::Smtp,
        "fileinfo" => Kind::File,
        "alert" => Kind::Alert,
        _ => return None,
    })
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    event_type: Option<Lenient<'a>>,
}

/// The parts of an EVE event kansoku reads. Everything else, payload
/// included, is skipped by serde without being stored.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    flow_id: Option<u64>,
    #[serde(borrow)]
    event_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    src_ip: Option<Cow<'a, str>>,
    #[serde(borrow)]
    dest_ip: Option<Cow<'a, str>>,
    src_port: Option<u16>,
    dest_port: Option<u16>,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    #[serde(borrow)]
    proto: Option<Cow<'a, str>>,
    #[serde(borrow)]
    app_proto: Option<Lenient<'a>>,
    #[serde(borrow)]
    flow: Option<Flow<'a>>,
    #[serde(borrow)]
    tcp: Option<Tcp<'a>>,
    #[serde(borrow)]
    dns: Option<Dns<'a>>,
    #[serde(borrow)]
    tls: Option<Tls<'a>>,
    #[serde(borrow)]
    http: Option<Http<'a>>,
    #[serde(borrow)]
    smtp: Option<Smtp<'a>>,
    #[serde(borrow)]
    email: Option<Email<'a>>,
    #[serde(borrow)]
    fileinfo: Option<FileInfo<'a>>,
    #[serde(borrow)]
    alert: Option<Alert<'a>>,
}

#[derive(Deserialize)]
struct Flow<'a> {
    #[serde(borrow)]
    start: Option<Cow<'a, str>>,
    #[serde(borrow)]
    end: Option<Cow<'a, str>>,
    pkts_toserver: Option<u64>,
    pkts_toclient: Option<u64>,
    bytes_toserver: Option<u64>,
    bytes_toclient: Option<u64>,
}

#[derive(Deserialize)]
struct Tcp<'a> {
    #[serde(borrow)]
    tcp_flags_ts: Option<Lenient<'a>>,
    #[serde(borrow)]
    tcp_flags_tc: Option<Lenient<'a>>,
}

#[derive(Deserialize)]
struct Dns<'a> {
    #[serde(borrow)]
    rrname: Option<Lenient<'a>>,
    #[serde(borrow)]
    rrtype: Option<Lenient<'a>>,
    #[serde(borrow)]
    rcode: Option<Lenient<'a>>,
    /// EVE dns v1: one answer per event.
    #[serde(borrow)]
    rdata: Option<Lenient<'a>>,
    /// EVE dns v2 (`detailed`) and v3.
    #[serde(borrow)]
    answers: Option<Vec<Answer<'a>>>,
    /// EVE dns v2 (`grouped`).
    #[serde(borrow)]
    grouped: Option<Grouped<'a>>,
    /// EVE dns v3 (Suricata 8).
    #[serde(borrow)]
    queries: Option<Vec<Query<'a>>>,
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow)]
    rdata: Option<Lenient<'a>>,
}

#[derive(Deserialize)]
struct Query<'a> {
    #[serde(borrow)]
    rrname: Option<Lenient<'a>>,
    #[serde(borrow)]
    rrtype: Option<Lenient<'a>>,
}

#[derive(Deserialize)]
struct Tls<'a> {
    #[serde(borrow)]
    sni: Option<Lenient<'a>>,
    #[serde(borrow)]
    version: Option<Lenient<'a>>,
    #[serde(borrow)]
    subject: Option<Lenient<'a>>,
    #[serde(borrow)]
    issuerdn: Option<Lenient<'a>>,
    #[serde(borrow)]
    ja3: Option<Ja3<'a>>,
    #[serde(borrow)]
    ja3s: Option<Ja3<'a>>,
}

#[derive(Deserialize)]
struct Ja3<'a> {
    #[serde(borrow)]
    hash: Option<Lenient<'a>>,
}

#[derive(Deserialize)]
struct Http<'a> {
    #[serde(borrow)]
    hostname: Option<Lenient<'a>>,
    #[serde(borrow)]
    url: Option<Lenient<'a>>,
    #[serde(borrow)]
    http_user_agent: Option<Lenient<'a>>,
    #[serde(borrow)]
    http_method: Option<Lenient<'a>>,
    status: Option<u16>,
}

#[derive(Deserialize)]
struct Smtp<'a> {
    #[serde(borrow)]
    mail_from: Option<Lenient<'a>>,
    #[serde(borrow)]
    rcpt_to: Option<Vec<Lenient<'a>>>,
}

#[derive(Deserialize)]
struct Email<'a> {
    #[serde(borrow)]
    attachment: Option<Vec<Lenient<'a>>>,
}

#[derive(Deserialize)]
struct FileInfo<'a> {
    #[serde(borrow)]
    filename: Option<Lenient<'a>>,
    #[serde(borrow)]
    md5: Option<Lenient<'a>>,
    #[serde(borrow)]
    sha1: Option<Lenient<'a>>,
    #[serde(borrow)]
    sha256: Option<Lenient<'a>>,
}

#[derive(Deserialize)]
struct Alert<'a> {
    #[serde(borrow)]
    signature: Option<Lenient<'a>>,
}

impl<'a> Event<'a> {
    fn into_record(self, kind: Kind) -> Result<FlowRecord<'a>, LineError> {
        let flow_start = self.flow.as_ref().and_then(|f| f.start.as_deref());
        let (ts_field, ts) = match (kind, flow_start) {
            (Kind::Connection, Some(start)) => ("flow.start", Some(start)),
            _ => ("timestamp", self.timestamp.as_deref()),
        };
        let ts = ts.ok_or_else(|| LineError::missing(ts_field))?;
        let ts = time::parse_datetime(ts).ok_or_else(|| LineError::bad_timestamp(ts_field))?;
        let src = address("src_ip", self.src_ip.as_deref())?;
        let dst = address("dest_ip", self.dest_ip.as_deref())?;
        let mut r = FlowRecord::new(ts, src, dst);
        r.kind = kind;
        // ICMP type and code go where the ports would, as in Zeek.
        r.src_port = self.src_port.or(self.icmp_type.map(u16::from)).unwrap_or(0);
        r.dst_port = self
            .dest_port
            .or(self.icmp_code.map(u16::from))
            .unwrap_or(0);
        r.proto = self.proto.as_deref().and_then(proto_number).unwrap_or(0);
        r.flow_id = self.flow_id.unwrap_or(0);
        match kind {
            Kind::Connection => {
                if let Some(flow) = &self.flow {
                    counters(&mut r, flow);
                    if let Some(end) = &flow.end {
                        let end = time::parse_datetime(end)
                            .ok_or_else(|| LineError::bad_timestamp("flow.end"))?;
                        r.duration = u64::try_from(end - ts).unwrap_or(0);
                    }
                }
                if r.proto == 6
                    && let Some(tcp) = &self.tcp
                {
                    r.conn_state = conn_state(text(&tcp.tcp_flags_ts), text(&tcp.tcp_flags_tc));
                }
                // `failed`: Suricata tried and could not tell.
                let app = self.app_proto.and_then(|l| l.0);
                if let Some(app) = app.filter(|app| app != "failed") {
                    r.text.set(TextField::Service, app);
                }
            }
            Kind::Alert => {
                if let Some(flow) = &self.flow {
                    counters(&mut r, flow);
                }
                let alert = self.alert.ok_or_else(|| LineError::missing("alert"))?;
                set(&mut r, TextField::AlertSignature, alert.signature);
            }
            Kind::Dns => dns(&mut r, self.dns.ok_or_else(|| LineError::missing("dns"))?),
            Kind::Tls => {
                let tls = self.tls.ok_or_else(|| LineError::missing("tls"))?;
                set(&mut r, TextField::TlsSni, tls.sni);
                set(&mut r, TextField::TlsVersion, tls.version);
                set(&mut r, TextField::TlsSubject, tls.subject);
                set(&mut r, TextField::TlsIssuer, tls.issuerdn);
                set(&mut r, TextField::Ja3, tls.ja3.and_then(|j| j.hash));
                set(&mut r, TextField::Ja3s, tls.ja3s.and_then(|j| j.hash));
            }
            Kind::Http => {
                let http = self.http.ok_or_else(|| LineError::missing("http"))?;
                set(&mut r, TextField::HttpHost, http.hostname);
                set(&mut r, TextField::HttpUri, http.url);
                set(&mut r, TextField::HttpUserAgent, http.http_user_agent);
                set(&mut r, TextField::HttpMethod, http.http_method);
                r.http_status = http.status.unwrap_or(0);
            }
            Kind::Smtp => {
                let smtp = self.smtp.ok_or_else(|| LineError::missing("smtp"))?;
                if let Some(from) = smtp.mail_from.and_then(|l| l.0) {
                    r.text.set(TextField::MailFrom, strip_angles(from));
                }
                let rcpt = smtp.rcpt_to.into_iter().flatten().filter_map(|l| l.0);
                r.text.set(TextField::MailTo, join(rcpt.map(strip_angles)));
                let attachments = self.email.and_then(|e| e.attachment);
                let names = attachments.into_iter().flatten().filter_map(|l| l.0);
                r.text.set(TextField::FileName, join(names));
            }
            Kind::File => {
                let file = self
                    .fileinfo
                    .ok_or_else(|| LineError::missing("fileinfo"))?;
                set(&mut r, TextField::FileName, file.filename);
                set(&mut r, TextField::FileMd5, file.md5);
                set(&mut r, TextField::FileSha1, file.sha1);
                set(&mut r, TextField::FileSha256, file.sha256);
            }
        }
        Ok(r)
    }
}

fn address(field: &'static str, value: Option<&str>) -> Result<IpAddr, LineError> {
    value
        .ok_or_else(|| LineError::missing(field))?
        .parse()
        .map_err(|_| LineError::bad_address(field))
}

/// EVE counts IP bytes per direction; Zeek's conn.log counts payload bytes.
/// The difference is the sensor's, and is kept.
fn counters(r: &mut FlowRecord<'_>, flow: &Flow<'_>) {
    r.src_bytes = flow.bytes_toserver.unwrap_or(0);
    r.dst_bytes = flow.bytes_toclient.unwrap_or(0);
    r.src_pkts = saturate(flow.pkts_toserver.unwrap_or(0));
    r.dst_pkts = saturate(flow.pkts_toclient.unwrap_or(0));
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn dns<'a>(r: &mut FlowRecord<'a>, dns: Dns<'a>) {
    let query = dns.queries.and_then(|q| q.into_iter().next());
    let (rrname, rrtype) = match query {
        Some(q) if dns.rrname.is_none() => (q.rrname, q.rrtype),
        _ => (dns.rrname, dns.rrtype),
    };
    r.dns_qtype = text(&rrtype).map_or(0, rrtype_number);
    r.dns_rcode = text(&dns.rcode).and_then(rcode_number);
    set(r, TextField::DnsQuery, rrname);
    let answers: Cow<'a, str> = if let Some(answers) = dns.answers {
        join(
            answers
                .into_iter()
                .filter_map(|a| a.rdata.and_then(|l| l.0)),
        )
    } else if let Some(grouped) = dns.grouped {
        join(grouped.0.into_iter())
    } else {
        dns.rdata.and_then(|l| l.0).unwrap_or_default()
    };
    r.text.set(TextField::DnsAnswers, answers);
}

/// DNS type names as Suricata writes them, to their numbers.
fn rrtype_number(name: &str) -> u16 {
    const TYPES: &[(&str, u16)] = &[
        ("A", 1),
        ("NS", 2),
        ("CNAME", 5),
        ("SOA", 6),
        ("NULL", 10),
        ("WKS", 11),
        ("PTR", 12),
        ("HINFO", 13),
        ("MX", 15),
        ("TXT", 16),
        ("RP", 17),
        ("AFSDB", 18),
        ("SIG", 24),
        ("KEY", 25),
        ("AAAA", 28),
        ("LOC", 29),
        ("SRV", 33),
        ("NAPTR", 35),
        ("DNAME", 39),
        ("OPT", 41),
        ("DS", 43),
        ("SSHFP", 44),
        ("RRSIG", 46),
        ("NSEC", 47),
        ("DNSKEY", 48),
        ("NSEC3", 50),
        ("TLSA", 52),
        ("SVCB", 64),
        ("HTTPS", 65),
        ("IXFR", 251),
        ("AXFR", 252),
        ("ANY", 255),
        ("CAA", 257),
    ];
    TYPES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, number)| number)
        // Unknown types are written as `TYPE123` or as the number.
        .or_else(|| name.strip_prefix("TYPE").unwrap_or(name).parse().ok())
        .unwrap_or(0)
}

/// DNS response code names to their numbers (RFC 1035, 2136).
fn rcode_number(name: &str) -> Option<u16> {
    const RCODES: [&str; 11] = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
        "NXRRSET", "NOTAUTH", "NOTZONE",
    ];
    RCODES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name))
        .and_then(|i| u16::try_from(i).ok())
        .or_else(|| name.parse().ok())
}

/// A best-effort Zeek connection state from the TCP flags each side sent
/// (`tcp_flags_ts` from the originator, `tcp_flags_tc` from the responder):
///
/// | originator sent | responder sent | state |
/// |---|---|---|
/// | SYN | nothing | S0 (RSTOS0 if it also reset, SH if it also sent FIN) |
/// | SYN | RST, no SYN-ACK | REJ |
/// | SYN | SYN-ACK | established: RSTO / RSTR if a side reset, SF if both sent FIN, S2 / S3 if only the originator / responder did, else S1 |
/// | no SYN | SYN-ACK | RSTRH if the responder reset, SHR if it sent FIN, else OTH |
/// | anything else (mid-stream) | | OTH |
///
/// Without flags the state is `Unknown`.
fn conn_state(originator: Option<&str>, responder: Option<&str>) -> ConnState {
    const FIN: u8 = 0x01;
    const SYN: u8 = 0x02;
    const RST: u8 = 0x04;
    const ACK: u8 = 0x10;
    let (Some(orig), Some(resp)) = (originator, responder) else {
        return ConnState::Unknown;
    };
    let (Ok(orig), Ok(resp)) = (u8::from_str_radix(orig, 16), u8::from_str_radix(resp, 16)) else {
        return ConnState::Unknown;
    };
    let has = |flags: u8, bit: u8| flags & bit != 0;
    let syn_ack = has(resp, SYN) && has(resp, ACK);
    match (has(orig, SYN), syn_ack) {
        (true, true) if has(orig, RST) => ConnState::RSTO,
        (true, true) if has(resp, RST) => ConnState::RSTR,
        (true, true) => match (has(orig, FIN), has(resp, FIN)) {
            (true, true) => ConnState::SF,
            (true, false) => ConnState::S2,
            (false, true) => ConnState::S3,
            (false, false) => ConnState::S1,
        },
        (true, false) if resp == 0 && has(orig, RST) => ConnState::RSTOS0,
        (true, false) if resp == 0 && has(orig, FIN) => ConnState::SH,
        (true, false) if resp == 0 => ConnState::S0,
        (true, false) if has(resp, RST) => ConnState::REJ,
        (false, true) if has(resp, RST) => ConnState::RSTRH,
        (false, true) if has(resp, FIN) => ConnState::SHR,
        _ => ConnState::OTH,
    }
}

fn text<'v>(value: &'v Option<Lenient<'_>>) -> Option<&'v str> {
    value.as_ref().and_then(|l| l.0.as_deref())
}

fn set<'a>(r: &mut FlowRecord<'a>, field: TextField, value: Option<Lenient<'a>>) {
    if let Some(value) = value.and_then(|l| l.0) {
        r.text.set(field, value);
    }
}

/// Joins with `,`; a single value stays borrowed.
fn join<'a>(mut values: impl Iterator<Item = Cow<'a, str>>) -> Cow<'a, str> {
    let Some(first) = values.next() else {
        return Cow::Borrowed("");
    };
    values.fold(first, |joined, value| {
        let mut s = joined.into_owned();
        s.push(',');
        s.push_str(&value);
        Cow::Owned(s)
    })
}

/// Suricata logs SMTP addresses as given in the command (`<a@b>`); Zeek
/// logs them bare. Records carry them bare.
fn strip_angles(address: Cow<'_, str>) -> Cow<'_, str> {
    fn bare(s: &str) -> &str {
        let s = s.trim();
        s.strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .unwrap_or(s)
    }
    match address {
        Cow::Borrowed(s) => Cow::Borrowed(bare(s)),
        Cow::Owned(s) if bare(&s).len() == s.len() => Cow::Owned(s),
        Cow::Owned(s) => Cow::Owned(bare(&s).to_owned()),
    }
}

/// A string, or `None` for a value of any other type. Fields that differ in
/// shape across Suricata versions (`rdata`, `grouped`) are read with this
/// so a new shape is skipped rather than failing the event.
struct Lenient<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Lenient<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LenientVisitor)
    }
}

struct LenientVisitor;

impl<'de> Visitor<'de> for LenientVisitor {
    type Value = Lenient<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Lenient(Some(Cow::Borrowed(v))))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Lenient(Some(Cow::Owned(v.to_owned()))))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Lenient(Some(Cow::Owned(v))))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Lenient(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Lenient(None))
    }
}

/// EVE dns v2 `grouped`: answers by type (`{"A": ["192.0.2.1"], …}`), kept
/// in order; answers that are objects (SOA, SRV) are skipped.
struct Grouped<'a>(Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Grouped<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(GroupedVisitor)
    }
}

struct GroupedVisitor;

impl<'de> Visitor<'de> for GroupedVisitor {
    type Value = Grouped<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DNS answers grouped by type")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut answers = Vec::new();
        while let Some((IgnoredAny, group)) = map.next_entry::<IgnoredAny, Vec<Lenient<'de>>>()? {
            answers.extend(group.into_iter().filter_map(|l| l.0));
        }
        Ok(Grouped(answers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Format;
    use crate::ingest::fixtures::{parse_fixture, parse_text};

    const ALERT: &str = r#"{"timestamp":"2021-06-06T15:59:46.457984+0200","flow_id":1374195536821504,"pcap_cnt":313,"event_type":"alert","src_ip":"78.36.196.213","src_port":51698,"dest_ip":"192.168.1.129","dest_port":445,"proto":"TCP","alert":{"action":"allowed","gid":1,"signature_id":2403388,"rev":66418,"signature":"ET CINS Active Threat Intelligence Poor Reputation IP group 89","category":"Misc Attack","severity":2},"flow":{"pkts_toserver":1,"pkts_toclient":0,"bytes_toserver":60,"bytes_toclient":0,"start":"2021-06-06T15:59:46.457984+0200"},"host":"stratosphere.org"}"#;

    #[test]
    fn the_eve_sample_parses_without_errors_and_counts_every_event_type() {
        let summary = parse_fixture(Format::Auto, "eve/test6-head1500.json.gz");
        assert_eq!(summary.errors, vec![]);
        assert_eq!(summary.count(Kind::Alert), 686);
        assert_eq!(summary.count(Kind::Dns), 644);
        assert_eq!(summary.count(Kind::Connection), 155);
        assert_eq!(summary.count(Kind::Http), 9);
        assert_eq!(summary.count(Kind::File), 2);
        assert_eq!(summary.count(Kind::Tls), 1);
        assert_eq!(summary.skips("ignored_event_type"), 3);
        assert_eq!(summary.records.len() + 3, 1500);

        let tls = summary
            .records
            .iter()
            .find(|r| r.kind == Kind::Tls)
            .expect("tls");
        assert_eq!(tls.text.get(TextField::TlsSni), Some("www.myedimax.com"));
        assert_eq!(tls.text.get(TextField::TlsVersion), Some("TLS 1.1"));
        assert_eq!(
            tls.text.get(TextField::Ja3),
            Some("b7202231ff2db28363c109cedc6d1642")
        );
        assert_eq!(
            tls.text.get(TextField::Ja3s),
            Some("ad90cab724fafab2660fbf61673c91a9")
        );
        assert_eq!(
            tls.text.get(TextField::TlsIssuer),
            Some("C=BE, O=GlobalSign nv-sa, CN=AlphaSSL CA - SHA256 - G2")
        );
    }

    #[test]
    fn an_alert_maps_addresses_signature_and_flow_counters() {
        let summary = parse_text(Format::Eve, "eve.json", ALERT);
        let [r] = summary.records.as_slice() else {
            panic!("one record expected: {summary:?}");
        };
        // 15:59:46.457984 at +02:00 is 13:59:46.457984 UTC.
        assert_eq!(r.ts, 1_622_987_986_457_984);
        assert_eq!(r.kind, Kind::Alert);
        assert_eq!((r.src_port, r.dst_port, r.proto), (51698, 445, 6));
        assert_eq!((r.src_bytes, r.src_pkts, r.dst_pkts), (60, 1, 0));
        assert_eq!(r.flow_id, 1_374_195_536_821_504);
        assert_eq!(
            r.text.get(TextField::AlertSignature),
            Some("ET CINS Active Threat Intelligence Poor Reputation IP group 89")
        );
    }

    #[test]
    fn r3_payload_fields_are_dropped_at_parse_time() {
        let secret = "PAYLOAD-SECRET-7f3a";
        let with_payload = ALERT.replace(
            r#""host":"stratosphere.org""#,
            &format!(
                r#""payload":"{secret}-b64","payload_printable":"{secret}-printable","packet":"{secret}-packet","payload_base64":"{secret}","packet_info":{{"linktype":1}},"stream":0,"http":{{"url":"/","http_request_body":"{secret}","http_response_body_printable":"{secret}"}},"host":"stratosphere.org""#
            ),
        );
        let summary = parse_text(Format::Eve, "eve.json", &with_payload);
        assert_eq!(summary.errors, vec![]);
        assert_eq!(summary.records.len(), 1);
        let shown = format!("{:?}", summary.records);
        assert!(
            !shown.contains(secret),
            "payload reached the record: {shown}"
        );

        // Nor does it reach an error message when the same line is broken.
        let broken =
            with_payload.replace(r#""src_port":51698"#, r#""src_port":"PAYLOAD-SECRET-7f3a""#);
        let summary = parse_text(Format::Eve, "eve.json", &broken);
        let [(1, error)] = summary.errors.as_slice() else {
            panic!("one error expected: {summary:?}");
        };
        assert!(!error.to_string().contains(secret), "{error}");
        assert_eq!(
            error.to_string(),
            "invalid JSON: expected u16 at column 167"
        );
    }

    #[test]
    fn flow_events_use_the_flow_start_and_derive_the_connection_state() {
        let line = r#"{"timestamp":"2021-06-06T15:57:37.272281+0200","flow_id":2232403389523415,"event_type":"flow","src_ip":"91.238.203.56","src_port":48938,"dest_ip":"192.168.1.129","dest_port":445,"proto":"TCP","app_proto":"failed","flow":{"pkts_toserver":2,"pkts_toclient":2,"bytes_toserver":120,"bytes_toclient":120,"start":"2021-06-06T17:34:31.140759+0200","end":"2021-06-06T17:34:31.141012+0200","age":0,"state":"closed","reason":"timeout","alerted":false},"tcp":{"tcp_flags":"16","tcp_flags_ts":"02","tcp_flags_tc":"14","syn":true,"rst":true,"ack":true,"state":"closed"},"host":"stratosphere.org"}"#;
        let summary = parse_text(Format::Eve, "eve.json", line);
        let [r] = summary.records.as_slice() else {
            panic!("one record expected: {summary:?}");
        };
        assert_eq!(r.ts, 1_622_993_671_140_759);
        assert_eq!(r.duration, 253);
        assert_eq!(r.conn_state, ConnState::REJ);
        assert_eq!(
            (r.src_bytes, r.dst_bytes, r.src_pkts, r.dst_pkts),
            (120, 120, 2, 2)
        );
        assert_eq!(r.text.get(TextField::Service), None);
    }

    #[test]
    fn connection_states_follow_the_documented_heuristic() {
        let cases = [
            ("02", "00", ConnState::S0),
            ("06", "00", ConnState::RSTOS0),
            ("03", "00", ConnState::SH),
            ("02", "14", ConnState::REJ),
            ("1b", "1b", ConnState::SF),
            ("1b", "12", ConnState::S2),
            ("12", "13", ConnState::S3),
            ("12", "12", ConnState::S1),
            ("16", "12", ConnState::RSTO),
            ("12", "16", ConnState::RSTR),
            ("10", "16", ConnState::RSTRH),
            ("10", "13", ConnState::SHR),
            ("18", "18", ConnState::OTH),
        ];
        for (orig, resp, state) in cases {
            assert_eq!(conn_state(Some(orig), Some(resp)), state, "{orig} {resp}");
        }
        assert_eq!(conn_state(None, Some("12")), ConnState::Unknown);
        assert_eq!(conn_state(Some("zz"), Some("12")), ConnState::Unknown);
    }

    #[test]
    fn dns_v1_v2_and_v3_events_map_query_type_rcode_and_answers() {
        let v1_query = r#"{"timestamp":"2021-06-06T16:26:27.431769+0200","flow_id":1,"event_type":"dns","src_ip":"192.168.1.129","src_port":35790,"dest_ip":"192.168.1.1","dest_port":53,"proto":"UDP","dns":{"type":"query","id":2,"rrname":"www.google.com","rrtype":"A","tx_id":0}}"#;
        let v1_answer = r#"{"timestamp":"2021-06-06T16:26:27.431769+0200","event_type":"dns","src_ip":"192.168.1.1","dest_ip":"192.168.1.129","proto":"UDP","dns":{"type":"answer","id":2,"rcode":"NXDOMAIN","rrname":"x.example","rrtype":"AAAA","ttl":5,"rdata":"2001:db8::1"}}"#;
        let v2 = r#"{"timestamp":"2021-06-06T16:26:27.442512+0200","event_type":"dns","src_ip":"192.168.1.129","dest_ip":"192.168.1.1","proto":"UDP","dns":{"version":2,"type":"answer","rrname":"www.google.com","rrtype":"MX","rcode":"NOERROR","answers":[{"rrname":"a","rrtype":"A","rdata":"172.217.23.196"},{"rrname":"b","rrtype":"SOA","soa":{"mname":"ns"}},{"rdata":"172.217.23.197"}],"grouped":{"A":["ignored"]}}}"#;
        let grouped = r#"{"timestamp":"2021-06-06T16:26:27Z","event_type":"dns","src_ip":"192.168.1.129","dest_ip":"192.168.1.1","dns":{"version":2,"type":"answer","rrname":"q","rrtype":"TYPE99","rcode":"REFUSED","grouped":{"A":["192.0.2.1","192.0.2.2"],"SOA":[{"mname":"ns"}],"TXT":["t"]}}}"#;
        let v3 = r#"{"timestamp":"2021-06-06T16:26:27Z","event_type":"dns","src_ip":"192.168.1.129","dest_ip":"192.168.1.1","dns":{"version":3,"type":"response","queries":[{"rrname":"v3.example","rrtype":"HTTPS"}],"rcode":"SERVFAIL"}}"#;
        let text = [v1_query, v1_answer, v2, grouped, v3].join("\n");
        let summary = parse_text(Format::Eve, "eve.json", &text);
        assert_eq!(summary.errors, vec![]);
        let got: Vec<_> = summary
            .records
            .iter()
            .map(|r| {
                (
                    r.text.get(TextField::DnsQuery),
                    r.dns_qtype,
                    r.dns_rcode,
                    r.text.get(TextField::DnsAnswers),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (Some("www.google.com"), 1, None, None),
                (Some("x.example"), 28, Some(3), Some("2001:db8::1")),
                (
                    Some("www.google.com"),
                    15,
                    Some(0),
                    Some("172.217.23.196,172.217.23.197")
                ),
                (Some("q"), 99, Some(5), Some("192.0.2.1,192.0.2.2,t")),
                (Some("v3.example"), 65, Some(2), None),
            ]
        );
    }

    #[test]
    fn smtp_and_fileinfo_events_fill_the_sensitive_fields() {
        let smtp = r#"{"timestamp":"2021-06-06T16:26:27Z","event_type":"smtp","src_ip":"10.0.0.5","src_port":40000,"dest_ip":"192.0.2.25","dest_port":25,"proto":"TCP","smtp":{"helo":"x","mail_from":"<alice@example.org>","rcpt_to":["<bob@example.org>","carol@example.org"]},"email":{"status":"PARSE_DONE","from":"Alice","attachment":["invoice.pdf.exe","readme.txt"]}}"#;
        let file = r#"{"timestamp":"2021-06-07T09:25:25.523057+0200","event_type":"fileinfo","src_ip":"192.168.1.129","dest_ip":"162.142.125.53","proto":"TCP","fileinfo":{"filename":"/x.bin","md5":"d41d8cd98f00b204e9800998ecf8427e","sha256":"e3b0","size":0}}"#;
        let summary = parse_text(Format::Eve, "eve.json", &format!("{smtp}\n{file}\n"));
        assert_eq!(summary.errors, vec![]);
        let [smtp, file] = summary.records.as_slice() else {
            panic!("two records expected: {summary:?}");
        };
        assert_eq!(smtp.kind, Kind::Smtp);
        assert_eq!(
            smtp.text.get(TextField::MailFrom),
            Some("alice@example.org")
        );
        assert_eq!(
            smtp.text.get(TextField::MailTo),
            Some("bob@example.org,carol@example.org")
        );
        assert_eq!(
            smtp.text.get(TextField::FileName),
            Some("invoice.pdf.exe,readme.txt")
        );
        assert_eq!(file.kind, Kind::File);
        assert_eq!(file.text.get(TextField::FileName), Some("/x.bin"));
        assert_eq!(
            file.text.get(TextField::FileMd5),
            Some("d41d8cd98f00b204e9800998ecf8427e")
        );
        assert_eq!(file.text.get(TextField::FileSha1), None);
    }

    #[test]
    fn unknown_event_types_are_skipped_and_broken_events_are_errors() {
        let lines = [
            ALERT.to_owned(),
            r#"{"timestamp":"2021-06-07T12:37:29Z","event_type":"stats","stats":{"uptime":1}}"#
                .to_owned(),
            // An ignored type may reuse our names with other shapes.
            r#"{"timestamp":"x","event_type":"netflow","flow":"not an object","src_port":"x"}"#
                .to_owned(),
            ALERT.replace("78.36.196.213", "78.36.196"),
            ALERT.replace(r#""event_type":"alert","#, ""),
            ALERT.replace("2021-06-06T15:59:46.457984+0200", "yesterday"),
            ALERT.replace(r#""dest_ip":"192.168.1.129","#, ""),
            ALERT[..100].to_owned(),
            ALERT.to_owned(),
        ];
        let summary = parse_text(Format::Eve, "eve.json", &lines.join("\n"));
        assert_eq!(summary.records.len(), 2);
        assert_eq!(summary.skips("ignored_event_type"), 2);
        assert_eq!(
            summary.error_lines(),
            vec![
                (4, "bad_address"),
                (5, "missing_field"),
                (6, "bad_timestamp"),
                (7, "missing_field"),
                (8, "invalid_json"),
            ]
        );
        let shown: Vec<String> = summary.errors.iter().map(|(_, e)| e.to_string()).collect();
        assert_eq!(shown[0], "field src_ip: not an IP address");
        assert_eq!(shown[1], "field event_type: missing or unset");
        assert_eq!(shown[2], "field timestamp: not a timestamp");
        assert_eq!(shown[3], "field dest_ip: missing or unset");
    }
}
