//! Beacon analysis, ported from RITA v5.
//!
//! Connections are grouped by source → destination address (`beacon-ip`)
//! and by source → server name, the TLS SNI or HTTP host (`beacon-sni`).
//! Over the last 24 hours of data, each pair with enough distinct
//! connection times is scored as RITA does ([`score`]): regular intervals,
//! regular sizes, a flat hourly histogram and a long span make a beacon.
//! Pairs are scored from `tick`, every `report_every_secs` of data time and
//! when the data has been silent for `idle_secs`.
//!
//! As in RITA, a connection that belongs to a name pair with enough
//! connections to be scored is not scored again by address, and a
//! connection through an HTTP proxy (`CONNECT`) counts for the name it
//! asked the proxy for.
//!
//! Memory is bounded whatever the traffic: a pair seen once waits in a
//! fixed probation table (`pairs::Probation`), pairs are capped per kind,
//! and samples go to one capped append-only log (`pairs::Entry`) that is
//! sorted out by pair at report time. The log's budget is shared out
//! rather than first come, first served: a busy pair is sampled one
//! connection in 2, 4, … (each sample weighted), and a nearly full log is
//! compacted by thinning only the busiest pairs (`Beacons::compact`), so a
//! beacon that starts late in the day still finds room.
//! `rulesets/ml-score/README.md` has the details and figures.

mod join;
mod pairs;
pub mod score;
mod settings;

use std::net::Ipv6Addr;

use foldhash::HashSet;
use kansoku_plugin::{Address, Batch, Entity, Finding, Severity, TextField, Timestamp};
use serde::{Deserialize, Serialize};

use join::{ConnPart, Joins, NameRef, Pending};
use pairs::{Entry, Evictions, NAME_TABLE, Pair, Pairs, Probation, Sample, Service, Slot, push};
pub use settings::Settings;

const DAY: u32 = 86_400;
const HOUR: u32 = 3_600;
const MICROS: i64 = 1_000_000;
/// The contract's direction code of a flow from outside in.
const INBOUND: u8 = 1;
/// Services remembered by name; later ones are reported as unknown.
const MAX_SERVICES: usize = 1024;
/// Fewest samples compaction thins a pair down to: with the default caps
/// (2 × 100,000 pairs) the floors fit in the default log of 2 M samples.
const COMPACT_FLOOR: u32 = 8;
/// Rows whose pairs are looked up ahead ([`Beacons::warm`]): their index
/// and pair lines (128 B a row) stay well within a core's L2 cache.
const WARM_ROWS: usize = 256;

/// Beacon state: connection pairs and their samples.
#[derive(Debug)]
pub struct Beacons {
    settings: Settings,
    params: score::Params,
    ips: Pairs,
    /// Address pairs seen once.
    probation: Probation,
    names: Pairs,
    /// Name pairs made from a connection joined to an earlier name record,
    /// which brought only the hash: the next record of the name fills it.
    unnamed: HashSet<u64>,
    joins: Joins,
    services: Vec<Box<str>>,
    /// Samples of both tables, in arrival order.
    log: Vec<Entry>,
    evictions: Evictions,
    clock: Clock,
    /// Set when a compaction could not free an eighth of the log (every
    /// pair at the floor): no more compactions, which would each cost a
    /// pass over the log, until the next report.
    compact_stuck: bool,
}

impl Default for Beacons {
    fn default() -> Self {
        let settings = Settings::disabled();
        Self {
            params: settings.params(),
            settings,
            ips: Pairs::default(),
            probation: Probation::default(),
            names: Pairs::default(),
            unnamed: HashSet::default(),
            joins: Joins::default(),
            services: Vec::new(),
            log: Vec::new(),
            evictions: Evictions::default(),
            clock: Clock::default(),
            compact_stuck: false,
        }
    }
}

/// Data time, in whole seconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Clock {
    /// Earliest connection seen (RITA's dataset minimum).
    first: Option<u32>,
    /// Latest connection seen: the end of the window.
    last: u32,
    /// Latest row of any kind.
    latest: u32,
    /// When the last report was made (or the first connection seen).
    reported: u32,
    /// Whether connections arrived since the last report.
    dirty: bool,
}

/// What survives a hot swap. Rows waiting to be joined are not carried
/// over: at most `join_secs` of TLS/HTTP names are lost.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    ips: Vec<Pair>,
    probation: Vec<Slot>,
    names: Vec<Pair>,
    services: Vec<Box<str>>,
    evictions: Evictions,
    clock: Clock,
}

/// The text columns a batch may carry for this analysis.
struct Columns<'a> {
    sni: Option<kansoku_plugin::TextColumn<'a>>,
    host: Option<kansoku_plugin::TextColumn<'a>>,
    method: Option<kansoku_plugin::TextColumn<'a>>,
    service: Option<kansoku_plugin::TextColumn<'a>>,
}

impl Beacons {
    /// Takes new settings; returns notes for the load report. State is
    /// kept across reconfiguration, and dropped when the analysis is off.
    pub fn configure(&mut self, settings: Settings) -> Vec<String> {
        self.params = settings.params();
        self.settings = settings;
        if !self.settings.enabled {
            let evictions = self.evictions;
            *self = Self::default();
            self.evictions = evictions;
            return vec!["beacon analysis off".into()];
        }
        self.probation.allocate(self.settings.probation_slots);
        let s = &self.settings;
        let e = &self.evictions;
        vec![
            format!(
                "beacon analysis on: 24 h window, reported every {} s and after {} s idle; \
                 pairs need {} distinct connection times, reported from score {}",
                s.report_every_secs, s.idle_secs, s.min_connections, s.min_score
            ),
            format!(
                "beacon caps: {} pairs per kind, {} samples ({} a pair before thinning), \
                 {} pending joins; now {} address pairs, {} name pairs, {} samples; so far \
                 {} pairs evicted, {} refused, {} samples dropped, {} pairs thinned, \
                 {} samples thinned, {} joins dropped, {} one-off pairs forgotten",
                s.max_pairs,
                s.max_samples,
                s.max_samples_per_pair,
                s.max_pending,
                self.ips.len(),
                self.names.len(),
                self.log.len(),
                e.pairs_evicted,
                e.pairs_refused,
                e.samples_dropped,
                e.pairs_thinned,
                e.samples_thinned,
                e.joins_dropped,
                e.one_offs_forgotten
            ),
        ]
    }

    /// Records the connections of a batch. Findings come from `tick`.
    pub fn process(&mut self, batch: &Batch) -> Vec<Finding> {
        if !self.settings.enabled {
            return Vec::new();
        }
        let cols = Columns {
            sni: batch.text(TextField::TlsSni),
            host: batch.text(TextField::HttpHost),
            method: batch.text(TextField::HttpMethod),
            service: batch.text(TextField::Service),
        };
        let raw = batch.raw();
        for row in 0..batch.len() {
            if row % WARM_ROWS == 0 {
                self.warm(batch, &cols, row..(row + WARM_ROWS).min(batch.len()));
            }
            let ts = raw.ts[row];
            if ts < 0 {
                continue;
            }
            let secs = (ts / MICROS).min(i64::from(u32::MAX)) as u32;
            self.clock.latest = self.clock.latest.max(secs);
            match raw.kind[row] {
                0 => self.connection(batch, &cols, row, secs),
                2 => {
                    if let Some(name) = cols.sni.and_then(|c| c.get_bytes(row)) {
                        self.name(batch, row, name, false);
                    }
                }
                3 => {
                    if let Some(name) = cols.host.and_then(|c| c.get_bytes(row)) {
                        let proxy = cols
                            .method
                            .and_then(|c| c.get_bytes(row))
                            .is_some_and(|m| m == b"CONNECT");
                        self.name(batch, row, name, proxy);
                    }
                }
                _ => {}
            }
        }
        Vec::new()
    }

    /// Looks up the pairs of the coming rows and reads their first cache
    /// line, without acting on them: first all index entries, then all
    /// pair lines. Within each pass the reads are independent of each
    /// other, so the CPU overlaps their cache misses, where the rows'
    /// processing, each lookup waiting on the one before, would take them
    /// one at a time. What is found is looked up again (now from cache) by
    /// the processing itself, so a table changed in between does no harm.
    fn warm(&self, batch: &Batch, cols: &Columns<'_>, rows: std::ops::Range<usize>) {
        let raw = batch.raw();
        let mut touched = 0u32;
        // Found pairs, with NAME_TABLE set for name pairs.
        let mut found = [0u32; WARM_ROWS];
        let mut n = 0;
        for row in rows {
            let src = octets(&raw.src_addr, row);
            let (table, tag, bit) = match raw.kind.get(row) {
                Some(0) => (&self.ips, pair_tag(&src, &octets(&raw.dst_addr, row)), 0),
                Some(2) => match cols.sni.and_then(|c| c.get_bytes(row)) {
                    Some(name) => (
                        &self.names,
                        name_tag(&src, join::name_hash(name)),
                        NAME_TABLE,
                    ),
                    None => continue,
                },
                Some(3) => match cols.host.and_then(|c| c.get_bytes(row)) {
                    Some(name) => (
                        &self.names,
                        name_tag(&src, join::name_hash(name)),
                        NAME_TABLE,
                    ),
                    None => continue,
                },
                _ => continue,
            };
            match table.find(tag) {
                Some(i) => {
                    if let Some(slot) = found.get_mut(n) {
                        *slot = i | bit;
                        n += 1;
                    }
                }
                // A new pair goes through probation.
                None => touched = touched.wrapping_add(self.probation.peek(tag)),
            }
        }
        for &slot in found.iter().take(n) {
            let table = if slot & NAME_TABLE != 0 {
                &self.names
            } else {
                &self.ips
            };
            touched = touched.wrapping_add(table.count_at(slot & !NAME_TABLE));
        }
        std::hint::black_box(touched);
    }

    fn connection(&mut self, batch: &Batch, cols: &Columns<'_>, row: usize, secs: u32) {
        let raw = batch.raw();
        let clock = &mut self.clock;
        if clock.first.is_none() {
            clock.first = Some(secs);
            clock.reported = secs;
        }
        clock.first = clock.first.map(|f| f.min(secs));
        clock.last = clock.last.max(secs);
        clock.dirty = true;

        if self.settings.skip_inbound && raw.direction[row] == INBOUND {
            return;
        }
        let src = octets(&raw.src_addr, row);
        let dst = octets(&raw.dst_addr, row);
        let proto = raw.proto[row];
        let header = header_bytes(proto, is_v4(&src));
        let ip_bytes = |payload: u64, pkts: u32| payload.saturating_add(u64::from(pkts) * header);
        let src_ip = ip_bytes(raw.src_bytes[row], raw.src_pkts[row]);
        let dst_ip = ip_bytes(raw.dst_bytes[row], raw.dst_pkts[row]);
        let sample = Sample::new(secs, src_ip, dst_ip, raw.duration[row], false);
        let institution = raw.institution[row];
        let port = raw.dst_port[row];
        let service_text = cols.service.and_then(|c| c.get_bytes(row));

        let s = &self.settings;
        let mut service = None;
        let counted = !(s.skip_multicast && is_multicast(&dst));
        let tag = pair_tag(&src, &dst);
        // A pair seen once waits in probation; it enters the table with
        // its second connection.
        let known = if counted { self.ips.find(tag) } else { None };
        let promoted = if counted && known.is_none() {
            self.probation
                .visit(tag, sample, institution, &mut self.evictions)
        } else {
            None
        };
        let pair = match (known, promoted.is_some()) {
            (Some(i), _) => self.ips.at(i).map(|p| (i, p)),
            (None, true) => self.ips.entry(tag, s.max_pairs, &mut self.evictions),
            (None, false) => None,
        };
        let mut ip = None;
        if let Some((slot, pair)) = pair {
            ip = Some((slot, pair.generation));
            let (log, ev) = (&mut self.log, &mut self.evictions);
            let caps = (s.max_samples, s.max_samples_per_pair);
            if let Some(first) = promoted {
                pair.institution = institution;
                pair.src = src;
                pair.dst = dst;
                push(log, caps, ev, slot, pair, first.sample);
            }
            push(log, caps, ev, slot, pair, sample);
            if pair.services().len() < 2
                && !pair
                    .services()
                    .iter()
                    .any(|x| x.port == port && x.proto == proto)
            {
                let svc = Service {
                    port,
                    proto,
                    name: intern(&mut self.services, service_text),
                };
                pair.add_service(svc);
                service = Some(svc);
            }
        }
        self.compact_if_swept();
        let mut service = || {
            service.unwrap_or_else(|| Service {
                port,
                proto,
                name: intern(&mut self.services, service_text),
            })
        };

        // A row that carries its own name (a sensor that joins itself).
        let own = cols
            .sni
            .and_then(|c| c.get_bytes(row))
            .or_else(|| cols.host.and_then(|c| c.get_bytes(row)));
        if let Some(name) = own {
            let hash = join::name_hash(name);
            let part = ConnPart {
                sample,
                institution,
                service: service(),
                ip,
            };
            self.add_named(src, dst, name_ref(hash, false), &part, Some(name));
            return;
        }

        let may_be_named = service_text
            .is_some_and(|t| contains(t, b"ssl") || contains(t, b"http") || contains(t, b"tls"));
        if !may_be_named && self.joins.map.is_empty() {
            return;
        }
        let key = join::key(&src, raw.src_port[row], &dst, port);
        let part = ConnPart {
            sample,
            institution,
            service: service(),
            ip,
        };
        match self.joins.map.get_mut(&key) {
            // Joined: the entry has done its work (a name that comes
            // later still, as when a replay has the connection first and
            // both an HTTP and a TLS record, waits alone and expires).
            // Names are logged during their connection, so a name record
            // older than this connection's start is a leftover of an earlier
            // one on the same ports (handled below as a new connection).
            Some(pending) if pending.conn.is_none() && pending.seen >= secs => {
                let names = std::mem::take(&mut pending.names);
                self.joins.map.remove(&key);
                for name in names {
                    self.add_named(src, dst, name, &part, None);
                }
            }
            // The same addresses and ports again: a new connection (Zeek
            // logs one record per connection).
            Some(pending) => {
                *pending = Pending {
                    seen: secs,
                    names: Default::default(),
                    conn: Some(part),
                };
            }
            None if may_be_named => {
                if self.joins.map.len() < self.settings.max_pending {
                    self.joins.map.insert(
                        key,
                        Pending {
                            seen: secs,
                            names: Default::default(),
                            conn: Some(part),
                        },
                    );
                } else {
                    self.evictions.joins_dropped += 1;
                }
            }
            None => {}
        }
    }

    /// A TLS or HTTP record naming the server of a connection.
    fn name(&mut self, batch: &Batch, row: usize, name: &[u8], proxy: bool) {
        let raw = batch.raw();
        if self.settings.skip_inbound && raw.direction[row] == INBOUND {
            return;
        }
        let src = octets(&raw.src_addr, row);
        let dst = octets(&raw.dst_addr, row);
        let hash = join::name_hash(name);
        // A pair made from a connection record joined to an earlier name
        // record knows only the hash: the name is filled in here.
        if !self.unnamed.is_empty() {
            let tag = name_tag(&src, hash);
            if self.unnamed.remove(&tag)
                && let Some(pair) = self.names.get_mut(tag)
                && !pair.named
            {
                pair.name = Some(join::display_name(name));
                pair.named = true;
            }
        }
        let secs = self.clock.latest.min((raw.ts[row] / MICROS).max(0) as u32);
        let key = join::key(&src, raw.src_port[row], &dst, raw.dst_port[row]);
        let this = name_ref(hash, proxy);
        match self.joins.map.get_mut(&key) {
            Some(pending) => {
                // A name logged after its connection ended belongs to a
                // later connection that reuses the addresses and ports.
                if let Some(conn) = pending.conn {
                    let end =
                        u64::from(conn.sample.ts) + u64::from(conn.sample.duration_ms() / 1000) + 1;
                    if u64::from(secs) > end {
                        let mut names = smallvec::SmallVec::new();
                        names.push(this);
                        *pending = Pending {
                            seen: secs,
                            names,
                            conn: None,
                        };
                        return;
                    }
                }
                pending.seen = pending.seen.max(secs);
                if let Some(known) = pending.names.iter_mut().find(|n| n.hash == hash) {
                    known.proxy |= proxy;
                    return;
                }
                if pending.names.len() < 2 {
                    pending.names.push(this);
                }
                if let Some(part) = pending.conn {
                    self.joins.map.remove(&key);
                    self.add_named(src, dst, this, &part, Some(name));
                }
            }
            None => {
                if self.joins.map.len() < self.settings.max_pending {
                    let mut names = smallvec::SmallVec::new();
                    names.push(this);
                    self.joins.map.insert(
                        key,
                        Pending {
                            seen: secs,
                            names,
                            conn: None,
                        },
                    );
                } else {
                    self.evictions.joins_dropped += 1;
                }
            }
        }
    }

    /// Counts a connection for a name pair and links its address pair.
    fn add_named(
        &mut self,
        src: [u8; 16],
        dst: [u8; 16],
        name: NameRef,
        part: &ConnPart,
        text: Option<&[u8]>,
    ) {
        let s = &self.settings;
        let tag = name_tag(&src, name.hash);
        let sample = part.sample.with_proxy(name.proxy);
        // As for address pairs, a name pair seen once waits in probation.
        let known = self.names.find(tag);
        let first = if known.is_some() {
            None
        } else {
            match self
                .probation
                .visit(tag, sample, part.institution, &mut self.evictions)
            {
                Some(first) => Some(first.sample),
                None => return self.link(src, dst, part.ip, name.hash),
            }
        };
        let pair = match known {
            Some(i) => self.names.at(i).map(|p| (i, p)),
            None => self.names.entry(tag, s.max_pairs, &mut self.evictions),
        };
        if let Some((slot, pair)) = pair {
            if !pair.named {
                match text {
                    Some(text) => {
                        pair.name = Some(join::display_name(text));
                        pair.named = true;
                    }
                    None => {
                        self.unnamed.insert(tag);
                    }
                }
            }
            pair.add_service(part.service);
            let (log, ev) = (&mut self.log, &mut self.evictions);
            let caps = (s.max_samples, s.max_samples_per_pair);
            if let Some(first) = first {
                pair.src = src;
                pair.name_hash = name.hash;
                pair.institution = part.institution;
                pair.dst = dst;
                push(log, caps, ev, slot | NAME_TABLE, pair, first);
            }
            push(log, caps, ev, slot | NAME_TABLE, pair, sample);
        }
        self.compact_if_swept();
        self.link(src, dst, part.ip, name.hash);
    }

    /// Notes on the address pair that its connections also have a name.
    /// `ip` is where the connection left the address pair, if it was held
    /// then: no lookup needed while that slot still holds it.
    fn link(&mut self, src: [u8; 16], dst: [u8; 16], ip: Option<(u32, u32)>, name_hash: u64) {
        if let Some((slot, generation)) = ip
            && let Some(pair) = self.ips.at(slot)
            && pair.generation == generation
            && pair.count > 0
        {
            pair.link(name_hash);
            return;
        }
        if let Some(pair) = self.ips.get_mut(pair_tag(&src, &dst)) {
            pair.link(name_hash);
        }
    }

    /// Scores pairs when the window is due: every `report_every_secs` of
    /// data time, and once the data has been silent for `idle_secs`.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Finding> {
        if !self.settings.enabled || now < 0 {
            return Vec::new();
        }
        let now = (now / MICROS).min(i64::from(u32::MAX)) as u32;
        let s = &self.settings;
        if let Some(cutoff) = now.checked_sub(s.join_secs) {
            self.joins.expire(cutoff);
        }
        let c = self.clock;
        let due = now >= c.reported.saturating_add(s.report_every_secs)
            || now >= c.last.saturating_add(s.idle_secs);
        if !c.dirty || !due {
            return Vec::new();
        }
        self.clock.reported = now;
        self.clock.dirty = false;
        self.report()
    }

    fn report(&mut self) -> Vec<Finding> {
        let end = self.clock.last;
        let start = end.saturating_sub(DAY).max(self.clock.first.unwrap_or(0));
        // RITA keeps whole hours: everything from the hour the window
        // starts in.
        let cutoff = end.saturating_sub(DAY) / HOUR * HOUR;
        self.prune(cutoff);
        self.compact_stuck = false;
        let names = &mut self.names;
        self.unnamed
            .retain(|tag| names.get_mut(*tag).is_some_and(|p| !p.named));
        self.probation.prune(cutoff);
        // Scoring needs every sample of a pair to stand for as many
        // connections.
        self.thin(|pair| pair.shift);
        self.ips.remove_empty();
        self.names.remove_empty();
        self.fill_samples();
        let window = (i64::from(start), i64::from(end));
        let s = &self.settings;

        let mut scratch = Scratch::default();
        let mut findings = Vec::new();
        let mut scored_names: HashSet<u64> = HashSet::default();
        for (tag, _, pair) in self.names.iter() {
            if !scratch.qualifies(pair, s) {
                continue;
            }
            scored_names.insert(tag);
            if let Some(f) = self.finding(Kind::Name, pair, &mut scratch, window) {
                findings.push(f);
            }
        }
        for (_, _, pair) in self.ips.iter() {
            let named = pair.names_overflow
                || pair
                    .names()
                    .iter()
                    .any(|h| scored_names.contains(&name_tag(&pair.src, *h)));
            if named || !scratch.qualifies(pair, s) {
                continue;
            }
            if let Some(f) = self.finding(Kind::Ip, pair, &mut scratch, window) {
                findings.push(f);
            }
        }
        self.clear_samples();
        findings
    }

    /// Drops log entries before `cutoff` or of pairs no longer held,
    /// recounts each pair's samples, and removes pairs left without any.
    fn prune(&mut self, cutoff: u32) {
        let (ips, names) = (&self.ips, &self.names);
        self.log
            .retain(|e| e.sample.ts >= cutoff && holds(ips, names, e));
        self.ips.reset_counts();
        self.names.reset_counts();
        for e in &self.log {
            let table = if e.pair & NAME_TABLE != 0 {
                &mut self.names
            } else {
                &mut self.ips
            };
            if let Some(pair) = table.at(e.pair & !NAME_TABLE) {
                pair.count += 1;
            }
        }
        self.ips.remove_empty();
        self.names.remove_empty();
    }

    /// After a sweep removed pairs, drops their log entries (a sweep runs
    /// when a table is full, so rarely); when the log is nearly full,
    /// thins the busiest pairs to make room for a quarter of it.
    fn compact_if_swept(&mut self) {
        // A row adds at most six samples (an address pair and two names,
        // each with a first sample from probation).
        let max = self.settings.max_samples;
        if !self.compact_stuck && self.log.len() + 6 >= max {
            self.compact();
            self.compact_stuck = self.log.len() + max / 8 > max;
            return;
        }
        if self.ips.swept || self.names.swept {
            let (ips, names) = (&self.ips, &self.names);
            self.log.retain(|e| holds(ips, names, e));
            self.ips.swept = false;
            self.names.swept = false;
        }
    }

    /// Makes room in the log, fairly: finds the largest number of samples
    /// per pair `c` such that pairs cut down to `c` (by thinning: a pair
    /// with more keeps one sample in 2, 4, … so that it has at most `c`)
    /// fill at most three quarters of the log. Pairs with fewer samples,
    /// such as a beacon that started late, keep all of theirs.
    fn compact(&mut self) {
        self.ips.swept = false;
        self.names.swept = false;
        let target = self.settings.max_samples / 4 * 3;
        let mut counts: Vec<u32> = [&self.ips, &self.names]
            .iter()
            .flat_map(|t| t.iter().map(|(_, _, p)| p.count))
            .filter(|c| *c > COMPACT_FLOOR)
            .collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let small: u64 = [&self.ips, &self.names]
            .iter()
            .flat_map(|t| t.iter().map(|(_, _, p)| p.count))
            .filter(|c| *c <= COMPACT_FLOOR)
            .map(u64::from)
            .sum();
        // With pairs above c cut to c (by halving, so to between c/2 and
        // c), the log holds at most small + sum(min(count, c)).
        let fits = |c: u32| {
            small + counts.iter().map(|n| u64::from((*n).min(c))).sum::<u64>() <= target as u64
        };
        let (mut lo, mut hi) = (COMPACT_FLOOR, counts.first().copied().unwrap_or(0));
        if fits(hi) {
            lo = hi;
        }
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if fits(mid) { lo = mid } else { hi = mid - 1 }
        }
        let cap = lo.max(COMPACT_FLOOR);
        let mut newly = 0;
        self.thin(|pair| {
            let mut shift = pair.shift;
            let mut n = pair.count;
            while n > cap && shift < pairs::MAX_SHIFT {
                n = n.div_ceil(2);
                shift += 1;
            }
            if shift > pair.shift && pair.shift == 0 {
                newly += 1;
            }
            shift
        });
        self.evictions.pairs_thinned += newly;
    }

    /// Thins each pair's log entries to one weight: 2^`target(pair)`
    /// connections a sample (at least the pair's current weight), keeping
    /// samples evenly in arrival order. Recounts the pairs' samples.
    fn thin(&mut self, mut target: impl FnMut(&Pair) -> u8) {
        let per_pair = self.settings.max_samples_per_pair;
        let mut carry: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
        for (table, carry) in [&mut self.ips, &mut self.names].into_iter().zip(&mut carry) {
            *carry = vec![0; table.slab().len()];
            for pair in table.slab_mut() {
                pair.shift = target(pair).max(pair.shift);
                pair.count = 0;
            }
        }
        let mut thinned = 0u64;
        let (ips, names) = (&mut self.ips, &mut self.names);
        self.log.retain_mut(|e| {
            let (table, carry) = if e.pair & NAME_TABLE != 0 {
                (&mut *names, &mut carry[1])
            } else {
                (&mut *ips, &mut carry[0])
            };
            let slot = (e.pair & !NAME_TABLE) as usize;
            let (Some(pair), Some(carry)) = (table.slab_mut().get_mut(slot), carry.get_mut(slot))
            else {
                return false;
            };
            if pair.generation != e.generation() {
                return false;
            }
            *carry += 1 << e.shift();
            let stride = 1u64 << pair.shift;
            if *carry < stride {
                thinned += 1;
                return false;
            }
            *carry -= stride;
            e.set_shift(pair.shift);
            pair.count += 1;
            true
        });
        for table in [&mut self.ips, &mut self.names] {
            for pair in table.slab_mut() {
                pair.limit = per_pair.max(pair.count.saturating_add(per_pair / 2));
            }
        }
        self.evictions.samples_thinned += thinned;
    }

    /// Copies each pair's samples from the log into the pair, to score it.
    fn fill_samples(&mut self) {
        for e in &self.log {
            let table = if e.pair & NAME_TABLE != 0 {
                &mut self.names
            } else {
                &mut self.ips
            };
            if let Some(pair) = table.at(e.pair & !NAME_TABLE)
                && pair.generation == e.generation()
            {
                pair.samples.push(e.sample);
            }
        }
    }

    /// Frees the copies made by [`Beacons::fill_samples`].
    fn clear_samples(&mut self) {
        for table in [&mut self.ips, &mut self.names] {
            for pair in table.slab_mut() {
                pair.samples = Default::default();
            }
        }
    }

    fn finding(
        &self,
        kind: Kind,
        pair: &Pair,
        scratch: &mut Scratch,
        window: (i64, i64),
    ) -> Option<Finding> {
        let s = &self.settings;
        scratch.ts.clear();
        scratch.bytes.clear();
        scratch.ts.extend(pair.samples.iter().map(|x| x.ts));
        scratch
            .bytes
            .extend(pair.samples.iter().map(|x| f64::from(x.src_bytes)));
        let scores = score::score(&mut scratch.ts, &mut scratch.bytes, window, &self.params)?;
        if scores.score < s.min_score {
            return None;
        }
        // A thinned pair's samples each stand for 2^shift connections.
        let weight = |n: u64| n << pair.shift;
        let count = weight(pair.samples.len() as u64);
        let proxies = weight(pair.samples.iter().filter(|x| x.proxy()).count() as u64);
        let bytes: u64 = weight(
            pair.samples
                .iter()
                .map(|x| u64::from(x.src_bytes) + u64::from(x.dst_bytes))
                .sum(),
        );
        let duration_ms: u64 = weight(
            pair.samples
                .iter()
                .map(|x| u64::from(x.duration_ms()))
                .sum(),
        );
        let first = pair.samples.iter().map(|x| x.ts).min().unwrap_or(0);
        let last = pair.samples.iter().map(|x| x.ts).max().unwrap_or(0);
        let (severity, level) = if scores.score >= s.high_score {
            (Severity::High, "high")
        } else if scores.score >= s.medium_score {
            (Severity::Medium, "medium")
        } else {
            (Severity::Low, "low")
        };

        let src = pair.src;
        let mut entity = Entity::new(
            pair.institution,
            Address::from(src),
            i64::from(first) * MICROS,
        );
        entity.last_seen = i64::from(last) * MICROS;
        entity.dst = Some(Address::from(pair.dst));
        if let [only] = pair.services() {
            entity.dst_port = Some(only.port);
            entity.proto = only.proto;
        }
        entity.flows = count.min(u64::from(u32::MAX)) as u32;

        let src_text = show(src);
        let (rule, title, peer) = match kind {
            Kind::Name => {
                let name = pair.name.as_deref().unwrap_or("(name not kept)");
                (
                    "beacon-sni",
                    format!("beacon: {src_text} -> {name}"),
                    ("fqdn", name.to_owned()),
                )
            }
            Kind::Ip => {
                let dst = show(pair.dst);
                (
                    "beacon-ip",
                    format!("beacon: {src_text} -> {dst}"),
                    ("dst", dst),
                )
            }
        };
        let services: Vec<String> = pair
            .services()
            .iter()
            .map(|x| {
                let name = self.services.get(usize::from(x.name)).map_or("-", |n| &**n);
                format!("{}:{}:{name}", x.port, proto_name(x.proto))
            })
            .collect();
        let e = &self.evictions;
        Some(
            Finding::new(entity, rule, title)
                .category("c2")
                .severity(severity)
                .confidence((scores.score * 100.0).round() as u8)
                .evidence(peer.0, peer.1)
                .evidence("count", count)
                .evidence("proxy_count", proxies)
                .evidence("unique_ts", scratch.unique)
                .evidence("sampled_one_in", 1u64 << pair.shift)
                .evidence("score", format_args!("{:.3}", scores.score))
                .evidence("ts_score", format_args!("{:.3}", scores.ts))
                .evidence("ds_score", format_args!("{:.3}", scores.ds))
                .evidence("dur_score", format_args!("{:.3}", scores.dur))
                .evidence("hist_score", format_args!("{:.3}", scores.hist))
                .evidence("threat_level", level)
                .evidence("total_ip_bytes_est", bytes)
                .evidence(
                    "total_duration_secs",
                    format_args!("{:.3}", duration_ms as f64 / 1000.0),
                )
                .evidence("port_proto_service", services.join(" "))
                .evidence("window_start", window.0)
                .evidence("window_end", window.1)
                .evidence(
                    "evictions",
                    format_args!(
                        "{} pairs evicted, {} refused, {} samples dropped, {} pairs thinned, \
                         {} samples thinned, {} joins dropped, {} one-off pairs forgotten",
                        e.pairs_evicted,
                        e.pairs_refused,
                        e.samples_dropped,
                        e.pairs_thinned,
                        e.samples_thinned,
                        e.joins_dropped,
                        e.one_offs_forgotten
                    ),
                ),
        )
    }

    /// State for a replacement instance.
    pub fn state(&self) -> State {
        // Each pair goes with its samples from the log.
        let mut ips: Vec<Pair> = Vec::with_capacity(self.ips.len());
        let mut ip_at: foldhash::HashMap<u32, usize> = foldhash::HashMap::default();
        for (_, slot, pair) in self.ips.iter() {
            ip_at.insert(slot, ips.len());
            ips.push(pair.clone());
        }
        let mut names: Vec<Pair> = Vec::with_capacity(self.names.len());
        let mut name_at: foldhash::HashMap<u32, usize> = foldhash::HashMap::default();
        for (_, slot, pair) in self.names.iter() {
            name_at.insert(slot, names.len());
            names.push(pair.clone());
        }
        // Samples taken before a pair's weight last went up are thinned
        // here as `thin` would, so that all of a pair's samples weigh the
        // same.
        let mut carry = [vec![0u64; ips.len()], vec![0u64; names.len()]];
        for e in &self.log {
            let slot = e.pair & !NAME_TABLE;
            let (at, out, carry) = if e.pair & NAME_TABLE != 0 {
                (&name_at, &mut names, &mut carry[1])
            } else {
                (&ip_at, &mut ips, &mut carry[0])
            };
            let Some(&i) = at.get(&slot) else { continue };
            if let (Some(pair), Some(carry)) = (out.get_mut(i), carry.get_mut(i))
                && pair.generation == e.generation()
            {
                *carry += 1 << e.shift();
                let stride = 1u64 << pair.shift;
                if *carry >= stride {
                    *carry -= stride;
                    pair.samples.push(e.sample);
                }
            }
        }
        State {
            ips,
            probation: self.probation.used(),
            names,
            services: self.services.clone(),
            evictions: self.evictions,
            clock: self.clock,
        }
    }

    /// Takes over state from an earlier instance.
    pub fn restore(&mut self, state: State) {
        if !self.settings.enabled {
            return;
        }
        self.ips = Pairs::default();
        self.names = Pairs::default();
        self.log.clear();
        for mut pair in state.ips {
            let samples = std::mem::take(&mut pair.samples);
            pair.count = samples.len() as u32;
            let slot = self.ips.insert(pair_tag(&pair.src, &pair.dst), pair);
            self.log_restored(slot, &samples);
        }
        self.probation.restore(state.probation);
        self.unnamed.clear();
        for mut pair in state.names {
            let tag = name_tag(&pair.src, pair.name_hash);
            pair.named = pair.name.is_some();
            if pair.name.is_none() {
                self.unnamed.insert(tag);
            }
            let samples = std::mem::take(&mut pair.samples);
            pair.count = samples.len() as u32;
            let slot = self.names.insert(tag, pair);
            self.log_restored(slot | NAME_TABLE, &samples);
        }
        self.services = state.services;
        self.evictions = state.evictions;
        self.clock = state.clock;
        self.joins = Joins::default();
    }

    fn log_restored(&mut self, slot: u32, samples: &[Sample]) {
        let table = if slot & NAME_TABLE != 0 {
            &mut self.names
        } else {
            &mut self.ips
        };
        let (generation, shift) = table
            .at(slot & !NAME_TABLE)
            .map_or((0, 0), |p| (p.generation, p.shift));
        self.log.extend(
            samples
                .iter()
                .map(|sample| Entry::new(slot, generation, shift, *sample)),
        );
    }

    /// Pairs held (address pairs, name pairs), samples held, and pending
    /// joins: for tests and benchmarks.
    pub fn sizes(&self) -> (usize, usize, usize, usize) {
        (
            self.ips.len(),
            self.names.len(),
            self.log.len(),
            self.joins.map.len(),
        )
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Name,
    Ip,
}

/// Buffers reused across the pairs of one report.
#[derive(Default)]
struct Scratch {
    ts: Vec<u32>,
    bytes: Vec<f64>,
    /// Distinct connection times of the pair last checked.
    unique: usize,
}

impl Scratch {
    /// RITA scores a pair with enough distinct connection times that is
    /// not a strobe.
    fn qualifies(&mut self, pair: &Pair, s: &Settings) -> bool {
        let count = pair.samples.len();
        let weighted = (count as u64) << pair.shift;
        if count < s.min_connections as usize || weighted >= u64::from(s.max_connections) {
            return false;
        }
        self.ts.clear();
        self.ts.extend(pair.samples.iter().map(|x| x.ts));
        self.ts.sort_unstable();
        self.ts.dedup();
        self.unique = self.ts.len();
        self.unique >= s.min_connections as usize
    }
}

/// Whether a log entry belongs to a pair still held.
fn holds(ips: &Pairs, names: &Pairs, e: &Entry) -> bool {
    let table = if e.pair & NAME_TABLE != 0 { names } else { ips };
    table.holds(e.pair & !NAME_TABLE, e.generation())
}

/// The key of an address pair.
fn pair_tag(src: &[u8; 16], dst: &[u8; 16]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = foldhash::fast::FixedState::with_seed(0x7061_6972_7461_6721).build_hasher();
    h.write(src);
    h.write(dst);
    h.finish()
}

/// The key of a name pair.
fn name_tag(src: &[u8; 16], name_hash: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = foldhash::fast::FixedState::with_seed(0x6e61_6d65_7461_6721).build_hasher();
    h.write(src);
    h.write_u64(name_hash);
    h.finish()
}

fn name_ref(hash: u64, proxy: bool) -> NameRef {
    NameRef { hash, proxy }
}

fn octets(column: &[u8], row: usize) -> [u8; 16] {
    let mut out = [0; 16];
    if let Some(bytes) = column.get(row * 16..row * 16 + 16) {
        out.copy_from_slice(bytes);
    }
    out
}

fn is_v4(a: &[u8; 16]) -> bool {
    a[..10].iter().all(|b| *b == 0) && a[10] == 0xff && a[11] == 0xff
}

/// Multicast, broadcast and reserved IPv4 (224/3), and IPv6 multicast.
fn is_multicast(a: &[u8; 16]) -> bool {
    if is_v4(a) { a[12] >= 224 } else { a[0] == 0xff }
}

/// Header bytes per packet that the IP byte count adds to the payload:
/// IP (20 or 40) and TCP with the timestamp option (32), UDP or ICMP (8).
/// The batch carries payload bytes and packets, not Zeek's IP bytes; on
/// RITA's proxy data this estimate is within 0.5 % of `orig_ip_bytes`.
fn header_bytes(proto: u8, v4: bool) -> u64 {
    let ip = if v4 { 20 } else { 40 };
    ip + match proto {
        6 => 32,
        17 | 1 | 58 => 8,
        _ => 0,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn intern(table: &mut Vec<Box<str>>, name: Option<&[u8]>) -> u16 {
    let Some(name) = name else {
        return u16::MAX;
    };
    if let Some(i) = table.iter().position(|n| n.as_bytes() == name) {
        return i as u16;
    }
    if table.len() >= MAX_SERVICES {
        return u16::MAX;
    }
    table.push(String::from_utf8_lossy(name).into());
    (table.len() - 1) as u16
}

fn show(a: [u8; 16]) -> String {
    Ipv6Addr::from(a).to_canonical().to_string()
}

fn proto_name(proto: u8) -> String {
    match proto {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 | 58 => "icmp".into(),
        other => other.to_string(),
    }
}
