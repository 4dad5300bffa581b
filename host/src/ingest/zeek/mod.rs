//! Zeek logs, as TSV ([`tsv`]) or JSON lines ([`json`]).
//!
//! Both formats name the same fields, so the mapping from a Zeek field to a
//! [`FlowRecord`] field lives here once: [`field`] says which fields of which
//! log kansoku uses and where they go, and [`Builder`] converts their values.
//! The logs mapped are conn, dns, ssl, http, smtp and files; the lines of any
//! other log (weird, x509, notice…) are skipped as
//! [`SkipReason::IgnoredLogType`](super::SkipReason::IgnoredLogType).
//!
//! Fields that carry content rather than metadata (the smtp `subject`, http
//! bodies, file contents) are not in the mapping, so they are never read.

mod json;
mod tsv;

pub(crate) use json::JsonParser;
pub(crate) use tsv::TsvParser;

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

use super::error::LineError;
use super::time;
use crate::flow::{ConnState, FlowRecord, Kind, TextField, proto_number};

/// The Zeek logs that become records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogType {
    Conn,
    Dns,
    Ssl,
    Http,
    Smtp,
    Files,
}

impl LogType {
    /// In the order used to break ties when inferring a log from its fields.
    const ALL: [LogType; 6] = [
        LogType::Conn,
        LogType::Dns,
        LogType::Smtp,
        LogType::Http,
        LogType::Ssl,
        LogType::Files,
    ];

    fn from_path(path: &str) -> Option<Self> {
        Some(match path {
            "conn" => Self::Conn,
            "dns" => Self::Dns,
            "ssl" => Self::Ssl,
            "http" => Self::Http,
            "smtp" => Self::Smtp,
            "files" => Self::Files,
            _ => return None,
        })
    }

    fn kind(self) -> Kind {
        match self {
            Self::Conn => Kind::Connection,
            Self::Dns => Kind::Dns,
            Self::Ssl => Kind::Tls,
            Self::Http => Kind::Http,
            Self::Smtp => Kind::Smtp,
            Self::Files => Kind::File,
        }
    }

    /// The protocol of a log without a `proto` field: Zeek's http and smtp
    /// analysers run over TCP only, while ssl.log also holds DTLS.
    fn default_proto(self) -> u8 {
        match self {
            Self::Http | Self::Smtp => 6,
            _ => 0,
        }
    }
}

/// What a `#path`, a `_path` or a file name says about the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogHint {
    Mapped(LogType),
    /// A Zeek log kansoku does not map.
    Ignored,
    Unknown,
}

/// Zeek logs recognised by file name as ones kansoku skips, so that a JSON
/// line without `_path` is not mistaken for a mapped log.
const IGNORED_LOGS: &[&str] = &[
    "analyzer",
    "arp",
    "capture_loss",
    "conn_long",
    "dce_rpc",
    "dhcp",
    "dpd",
    "ftp",
    "irc",
    "kerberos",
    "known_certs",
    "known_hosts",
    "known_services",
    "loaded_scripts",
    "modbus",
    "mysql",
    "notice",
    "ntlm",
    "ntp",
    "ocsp",
    "packet_filter",
    "pe",
    "quic",
    "radius",
    "rdp",
    "reporter",
    "sip",
    "smb_files",
    "smb_mapping",
    "snmp",
    "software",
    "ssh",
    "stats",
    "syslog",
    "tunnel",
    "weird",
    "x509",
];

impl LogHint {
    /// A `#path` or `_path` value: anything but a mapped log is ignored.
    pub(crate) fn from_path(path: &str) -> Self {
        LogType::from_path(path).map_or(Self::Ignored, Self::Mapped)
    }

    /// A file name such as `conn.log`, `dns.json.gz` or
    /// `ssl.00:00:00-01:00:00.log.gz`: the part before the first dot.
    pub(crate) fn from_file_name(name: &str) -> Self {
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        let stem = base.split('.').next().unwrap_or(base);
        match LogType::from_path(stem) {
            Some(log) => Self::Mapped(log),
            None if IGNORED_LOGS.contains(&stem) => Self::Ignored,
            None => Self::Unknown,
        }
    }
}

/// Field names found only in one mapped log, used to tell the log of a JSON
/// line that has no `_path` and came from a file with an unhelpful name.
pub(crate) fn marker(name: &str) -> Option<LogType> {
    Some(match name {
        "conn_state" | "orig_pkts" | "resp_pkts" | "history" => LogType::Conn,
        "query" | "qtype" | "qclass" | "rcode" => LogType::Dns,
        "mailfrom" | "rcptto" | "helo" => LogType::Smtp,
        "method" | "status_code" | "uri" => LogType::Http,
        "server_name" | "cipher" | "curve" | "ja3" => LogType::Ssl,
        "seen_bytes" | "total_bytes" | "tx_hosts" | "rx_hosts" => LogType::Files,
        _ => return None,
    })
}

/// Counts of marker fields seen, per log.
#[derive(Debug, Default)]
pub(crate) struct Markers([u8; LogType::ALL.len()]);

impl Markers {
    pub(crate) fn see(&mut self, name: &str) {
        if let Some(log) = marker(name) {
            self.add(log);
        }
    }

    pub(crate) fn add(&mut self, log: LogType) {
        if let Some(i) = LogType::ALL.iter().position(|&l| l == log)
            && let Some(count) = self.0.get_mut(i)
        {
            *count = count.saturating_add(1);
        }
    }

    /// The log with the most markers; `None` when there were none.
    pub(crate) fn best(&self) -> Option<LogType> {
        let (log, count) =
            LogType::ALL
                .into_iter()
                .zip(self.0)
                .fold((None, 0), |best, (log, count)| {
                    if count > best.1 {
                        (Some(log), count)
                    } else {
                        best
                    }
                });
        log.filter(|_| count > 0)
    }
}

/// Where the value of a Zeek field goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Ts,
    Uid,
    OrigH,
    OrigP,
    RespH,
    RespP,
    Proto,
    Duration,
    OrigBytes,
    RespBytes,
    OrigPkts,
    RespPkts,
    State,
    Qtype,
    Rcode,
    Status,
    Text(TextField),
    /// A set or vector, its elements joined with `,`.
    List(TextField),
    /// files.log before Zeek 5: the hosts that sent and received the file.
    TxHosts,
    RxHosts,
    IsOrig,
    ConnUids,
}

/// How a slot takes a set-valued field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListMode {
    Join,
    First,
}

impl Slot {
    pub(crate) fn list_mode(self) -> Option<ListMode> {
        match self {
            Self::List(_) => Some(ListMode::Join),
            Self::TxHosts | Self::RxHosts | Self::ConnUids => Some(ListMode::First),
            _ => None,
        }
    }

    /// Whether the value is text that may carry Zeek's `\xHH` escapes, and
    /// for which `(empty)` means the empty string rather than unset.
    pub(crate) fn is_text(self) -> bool {
        matches!(self, Self::Text(_) | Self::List(_))
    }
}

/// A Zeek field kansoku uses: its name in the log and where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) slot: Slot,
}

macro_rules! fields {
    ($name:expr; $($key:literal => $slot:expr),* $(,)?) => {
        match $name {
            $($key => Some(Field { name: $key, slot: $slot }),)*
            _ => None,
        }
    };
}

/// The mapping: which field of which log goes where.
pub(crate) fn field(log: LogType, name: &str) -> Option<Field> {
    use Slot::*;
    use TextField as T;
    let common = fields!(name;
        "ts" => Ts, "uid" => Uid, "proto" => Proto,
        "id.orig_h" => OrigH, "id.orig_p" => OrigP, "id.resp_h" => RespH, "id.resp_p" => RespP,
    );
    if common.is_some() {
        return common;
    }
    match log {
        LogType::Conn => fields!(name;
            "service" => Text(T::Service), "duration" => Duration, "conn_state" => State,
            // Payload bytes, as the contract's src_bytes/dst_bytes are.
            "orig_bytes" => OrigBytes, "resp_bytes" => RespBytes,
            "orig_pkts" => OrigPkts, "resp_pkts" => RespPkts,
        ),
        LogType::Dns => fields!(name;
            "query" => Text(T::DnsQuery), "qtype" => Qtype, "rcode" => Rcode,
            "answers" => List(T::DnsAnswers),
        ),
        LogType::Ssl => fields!(name;
            "server_name" => Text(T::TlsSni), "version" => Text(T::TlsVersion),
            "subject" => Text(T::TlsSubject), "issuer" => Text(T::TlsIssuer),
            "ja3" => Text(T::Ja3), "ja3s" => Text(T::Ja3s),
        ),
        LogType::Http => fields!(name;
            "host" => Text(T::HttpHost), "uri" => Text(T::HttpUri),
            "user_agent" => Text(T::HttpUserAgent), "method" => Text(T::HttpMethod),
            "status_code" => Status,
        ),
        LogType::Smtp => fields!(name;
            "mailfrom" => Text(T::MailFrom), "rcptto" => List(T::MailTo),
        ),
        LogType::Files => fields!(name;
            "filename" => Text(T::FileName), "md5" => Text(T::FileMd5),
            "sha1" => Text(T::FileSha1), "sha256" => Text(T::FileSha256),
            "tx_hosts" => TxHosts, "rx_hosts" => RxHosts, "is_orig" => IsOrig,
            "conn_uids" => ConnUids,
        ),
    }
}

/// A field's value as the input spelled it. TSV gives only strings; JSON
/// gives typed values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    Str(Cow<'a, str>),
    UInt(u64),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A value of the wrong shape (an object, an array where one value
    /// belongs): the reason, for the error.
    Invalid(&'static str),
}

/// Builds a record from the fields of one line.
#[derive(Debug)]
pub(crate) struct Builder<'a> {
    log: LogType,
    record: FlowRecord<'a>,
    has_ts: bool,
    has_src: bool,
    has_dst: bool,
    tx: Option<IpAddr>,
    rx: Option<IpAddr>,
    is_orig: Option<bool>,
}

impl<'a> Builder<'a> {
    #[inline]
    pub(crate) fn new(log: LogType) -> Self {
        let unspecified = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let mut record = FlowRecord::new(0, unspecified, unspecified);
        record.kind = log.kind();
        record.proto = log.default_proto();
        Self {
            log,
            record,
            has_ts: false,
            has_src: false,
            has_dst: false,
            tx: None,
            rx: None,
            is_orig: None,
        }
    }

    /// Sets one field; unset fields are simply not passed.
    pub(crate) fn set(&mut self, field: Field, value: Value<'a>) -> Result<(), LineError> {
        let name = field.name;
        let r = &mut self.record;
        match field.slot {
            Slot::Ts => {
                r.ts = timestamp(name, &value)?;
                self.has_ts = true;
            }
            Slot::Uid => r.flow_id = uid_hash(str_value(name, &value)?),
            Slot::ConnUids => r.flow_id = uid_hash(str_value(name, &value)?),
            Slot::OrigH => {
                r.src = address(name, &value)?;
                self.has_src = true;
            }
            Slot::RespH => {
                r.dst = address(name, &value)?;
                self.has_dst = true;
            }
            Slot::TxHosts => self.tx = Some(address(name, &value)?),
            Slot::RxHosts => self.rx = Some(address(name, &value)?),
            Slot::OrigP => r.src_port = small(name, &value, "not a port number")?,
            Slot::RespP => r.dst_port = small(name, &value, "not a port number")?,
            Slot::Proto => {
                r.proto = match str_value(name, &value)? {
                    "tcp" => 6,
                    "udp" => 17,
                    // Zeek writes `unknown_transport` for other protocols.
                    other => proto_number(other).unwrap_or(0),
                }
            }
            Slot::Duration => r.duration = duration(name, &value)?,
            Slot::OrigBytes => r.src_bytes = count(name, &value)?,
            Slot::RespBytes => r.dst_bytes = count(name, &value)?,
            Slot::OrigPkts => r.src_pkts = saturate(count(name, &value)?),
            Slot::RespPkts => r.dst_pkts = saturate(count(name, &value)?),
            Slot::State => r.conn_state = ConnState::from_zeek(str_value(name, &value)?),
            Slot::Qtype => r.dns_qtype = small(name, &value, "not a DNS type")?,
            Slot::Rcode => r.dns_rcode = Some(small(name, &value, "not a DNS rcode")?),
            Slot::Status => r.http_status = small(name, &value, "not an HTTP status")?,
            Slot::IsOrig => {
                self.is_orig = Some(match value {
                    Value::Bool(b) => b,
                    Value::Str(s) if s == "T" => true,
                    Value::Str(s) if s == "F" => false,
                    _ => return Err(LineError::bad_value(name, "not a boolean")),
                })
            }
            Slot::Text(text) | Slot::List(text) => match value {
                Value::Str(s) => r.text.set(text, s),
                _ => return Err(LineError::bad_value(name, "not a string")),
            },
        }
        Ok(())
    }

    /// The record, once the fields every record needs are known.
    #[inline]
    pub(crate) fn finish(mut self) -> Result<FlowRecord<'a>, LineError> {
        if !self.has_ts {
            return Err(LineError::missing("ts"));
        }
        if self.log == LogType::Files && !self.has_src && !self.has_dst {
            // A file sent by the responder (a download, `is_orig` F) was
            // received by the originator. Zeek before 2.6 had no `is_orig`;
            // downloads are the common case then.
            let (src, dst, src_name, dst_name) = if self.is_orig == Some(true) {
                (self.tx, self.rx, "tx_hosts", "rx_hosts")
            } else {
                (self.rx, self.tx, "rx_hosts", "tx_hosts")
            };
            self.record.src = src.ok_or_else(|| LineError::missing(src_name))?;
            self.record.dst = dst.ok_or_else(|| LineError::missing(dst_name))?;
            return Ok(self.record);
        }
        if !self.has_src {
            return Err(LineError::missing("id.orig_h"));
        }
        if !self.has_dst {
            return Err(LineError::missing("id.resp_h"));
        }
        Ok(self.record)
    }
}

#[inline]
fn str_value<'v>(name: &'static str, value: &'v Value<'_>) -> Result<&'v str, LineError> {
    match value {
        Value::Str(s) => Ok(s),
        Value::Invalid(why) => Err(LineError::bad_value(name, why)),
        _ => Err(LineError::bad_value(name, "not a string")),
    }
}

#[inline]
fn timestamp(name: &'static str, value: &Value<'_>) -> Result<i64, LineError> {
    let micros = match value {
        Value::Str(s) => time::parse_timestamp(s),
        Value::Float(f) => time::micros_from_secs_f64(*f),
        Value::UInt(n) => i64::try_from(*n)
            .ok()
            .and_then(|n| n.checked_mul(1_000_000)),
        Value::Int(n) => n.checked_mul(1_000_000),
        _ => None,
    };
    micros.ok_or_else(|| LineError::bad_timestamp(name))
}

#[inline]
fn duration(name: &'static str, value: &Value<'_>) -> Result<u64, LineError> {
    let micros = match value {
        Value::Str(s) => time::parse_duration(s),
        Value::Float(f) if *f >= 0.0 => time::micros_from_secs_f64(*f).map(|m| m as u64),
        Value::UInt(n) => n.checked_mul(1_000_000),
        _ => None,
    };
    micros.ok_or_else(|| LineError::bad_number(name, "not a duration"))
}

#[inline]
fn address(name: &'static str, value: &Value<'_>) -> Result<IpAddr, LineError> {
    match value {
        Value::Str(s) => parse_ip(s).ok_or_else(|| LineError::bad_address(name)),
        _ => Err(LineError::bad_address(name)),
    }
}

/// An IP address. Dotted quads, most of the addresses in a log, take a
/// short path: std's general parser is a third of the time of a conn line.
pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    match parse_ipv4(s.as_bytes()) {
        Some(v4) => Some(IpAddr::V4(v4)),
        None => s.parse().ok(),
    }
}

/// A dotted quad as std spells it (no leading zeros); `None` sends the text
/// to std's parser, which decides.
fn parse_ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    if !(7..=15).contains(&b.len()) {
        return None;
    }
    let mut octets = [0u8; 4];
    let mut index = 0;
    let (mut value, mut digits) = (0u32, 0);
    for &c in b {
        if c == b'.' {
            *octets.get_mut(index)? = u8::try_from(value).ok().filter(|_| digits > 0)?;
            index += 1;
            (value, digits) = (0, 0);
        } else if c.is_ascii_digit() {
            if digits > 0 && value == 0 {
                return None;
            }
            value = value * 10 + u32::from(c - b'0');
            digits += 1;
            if value > 255 {
                return None;
            }
        } else {
            return None;
        }
    }
    if index != 3 || digits == 0 {
        return None;
    }
    *octets.get_mut(3)? = u8::try_from(value).ok()?;
    Some(Ipv4Addr::from(octets))
}

#[inline]
fn count(name: &'static str, value: &Value<'_>) -> Result<u64, LineError> {
    let n = match value {
        Value::Str(s) => parse_u64(s),
        Value::UInt(n) => Some(*n),
        _ => None,
    };
    n.ok_or_else(|| LineError::bad_number(name, "not a count"))
}

/// A number that must fit in 16 bits (ports, DNS codes, HTTP status).
#[inline]
fn small(name: &'static str, value: &Value<'_>, what: &'static str) -> Result<u16, LineError> {
    let n = match value {
        Value::Str(s) => parse_u64(s),
        Value::UInt(n) => Some(*n),
        _ => None,
    };
    n.and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| LineError::bad_number(name, what))
}

/// Decimal digits only: no sign, no spaces (std's parser accepts `+`).
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |n, c| {
        c.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(c - b'0')))
            .flatten()
    })
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A stable 64-bit id for a Zeek uid, so that events of one connection
/// share a `flow_id`. 0 means none, so a uid never hashes to it.
///
/// The uid is taken eight bytes at a time (little-endian, the last word
/// zero-padded): `h = (h ^ word) * K` with `K = 0x9e3779b97f4a7c15`, `h`
/// starting at the length times `K`, then SplitMix64's finaliser. A Zeek
/// uid is about 18 bytes, so this is three multiplications where a
/// byte-wise hash such as FNV-1a needs eighteen in a row.
pub(crate) fn uid_hash(uid: &str) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    if uid.is_empty() {
        return 0;
    }
    let mut h = (uid.len() as u64).wrapping_mul(K);
    for chunk in uid.as_bytes().chunks(8) {
        let mut word = [0u8; 8];
        for (dst, src) in word.iter_mut().zip(chunk) {
            *dst = *src;
        }
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    h.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_hint_at_the_log_type() {
        assert_eq!(
            LogHint::from_file_name("conn.log"),
            LogHint::Mapped(LogType::Conn)
        );
        assert_eq!(
            LogHint::from_file_name("/data/zeek-json/dns.json.gz"),
            LogHint::Mapped(LogType::Dns)
        );
        assert_eq!(
            LogHint::from_file_name("ssl.00:00:00-01:00:00.log.gz"),
            LogHint::Mapped(LogType::Ssl)
        );
        assert_eq!(LogHint::from_file_name("x509.log"), LogHint::Ignored);
        assert_eq!(LogHint::from_file_name("<stdin>"), LogHint::Unknown);
        assert_eq!(LogHint::from_path("weird"), LogHint::Ignored);
    }

    #[test]
    fn the_log_with_most_marker_fields_wins() {
        let mut markers = Markers::default();
        assert_eq!(markers.best(), None);
        for name in ["ts", "uid", "user_agent", "method", "uri", "helo"] {
            markers.see(name);
        }
        assert_eq!(markers.best(), Some(LogType::Http));
    }

    /// Computed independently (Python) from the description above.
    const PINNED_CXHB: u64 = 0xa09e_5c7a_6edb_4b1f;

    #[test]
    fn dotted_quads_parse_like_std() {
        for s in [
            "10.136.0.18",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            ".1.2.3",
            "1.2.3.",
            "1.2.3.4 ",
            "1.2.3.-4",
            "1.2.3.40",
            "192.168.001.1",
            "0.0.0.00",
            "fe80::1",
            "::ffff:1.2.3.4",
            "",
        ] {
            assert_eq!(parse_ip(s), s.parse().ok(), "{s}");
            if let Some(v4) = parse_ipv4(s.as_bytes()) {
                assert_eq!(Ok(v4), s.parse::<Ipv4Addr>(), "{s}");
            }
        }
    }

    #[test]
    fn uid_hashes_are_stable_and_never_zero() {
        assert_eq!(uid_hash("CXHB1X22027MRWU6D"), uid_hash("CXHB1X22027MRWU6D"));
        assert_ne!(uid_hash("CXHB1X22027MRWU6D"), uid_hash("CpUSUugm0UhJd4Opj"));
        // Pinned: flow ids must not change between releases.
        assert_eq!(uid_hash("CXHB1X22027MRWU6D"), PINNED_CXHB);
        assert_ne!(uid_hash("C1"), uid_hash("C1\0"));
        assert_eq!(uid_hash(""), 0);
    }

    #[test]
    fn a_files_record_takes_its_endpoints_from_the_sending_and_receiving_hosts() {
        let set = |b: &mut Builder<'_>, name, value: &'static str| {
            let field = field(LogType::Files, name).expect("mapped");
            b.set(field, Value::Str(value.into())).expect("valid");
        };
        let mut b = Builder::new(LogType::Files);
        set(&mut b, "ts", "1.5");
        set(&mut b, "tx_hosts", "192.0.2.1");
        set(&mut b, "rx_hosts", "10.0.0.1");
        let record = b.finish().expect("complete");
        assert_eq!(record.src, "10.0.0.1".parse::<IpAddr>().expect("ip"));
        assert_eq!(record.dst, "192.0.2.1".parse::<IpAddr>().expect("ip"));

        let mut b = Builder::new(LogType::Files);
        set(&mut b, "ts", "1.5");
        set(&mut b, "is_orig", "T");
        set(&mut b, "tx_hosts", "10.0.0.1");
        let err = b.finish().expect_err("no receiver");
        assert_eq!(err.to_string(), "field rx_hosts: missing or unset");
    }
}
