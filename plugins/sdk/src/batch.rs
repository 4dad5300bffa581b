//! Zero-copy views over a columnar flow batch.

use std::net::{IpAddr, Ipv6Addr};

use crate::bindings::kansoku::detector::types::{FlowBatch, TextField};
use crate::{Address, Timestamp};

/// Number of [`TextField`] variants.
const TEXT_FIELDS: usize = TextField::DetectedSubstring as usize + 1;

/// A batch of flows as the host passed it: one list per field. Read it row by
/// row with [`Batch::iter`], or column by column with the slice accessors
/// when a detector vectorises.
#[derive(Debug)]
pub struct Batch {
    raw: FlowBatch,
    rows: usize,
    /// Position of each text field's column in `raw.text`, if present.
    text: [Option<u8>; TEXT_FIELDS],
}

impl Batch {
    /// Wraps what the host sent. Columns shorter than `rows` (which the host
    /// never sends) shrink the batch to the shortest column, so accessors
    /// never panic.
    pub fn new(raw: FlowBatch) -> Self {
        let rows = [
            raw.rows as usize,
            raw.ts.len(),
            raw.duration.len(),
            raw.src_addr.len() / 16,
            raw.dst_addr.len() / 16,
            raw.src_port.len(),
            raw.dst_port.len(),
            raw.proto.len(),
            raw.kind.len(),
            raw.direction.len(),
            raw.institution.len(),
            raw.src_bytes.len(),
            raw.dst_bytes.len(),
            raw.src_pkts.len(),
            raw.dst_pkts.len(),
            raw.conn_state.len(),
            raw.src_country.len(),
            raw.dst_country.len(),
            raw.dns_qtype.len(),
            raw.dns_rcode.len(),
            raw.http_status.len(),
        ]
        .into_iter()
        .min()
        .unwrap_or(0);
        let mut text = [None; TEXT_FIELDS];
        for (i, column) in raw.text.iter().enumerate().take(usize::from(u8::MAX)) {
            // A column no row has a value in (connection records and a
            // field about DNS) is as good as absent, and checking that once
            // spares every flow's lookup.
            if column.offsets.len() > rows && !column.bytes.is_empty() {
                text[column.field as usize] = Some(i as u8);
            }
        }
        Self { raw, rows, text }
    }

    /// Number of flows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether the batch has no flows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The flows, in row order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Flow<'_>> + '_ {
        (0..self.rows).map(move |row| Flow { batch: self, row })
    }

    /// The flow at `row`, if there is one.
    pub fn get(&self, row: usize) -> Option<Flow<'_>> {
        (row < self.rows).then_some(Flow { batch: self, row })
    }

    /// The text column for `field`, if the host sent it and some row has a
    /// value in it.
    pub fn text(&self, field: TextField) -> Option<TextColumn<'_>> {
        let i = self.text[field as usize]?;
        let column = &self.raw.text[usize::from(i)];
        Some(TextColumn {
            offsets: &column.offsets,
            bytes: &column.bytes,
        })
    }

    /// Start times, one per row.
    pub fn ts(&self) -> &[Timestamp] {
        &self.raw.ts[..self.rows]
    }

    /// Destination ports, one per row.
    pub fn dst_ports(&self) -> &[u16] {
        &self.raw.dst_port[..self.rows]
    }

    /// Protocol numbers, one per row.
    pub fn protos(&self) -> &[u8] {
        &self.raw.proto[..self.rows]
    }

    /// The raw columns, for detectors that want them all.
    pub fn raw(&self) -> &FlowBatch {
        &self.raw
    }
}

/// One text column of a batch.
#[derive(Debug, Clone, Copy)]
pub struct TextColumn<'a> {
    offsets: &'a [u32],
    bytes: &'a [u8],
}

impl<'a> TextColumn<'a> {
    /// The value of `row`: `None` when the row does not carry the field, or
    /// when the host sent something that is not UTF-8 (it never does).
    pub fn get(&self, row: usize) -> Option<&'a str> {
        std::str::from_utf8(self.get_bytes(row)?).ok()
    }

    /// The value of `row` as bytes, not checked for UTF-8: for matchers
    /// that compare bytes anyway and would pay for the check on every row.
    pub fn get_bytes(&self, row: usize) -> Option<&'a [u8]> {
        let start = *self.offsets.get(row)? as usize;
        let end = *self.offsets.get(row + 1)? as usize;
        let value = self.bytes.get(start..end)?;
        (!value.is_empty()).then_some(value)
    }
}

/// What a row was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A connection summary (Zeek conn, EVE flow, CSV, NetFlow).
    Connection,
    /// A DNS transaction.
    Dns,
    /// A TLS handshake.
    Tls,
    /// An HTTP transaction.
    Http,
    /// An SMTP transaction.
    Smtp,
    /// A file transfer.
    File,
    /// An alert raised by the sensor.
    Alert,
    /// A code this SDK does not know (a newer host).
    Other(u8),
}

impl From<u8> for Kind {
    fn from(code: u8) -> Self {
        match code {
            0 => Self::Connection,
            1 => Self::Dns,
            2 => Self::Tls,
            3 => Self::Http,
            4 => Self::Smtp,
            5 => Self::File,
            6 => Self::Alert,
            other => Self::Other(other),
        }
    }
}

/// Direction of a flow, seen from the monitored institution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Not known.
    Unknown,
    /// Destination inside a registered prefix, source outside.
    Inbound,
    /// Source inside a registered prefix, destination outside.
    Outbound,
    /// Both ends inside registered prefixes.
    Internal,
}

impl From<u8> for Direction {
    fn from(code: u8) -> Self {
        match code {
            1 => Self::Inbound,
            2 => Self::Outbound,
            3 => Self::Internal,
            _ => Self::Unknown,
        }
    }
}

/// Zeek's connection states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(
    missing_docs,
    reason = "names are Zeek's, see its conn.log documentation"
)]
pub enum ConnState {
    Unknown,
    S0,
    S1,
    SF,
    REJ,
    S2,
    S3,
    RSTO,
    RSTR,
    RSTOS0,
    RSTRH,
    SH,
    SHR,
    OTH,
}

impl From<u8> for ConnState {
    fn from(code: u8) -> Self {
        use ConnState::*;
        const STATES: [ConnState; 14] = [
            Unknown, S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0, RSTRH, SH, SHR, OTH,
        ];
        STATES.get(usize::from(code)).copied().unwrap_or(Unknown)
    }
}

impl ConnState {
    /// Whether the connection attempt got no established session: no reply
    /// (`S0`), rejected (`REJ`), or reset before the handshake completed.
    pub fn is_failed_attempt(self) -> bool {
        matches!(
            self,
            Self::S0 | Self::REJ | Self::RSTOS0 | Self::RSTRH | Self::SH | Self::SHR
        )
    }
}

/// One row of a [`Batch`].
#[derive(Debug, Clone, Copy)]
pub struct Flow<'a> {
    batch: &'a Batch,
    row: usize,
}

macro_rules! text_accessors {
    ($($(#[$doc:meta])* $name:ident => $field:ident,)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&self) -> Option<&'a str> {
                self.text(TextField::$field)
            }
        )*
    };
}

impl<'a> Flow<'a> {
    /// Index of this row in its batch (what a finding's subject names).
    pub fn row(&self) -> u32 {
        self.row as u32
    }

    /// Start time, microseconds since the Unix epoch.
    pub fn ts(&self) -> Timestamp {
        self.batch.raw.ts[self.row]
    }

    /// Duration in microseconds (0 when unknown).
    pub fn duration_us(&self) -> u64 {
        self.batch.raw.duration[self.row]
    }

    /// Source address, 16 bytes, IPv4 mapped.
    pub fn src_octets(&self) -> [u8; 16] {
        octets(&self.batch.raw.src_addr, self.row)
    }

    /// Destination address, 16 bytes, IPv4 mapped.
    pub fn dst_octets(&self) -> [u8; 16] {
        octets(&self.batch.raw.dst_addr, self.row)
    }

    /// Source address (IPv4 addresses come back as IPv4).
    pub fn src(&self) -> IpAddr {
        Ipv6Addr::from(self.src_octets()).to_canonical()
    }

    /// Destination address (IPv4 addresses come back as IPv4).
    pub fn dst(&self) -> IpAddr {
        Ipv6Addr::from(self.dst_octets()).to_canonical()
    }

    /// Source address in the contract's form, for [`crate::Entity`].
    pub fn src_address(&self) -> Address {
        Address::from(self.src_octets())
    }

    /// Destination address in the contract's form.
    pub fn dst_address(&self) -> Address {
        Address::from(self.dst_octets())
    }

    /// Source port (ICMP type for ICMP).
    pub fn src_port(&self) -> u16 {
        self.batch.raw.src_port[self.row]
    }

    /// Destination port (ICMP code for ICMP).
    pub fn dst_port(&self) -> u16 {
        self.batch.raw.dst_port[self.row]
    }

    /// IANA protocol number.
    pub fn proto(&self) -> u8 {
        self.batch.raw.proto[self.row]
    }

    /// Whether this is a TCP flow.
    pub fn is_tcp(&self) -> bool {
        self.proto() == 6
    }

    /// Whether this is a UDP flow.
    pub fn is_udp(&self) -> bool {
        self.proto() == 17
    }

    /// What the row was parsed from.
    pub fn kind(&self) -> Kind {
        Kind::from(self.batch.raw.kind[self.row])
    }

    /// Direction seen from the institution.
    pub fn direction(&self) -> Direction {
        Direction::from(self.batch.raw.direction[self.row])
    }

    /// Index of the institution the flow belongs to.
    pub fn institution(&self) -> u16 {
        self.batch.raw.institution[self.row]
    }

    /// Payload bytes sent by the source.
    pub fn src_bytes(&self) -> u64 {
        self.batch.raw.src_bytes[self.row]
    }

    /// Payload bytes sent by the destination.
    pub fn dst_bytes(&self) -> u64 {
        self.batch.raw.dst_bytes[self.row]
    }

    /// Packets sent by the source.
    pub fn src_pkts(&self) -> u32 {
        self.batch.raw.src_pkts[self.row]
    }

    /// Packets sent by the destination.
    pub fn dst_pkts(&self) -> u32 {
        self.batch.raw.dst_pkts[self.row]
    }

    /// Connection state.
    pub fn conn_state(&self) -> ConnState {
        ConnState::from(self.batch.raw.conn_state[self.row])
    }

    /// ISO 3166 code of the source's country, when known.
    pub fn src_country(&self) -> Option<[u8; 2]> {
        country(self.batch.raw.src_country[self.row])
    }

    /// ISO 3166 code of the destination's country, when known.
    pub fn dst_country(&self) -> Option<[u8; 2]> {
        country(self.batch.raw.dst_country[self.row])
    }

    /// DNS query type, for DNS rows.
    pub fn dns_qtype(&self) -> Option<u16> {
        let qtype = self.batch.raw.dns_qtype[self.row];
        (qtype != 0).then_some(qtype)
    }

    /// DNS response code, for answered DNS rows.
    pub fn dns_rcode(&self) -> Option<u16> {
        let rcode = self.batch.raw.dns_rcode[self.row];
        (rcode != u16::MAX).then_some(rcode)
    }

    /// HTTP status, for HTTP rows that have one.
    pub fn http_status(&self) -> Option<u16> {
        let status = self.batch.raw.http_status[self.row];
        (status != 0).then_some(status)
    }

    /// The value of a text field: `None` when the row does not carry it or
    /// the plugin did not get the column (not asked for, or not granted).
    pub fn text(&self, field: TextField) -> Option<&'a str> {
        self.batch.text(field)?.get(self.row)
    }

    /// The value of a text field as bytes, not checked for UTF-8 (see
    /// [`TextColumn::get_bytes`]).
    pub fn text_bytes(&self, field: TextField) -> Option<&'a [u8]> {
        self.batch.text(field)?.get_bytes(self.row)
    }

    text_accessors! {
        /// Application protocol(s) classified by the sensor.
        service => Service,
        /// DNS question name.
        dns_query => DnsQuery,
        /// DNS answers, comma separated.
        dns_answers => DnsAnswers,
        /// TLS server name indication.
        tls_sni => TlsSni,
        /// TLS version.
        tls_version => TlsVersion,
        /// Server certificate subject.
        tls_subject => TlsSubject,
        /// Server certificate issuer.
        tls_issuer => TlsIssuer,
        /// JA3 client fingerprint.
        ja3 => Ja3,
        /// JA3S server fingerprint.
        ja3s => Ja3s,
        /// HTTP Host header.
        http_host => HttpHost,
        /// HTTP request target.
        http_uri => HttpUri,
        /// HTTP User-Agent.
        http_user_agent => HttpUserAgent,
        /// HTTP method.
        http_method => HttpMethod,
        /// File MD5.
        file_md5 => FileMd5,
        /// File SHA-1.
        file_sha1 => FileSha1,
        /// File SHA-256.
        file_sha256 => FileSha256,
        /// Signature of a sensor alert.
        alert_signature => AlertSignature,
        /// SMTP sender (sensitive: only when granted).
        mail_from => MailFrom,
        /// SMTP recipients (sensitive: only when granted).
        mail_to => MailTo,
        /// File or attachment name (sensitive: only when granted).
        file_name => FileName,
    }
}

fn octets(column: &[u8], row: usize) -> [u8; 16] {
    let mut out = [0; 16];
    if let Some(bytes) = column.get(row * 16..row * 16 + 16) {
        out.copy_from_slice(bytes);
    }
    out
}

fn country(code: u16) -> Option<[u8; 2]> {
    (code != 0).then(|| code.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::BatchBuilder;

    #[test]
    fn text_field_count_matches_the_contract() {
        assert_eq!(TEXT_FIELDS, 21);
    }

    #[test]
    fn rows_expose_every_column() {
        let mut builder = BatchBuilder::new();
        builder
            .flow(
                "192.0.2.1".parse().unwrap(),
                5353,
                "2001:db8::1".parse().unwrap(),
                53,
            )
            .proto(17)
            .kind(1)
            .direction(2)
            .dns("example.org", 16, Some(3));
        builder.flow(
            "198.51.100.7".parse().unwrap(),
            40000,
            "192.0.2.1".parse().unwrap(),
            443,
        );
        let batch = builder.build();
        assert_eq!(batch.len(), 2);
        let first = batch.get(0).unwrap();
        assert_eq!(first.src().to_string(), "192.0.2.1");
        assert_eq!(first.dst().to_string(), "2001:db8::1");
        assert_eq!(first.dns_query(), Some("example.org"));
        assert_eq!(first.dns_qtype(), Some(16));
        assert_eq!(first.dns_rcode(), Some(3));
        assert_eq!(first.kind(), Kind::Dns);
        assert_eq!(first.direction(), Direction::Outbound);
        let second = batch.get(1).unwrap();
        assert_eq!(second.dns_query(), None);
        assert_eq!(second.dns_rcode(), None);
        assert_eq!(second.dst_port(), 443);
        assert!(batch.get(2).is_none());
    }

    #[test]
    fn a_short_column_shrinks_the_batch_instead_of_panicking() {
        let mut builder = BatchBuilder::new();
        builder.flow(
            "192.0.2.1".parse().unwrap(),
            1,
            "192.0.2.2".parse().unwrap(),
            2,
        );
        builder.flow(
            "192.0.2.1".parse().unwrap(),
            1,
            "192.0.2.2".parse().unwrap(),
            3,
        );
        let mut raw = builder.build().raw().clone();
        raw.dst_port.pop();
        let batch = Batch::new(raw);
        assert_eq!(batch.len(), 1);
        assert_eq!(batch.iter().map(|f| f.dst_port()).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn text_values_out_of_bounds_or_not_utf8_read_as_absent() {
        let column = TextColumn {
            offsets: &[0, 2, 9],
            bytes: &[0xff, 0xfe, b'a'],
        };
        assert_eq!(column.get(0), None);
        assert_eq!(column.get(1), None);
        assert_eq!(column.get(2), None);
    }
}
