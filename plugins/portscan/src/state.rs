//! Per-source windows of unanswered attempts.

use std::collections::{HashMap, HashSet};

use kansoku_plugin::Timestamp;
use serde::{Deserialize, Serialize};

use crate::rules::Rules;

/// (institution, source address).
pub type SourceKey = (u16, [u8; 16]);

const SAMPLE: usize = 10;

/// Every tracked source.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Scanners {
    sources: HashMap<SourceKey, Window>,
    /// Sources dropped to stay within `max_sources`.
    evicted: u64,
}

/// One source's current window.
#[derive(Debug, Serialize, Deserialize)]
struct Window {
    start: Timestamp,
    last_seen: Timestamp,
    attempts: u32,
    targets: HashSet<([u8; 16], u16)>,
    ports_per_host: HashMap<[u8; 16], u32>,
    hosts_per_port: HashMap<u16, u32>,
    vertical_reported: bool,
    horizontal_reported: bool,
}

impl Window {
    fn new(ts: Timestamp) -> Self {
        Self {
            start: ts,
            last_seen: ts,
            attempts: 0,
            targets: HashSet::new(),
            ports_per_host: HashMap::new(),
            hosts_per_port: HashMap::new(),
            vertical_reported: false,
            horizontal_reported: false,
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
        if !self.sources.contains_key(&key) && self.sources.len() >= rules.max_sources {
            self.make_room(rules, ts);
        }
        let window_us = i64::from(rules.window_secs) * 1_000_000;
        let window = self
            .sources
            .entry(key)
            .or_insert_with(|| Window::new(ts));
        if ts >= window.start.saturating_add(window_us) {
            *window = Window::new(ts);
        }
        window.last_seen = window.last_seen.max(ts);
        window.attempts = window.attempts.saturating_add(1);
        if window.targets.len() >= rules.max_targets || !window.targets.insert((dst, port)) {
            return Vec::new();
        }
        let ports = bump(window.ports_per_host.entry(dst).or_default());
        let hosts = bump(window.hosts_per_port.entry(port).or_default());

        let mut crossed = Vec::new();
        if rules.vertical.enabled && !window.vertical_reported && ports >= rules.vertical.min_distinct {
            window.vertical_reported = true;
            let mut sample: Vec<u16> = window
                .targets
                .iter()
                .filter(|(d, _)| *d == dst)
                .map(|(_, p)| *p)
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
                .map(|(d, _)| std::net::Ipv6Addr::from(*d).to_canonical())
                .collect();
            sample.sort_unstable();
            sample.truncate(SAMPLE);
            crossed.push(Crossed {
                first_seen: window.start,
                attempts: window.attempts,
                scan: Scan::Horizontal { port, hosts, sample },
            });
        }
        crossed
    }

    /// Drops windows that ended before `now`.
    pub fn expire(&mut self, rules: &Rules, now: Timestamp) {
        let window_us = i64::from(rules.window_secs) * 1_000_000;
        self.sources
            .retain(|_, w| w.start.saturating_add(window_us) > now);
    }

    /// Frees a tenth of the table, oldest activity first, after dropping
    /// ended windows. Eviction is in bulk so that a full table under a flood
    /// of new sources does not rescan the table for every flow.
    fn make_room(&mut self, rules: &Rules, now: Timestamp) {
        let before = self.sources.len();
        self.expire(rules, now);
        if self.sources.len() >= rules.max_sources {
            let mut seen: Vec<Timestamp> = self.sources.values().map(|w| w.last_seen).collect();
            let cut = (rules.max_sources / 10).max(1).min(seen.len() - 1);
            let (_, threshold, _) = seen.select_nth_unstable(cut);
            let threshold = *threshold;
            self.sources.retain(|_, w| w.last_seen > threshold);
        }
        let dropped = before - self.sources.len();
        self.evicted += dropped as u64;
        kansoku_plugin::warn!(
            "source table full ({} max): dropped {dropped} windows, {} in total",
            rules.max_sources,
            self.evicted
        );
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
        for i in 0..10u8 {
            let mut src = [0; 16];
            src[15] = i;
            scanners.observe(&rules, (0, src), [9; 16], 80, i64::from(i));
        }
        assert_eq!(scanners.len(), 10);
        scanners.observe(&rules, (0, [7; 16]), [9; 16], 80, 100);
        assert!(scanners.len() <= 10);
        assert!(scanners.evicted >= 1);
        let mut oldest = [0; 16];
        oldest[15] = 0;
        assert!(!scanners.sources.contains_key(&(0, oldest)));
    }
}
