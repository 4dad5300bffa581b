//! Columnar flow batches: scoped, enriched records laid out as the contract's
//! `flow-batch`, so handing a batch to a plugin is a copy per column.
//!
//! In: [`FlowRecord`]s with their [`Placement`] (institution, direction,
//! countries, origin). Out: [`FlowBatch`], shared read-only by every plugin
//! worker, and viewed per plugin through [`FlowBatch::view`] with only the
//! text fields that plugin was granted.

use std::net::{IpAddr, Ipv6Addr};
use std::ops::Range;

use crate::contract::{BatchView, TextColumnView};
use crate::flow::{ConnState, FlowRecord, Kind, Micros, TextField};
use crate::scope::Direction;

/// Default number of flows per batch.
pub const DEFAULT_BATCH_ROWS: usize = 4096;

/// Institution index meaning "none" in [`FlowBatch::peer_institution`].
pub const NO_INSTITUTION: u16 = u16::MAX;

/// Where a record was placed by scope and enrichment, and where it came
/// from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Institution the flow belongs to.
    pub institution: u16,
    /// The other institution, when both ends are registered to different
    /// ones.
    pub peer_institution: Option<u16>,
    /// Direction seen from `institution`.
    pub direction: Direction,
    /// Source country, ISO 3166 alpha-2.
    pub src_country: Option<[u8; 2]>,
    /// Destination country.
    pub dst_country: Option<[u8; 2]>,
    /// Input the record came from (index into the run's inputs).
    pub input: u16,
    /// Line of the input it came from.
    pub line: u64,
}

/// One text field of every row: the values back to back, and `rows + 1`
/// offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TextArena {
    offsets: Vec<u32>,
    bytes: Vec<u8>,
}

impl TextArena {
    /// An arena whose first `rows` rows are empty.
    fn empty_rows(rows: usize, capacity: usize) -> Self {
        let mut offsets = Vec::with_capacity(capacity.max(rows) + 1);
        offsets.resize(rows + 1, 0);
        Self {
            offsets,
            bytes: Vec::new(),
        }
    }

    /// Ends the current row.
    fn end_row(&mut self) {
        // A batch's text never approaches 4 GiB (batch rows × line cap), but
        // saturate rather than wrap if a configuration allowed it.
        self.offsets
            .push(u32::try_from(self.bytes.len()).unwrap_or(u32::MAX));
    }

    fn get(&self, row: usize) -> Option<&str> {
        let start = *self.offsets.get(row)? as usize;
        let end = *self.offsets.get(row + 1)? as usize;
        let value = self.bytes.get(start..end)?;
        // Only `push` writes here, from `&str`.
        std::str::from_utf8(value).ok().filter(|v| !v.is_empty())
    }
}

/// A batch of flows, one vector per column. Fields are public for
/// read access by stages downstream; only [`FlowBatch::push`] appends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    missing_docs,
    reason = "columns mirror wit/detector.wit `flow-batch`, documented there"
)]
pub struct FlowBatch {
    pub ts: Vec<i64>,
    pub duration: Vec<u64>,
    pub src_addr: Vec<u8>,
    pub dst_addr: Vec<u8>,
    pub src_port: Vec<u16>,
    pub dst_port: Vec<u16>,
    pub proto: Vec<u8>,
    pub kind: Vec<u8>,
    pub direction: Vec<u8>,
    pub institution: Vec<u16>,
    pub src_bytes: Vec<u64>,
    pub dst_bytes: Vec<u64>,
    pub src_pkts: Vec<u32>,
    pub dst_pkts: Vec<u32>,
    pub conn_state: Vec<u8>,
    pub src_country: Vec<u16>,
    pub dst_country: Vec<u16>,
    pub dns_qtype: Vec<u16>,
    pub dns_rcode: Vec<u16>,
    pub http_status: Vec<u16>,
    /// One arena per text field, created at the first row that carries
    /// the field: a batch pays per row only for the fields it has.
    text: [Option<TextArena>; TextField::COUNT],
    /// The fields that have an arena, in the order they appeared.
    active: Vec<TextField>,
    // Host-only columns: never lowered to plugins.
    /// Sensor flow id (0 when none).
    pub flow_id: Vec<u64>,
    /// Other registered institution of the flow, or [`NO_INSTITUTION`].
    pub peer_institution: Vec<u16>,
    /// Input index of each row.
    pub input: Vec<u16>,
    /// Input line of each row.
    pub line: Vec<u64>,
}

fn octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn country_code(country: Option<[u8; 2]>) -> u16 {
    country.map_or(0, u16::from_be_bytes)
}

impl Default for FlowBatch {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl FlowBatch {
    /// An empty batch with room for `rows` flows.
    pub fn with_capacity(rows: usize) -> Self {
        Self {
            ts: Vec::with_capacity(rows),
            duration: Vec::with_capacity(rows),
            src_addr: Vec::with_capacity(rows * 16),
            dst_addr: Vec::with_capacity(rows * 16),
            src_port: Vec::with_capacity(rows),
            dst_port: Vec::with_capacity(rows),
            proto: Vec::with_capacity(rows),
            kind: Vec::with_capacity(rows),
            direction: Vec::with_capacity(rows),
            institution: Vec::with_capacity(rows),
            src_bytes: Vec::with_capacity(rows),
            dst_bytes: Vec::with_capacity(rows),
            src_pkts: Vec::with_capacity(rows),
            dst_pkts: Vec::with_capacity(rows),
            conn_state: Vec::with_capacity(rows),
            src_country: Vec::with_capacity(rows),
            dst_country: Vec::with_capacity(rows),
            dns_qtype: Vec::with_capacity(rows),
            dns_rcode: Vec::with_capacity(rows),
            http_status: Vec::with_capacity(rows),
            text: Default::default(),
            active: Vec::new(),
            flow_id: Vec::with_capacity(rows),
            peer_institution: Vec::with_capacity(rows),
            input: Vec::with_capacity(rows),
            line: Vec::with_capacity(rows),
        }
    }

    /// Number of flows.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// Whether the batch holds no flows.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Appends one record.
    pub fn push(&mut self, record: &FlowRecord<'_>, placement: &Placement) {
        let row = self.len();
        for (field, value) in record.text.iter() {
            let arena = match &mut self.text[field as usize] {
                Some(arena) => arena,
                slot @ None => {
                    self.active.push(field);
                    slot.insert(TextArena::empty_rows(row, self.ts.capacity()))
                }
            };
            arena.bytes.extend_from_slice(value.as_bytes());
        }
        for field in &self.active {
            if let Some(arena) = &mut self.text[*field as usize] {
                arena.end_row();
            }
        }
        self.ts.push(record.ts);
        self.duration.push(record.duration);
        self.src_addr.extend_from_slice(&octets(record.src));
        self.dst_addr.extend_from_slice(&octets(record.dst));
        self.src_port.push(record.src_port);
        self.dst_port.push(record.dst_port);
        self.proto.push(record.proto);
        self.kind.push(record.kind as u8);
        self.direction.push(placement.direction as u8);
        self.institution.push(placement.institution);
        self.src_bytes.push(record.src_bytes);
        self.dst_bytes.push(record.dst_bytes);
        self.src_pkts.push(record.src_pkts);
        self.dst_pkts.push(record.dst_pkts);
        self.conn_state.push(record.conn_state as u8);
        self.src_country
            .push(country_code(record.src_country.or(placement.src_country)));
        self.dst_country
            .push(country_code(record.dst_country.or(placement.dst_country)));
        self.dns_qtype.push(record.dns_qtype);
        self.dns_rcode.push(record.dns_rcode.unwrap_or(u16::MAX));
        self.http_status.push(record.http_status);
        self.flow_id.push(record.flow_id);
        self.peer_institution
            .push(placement.peer_institution.unwrap_or(NO_INSTITUTION));
        self.input.push(placement.input);
        self.line.push(placement.line);
    }

    /// The batch as the contract's `flow-batch`, restricted to `rows` and
    /// carrying only the text `fields` (a plugin's granted fields). `text`
    /// is scratch space for the column list.
    pub fn view<'a>(
        &'a self,
        rows: Range<usize>,
        fields: &[TextField],
        text: &'a mut Vec<TextColumnView<'a>>,
    ) -> BatchView<'a> {
        let rows = rows.start.min(self.len())..rows.end.min(self.len());
        text.clear();
        // A field no row carries is left out, as the contract allows: a
        // connection log lowers no text at all.
        for field in fields {
            if let Some(arena) = &self.text[*field as usize] {
                text.push(TextColumnView {
                    field: (*field).into(),
                    // Offsets of the range, into the whole arena: the
                    // contract allows offsets that do not start at zero.
                    offsets: &arena.offsets[rows.start..=rows.end],
                    bytes: &arena.bytes,
                });
            }
        }
        let r = rows.clone();
        BatchView {
            rows: u32::try_from(r.len()).unwrap_or(u32::MAX),
            ts: &self.ts[r.clone()],
            duration: &self.duration[r.clone()],
            src_addr: &self.src_addr[r.start * 16..r.end * 16],
            dst_addr: &self.dst_addr[r.start * 16..r.end * 16],
            src_port: &self.src_port[r.clone()],
            dst_port: &self.dst_port[r.clone()],
            proto: &self.proto[r.clone()],
            kind: &self.kind[r.clone()],
            direction: &self.direction[r.clone()],
            institution: &self.institution[r.clone()],
            src_bytes: &self.src_bytes[r.clone()],
            dst_bytes: &self.dst_bytes[r.clone()],
            src_pkts: &self.src_pkts[r.clone()],
            dst_pkts: &self.dst_pkts[r.clone()],
            conn_state: &self.conn_state[r.clone()],
            src_country: &self.src_country[r.clone()],
            dst_country: &self.dst_country[r.clone()],
            dns_qtype: &self.dns_qtype[r.clone()],
            dns_rcode: &self.dns_rcode[r.clone()],
            http_status: &self.http_status[r],
            text,
        }
    }

    /// Source address of `row`.
    pub fn src(&self, row: usize) -> IpAddr {
        address(&self.src_addr, row)
    }

    /// Destination address of `row`.
    pub fn dst(&self, row: usize) -> IpAddr {
        address(&self.dst_addr, row)
    }

    /// Text value of `row`.
    pub fn text(&self, row: usize, field: TextField) -> Option<&str> {
        self.text[field as usize].as_ref()?.get(row)
    }

    /// Whether any row carries `field`.
    pub fn has_text(&self, field: TextField) -> bool {
        self.text[field as usize]
            .as_ref()
            .is_some_and(|a| !a.bytes.is_empty())
    }

    /// Record kind of `row`.
    pub fn kind(&self, row: usize) -> Kind {
        match self.kind.get(row) {
            Some(1) => Kind::Dns,
            Some(2) => Kind::Tls,
            Some(3) => Kind::Http,
            Some(4) => Kind::Smtp,
            Some(5) => Kind::File,
            Some(6) => Kind::Alert,
            _ => Kind::Connection,
        }
    }

    /// Direction of `row`.
    pub fn direction(&self, row: usize) -> Direction {
        Direction::from_code(self.direction.get(row).copied().unwrap_or(0))
    }

    /// Connection state of `row`.
    pub fn conn_state(&self, row: usize) -> ConnState {
        const STATES: [ConnState; 14] = [
            ConnState::Unknown,
            ConnState::S0,
            ConnState::S1,
            ConnState::SF,
            ConnState::REJ,
            ConnState::S2,
            ConnState::S3,
            ConnState::RSTO,
            ConnState::RSTR,
            ConnState::RSTOS0,
            ConnState::RSTRH,
            ConnState::SH,
            ConnState::SHR,
            ConnState::OTH,
        ];
        self.conn_state
            .get(row)
            .and_then(|c| STATES.get(usize::from(*c)))
            .copied()
            .unwrap_or_default()
    }

    /// Newest start time in the batch (data time).
    pub fn max_ts(&self) -> Option<Micros> {
        self.ts.iter().copied().max()
    }
}

fn address(column: &[u8], row: usize) -> IpAddr {
    let mut octets = [0; 16];
    if let Some(bytes) = column.get(row * 16..row * 16 + 16) {
        octets.copy_from_slice(bytes);
    }
    Ipv6Addr::from(octets).to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(src: &str, dst: &str, port: u16) -> FlowRecord<'static> {
        let mut r = FlowRecord::new(1_000_000, src.parse().unwrap(), dst.parse().unwrap());
        r.dst_port = port;
        r
    }

    fn placement() -> Placement {
        Placement {
            institution: 0,
            peer_institution: None,
            direction: Direction::Outbound,
            src_country: None,
            dst_country: Some(*b"JP"),
            input: 0,
            line: 7,
        }
    }

    #[test]
    fn pushed_rows_read_back() {
        let mut batch = FlowBatch::with_capacity(4);
        let mut first = record("192.0.2.1", "2001:db8::5", 53);
        first.text.set(TextField::DnsQuery, "example.org");
        batch.push(&first, &placement());
        batch.push(&record("192.0.2.1", "198.51.100.1", 443), &placement());
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.src(0).to_string(), "192.0.2.1");
        assert_eq!(batch.dst(0).to_string(), "2001:db8::5");
        assert_eq!(batch.text(0, TextField::DnsQuery), Some("example.org"));
        assert_eq!(batch.text(1, TextField::DnsQuery), None);
        assert_eq!(batch.dst_country[0], u16::from_be_bytes(*b"JP"));
        assert_eq!(batch.direction(1), Direction::Outbound);
    }

    #[test]
    fn a_view_carries_only_the_granted_fields_over_the_range() {
        let mut batch = FlowBatch::with_capacity(4);
        for (i, name) in ["a.example", "bb.example", "ccc.example"]
            .iter()
            .enumerate()
        {
            let mut r = record("192.0.2.1", "198.51.100.1", i as u16);
            r.text.set(TextField::DnsQuery, *name);
            r.text.set(TextField::MailFrom, "secret@example.org");
            batch.push(&r, &placement());
        }
        let mut scratch = Vec::new();
        let view = batch.view(1..3, &[TextField::DnsQuery], &mut scratch);
        assert_eq!(view.rows, 2);
        assert_eq!(view.dst_port, &[1, 2]);
        assert_eq!(view.src_addr.len(), 32);
        assert_eq!(view.text.len(), 1);
        let column = &view.text[0];
        let (start, end) = (column.offsets[0] as usize, column.offsets[2] as usize);
        assert_eq!(&column.bytes[start..end], b"bb.exampleccc.example");
    }

    #[test]
    fn a_field_first_seen_mid_batch_lowers_every_row_and_one_never_seen_is_left_out() {
        let mut batch = FlowBatch::with_capacity(2);
        batch.push(&record("192.0.2.1", "198.51.100.1", 80), &placement());
        let mut sni = record("192.0.2.1", "198.51.100.1", 443);
        sni.text.set(TextField::TlsSni, "www.example.org");
        batch.push(&sni, &placement());
        // Past the capacity, and without the field again.
        batch.push(&record("192.0.2.1", "198.51.100.1", 22), &placement());

        assert_eq!(batch.text(0, TextField::TlsSni), None);
        assert_eq!(batch.text(1, TextField::TlsSni), Some("www.example.org"));
        assert_eq!(batch.text(2, TextField::TlsSni), None);
        assert!(batch.has_text(TextField::TlsSni));
        assert!(!batch.has_text(TextField::DnsQuery));

        let mut scratch = Vec::new();
        let fields = [TextField::TlsSni, TextField::DnsQuery];
        let view = batch.view(0..3, &fields, &mut scratch);
        assert_eq!(view.text.len(), 1);
        assert_eq!(view.text[0].offsets, &[0, 0, 15, 15]);
        assert_eq!(view.text[0].bytes, b"www.example.org");
        let mut scratch = Vec::new();
        let tail = batch.view(2..3, &fields, &mut scratch);
        assert_eq!(tail.text.len(), 1);
        assert_eq!(tail.text[0].offsets, &[15, 15]);
    }
}
