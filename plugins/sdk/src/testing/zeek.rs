//! Reading real Zeek TSV logs into rows for native plugin tests.
//!
//! The mapping follows the host's Zeek reader (`host/src/ingest/zeek`):
//! `orig_bytes`/`resp_bytes` are payload bytes, `service`, `query`,
//! `server_name`, `host`, `uri`, `method` and `user_agent` become text fields.
//! Only conn, dns, ssl and http logs are understood; it is a test aid, so a
//! malformed line is an error naming `name:line` rather than something to
//! skip.

use std::net::IpAddr;

use crate::Timestamp;
use crate::bindings::kansoku::detector::types::TextField;

/// One log line, owned, in the contract's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct ZeekRow {
    /// Record kind code (0 connection, 1 dns, 2 tls, 3 http).
    pub kind: u8,
    /// Start of the connection or time of the event, in microseconds.
    pub ts: Timestamp,
    /// Zeek's connection uid, to let a test join logs as Zeek does.
    pub uid: String,
    /// Originator address.
    pub src: IpAddr,
    /// Originator port.
    pub src_port: u16,
    /// Responder address.
    pub dst: IpAddr,
    /// Responder port.
    pub dst_port: u16,
    /// IANA protocol number.
    pub proto: u8,
    /// Connection duration in microseconds (conn rows).
    pub duration_us: u64,
    /// Payload bytes from the originator (conn rows).
    pub src_bytes: u64,
    /// Payload bytes from the responder (conn rows).
    pub dst_bytes: u64,
    /// Packets from the originator (conn rows).
    pub src_pkts: u32,
    /// Packets from the responder (conn rows).
    pub dst_pkts: u32,
    /// `orig_ip_bytes + resp_ip_bytes` of a conn row (0 for other logs);
    /// not part of the contract, kept for comparisons with tools that count
    /// IP bytes, such as RITA.
    pub ip_bytes: u64,
    /// Contract connection-state code.
    pub conn_state: u8,
    /// DNS query type (dns rows).
    pub dns_qtype: u16,
    /// DNS response code, when there was an answer (dns rows).
    pub dns_rcode: Option<u16>,
    /// Text fields carried by the row.
    pub text: Vec<(TextField, String)>,
}

/// Reads one Zeek TSV log (`#separator`, `#path` and `#fields` headers).
/// `name` is used in errors.
pub fn read_tsv(name: &str, text: &str) -> Result<Vec<ZeekRow>, String> {
    let mut fields: Vec<String> = Vec::new();
    let mut kind = None;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = || format!("{name}:{}", i + 1);
        if let Some(header) = line.trim_start().strip_prefix('#') {
            let mut parts = header.split('\t');
            match parts.next() {
                Some("path") => {
                    kind = Some(match parts.next() {
                        Some("conn") => 0,
                        Some("dns") => 1,
                        Some("ssl") => 2,
                        Some("http") => 3,
                        other => return Err(format!("{}: unsupported log {other:?}", at())),
                    })
                }
                Some("fields") => fields = parts.map(str::to_owned).collect(),
                _ => {}
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let kind = kind.ok_or_else(|| format!("{}: data before #path", at()))?;
        let row = parse_row(kind, &fields, line).map_err(|e| format!("{}: {e}", at()))?;
        rows.push(row);
    }
    Ok(rows)
}

fn parse_row(kind: u8, fields: &[String], line: &str) -> Result<ZeekRow, String> {
    let mut row = ZeekRow {
        kind,
        ts: 0,
        uid: String::new(),
        src: IpAddr::from([0, 0, 0, 0]),
        src_port: 0,
        dst: IpAddr::from([0, 0, 0, 0]),
        dst_port: 0,
        proto: if kind == 1 { 17 } else { 6 },
        duration_us: 0,
        src_bytes: 0,
        dst_bytes: 0,
        src_pkts: 0,
        dst_pkts: 0,
        ip_bytes: 0,
        conn_state: 0,
        dns_qtype: 0,
        dns_rcode: None,
        text: Vec::new(),
    };
    for (name, value) in fields.iter().zip(line.split('\t')) {
        if value == "-" || value == "(empty)" {
            continue;
        }
        let number = |v: &str| v.parse::<u64>().map_err(|_| format!("field {name}: {v:?}"));
        let seconds = |v: &str| {
            v.parse::<f64>()
                .map(|s| (s * 1e6).round() as i64)
                .map_err(|_| format!("field {name}: {v:?}"))
        };
        let address = |v: &str| {
            v.parse::<IpAddr>()
                .map_err(|_| format!("field {name}: {v:?}"))
        };
        match (kind, name.as_str()) {
            (_, "ts") => row.ts = seconds(value)?,
            (_, "uid") => row.uid = value.to_owned(),
            (_, "id.orig_h") => row.src = address(value)?,
            (_, "id.orig_p") => row.src_port = number(value)? as u16,
            (_, "id.resp_h") => row.dst = address(value)?,
            (_, "id.resp_p") => row.dst_port = number(value)? as u16,
            (_, "proto") => {
                row.proto = match value {
                    "tcp" => 6,
                    "udp" => 17,
                    "icmp" => 1,
                    other => return Err(format!("field proto: {other:?}")),
                }
            }
            (0, "service") => row.text.push((TextField::Service, value.to_owned())),
            (0, "duration") => row.duration_us = seconds(value)?.max(0) as u64,
            (0, "orig_bytes") => row.src_bytes = number(value)?,
            (0, "resp_bytes") => row.dst_bytes = number(value)?,
            (0, "orig_pkts") => row.src_pkts = number(value)? as u32,
            (0, "resp_pkts") => row.dst_pkts = number(value)? as u32,
            (0, "orig_ip_bytes" | "resp_ip_bytes") => row.ip_bytes += number(value)?,
            (0, "conn_state") => row.conn_state = conn_state(value),
            (1, "query") => row.text.push((TextField::DnsQuery, value.to_owned())),
            (1, "qtype") => row.dns_qtype = number(value)? as u16,
            (1, "rcode") => row.dns_rcode = Some(number(value)? as u16),
            (1, "answers") => row.text.push((TextField::DnsAnswers, value.to_owned())),
            (2, "server_name") => row.text.push((TextField::TlsSni, value.to_owned())),
            (2, "version") => row.text.push((TextField::TlsVersion, value.to_owned())),
            (2, "ja3") => row.text.push((TextField::Ja3, value.to_owned())),
            (3, "host") => row.text.push((TextField::HttpHost, value.to_owned())),
            (3, "uri") => row.text.push((TextField::HttpUri, value.to_owned())),
            (3, "method") => row.text.push((TextField::HttpMethod, value.to_owned())),
            (3, "user_agent") => row.text.push((TextField::HttpUserAgent, value.to_owned())),
            _ => {}
        }
    }
    Ok(row)
}

fn conn_state(value: &str) -> u8 {
    const STATES: [&str; 13] = [
        "S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH",
    ];
    STATES
        .iter()
        .position(|s| *s == value)
        .map_or(0, |i| i as u8 + 1)
}

impl super::BatchBuilder {
    /// Adds a row read by [`read_tsv`].
    pub fn zeek(&mut self, row: &ZeekRow) -> &mut Self {
        self.flow(row.src, row.src_port, row.dst, row.dst_port)
            .ts(row.ts)
            .proto(row.proto)
            .kind(row.kind)
            .duration(row.duration_us)
            .bytes(row.src_bytes, row.dst_bytes)
            .pkts(row.src_pkts, row.dst_pkts)
            .conn_state(row.conn_state);
        if row.kind == 1 {
            let i = self.last();
            self.raw.dns_qtype[i] = row.dns_qtype;
            self.raw.dns_rcode[i] = row.dns_rcode.unwrap_or(u16::MAX);
        }
        for (field, value) in &row.text {
            self.text(*field, value);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DNS: &str = "#separator \\x09\n#path\tdns\n\
        #fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tquery\tqtype\trcode\n\
        1521911720.600000\tC1\t10.0.0.1\t5353\t10.0.0.2\t53\tudp\texample.org\t1\t3\n\
        1521911721.000000\tC2\t10.0.0.1\t5354\t10.0.0.2\t53\tudp\t-\t-\t-\n";

    #[test]
    fn dns_rows_become_batch_rows() {
        let rows = read_tsv("dns.log", DNS).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].ts, 1_521_911_720_600_000);
        assert_eq!((rows[0].dns_qtype, rows[0].dns_rcode), (1, Some(3)));
        let mut builder = super::super::BatchBuilder::new();
        for row in &rows {
            builder.zeek(row);
        }
        let batch = builder.build();
        let flow = batch.get(0).unwrap();
        assert_eq!(flow.dns_query(), Some("example.org"));
        assert_eq!(flow.dns_rcode(), Some(3));
        assert_eq!(batch.get(1).unwrap().dns_query(), None);
    }

    #[test]
    fn a_bad_value_names_its_line() {
        let text = DNS.replace("5354", "port");
        assert_eq!(
            read_tsv("dns.log", &text).unwrap_err(),
            "dns.log:5: field id.orig_p: \"port\""
        );
    }
}
