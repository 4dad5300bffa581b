//! Connection pairs and their samples, within fixed caps.
//!
//! A pair is a source and either a destination address or a server name.
//! Each connection of a pair leaves a 16-byte sample; the first two are
//! held inline. A pair seen once (most address pairs: the Internet's
//! one-off traffic) does not enter the table yet: it waits in a fixed,
//! direct-mapped probation table ([`Probation`]) and enters with its
//! second connection. A one-off pair thus costs one slot write, and the
//! table of pairs stays small enough to stay in cache.

use serde::{Deserialize, Serialize};

/// One connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Start, whole seconds since the Unix epoch (RITA truncates too).
    pub ts: u32,
    /// IP bytes sent by the source (RITA's data size).
    pub src_bytes: u32,
    /// IP bytes sent by the destination.
    pub dst_bytes: u32,
    /// Duration in milliseconds in the low 31 bits; the top bit marks a
    /// connection through an HTTP proxy (`CONNECT`).
    pub meta: u32,
}

const PROXY_BIT: u32 = 1 << 31;

impl Sample {
    /// A sample; durations past 24 days saturate.
    pub fn new(ts: u32, src_bytes: u64, dst_bytes: u64, duration_us: u64, proxy: bool) -> Self {
        let ms = (duration_us.saturating_add(500) / 1000).min(u64::from(PROXY_BIT - 1)) as u32;
        Self {
            ts,
            src_bytes: src_bytes.min(u64::from(u32::MAX)) as u32,
            dst_bytes: dst_bytes.min(u64::from(u32::MAX)) as u32,
            meta: ms | if proxy { PROXY_BIT } else { 0 },
        }
    }

    /// Whether the connection went through a proxy.
    pub fn proxy(&self) -> bool {
        self.meta & PROXY_BIT != 0
    }

    /// Duration in milliseconds.
    pub fn duration_ms(&self) -> u32 {
        self.meta & !PROXY_BIT
    }

    /// The same connection, marked as proxied.
    pub fn with_proxy(mut self, proxy: bool) -> Self {
        if proxy {
            self.meta |= PROXY_BIT;
        }
        self
    }
}

/// Destination port, protocol and service of a pair's connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// Destination port.
    pub port: u16,
    /// IANA protocol number.
    pub proto: u8,
    /// Index into the service names table; `u16::MAX` when unknown.
    pub name: u16,
}

/// What is known of one pair. A connection touches only the first cache
/// line (counts, sampling state and services); the name row of a joined
/// connection also touches the second of its address pair (`names`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[repr(C, align(64))]
pub struct Pair {
    /// Connections in the sample log.
    #[serde(skip)]
    pub count: u32,
    /// Generation of the pair's slab slot: log entries of an earlier
    /// occupant do not count.
    #[serde(skip)]
    pub generation: u32,
    /// Connections since the last one sampled.
    #[serde(skip)]
    pub skipped: u32,
    /// Samples in the log at which `shift` goes up; 0 for the per-pair
    /// cap.
    #[serde(skip)]
    pub limit: u32,
    /// Institution of the source.
    pub institution: u16,
    /// Whether `names` overflowed.
    pub names_overflow: bool,
    /// Samples are taken from one connection in 2^`shift` (see
    /// [`push`]); 0 until the pair passes its sample cap.
    pub shift: u8,
    /// Whether `name` is known (kept here, in the first cache line).
    pub named: bool,
    /// How many of `services` are set.
    services_len: u8,
    /// How many of `names` are set.
    names_len: u8,
    /// Up to two distinct port/protocol/service triples, first seen first.
    services: [Service; 2],
    /// Name pairs this address pair's connections also belong to (hashes
    /// of the names), for RITA's rule that a connection scored by name is
    /// not scored again by address; `names_overflow` when there were more.
    names: [u64; 2],
    /// For a name pair, the hash of the name.
    pub name_hash: u64,
    /// Source address.
    pub src: [u8; 16],
    /// Destination address (for a name pair: the first server or proxy).
    pub dst: [u8; 16],
    /// The server name, for name pairs.
    pub name: Option<Box<str>>,
    /// Connections within the window: filled from the sample log only to
    /// score the pair and in snapshots (see [`Entry`]).
    pub samples: Vec<Sample>,
}

impl Pair {
    /// The distinct port/protocol/service triples seen (at most two).
    pub fn services(&self) -> &[Service] {
        self.services
            .get(..usize::from(self.services_len))
            .unwrap_or(&[])
    }

    /// Remembers a port/protocol/service triple (at most two).
    pub fn add_service(&mut self, service: Service) {
        let n = usize::from(self.services_len);
        if n < 2 && !self.services().contains(&service) {
            if let Some(slot) = self.services.get_mut(n) {
                *slot = service;
            }
            self.services_len += 1;
        }
    }

    /// Hashes of the names linked with [`Pair::link`] (at most two).
    pub fn names(&self) -> &[u64] {
        self.names.get(..usize::from(self.names_len)).unwrap_or(&[])
    }

    /// Remembers a name pair that shares connections with this one.
    pub fn link(&mut self, name: u64) {
        if self.names().contains(&name) {
            return;
        }
        let n = usize::from(self.names_len);
        if n < 2 {
            if let Some(slot) = self.names.get_mut(n) {
                *slot = name;
            }
            self.names_len += 1;
        } else {
            self.names_overflow = true;
        }
    }
}

/// Counters of what the caps cost, reported in notes and evidence.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Evictions {
    /// Pairs removed to make room.
    pub pairs_evicted: u64,
    /// New pairs refused while the table was full of busy pairs.
    pub pairs_refused: u64,
    /// Samples not kept because the sample cap was reached and thinning
    /// could not make room.
    pub samples_dropped: u64,
    /// Connections of busy pairs not sampled, or whose sample was thinned
    /// out, to keep within the per-pair and overall sample caps (they are
    /// still counted, through the weight of the samples kept).
    pub samples_thinned: u64,
    /// Pairs whose samples were thinned at least once.
    pub pairs_thinned: u64,
    /// TLS/HTTP records or connections not held for joining: no room.
    pub joins_dropped: u64,
    /// Pairs seen once whose probation slot was taken by another pair
    /// before they were seen again.
    pub one_offs_forgotten: u64,
}

/// A pair seen once, by a hash of its key.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Slot {
    /// Hash of the pair's key; 0 for an empty slot.
    pub tag: u64,
    /// Its connection.
    pub sample: Sample,
    /// Institution of the source.
    pub institution: u16,
}

/// Pairs seen once, one per slot: a newer pair takes the slot of an older
/// one that hashes to it.
#[derive(Debug, Clone, Default)]
pub struct Probation {
    /// The slots: none until the analysis is switched on.
    pub slots: Vec<Slot>,
}

impl Probation {
    /// Allocates `n` slots, keeping what fits of the current ones.
    pub fn allocate(&mut self, n: usize) {
        if self.slots.len() != n {
            let used = self.used();
            self.slots = vec![Slot::default(); n];
            self.restore(used);
        }
    }

    /// Takes the pair out of probation if `tag` was seen before; otherwise
    /// puts it in, forgetting whoever held the slot.
    pub fn visit(
        &mut self,
        tag: u64,
        sample: Sample,
        institution: u16,
        ev: &mut Evictions,
    ) -> Option<Slot> {
        let tag = tag | 1; // never 0, the empty tag
        let len = self.slots.len();
        let slot = self.slots.get_mut((tag >> 40) as usize % len.max(1))?;
        if slot.tag == tag {
            return Some(std::mem::take(slot));
        }
        if slot.tag != 0 {
            ev.one_offs_forgotten += 1;
        }
        *slot = Slot {
            tag,
            sample,
            institution,
        };
        None
    }

    /// Reads the slot `tag` would take (to bring it into cache); returns
    /// part of its tag.
    pub fn peek(&self, tag: u64) -> u32 {
        let tag = tag | 1;
        let len = self.slots.len().max(1);
        self.slots
            .get((tag >> 40) as usize % len)
            .map_or(0, |s| s.tag as u32)
    }

    /// The occupied slots, for a snapshot.
    pub fn used(&self) -> Vec<Slot> {
        self.slots.iter().filter(|s| s.tag != 0).copied().collect()
    }

    /// Refills the table from a snapshot (or a table of another size).
    pub fn restore(&mut self, used: Vec<Slot>) {
        let len = self.slots.len().max(1);
        for slot in used {
            if let Some(s) = self.slots.get_mut((slot.tag >> 40) as usize % len) {
                *s = slot;
            }
        }
    }

    /// Empties slots holding connections before `cutoff`.
    pub fn prune(&mut self, cutoff: u32) {
        for slot in &mut self.slots {
            if slot.tag != 0 && slot.sample.ts < cutoff {
                *slot = Slot::default();
            }
        }
    }
}

/// One connection in the sample log, by table, slot and generation of its
/// pair. Samples are appended to one log rather than to each pair's own
/// list: an append is a sequential write, where a list per pair costs a
/// cache miss at its end on every connection. The log is sorted out by
/// pair once per report.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Slab slot of the pair, with [`NAME_TABLE`] set for name pairs.
    pub pair: u32,
    /// Generation of the slot when the sample was taken (low 24 bits) and
    /// the sample's weight: it stands for 2^(top 8 bits) connections.
    pub mark: u32,
    /// The connection.
    pub sample: Sample,
}

impl Entry {
    /// An entry of a pair in `slot` at `generation`, standing for
    /// 2^`shift` connections.
    pub fn new(slot: u32, generation: u32, shift: u8, sample: Sample) -> Self {
        Self {
            pair: slot,
            mark: (generation & GENERATION) | u32::from(shift) << 24,
            sample,
        }
    }

    /// Generation of the slot when the sample was taken.
    pub fn generation(&self) -> u32 {
        self.mark & GENERATION
    }

    /// Log2 of the connections this sample stands for.
    pub fn shift(&self) -> u8 {
        (self.mark >> 24) as u8
    }

    /// Gives the sample a new weight.
    pub fn set_shift(&mut self, shift: u8) {
        self.mark = self.generation() | u32::from(shift) << 24;
    }
}

/// Slot generations wrap at 24 bits (the top 8 bits of [`Entry::mark`]
/// hold the weight).
pub const GENERATION: u32 = (1 << 24) - 1;

/// Highest weight shift: a sample never stands for more than 2^31
/// connections.
pub const MAX_SHIFT: u8 = 31;

/// Marks log entries of name pairs.
pub const NAME_TABLE: u32 = 1 << 31;

/// A table of pairs with a cap on pairs.
///
/// Pairs are found by a 64-bit hash of their key (a collision among even
/// a million pairs has a chance of about 10⁻⁸) through a small map of
/// hash → slot, and live in a slab: the map stays compact enough to stay
/// in cache, so a lookup costs at most the one miss of reaching the pair.
#[derive(Debug, Clone, Default)]
pub struct Pairs {
    map: Index,
    slab: Vec<Pair>,
    free: Vec<u32>,
    /// Set when a sweep freed too little: new pairs are refused until the
    /// next prune.
    full: bool,
    /// Set when a sweep removed pairs: their log entries are stale.
    pub swept: bool,
}

impl Pairs {
    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The pair with hash `tag`, if known.
    pub fn get_mut(&mut self, tag: u64) -> Option<&mut Pair> {
        let i = self.map.get(tag)?;
        self.slab.get_mut(i as usize)
    }

    /// Where the pair with hash `tag` is, if known.
    pub fn find(&self, tag: u64) -> Option<u32> {
        self.map.get(tag)
    }

    /// The pair at `index` (from [`Pairs::find`], valid until the table
    /// changes).
    pub fn at(&mut self, index: u32) -> Option<&mut Pair> {
        self.slab.get_mut(index as usize)
    }

    /// The sample count of the pair at `index`, 0 if none: reads the
    /// pair's first cache line.
    pub fn count_at(&self, index: u32) -> u32 {
        self.slab.get(index as usize).map_or(0, |p| p.count)
    }

    /// Whether a log entry belongs to a pair still here.
    pub fn holds(&self, slot: u32, generation: u32) -> bool {
        self.slab
            .get(slot as usize)
            .is_some_and(|p| p.generation == generation & GENERATION && p.count > 0)
    }

    /// The pairs, with their hashes and slots.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u32, &Pair)> {
        self.map
            .iter()
            .filter_map(|(tag, i)| Some((tag, i, self.slab.get(i as usize)?)))
    }

    /// All slots, for filling in samples.
    pub fn slab_mut(&mut self) -> &mut [Pair] {
        &mut self.slab
    }

    /// All slots.
    pub fn slab(&self) -> &[Pair] {
        &self.slab
    }

    /// The pair with hash `tag` and its slot, created if there is room.
    pub fn entry(
        &mut self,
        tag: u64,
        max_pairs: usize,
        evictions: &mut Evictions,
    ) -> Option<(u32, &mut Pair)> {
        if let Some(i) = self.map.get(tag) {
            return Some((i, self.slab.get_mut(i as usize)?));
        }
        if self.map.len() >= max_pairs {
            if self.full {
                evictions.pairs_refused += 1;
                return None;
            }
            self.sweep(max_pairs, evictions);
            if self.map.len() >= max_pairs {
                evictions.pairs_refused += 1;
                return None;
            }
        }
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slab.push(Pair::default());
                (self.slab.len() - 1) as u32
            }
        };
        self.map.insert(tag, i);
        Some((i, self.slab.get_mut(i as usize)?))
    }

    /// Adds a pair read from a snapshot; returns its slot.
    pub fn insert(&mut self, tag: u64, mut pair: Pair) -> u32 {
        if let Some(old) = self.map.get(tag) {
            pair.generation = self.slab[old as usize].generation;
            self.slab[old as usize] = pair;
            return old;
        }
        let i = self.slab.len() as u32;
        self.slab.push(pair);
        self.map.insert(tag, i);
        i
    }

    /// Makes room by removing pairs with at most two connections: a
    /// beacon needs several. If that frees less than an eighth of the
    /// table, new pairs are refused until the next prune rather than
    /// sweeping again on every new pair.
    fn sweep(&mut self, max_pairs: usize, evictions: &mut Evictions) {
        let removed = self.remove_where(|pair| pair.count <= 2);
        evictions.pairs_evicted += removed as u64;
        self.swept = removed > 0;
        if self.map.len() + max_pairs / 8 > max_pairs {
            self.full = true;
        }
    }

    /// Removes pairs left without samples (after the log was recounted).
    pub fn remove_empty(&mut self) {
        self.remove_where(|pair| pair.count == 0);
        self.full = false;
    }

    /// Sets every pair's count to 0, before recounting from the log.
    pub fn reset_counts(&mut self) {
        for pair in &mut self.slab {
            pair.count = 0;
        }
    }

    /// Removes the pairs `drop` picks; returns how many.
    fn remove_where(&mut self, drop: impl Fn(&Pair) -> bool) -> usize {
        let (slab, free) = (&mut self.slab, &mut self.free);
        let mut removed = 0;
        self.map.retain(|_, i| {
            let Some(pair) = slab.get_mut(i as usize) else {
                return false;
            };
            if !drop(pair) {
                return true;
            }
            removed += 1;
            *pair = Pair {
                generation: pair.generation.wrapping_add(1) & GENERATION,
                ..Pair::default()
            };
            free.push(i);
            false
        });
        removed
    }
}

/// Pair hashes → slab slots: open addressing with linear probing, one
/// 16-byte entry a probe, so that a lookup usually costs one cache line
/// (a general-purpose map reads a control group and then the bucket).
/// Kept at most half full; removal rebuilds it (pairs are removed in bulk,
/// by sweeps and reports, never one by one).
#[derive(Debug, Clone, Default)]
struct Index {
    entries: Vec<(u64, u32)>,
    len: usize,
}

/// Slot value of an empty index entry.
const EMPTY: u32 = u32::MAX;

impl Index {
    fn len(&self) -> usize {
        self.len
    }

    fn home(&self, tag: u64) -> usize {
        // The tags are already hashes: their top bits spread well.
        (tag >> 32) as usize & (self.entries.len() - 1)
    }

    fn get(&self, tag: u64) -> Option<u32> {
        if self.entries.is_empty() {
            return None;
        }
        let mask = self.entries.len() - 1;
        let mut i = self.home(tag);
        loop {
            let (t, slot) = *self.entries.get(i)?;
            if slot == EMPTY {
                return None;
            }
            if t == tag {
                return Some(slot);
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds `tag` (not present yet).
    fn insert(&mut self, tag: u64, slot: u32) {
        if (self.len + 1) * 2 > self.entries.len() {
            let cap = (self.entries.len() * 2).max(64);
            self.rebuild(cap, |_, _| true);
        }
        self.place(tag, slot);
        self.len += 1;
    }

    fn place(&mut self, tag: u64, slot: u32) {
        let mask = self.entries.len() - 1;
        let mut i = self.home(tag);
        while let Some(e) = self.entries.get_mut(i) {
            if e.1 == EMPTY {
                *e = (tag, slot);
                return;
            }
            i = (i + 1) & mask;
        }
    }

    fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.entries.iter().copied().filter(|e| e.1 != EMPTY)
    }

    /// Keeps the entries `keep` accepts.
    fn retain(&mut self, keep: impl FnMut(u64, u32) -> bool) {
        let cap = self.entries.len();
        self.rebuild(cap, keep);
    }

    fn rebuild(&mut self, cap: usize, mut keep: impl FnMut(u64, u32) -> bool) {
        let old = std::mem::replace(&mut self.entries, vec![(0, EMPTY); cap.max(64)]);
        self.len = 0;
        for (tag, slot) in old {
            if slot != EMPTY && keep(tag, slot) {
                self.place(tag, slot);
                self.len += 1;
            }
        }
    }
}

/// Appends a sample of the pair in `slot` (with [`NAME_TABLE`] for a name
/// pair) to the log, within the sample caps.
///
/// A pair that reaches `per_pair` samples is thinned systematically: from
/// then on one connection in two is sampled (the samples already in the
/// log are thinned to match when the log is compacted or the pair
/// scored), and again each time it gathers another `per_pair / 2`. Each
/// sample then stands for 2^`shift` connections, so counts stay right
/// to within one stride, and a regular beacon stays regular: it is sampled
/// at a multiple of its period.
pub fn push(
    log: &mut Vec<Entry>,
    caps: (usize, u32),
    ev: &mut Evictions,
    slot: u32,
    pair: &mut Pair,
    sample: Sample,
) {
    let (max, per_pair) = caps;
    if pair.shift > 0 {
        pair.skipped += 1;
        if pair.skipped < 1 << pair.shift {
            ev.samples_thinned += 1;
            return;
        }
        pair.skipped = 0;
    }
    if log.len() >= max {
        ev.samples_dropped += 1;
        return;
    }
    log.push(Entry::new(slot, pair.generation, pair.shift, sample));
    pair.count += 1;
    let limit = if pair.limit == 0 {
        per_pair
    } else {
        pair.limit
    };
    if pair.count >= limit && pair.shift < MAX_SHIFT {
        if pair.shift == 0 {
            ev.pairs_thinned += 1;
        }
        pair.shift += 1;
        pair.limit = pair.count.saturating_add((per_pair / 2).max(1));
    }
}
