//! The flow record: what every input format is parsed into, before scoping.
//!
//! A record borrows its text from the input line where it can, so parsing a
//! line allocates only when a value had to be unescaped.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use smallvec::SmallVec;

/// Microseconds since the Unix epoch, UTC.
pub type Micros = i64;

/// What a record was parsed from. The numeric codes are the contract's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Kind {
    /// A connection summary: Zeek conn, EVE flow, CSV, NetFlow.
    #[default]
    Connection = 0,
    /// A DNS transaction.
    Dns = 1,
    /// A TLS handshake.
    Tls = 2,
    /// An HTTP transaction.
    Http = 3,
    /// An SMTP transaction.
    Smtp = 4,
    /// A file transfer.
    File = 5,
    /// An alert raised by the sensor.
    Alert = 6,
}

impl Kind {
    /// Lower-case name, as in EVE's `event_type` (`flow` for connections).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Connection => "flow",
            Kind::Dns => "dns",
            Kind::Tls => "tls",
            Kind::Http => "http",
            Kind::Smtp => "smtp",
            Kind::File => "fileinfo",
            Kind::Alert => "alert",
        }
    }
}

/// Zeek's connection states; the numeric codes are the contract's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
#[allow(
    missing_docs,
    reason = "names are Zeek's, documented in its conn.log reference"
)]
#[allow(clippy::upper_case_acronyms, reason = "Zeek's spelling")]
pub enum ConnState {
    #[default]
    Unknown = 0,
    S0 = 1,
    S1 = 2,
    SF = 3,
    REJ = 4,
    S2 = 5,
    S3 = 6,
    RSTO = 7,
    RSTR = 8,
    RSTOS0 = 9,
    RSTRH = 10,
    SH = 11,
    SHR = 12,
    OTH = 13,
}

impl ConnState {
    /// Parses Zeek's `conn_state` value; unknown strings are `Unknown`.
    pub fn from_zeek(s: &str) -> Self {
        match s {
            "S0" => Self::S0,
            "S1" => Self::S1,
            "SF" => Self::SF,
            "REJ" => Self::REJ,
            "S2" => Self::S2,
            "S3" => Self::S3,
            "RSTO" => Self::RSTO,
            "RSTR" => Self::RSTR,
            "RSTOS0" => Self::RSTOS0,
            "RSTRH" => Self::RSTRH,
            "SH" => Self::SH,
            "SHR" => Self::SHR,
            "OTH" => Self::OTH,
            _ => Self::Unknown,
        }
    }
}

/// Text fields a record may carry, in the contract's order (`text-field` in
/// `wit/detector.wit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[allow(
    missing_docs,
    reason = "each variant is documented in wit/detector.wit"
)]
pub enum TextField {
    Service = 0,
    DnsQuery,
    DnsAnswers,
    TlsSni,
    TlsVersion,
    TlsSubject,
    TlsIssuer,
    Ja3,
    Ja3s,
    HttpHost,
    HttpUri,
    HttpUserAgent,
    HttpMethod,
    FileMd5,
    FileSha1,
    FileSha256,
    AlertSignature,
    MailFrom,
    MailTo,
    FileName,
    DetectedSubstring,
}

impl TextField {
    /// Number of text fields.
    pub const COUNT: usize = TextField::DetectedSubstring as usize + 1;

    /// Every field, in contract order.
    pub const ALL: [TextField; TextField::COUNT] = [
        TextField::Service,
        TextField::DnsQuery,
        TextField::DnsAnswers,
        TextField::TlsSni,
        TextField::TlsVersion,
        TextField::TlsSubject,
        TextField::TlsIssuer,
        TextField::Ja3,
        TextField::Ja3s,
        TextField::HttpHost,
        TextField::HttpUri,
        TextField::HttpUserAgent,
        TextField::HttpMethod,
        TextField::FileMd5,
        TextField::FileSha1,
        TextField::FileSha256,
        TextField::AlertSignature,
        TextField::MailFrom,
        TextField::MailTo,
        TextField::FileName,
        TextField::DetectedSubstring,
    ];

    /// The contract's (kebab-case) name, also used in configuration.
    pub fn name(self) -> &'static str {
        match self {
            TextField::Service => "service",
            TextField::DnsQuery => "dns-query",
            TextField::DnsAnswers => "dns-answers",
            TextField::TlsSni => "tls-sni",
            TextField::TlsVersion => "tls-version",
            TextField::TlsSubject => "tls-subject",
            TextField::TlsIssuer => "tls-issuer",
            TextField::Ja3 => "ja3",
            TextField::Ja3s => "ja3s",
            TextField::HttpHost => "http-host",
            TextField::HttpUri => "http-uri",
            TextField::HttpUserAgent => "http-user-agent",
            TextField::HttpMethod => "http-method",
            TextField::FileMd5 => "file-md5",
            TextField::FileSha1 => "file-sha1",
            TextField::FileSha256 => "file-sha256",
            TextField::AlertSignature => "alert-signature",
            TextField::MailFrom => "mail-from",
            TextField::MailTo => "mail-to",
            TextField::FileName => "file-name",
            TextField::DetectedSubstring => "detected-substring",
        }
    }

    /// Looks a field up by its contract name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether the field is conditionally viewable (R3): stored only
    /// encrypted, and lowered to a plugin only when the operator granted it.
    pub fn is_sensitive(self) -> bool {
        matches!(
            self,
            TextField::MailFrom
                | TextField::MailTo
                | TextField::FileName
                | TextField::DetectedSubstring
        )
    }
}

impl fmt::Display for TextField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Text values of one record. A record carries a handful of the
/// [`TextField`]s, so only those present are kept, inline: a record is
/// moved several times on its way into a batch, and a full table of every
/// field made it five times larger. An empty value means absent.
#[derive(Debug, Clone, Default)]
pub struct TextValues<'a>(SmallVec<[(TextField, Cow<'a, str>); 6]>);

impl<'a> TextValues<'a> {
    /// The value of `field`, if present.
    pub fn get(&self, field: TextField) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, value)| value.as_ref())
    }

    /// Sets `field`; an empty value clears it.
    pub fn set(&mut self, field: TextField, value: impl Into<Cow<'a, str>>) {
        let value = value.into();
        let slot = self.0.iter().position(|(f, _)| *f == field);
        match (slot, value.is_empty()) {
            (Some(i), true) => {
                self.0.remove(i);
            }
            (Some(i), false) => {
                if let Some(entry) = self.0.get_mut(i) {
                    entry.1 = value;
                }
            }
            (None, true) => {}
            (None, false) => self.0.push((field, value)),
        }
    }

    /// The raw value of `field` (empty when absent).
    pub fn raw(&self, field: TextField) -> &str {
        self.get(field).unwrap_or_default()
    }

    /// The fields present and their values, in the order they were set.
    pub fn iter(&self) -> impl Iterator<Item = (TextField, &str)> {
        self.0.iter().map(|(field, value)| (*field, value.as_ref()))
    }
}

/// Equal when the same fields carry the same values, whatever the order in
/// which a parser set them.
impl PartialEq for TextValues<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && self.iter().all(|(f, v)| other.get(f) == Some(v))
    }
}

impl Eq for TextValues<'_> {}

/// One parsed flow or protocol event, before scoping and enrichment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecord<'a> {
    /// Start of the flow, or time of the event.
    pub ts: Micros,
    /// Duration in microseconds; 0 when unknown.
    pub duration: u64,
    /// Originator.
    pub src: IpAddr,
    /// Responder.
    pub dst: IpAddr,
    /// Originator port (ICMP type).
    pub src_port: u16,
    /// Responder port (ICMP code).
    pub dst_port: u16,
    /// IANA protocol number; 0 when unknown.
    pub proto: u8,
    /// What the record was parsed from.
    pub kind: Kind,
    /// Payload bytes sent by the originator.
    pub src_bytes: u64,
    /// Payload bytes sent by the responder.
    pub dst_bytes: u64,
    /// Packets sent by the originator.
    pub src_pkts: u32,
    /// Packets sent by the responder.
    pub dst_pkts: u32,
    /// Zeek connection state.
    pub conn_state: ConnState,
    /// Originator country as given by the input (CSV), ISO 3166 alpha-2.
    pub src_country: Option<[u8; 2]>,
    /// Responder country as given by the input.
    pub dst_country: Option<[u8; 2]>,
    /// DNS query type; 0 when not DNS.
    pub dns_qtype: u16,
    /// DNS response code, when answered.
    pub dns_rcode: Option<u16>,
    /// HTTP status; 0 when none.
    pub http_status: u16,
    /// The sensor's flow identifier (EVE `flow_id`, or a hash of Zeek's
    /// `uid`); 0 when none. Correlates events of one flow.
    pub flow_id: u64,
    /// Text fields.
    pub text: TextValues<'a>,
}

impl FlowRecord<'_> {
    /// A record between two addresses with every other field unknown.
    pub fn new(ts: Micros, src: IpAddr, dst: IpAddr) -> Self {
        Self {
            ts,
            duration: 0,
            src,
            dst,
            src_port: 0,
            dst_port: 0,
            proto: 0,
            kind: Kind::Connection,
            src_bytes: 0,
            dst_bytes: 0,
            src_pkts: 0,
            dst_pkts: 0,
            conn_state: ConnState::Unknown,
            src_country: None,
            dst_country: None,
            dns_qtype: 0,
            dns_rcode: None,
            http_status: 0,
            flow_id: 0,
            text: TextValues::default(),
        }
    }
}

/// IANA protocol number for a protocol name as Zeek, EVE or CSV spell it
/// (`tcp`, `UDP`, `icmp`, `IPv6-ICMP`…), or a decimal number.
pub fn proto_number(name: &str) -> Option<u8> {
    if let Ok(n) = name.parse::<u8>() {
        return Some(n);
    }
    const NAMES: [(&str, u8); 8] = [
        ("tcp", 6),
        ("udp", 17),
        ("icmp", 1),
        ("icmp6", 58),
        ("ipv6-icmp", 58),
        ("icmpv6", 58),
        ("sctp", 132),
        ("gre", 47),
    ];
    NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, number)| *number)
}

/// Name of an IANA protocol number as EVE spells it (`TCP`), or the number.
pub fn proto_name(number: u8) -> Cow<'static, str> {
    match number {
        6 => "TCP".into(),
        17 => "UDP".into(),
        1 => "ICMP".into(),
        58 => "IPv6-ICMP".into(),
        132 => "SCTP".into(),
        47 => "GRE".into(),
        n => n.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_field_names_round_trip() {
        for field in TextField::ALL {
            assert_eq!(TextField::from_name(field.name()), Some(field));
        }
        assert_eq!(TextField::ALL.len(), TextField::COUNT);
        for (i, field) in TextField::ALL.iter().enumerate() {
            assert_eq!(*field as usize, i);
        }
    }

    #[test]
    fn text_values_hold_what_is_set_and_compare_whatever_the_order() {
        let mut a = TextValues::default();
        a.set(TextField::DnsQuery, "example.org");
        a.set(TextField::Service, "dns");
        a.set(TextField::DnsQuery, "example.net");
        assert_eq!(a.get(TextField::DnsQuery), Some("example.net"));
        assert_eq!(a.raw(TextField::TlsSni), "");
        let mut b = TextValues::default();
        b.set(TextField::Service, "dns");
        b.set(TextField::DnsQuery, "example.net");
        assert_eq!(a, b);
        b.set(TextField::Service, "");
        assert_eq!(b.get(TextField::Service), None);
        assert_eq!(
            b.iter().collect::<Vec<_>>(),
            [(TextField::DnsQuery, "example.net")]
        );
        assert_ne!(a, b);
        // More fields than the inline slots.
        for field in TextField::ALL {
            a.set(field, field.name());
        }
        assert!(TextField::ALL.iter().all(|&f| a.get(f) == Some(f.name())));
    }

    #[test]
    fn protocol_names_and_numbers() {
        assert_eq!(proto_number("tcp"), Some(6));
        assert_eq!(proto_number("UDP"), Some(17));
        assert_eq!(proto_number("IPv6-ICMP"), Some(58));
        assert_eq!(proto_number("17"), Some(17));
        assert_eq!(proto_number("carrier-pigeon"), None);
        assert_eq!(proto_name(6), "TCP");
    }
}
