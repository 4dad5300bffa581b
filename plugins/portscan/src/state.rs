//! Per-source windows of unanswered attempts.

// foldhash: SipHash was most of the per-flow cost of a lookup here.
use std::hash::BuildHasher;

use foldhash::{HashMap, HashSet};

use kansoku_plugin::Timestamp;
use serde::{Deserialize, Serialize};

use crate::rules::Rules;

/// (institution, source address).
pub type SourceKey = (u16, [u8; 16]);

const SAMPLE: usize = 10;

/// Windows whose activity sets the eviction cut-off.
const EVICTION_SAMPLE: usize = 4096;

/// Every tracked source.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Scanners {
    sources: HashMap<SourceKey, Window>,
    /// Sources dropped to stay within `max_sources`.
    evicted: u64,
    /// Attempts older than their source's window, not counted.
    #[serde(default)]
    late: u64,
    /// Sources seen once. Not carried across a hot swap: at worst a source
    /// seen once before it is counted from its next attempt.
    #[serde(skip)]
    probation: Probation,
}

/// Slots of [`Probation`].
const PROBATION_SLOTS: usize = 1 << 16;

/// Sources seen once, outside the table until their second attempt. Most
/// unanswered attempts reaching a network are one-off (backscatter, the
/// Internet's background scanning spread over millions of addresses):
/// tracking each in the table costs a window, a lookup that misses the
/// cache and, once the table is full, its eviction. A slot holds the newest
/// one-off source that hashed to it, so a source whose slot another took
/// meanwhile loses its first attempt, and is counted from its second.
#[derive(Debug, Default)]
struct Probation {
    slots: Vec<Option<Probe>>,
}

/// A source's first attempt.
#[derive(Debug, Clone, Copy)]
struct Probe {
    key: SourceKey,
    ts: Timestamp,
    dst: [u8; 16],
    port: u16,
}

impl Probation {
    /// The first attempt of `key` when this one (`dst`, `port`, `ts`) is
    /// its second within `window_us`; otherwise holds this one in `slot`
    /// (a hash of the key) and gives `None`.
    fn admit(
        &mut self,
        slot: usize,
        key: SourceKey,
        dst: [u8; 16],
        port: u16,
        ts: Timestamp,
        window_us: i64,
    ) -> Option<Probe> {
        if self.slots.is_empty() {
            self.slots = vec![None; PROBATION_SLOTS];
        }
        let held = self.slots.get_mut(slot % PROBATION_SLOTS)?;
        match *held {
            Some(first) if first.key == key && first.ts.abs_diff(ts) < window_us.unsigned_abs() => {
                *held = None;
                Some(first)
            }
            _ => {
                *held = Some(Probe { key, ts, dst, port });
                None
            }
        }
    }
}

/// One source's current window.
#[derive(Debug, Serialize, Deserialize)]
struct Window {
    start: Timestamp,
    last_seen: Timestamp,
    attempts: u32,
    targets: Targets,
    vertical_reported: bool,
    horizontal_reported: bool,
}

impl Window {
    fn new(ts: Timestamp) -> Self {
        Self {
            start: ts,
            last_seen: ts,
            attempts: 0,
            targets: Targets::None,
            vertical_reported: false,
            horizontal_reported: false,
        }
    }

    /// Counts one attempt; `None` when it is older than the window (a
    /// straggler), else the thresholds it crossed.
    fn attempt(
        &mut self,
        rules: &Rules,
        dst: [u8; 16],
        port: u16,
        ts: Timestamp,
    ) -> Option<Vec<Crossed>> {
        let window_us = i64::from(rules.window_secs) * 1_000_000;
        let window = self;
        // Sensors log flows when they end, so input is only roughly in time
        // order. A window spans at most `window_secs` of data time, wherever
        // its attempts fall: a newer attempt outside it opens the next
        // window; a straggler older than it belongs to a window already
        // closed and is not counted.
        let first = window.start.min(ts);
        let last = window.last_seen.max(ts);
        if last.saturating_sub(first) >= window_us {
            if ts > window.last_seen {
                *window = Window::new(ts);
            } else {
                return None;
            }
        } else {
            window.start = first;
        }
        window.last_seen = window.last_seen.max(ts);
        window.attempts = window.attempts.saturating_add(1);
        let Some((ports, hosts)) = window.targets.insert(dst, port, rules.max_targets) else {
            return Some(Vec::new());
        };

        let mut crossed = Vec::new();
        if rules.vertical.enabled
            && !window.vertical_reported
            && ports >= rules.vertical.min_distinct
        {
            window.vertical_reported = true;
            let mut sample: Vec<u16> = window
                .targets
                .iter()
                .filter(|(d, _)| *d == dst)
                .map(|(_, p)| p)
                .collect();
            sample.sort_unstable();
            sample.truncate(SAMPLE);
            crossed.push(Crossed {
                first_seen: window.start,
                attempts: window.attempts,
                scan: Scan::Vertical { dst, ports, sample },
            });
        }
        if rules.horizontal.enabled
            && !window.horizontal_reported
            && hosts >= rules.horizontal.min_distinct
        {
            window.horizontal_reported = true;
            let mut sample: Vec<std::net::IpAddr> = window
                .targets
                .iter()
                .filter(|(_, p)| *p == port)
                .map(|(d, _)| std::net::Ipv6Addr::from(d).to_canonical())
                .collect();
            sample.sort_unstable();
            sample.truncate(SAMPLE);
            crossed.push(Crossed {
                first_seen: window.start,
                attempts: window.attempts,
                scan: Scan::Horizontal {
                    port,
                    hosts,
                    sample,
                },
            });
        }
        Some(crossed)
    }
}

/// The distinct (host, port) pairs a source tried. Most sources on the
/// Internet try one target and are never heard from again, so the tables
/// are only allocated for the second target: a one-target source costs a
/// few dozen bytes instead of three hash tables.
#[derive(Debug, Default, Serialize, Deserialize)]
enum Targets {
    #[default]
    None,
    One([u8; 16], u16),
    Many(Box<Tables>),
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Tables {
    targets: HashSet<([u8; 16], u16)>,
    ports_per_host: HashMap<[u8; 16], u32>,
    hosts_per_port: HashMap<u16, u32>,
}

impl Tables {
    fn insert(&mut self, dst: [u8; 16], port: u16) -> (u32, u32) {
        self.targets.insert((dst, port));
        (
            bump(self.ports_per_host.entry(dst).or_default()),
            bump(self.hosts_per_port.entry(port).or_default()),
        )
    }
}

impl Targets {
    /// Adds a target; returns the distinct ports of `dst` and hosts of
    /// `port` so far, or `None` when it was known or the table is full.
    fn insert(&mut self, dst: [u8; 16], port: u16, max: usize) -> Option<(u32, u32)> {
        match self {
            Targets::None => {
                *self = Targets::One(dst, port);
                Some((1, 1))
            }
            Targets::One(d, p) if (*d, *p) == (dst, port) => None,
            Targets::One(d, p) => {
                if max < 2 {
                    return None;
                }
                let mut tables = Box::<Tables>::default();
                tables.insert(*d, *p);
                let counts = tables.insert(dst, port);
                *self = Targets::Many(tables);
                Some(counts)
            }
            Targets::Many(tables) => {
                if tables.targets.len() >= max || tables.targets.contains(&(dst, port)) {
                    return None;
                }
                Some(tables.insert(dst, port))
            }
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = ([u8; 16], u16)> + '_> {
        match self {
            Targets::None => Box::new(std::iter::empty()),
            Targets::One(d, p) => Box::new(std::iter::once((*d, *p))),
            Targets::Many(tables) => Box::new(tables.targets.iter().copied()),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        match self {
            Targets::None => 0,
            Targets::One(..) => 1,
            Targets::Many(tables) => tables.targets.len(),
        }
    }
}

/// A threshold crossed by the attempt just observed.
#[derive(Debug)]
pub struct Crossed {
    pub first_seen: Timestamp,
    pub attempts: u32,
    pub scan: Scan,
}

/// Which scan, with its evidence.
#[derive(Debug)]
pub enum Scan {
    Vertical {
        dst: [u8; 16],
        ports: u32,
        sample: Vec<u16>,
    },
    Horizontal {
        port: u16,
        hosts: u32,
        sample: Vec<std::net::IpAddr>,
    },
}

impl Scanners {
    /// Number of sources tracked.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Records one unanswered attempt and returns the thresholds it crossed.
    pub fn observe(
        &mut self,
        rules: &Rules,
        key: SourceKey,
        dst: [u8; 16],
        port: u16,
        ts: Timestamp,
    ) -> Vec<Crossed> {
        let window_us = i64::from(rules.window_secs) * 1_000_000;
        let crossed = match self.sources.get_mut(&key) {
            Some(window) => window.attempt(rules, dst, port, ts),
            None if rules.needs_two_attempts() => {
                let slot = self.sources.hasher().hash_one(key) as usize;
                let Some(first) = self.probation.admit(slot, key, dst, port, ts, window_us) else {
                    return Vec::new();
                };
                let window = self.track(rules, key, first.ts);
                let mut crossed = window
                    .attempt(rules, first.dst, first.port, first.ts)
                    .unwrap_or_default();
                match window.attempt(rules, dst, port, ts) {
                    Some(more) => crossed.extend(more),
                    None => self.late = self.late.saturating_add(1),
                }
                return crossed;
            }
            None => self.track(rules, key, ts).attempt(rules, dst, port, ts),
        };
        crossed.unwrap_or_else(|| {
            self.late = self.late.saturating_add(1);
            Vec::new()
        })
    }

    /// A new window for `key`, making room for it first when the table is
    /// full.
    fn track(&mut self, rules: &Rules, key: SourceKey, ts: Timestamp) -> &mut Window {
        if self.sources.len() >= rules.max_sources {
            self.make_room(rules, ts);
        }
        self.sources.entry(key).or_insert_with(|| Window::new(ts))
    }

    /// Drops windows that ended before `now`.
    pub fn expire(&mut self, rules: &Rules, now: Timestamp) {
        let window_us = i64::from(rules.window_secs) * 1_000_000;
        self.sources
            .retain(|_, w| w.start.saturating_add(window_us) > now);
    }

    /// Drops ended windows and about a fifth of the others, least recently
    /// active first. Eviction is in bulk so that a full table under a flood
    /// of new sources does not rescan the table for every flow, and the
    /// cut-off is the 20th percentile of a sample of the live windows (the
    /// table's order is its hashes', so the first ones are as good a sample
    /// as any): one pass over the table, not three. Under a flood of new
    /// sources this is most of the plugin's work.
    fn make_room(&mut self, rules: &Rules, now: Timestamp) {
        let before = self.sources.len();
        let window_us = i64::from(rules.window_secs) * 1_000_000;
        let live = |w: &Window| w.start.saturating_add(window_us) > now;
        let mut sample: Vec<Timestamp> = self
            .sources
            .values()
            .filter(|w| live(w))
            .take(EVICTION_SAMPLE)
            .map(|w| w.last_seen)
            .collect();
        let threshold = if sample.is_empty() {
            Timestamp::MIN
        } else {
            let cut = (sample.len() / 5).max(1).min(sample.len() - 1);
            *sample.select_nth_unstable(cut).1
        };
        self.sources
            .retain(|_, w| live(w) && w.last_seen > threshold);
        let dropped = before - self.sources.len();
        self.evicted += dropped as u64;
        // Under a flood this happens often: say it at the first eviction
        // and then at every power of two, not every time.
        let total = self.evicted;
        let before = total - dropped as u64;
        if dropped > 0 && (before == 0 || before.ilog2() != total.ilog2()) {
            kansoku_plugin::warn!(
                "source table full ({} max): dropped {dropped} windows, {} in total",
                rules.max_sources,
                self.evicted
            );
        }
    }

    /// Serialises the table for a snapshot.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain maps of integers cannot fail.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Reads a table written by [`Scanners::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, postcard::Error> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        postcard::from_bytes(bytes)
    }
}

fn bump(count: &mut u32) -> u32 {
    *count = count.saturating_add(1);
    *count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_evicts_the_least_recently_active() {
        let rules = Rules {
            max_sources: 10,
            ..Rules::default()
        };
        let mut scanners = Scanners::default();
        // Two attempts each: a source seen once is not in the table yet.
        for i in 0..10u8 {
            let mut src = [0; 16];
            src[15] = i;
            for port in [80, 81] {
                scanners.observe(&rules, (0, src), [9; 16], port, i64::from(i));
            }
        }
        assert_eq!(scanners.len(), 10);
        for port in [80, 81] {
            scanners.observe(&rules, (0, [7; 16]), [9; 16], port, 100);
        }
        assert!(scanners.len() <= 10);
        assert!(scanners.evicted >= 1);
        let mut oldest = [0; 16];
        oldest[15] = 0;
        assert!(!scanners.sources.contains_key(&(0, oldest)));
    }

    #[test]
    fn eviction_frees_about_a_fifth_oldest_first() {
        let rules = Rules {
            max_sources: 1000,
            ..Rules::default()
        };
        let mut scanners = Scanners::default();
        let source = |i: u16| {
            let mut src = [0; 16];
            src[14..].copy_from_slice(&i.to_be_bytes());
            (0, src)
        };
        for i in 0..1000u16 {
            for port in [80, 81] {
                scanners.observe(&rules, source(i), [9; 16], port, i64::from(i));
            }
        }
        for port in [80, 81] {
            scanners.observe(&rules, source(5000), [9; 16], port, 1000);
        }
        assert!(
            (150..=250).contains(&scanners.evicted),
            "{}",
            scanners.evicted
        );
        assert!(!scanners.sources.contains_key(&source(0)));
        assert!(scanners.sources.contains_key(&source(999)));
        assert!(scanners.sources.contains_key(&source(5000)));
        // What is left is the most recently active.
        let oldest = scanners.sources.values().map(|w| w.last_seen).min();
        assert_eq!(oldest, Some(1000 - scanners.sources.len() as i64 + 1));
    }

    #[test]
    fn a_source_enters_the_table_at_its_second_attempt_with_both() {
        let rules = Rules {
            vertical: crate::rules::Threshold {
                enabled: true,
                min_distinct: 2,
            },
            ..Rules::default()
        };
        let mut scanners = Scanners::default();
        let (a, b) = ((0, [1; 16]), (0, [2; 16]));
        assert!(scanners.observe(&rules, a, [9; 16], 22, 10).is_empty());
        assert_eq!(scanners.len(), 0);
        // The second attempt counts the first: two ports cross the threshold.
        let crossed = scanners.observe(&rules, a, [9; 16], 23, 20);
        assert_eq!(crossed.len(), 1);
        assert_eq!(crossed[0].first_seen, 10);
        assert_eq!(scanners.sources[&a].attempts, 2);
        // A source whose slot another source took starts over.
        let slot = |k: SourceKey| scanners.sources.hasher().hash_one(k) as usize % PROBATION_SLOTS;
        let other = (0u32..)
            .map(|i| {
                let mut src = [3; 16];
                src[..4].copy_from_slice(&i.to_be_bytes());
                (0, src)
            })
            .find(|&k| slot(k) == slot(b))
            .unwrap();
        scanners.observe(&rules, b, [9; 16], 22, 30);
        scanners.observe(&rules, other, [9; 16], 22, 31);
        assert!(scanners.observe(&rules, b, [9; 16], 23, 32).is_empty());
        assert!(!scanners.sources.contains_key(&b));
        assert_eq!(scanners.observe(&rules, b, [9; 16], 24, 33).len(), 1);

        // With a threshold of one, the first attempt is tracked at once.
        let rules = Rules {
            horizontal: crate::rules::Threshold {
                enabled: true,
                min_distinct: 1,
            },
            ..Rules::default()
        };
        let mut scanners = Scanners::default();
        assert_eq!(scanners.observe(&rules, a, [9; 16], 22, 10).len(), 1);
    }

    #[test]
    fn a_window_spans_window_secs_even_when_input_is_out_of_order() {
        let rules = Rules {
            window_secs: 10,
            ..Rules::default()
        };
        let sec = 1_000_000;
        let mut scanners = Scanners::default();
        let key = (0, [1; 16]);
        // 20 ports inside 10 s, logged out of order.
        for port in 0..20u16 {
            let ts = 100 * sec + i64::from(port % 7) * sec;
            scanners.observe(&rules, key, [9; 16], port, ts);
        }
        // A straggler from long before is not counted in this window.
        scanners.observe(&rules, key, [9; 16], 1000, 10 * sec);
        assert_eq!(scanners.late, 1);
        let window = &scanners.sources[&key];
        assert_eq!(window.targets.len(), 20);
        assert_eq!((window.start, window.last_seen), (100 * sec, 106 * sec));
        // A newer attempt past the span opens the next window.
        scanners.observe(&rules, key, [9; 16], 2000, 111 * sec);
        assert_eq!(scanners.sources[&key].targets.len(), 1);
    }
}
