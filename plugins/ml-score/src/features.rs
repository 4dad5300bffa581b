//! The fixed catalogue of per-flow features a model can ask for.
//!
//! A model's spec lists features by name, in the order of its input columns.
//! Per-flow features read one row of the batch; window features read the
//! source's [`Windows`] entry after this flow was counted in it.
//! `scripts/model/features.py` computes the same values for training and
//! must change with this file: every value is computed in `f64` and rounded
//! once to `f32`, so both sides agree to the last bit.

use foldhash::HashMap;
use kansoku_plugin::{Batch, ConnState, Direction, Flow, Kind, TextField, Timestamp};
use serde::{Deserialize, Serialize};

/// One feature of the catalogue. Names are the spec's (`snake_case`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// Duration in seconds.
    Duration,
    /// `ln(1 + duration in seconds)`.
    LogDuration,
    /// Bytes sent by the source (payload bytes from Zeek, IP bytes from EVE).
    SrcBytes,
    /// Bytes sent by the destination.
    DstBytes,
    /// `ln(1 + src_bytes)`.
    LogSrcBytes,
    /// `ln(1 + dst_bytes)`.
    LogDstBytes,
    /// Packets sent by the source.
    SrcPkts,
    /// Packets sent by the destination.
    DstPkts,
    /// `ln(1 + src_pkts)`.
    LogSrcPkts,
    /// `ln(1 + dst_pkts)`.
    LogDstPkts,
    /// `src_bytes / max(1, src_pkts)`.
    SrcBytesPerPkt,
    /// `dst_bytes / max(1, dst_pkts)`.
    DstBytesPerPkt,
    /// Source port (ICMP type for ICMP).
    SrcPort,
    /// Destination port (ICMP code for ICMP).
    DstPort,
    /// 1 when the destination port is below 1024.
    DstPortWellKnown,
    /// 1 for TCP.
    ProtoTcp,
    /// 1 for UDP.
    ProtoUdp,
    /// 1 for ICMP or ICMPv6.
    ProtoIcmp,
    /// 1 when no application protocol was recognised.
    ServiceNone,
    /// 1 for DNS.
    ServiceDns,
    /// 1 for HTTP.
    ServiceHttp,
    /// 1 for TLS (Zeek's `ssl`, Suricata's `tls`).
    ServiceTls,
    /// 1 for SSH.
    ServiceSsh,
    /// 1 for any other recognised application protocol.
    ServiceOther,
    /// 1 for inbound flows (needs the engine's institution prefixes).
    DirInbound,
    /// 1 for outbound flows.
    DirOutbound,
    /// 1 for flows between two monitored prefixes.
    DirInternal,
    /// 1 for connection state `SF` (normal establishment and end).
    StateSf,
    /// 1 for `S0` (attempt, no reply).
    StateS0,
    /// 1 for `REJ` (attempt rejected).
    StateRej,
    /// 1 for `RSTO`, `RSTR`, `RSTOS0`, `RSTRH` (reset).
    StateReset,
    /// 1 for any other known state (`S1`, `S2`, `S3`, `SH`, `SHR`, `OTH`);
    /// an unknown state (UDP, ICMP, no flags) sets no state feature.
    StateOther,
    /// Flows from the source in its current window, this one included.
    SrcFlows,
    /// `ln(1 + src_flows)`.
    LogSrcFlows,
    /// Distinct destination addresses of the source in its window
    /// (estimated, exact while small; saturates at 1420).
    SrcDistinctDsts,
    /// Distinct destination ports of the source in its window (estimated
    /// the same way).
    SrcDistinctDstPorts,
}

impl Feature {
    /// Whether the feature reads the source's window.
    pub fn needs_window(self) -> bool {
        matches!(
            self,
            Self::SrcFlows | Self::LogSrcFlows | Self::SrcDistinctDsts | Self::SrcDistinctDstPorts
        )
    }

    /// Whether the feature reads the `service` text field.
    fn needs_service(self) -> bool {
        matches!(
            self,
            Self::ServiceNone
                | Self::ServiceDns
                | Self::ServiceHttp
                | Self::ServiceTls
                | Self::ServiceSsh
                | Self::ServiceOther
        )
    }

    /// Every feature, in catalogue order.
    pub const ALL: [Feature; 36] = [
        Self::Duration,
        Self::LogDuration,
        Self::SrcBytes,
        Self::DstBytes,
        Self::LogSrcBytes,
        Self::LogDstBytes,
        Self::SrcPkts,
        Self::DstPkts,
        Self::LogSrcPkts,
        Self::LogDstPkts,
        Self::SrcBytesPerPkt,
        Self::DstBytesPerPkt,
        Self::SrcPort,
        Self::DstPort,
        Self::DstPortWellKnown,
        Self::ProtoTcp,
        Self::ProtoUdp,
        Self::ProtoIcmp,
        Self::ServiceNone,
        Self::ServiceDns,
        Self::ServiceHttp,
        Self::ServiceTls,
        Self::ServiceSsh,
        Self::ServiceOther,
        Self::DirInbound,
        Self::DirOutbound,
        Self::DirInternal,
        Self::StateSf,
        Self::StateS0,
        Self::StateRej,
        Self::StateReset,
        Self::StateOther,
        Self::SrcFlows,
        Self::LogSrcFlows,
        Self::SrcDistinctDsts,
        Self::SrcDistinctDstPorts,
    ];

    /// The spec's name of the feature.
    pub fn name(self) -> &'static str {
        match self {
            Self::Duration => "duration",
            Self::LogDuration => "log_duration",
            Self::SrcBytes => "src_bytes",
            Self::DstBytes => "dst_bytes",
            Self::LogSrcBytes => "log_src_bytes",
            Self::LogDstBytes => "log_dst_bytes",
            Self::SrcPkts => "src_pkts",
            Self::DstPkts => "dst_pkts",
            Self::LogSrcPkts => "log_src_pkts",
            Self::LogDstPkts => "log_dst_pkts",
            Self::SrcBytesPerPkt => "src_bytes_per_pkt",
            Self::DstBytesPerPkt => "dst_bytes_per_pkt",
            Self::SrcPort => "src_port",
            Self::DstPort => "dst_port",
            Self::DstPortWellKnown => "dst_port_well_known",
            Self::ProtoTcp => "proto_tcp",
            Self::ProtoUdp => "proto_udp",
            Self::ProtoIcmp => "proto_icmp",
            Self::ServiceNone => "service_none",
            Self::ServiceDns => "service_dns",
            Self::ServiceHttp => "service_http",
            Self::ServiceTls => "service_tls",
            Self::ServiceSsh => "service_ssh",
            Self::ServiceOther => "service_other",
            Self::DirInbound => "dir_inbound",
            Self::DirOutbound => "dir_outbound",
            Self::DirInternal => "dir_internal",
            Self::StateSf => "state_sf",
            Self::StateS0 => "state_s0",
            Self::StateRej => "state_rej",
            Self::StateReset => "state_reset",
            Self::StateOther => "state_other",
            Self::SrcFlows => "src_flows",
            Self::LogSrcFlows => "log_src_flows",
            Self::SrcDistinctDsts => "src_distinct_dsts",
            Self::SrcDistinctDstPorts => "src_distinct_dst_ports",
        }
    }
}

/// Application protocol, as far as the catalogue distinguishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    None,
    Dns,
    Http,
    Tls,
    Ssh,
    Other,
}

impl Service {
    /// The first protocol of Zeek's comma-separated list decides.
    fn of(value: &[u8]) -> Self {
        let first = value.split(|&b| b == b',').next().unwrap_or_default();
        match first {
            b"" | b"-" => Self::None,
            b"dns" => Self::Dns,
            b"http" => Self::Http,
            b"ssl" | b"tls" => Self::Tls,
            b"ssh" => Self::Ssh,
            _ => Self::Other,
        }
    }
}

/// (institution, source address).
pub type SourceKey = (u16, [u8; 16]);

/// Bits of a distinct-count sketch.
const SKETCH_BITS: usize = 256;

/// One source's current window. Distinct destinations and ports are
/// counted in 256-bit linear-counting sketches: fixed size, exact while
/// small, within a few percent up to several hundred.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostWindow {
    /// Time of the flow that opened the window.
    pub start: Timestamp,
    /// Flows counted.
    pub flows: u32,
    /// Findings raised for the source in this window (rate limit).
    pub findings: u32,
    dsts: [u64; 4],
    ports: [u64; 4],
}

impl HostWindow {
    fn open(ts: Timestamp) -> Self {
        Self {
            start: ts,
            ..Self::default()
        }
    }

    fn count(&mut self, dst: &[u8; 16], port: u16) {
        self.flows = self.flows.saturating_add(1);
        set_bit(&mut self.dsts, address_slot(dst));
        set_bit(&mut self.ports, port_slot(port));
    }
}

fn set_bit(sketch: &mut [u64; 4], slot: usize) {
    sketch[slot >> 6] |= 1 << (slot & 63);
}

/// Fibonacci hashing: the top byte of the product depends on every bit of
/// the input. `features.py` uses the same constant.
const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

fn address_slot(address: &[u8; 16]) -> usize {
    let bits = u128::from_be_bytes(*address);
    let folded = (bits >> 64) as u64 ^ bits as u64;
    (folded.wrapping_mul(MIX) >> 56) as usize
}

fn port_slot(port: u16) -> usize {
    (u64::from(port).wrapping_mul(MIX) >> 56) as usize
}

/// Linear-counting estimate for each number of zero bits, rounded to an
/// integer so that `ln` implementations differing in the last bit cannot
/// change a feature.
fn distinct_table() -> Vec<f64> {
    let m = SKETCH_BITS as f64;
    (0..=SKETCH_BITS)
        .map(|zeros| {
            let zeros = zeros.max(1) as f64;
            (m * (m / zeros).ln()).round()
        })
        .collect()
}

/// Counts below this take `ln(1 + n)` from a table: `log1p` was a sixth
/// of the per-flow cost, and packet and flow counts are mostly small. The
/// table holds the very values `ln_1p` computes, so features do not change.
const LOG_TABLE: usize = 1024;

fn log_table() -> Vec<f64> {
    (0..LOG_TABLE).map(|n| (n as f64).ln_1p()).collect()
}

fn ln_1p_count(table: &[f64], n: f64) -> f64 {
    // Counts are whole numbers; `as usize` of one below the table size is exact.
    if n < LOG_TABLE as f64 {
        table[n as usize]
    } else {
        n.ln_1p()
    }
}

/// Per-source windows, bounded by `max_hosts`.
#[derive(Debug, Clone)]
pub struct Windows {
    hosts: HashMap<SourceKey, HostWindow>,
    window_us: i64,
    max_hosts: usize,
    /// Windows dropped by [`Windows::expire`] once their time was over.
    pub expired: u64,
    /// Windows dropped when `max_hosts` was lowered.
    pub evicted: u64,
    /// Sources not tracked because the table was full (their window
    /// features count their current flow only).
    pub refused: u64,
    /// Data time of the last sweep for expired windows when full.
    last_sweep: Option<Timestamp>,
    distinct: Vec<f64>,
}

/// Serialised [`Windows`].
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct WindowsState {
    hosts: Vec<(SourceKey, HostWindow)>,
    expired: u64,
    evicted: u64,
    refused: u64,
}

impl Windows {
    /// Empty windows of `window_us` microseconds, at most `max_hosts`.
    pub fn new(window_us: i64, max_hosts: usize) -> Self {
        Self {
            hosts: HashMap::default(),
            window_us: window_us.max(1),
            max_hosts: max_hosts.max(1),
            expired: 0,
            evicted: 0,
            refused: 0,
            last_sweep: None,
            distinct: distinct_table(),
        }
    }

    /// The same windows under new limits (a reconfiguration): entries over
    /// the new cap are evicted.
    pub fn reconfigured(&self, window_us: i64, max_hosts: usize) -> Self {
        let mut next = Self::new(window_us, max_hosts);
        next.expired = self.expired;
        next.evicted = self.evicted;
        next.refused = self.refused;
        next.hosts = self.hosts.clone();
        next.trim(max_hosts.max(1));
        next
    }

    /// Number of sources tracked.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Whether no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The source's window at `ts`, opened (or reopened, when the current
    /// one is over) as needed. `None` when the table is full and no window
    /// is over: the source goes untracked rather than costing a search for
    /// a victim on every new source of a flood.
    fn current(&mut self, key: SourceKey, ts: Timestamp) -> Option<&mut HostWindow> {
        if self.hosts.len() >= self.max_hosts && !self.hosts.contains_key(&key) {
            self.sweep(ts);
            if self.hosts.len() >= self.max_hosts {
                self.refused += 1;
                return None;
            }
        }
        let window_us = self.window_us;
        let window = self
            .hosts
            .entry(key)
            .or_insert_with(|| HostWindow::open(ts));
        if ts >= window.start.saturating_add(window_us) {
            *window = HostWindow::open(ts);
        }
        Some(window)
    }

    /// Counts a flow in its source's window and returns the window (a
    /// window of this flow alone when the source is untracked).
    fn observe(&mut self, key: SourceKey, ts: Timestamp, dst: &[u8; 16], port: u16) -> HostWindow {
        let mut scratch = HostWindow::open(ts);
        let window = self.current(key, ts).unwrap_or(&mut scratch);
        window.count(dst, port);
        *window
    }

    /// Whether the source of a flow at `ts` may raise another finding in its
    /// window (at most `limit`); counts it if so. An untracked source may.
    pub fn allow_finding(&mut self, key: SourceKey, ts: Timestamp, limit: u32) -> bool {
        let Some(window) = self.current(key, ts) else {
            return limit > 0;
        };
        if window.findings >= limit {
            return false;
        }
        window.findings += 1;
        true
    }

    /// Drops windows over at `now`.
    pub fn expire(&mut self, now: Timestamp) {
        let window_us = self.window_us;
        let before = self.hosts.len();
        self.hosts
            .retain(|_, w| now < w.start.saturating_add(window_us));
        self.expired += (before - self.hosts.len()) as u64;
    }

    /// The table is full: drops windows that are over, at most once per
    /// quarter window of data time (a sweep reads the whole table).
    fn sweep(&mut self, now: Timestamp) {
        let due = self
            .last_sweep
            .is_none_or(|last| now.saturating_sub(last) >= self.window_us / 4);
        if due {
            self.last_sweep = Some(now);
            self.expire(now);
        }
    }

    /// Evicts arbitrary windows until at most `limit` are left (a smaller
    /// cap after a reconfiguration).
    fn trim(&mut self, limit: usize) {
        while self.hosts.len() > limit {
            let Some(key) = self.hosts.keys().next().copied() else {
                break;
            };
            self.hosts.remove(&key);
            self.evicted += 1;
        }
    }

    /// State for a replacement instance.
    pub fn state(&self) -> WindowsState {
        WindowsState {
            hosts: self.hosts.iter().map(|(k, w)| (*k, *w)).collect(),
            expired: self.expired,
            evicted: self.evicted,
            refused: self.refused,
        }
    }

    /// Takes over `state`, within this instance's cap.
    pub fn restore(&mut self, state: WindowsState) {
        self.expired = state.expired;
        self.evicted = state.evicted;
        self.refused = state.refused;
        self.hosts = state.hosts.into_iter().collect();
        self.trim(self.max_hosts);
    }
}

/// Computes the features of a spec, row by row, into one flat matrix.
#[derive(Debug, Clone)]
pub struct Extractor {
    features: Vec<Feature>,
    log: Vec<f64>,
    needs_window: bool,
    needs_service: bool,
}

/// The fields of one flow the catalogue reads, already converted.
struct Row {
    duration: f64,
    src_bytes: f64,
    dst_bytes: f64,
    src_pkts: f64,
    dst_pkts: f64,
    src_port: u16,
    dst_port: u16,
    proto: u8,
    service: Service,
    direction: Direction,
    state: ConnState,
    window: HostWindow,
}

impl Extractor {
    /// An extractor for `features`, in that order.
    pub fn new(features: Vec<Feature>) -> Self {
        let needs_window = features.iter().any(|f| f.needs_window());
        let needs_service = features.iter().any(|f| f.needs_service());
        Self {
            features,
            log: log_table(),
            needs_window,
            needs_service,
        }
    }

    /// The features, in column order.
    pub fn features(&self) -> &[Feature] {
        &self.features
    }

    /// Columns per row.
    pub fn width(&self) -> usize {
        self.features.len()
    }

    /// Appends one row of features per connection of `batch` to `out`, and
    /// its row in the batch to `rows`, counting every connection in
    /// `windows` when a feature needs them. Application records (DNS, HTTP,
    /// TLS…) describe a connection that has its own record, and carry no
    /// byte or packet counts: models are trained on connections alone.
    pub fn extract(
        &self,
        batch: &Batch,
        windows: &mut Windows,
        rows: &mut Vec<u32>,
        out: &mut Vec<f32>,
    ) {
        let service = if self.needs_service {
            batch.text(TextField::Service)
        } else {
            None
        };
        for flow in batch.iter().filter(|f| f.kind() == Kind::Connection) {
            rows.push(flow.row());
            let service = match &service {
                Some(column) => column
                    .get_bytes(flow.row() as usize)
                    .map_or(Service::None, Service::of),
                None => Service::None,
            };
            let window = if self.needs_window {
                windows.observe(
                    source_key(&flow),
                    flow.ts(),
                    &flow.dst_octets(),
                    flow.dst_port(),
                )
            } else {
                HostWindow::default()
            };
            let row = Row {
                duration: flow.duration_us() as f64 / 1e6,
                src_bytes: flow.src_bytes() as f64,
                dst_bytes: flow.dst_bytes() as f64,
                src_pkts: f64::from(flow.src_pkts()),
                dst_pkts: f64::from(flow.dst_pkts()),
                src_port: flow.src_port(),
                dst_port: flow.dst_port(),
                proto: flow.proto(),
                service,
                direction: flow.direction(),
                state: flow.conn_state(),
                window,
            };
            out.extend(
                self.features
                    .iter()
                    .map(|f| value(*f, &row, windows, &self.log) as f32),
            );
        }
    }
}

/// The window key of a flow's source.
pub fn source_key(flow: &Flow<'_>) -> SourceKey {
    (flow.institution(), flow.src_octets())
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn value(feature: Feature, r: &Row, windows: &Windows, log: &[f64]) -> f64 {
    use ConnState as S;
    match feature {
        Feature::Duration => r.duration,
        Feature::LogDuration => r.duration.ln_1p(),
        Feature::SrcBytes => r.src_bytes,
        Feature::DstBytes => r.dst_bytes,
        Feature::LogSrcBytes => ln_1p_count(log, r.src_bytes),
        Feature::LogDstBytes => ln_1p_count(log, r.dst_bytes),
        Feature::SrcPkts => r.src_pkts,
        Feature::DstPkts => r.dst_pkts,
        Feature::LogSrcPkts => ln_1p_count(log, r.src_pkts),
        Feature::LogDstPkts => ln_1p_count(log, r.dst_pkts),
        Feature::SrcBytesPerPkt => r.src_bytes / r.src_pkts.max(1.0),
        Feature::DstBytesPerPkt => r.dst_bytes / r.dst_pkts.max(1.0),
        Feature::SrcPort => f64::from(r.src_port),
        Feature::DstPort => f64::from(r.dst_port),
        Feature::DstPortWellKnown => flag(r.dst_port < 1024),
        Feature::ProtoTcp => flag(r.proto == 6),
        Feature::ProtoUdp => flag(r.proto == 17),
        Feature::ProtoIcmp => flag(r.proto == 1 || r.proto == 58),
        Feature::ServiceNone => flag(r.service == Service::None),
        Feature::ServiceDns => flag(r.service == Service::Dns),
        Feature::ServiceHttp => flag(r.service == Service::Http),
        Feature::ServiceTls => flag(r.service == Service::Tls),
        Feature::ServiceSsh => flag(r.service == Service::Ssh),
        Feature::ServiceOther => flag(r.service == Service::Other),
        Feature::DirInbound => flag(r.direction == Direction::Inbound),
        Feature::DirOutbound => flag(r.direction == Direction::Outbound),
        Feature::DirInternal => flag(r.direction == Direction::Internal),
        Feature::StateSf => flag(r.state == S::SF),
        Feature::StateS0 => flag(r.state == S::S0),
        Feature::StateRej => flag(r.state == S::REJ),
        Feature::StateReset => flag(matches!(r.state, S::RSTO | S::RSTR | S::RSTOS0 | S::RSTRH)),
        Feature::StateOther => flag(matches!(
            r.state,
            S::S1 | S::S2 | S::S3 | S::SH | S::SHR | S::OTH
        )),
        Feature::SrcFlows => f64::from(r.window.flows),
        Feature::LogSrcFlows => ln_1p_count(log, f64::from(r.window.flows)),
        Feature::SrcDistinctDsts => windows.distinct[zeros(&r.window.dsts)],
        Feature::SrcDistinctDstPorts => windows.distinct[zeros(&r.window.ports)],
    }
}

fn zeros(sketch: &[u64; 4]) -> usize {
    sketch.iter().map(|b| b.count_zeros() as usize).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_spelling() {
        assert_eq!(
            Feature::SrcDistinctDstPorts.name(),
            "src_distinct_dst_ports"
        );
        assert_eq!(Feature::LogDuration.name(), "log_duration");
    }

    #[test]
    fn the_distinct_estimate_is_exact_while_small() {
        let table = distinct_table();
        assert_eq!(table[256], 0.0);
        assert_eq!(table[255], 1.0);
        assert_eq!(table[250], 6.0);
        assert_eq!(table[0], 1420.0);
    }

    #[test]
    fn every_name_parses_back_to_its_feature() {
        #[derive(Deserialize)]
        struct One {
            f: Feature,
        }
        for feature in Feature::ALL {
            let one: One = toml::from_str(&format!("f = \"{}\"", feature.name())).unwrap();
            assert_eq!(one.f, feature);
        }
    }

    fn key(i: u32) -> SourceKey {
        let mut octets = [0; 16];
        octets[12..].copy_from_slice(&i.to_be_bytes());
        (0, octets)
    }

    #[test]
    fn windows_stay_within_their_cap_and_count_what_they_drop() {
        let mut windows = Windows::new(300_000_000, 100);
        for i in 0..1000 {
            let w = windows.observe(key(i), 0, &[0; 16], 80);
            assert_eq!(w.flows, 1);
        }
        assert_eq!(windows.len(), 100);
        assert_eq!(windows.refused, 900);
        // Once their time is over, windows make room for new sources.
        windows.observe(key(5000), 300_000_000, &[0; 16], 80);
        assert_eq!((windows.len(), windows.refused), (1, 900));
        assert_eq!(windows.expired, 100);
        // A lower cap evicts.
        let mut windows = Windows::new(300_000_000, 100);
        for i in 0..100 {
            windows.observe(key(i), 0, &[0; 16], 80);
        }
        let smaller = windows.reconfigured(300_000_000, 10);
        assert_eq!((smaller.len(), smaller.evicted), (10, 90));
    }

    #[test]
    fn a_window_counts_until_its_time_is_over() {
        let mut windows = Windows::new(300_000_000, 100);
        let dst = |i: u8| [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, i];
        for i in 0..10 {
            windows.observe(
                key(1),
                i64::from(i) * 1_000_000,
                &dst(i),
                80 + u16::from(i % 2),
            );
        }
        let w = windows.observe(key(1), 299_999_999, &dst(0), 80);
        assert_eq!(w.flows, 11);
        assert_eq!(windows.distinct[zeros(&w.dsts)], 10.0);
        assert_eq!(windows.distinct[zeros(&w.ports)], 2.0);
        let w = windows.observe(key(1), 300_000_000, &dst(0), 80);
        assert_eq!(w.flows, 1);
        windows.expire(600_000_000);
        assert!(windows.is_empty());
    }

    #[test]
    fn service_lists_take_their_first_protocol() {
        assert_eq!(Service::of(b"ssl,http"), Service::Tls);
        assert_eq!(Service::of(b"quic"), Service::Other);
        assert_eq!(Service::of(b""), Service::None);
    }
}
