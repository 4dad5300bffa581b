//! What rules remember between flows: flowbits per connection, and counts
//! for `threshold` and `detection_filter`. Both are bounded in time and
//! size, because their keys come from the Internet.

use std::collections::HashMap;

use kansoku_plugin::{Flow, Timestamp};
use serde::{Deserialize, Serialize};

use crate::check::ends;
use crate::rule::{Flowbit, Limit, Rule, Track};

/// A connection: originator and responder address and port, protocol.
type FlowKey = (u128, u16, u128, u16, u8);

/// Flowbits of a connection are dropped this long after it was last seen.
const FLOWBIT_IDLE_US: i64 = 3_600_000_000;
/// At most this many connections carry flowbits.
const MAX_FLOWS: usize = 200_000;
/// At most this many threshold counters.
const MAX_COUNTERS: usize = 200_000;

/// Counters are keyed by sid, not by position among the loaded rules, so
/// they keep meaning the same rule across a `configure` and a hot swap.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    names: HashMap<String, u32>,
    flows: HashMap<FlowKey, (Timestamp, Vec<u32>)>,
    counters: HashMap<(u32, u128, u128), Counter>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Counter {
    start: Timestamp,
    hits: u32,
    alerted: bool,
}

fn key(flow: &Flow<'_>) -> FlowKey {
    let (orig, resp) = ends(flow);
    (orig.ip, orig.port, resp.ip, resp.port, flow.proto())
}

impl State {
    fn id(&mut self, name: &str) -> u32 {
        let next = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        *self.names.entry(name.to_owned()).or_insert(next)
    }

    fn is_set(&self, flow: &FlowKey, name: &str) -> bool {
        let Some(id) = self.names.get(name) else {
            return false;
        };
        self.flows
            .get(flow)
            .is_some_and(|(_, bits)| bits.contains(id))
    }

    /// The rule's `isset`/`isnotset` conditions.
    pub fn flowbits_hold(&self, rule: &Rule, flow: &Flow<'_>) -> bool {
        if rule.flowbits.is_empty() {
            return true;
        }
        let k = key(flow);
        rule.flowbits.iter().all(|bit| match bit {
            Flowbit::IsSet(names, any) if *any => names.iter().any(|n| self.is_set(&k, n)),
            Flowbit::IsSet(names, _) => names.iter().all(|n| self.is_set(&k, n)),
            Flowbit::IsNotSet(names) => names.iter().all(|n| !self.is_set(&k, n)),
            _ => true,
        })
    }

    /// The rule's `set`/`unset`/`toggle` actions, on a match.
    pub fn apply_flowbits(&mut self, rule: &Rule, flow: &Flow<'_>) {
        let actions = rule
            .flowbits
            .iter()
            .any(|b| matches!(b, Flowbit::Set(_) | Flowbit::Unset(_) | Flowbit::Toggle(_)));
        if !actions {
            return;
        }
        if self.flows.len() >= MAX_FLOWS {
            self.prune_flows(flow.ts());
        }
        let k = key(flow);
        for bit in &rule.flowbits {
            let (names, op) = match bit {
                Flowbit::Set(n) => (n, 0),
                Flowbit::Unset(n) => (n, 1),
                Flowbit::Toggle(n) => (n, 2),
                _ => continue,
            };
            for name in names {
                let id = self.id(name);
                let entry = self
                    .flows
                    .entry(k)
                    .or_insert_with(|| (flow.ts(), Vec::new()));
                entry.0 = entry.0.max(flow.ts());
                let bits = &mut entry.1;
                let present = bits.iter().position(|b| *b == id);
                match (op, present) {
                    (0, None) | (2, None) => bits.push(id),
                    (1, Some(i)) | (2, Some(i)) => {
                        bits.swap_remove(i);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Whether `threshold` or `detection_filter` lets this match alert.
    pub fn threshold_allows(&mut self, rule: &Rule, flow: &Flow<'_>) -> bool {
        let Some(t) = rule.threshold else {
            return true;
        };
        let id = rule.sid;
        let (orig, resp) = ends(flow);
        let (a, b) = match t.track {
            Track::BySrc => (orig.ip, 0),
            Track::ByDst => (resp.ip, 0),
            Track::ByRule => (0, 0),
            Track::ByBoth => (orig.ip, resp.ip),
        };
        if self.counters.len() >= MAX_COUNTERS && !self.counters.contains_key(&(id, a, b)) {
            self.prune_counters(flow.ts());
        }
        let now = flow.ts();
        let period = i64::from(t.seconds) * 1_000_000;
        let counter = self.counters.entry((id, a, b)).or_insert(Counter {
            start: now,
            hits: 0,
            alerted: false,
        });
        if now.saturating_sub(counter.start) >= period {
            *counter = Counter {
                start: now,
                hits: 0,
                alerted: false,
            };
        }
        counter.hits = counter.hits.saturating_add(1);
        match t.limit {
            Limit::Limit => counter.hits <= t.count,
            Limit::Threshold => {
                if counter.hits >= t.count {
                    counter.hits = 0;
                    true
                } else {
                    false
                }
            }
            Limit::Both => {
                if counter.hits >= t.count && !counter.alerted {
                    counter.alerted = true;
                    true
                } else {
                    false
                }
            }
            Limit::DetectionFilter => counter.hits > t.count,
        }
    }

    fn prune_flows(&mut self, now: Timestamp) {
        self.flows
            .retain(|_, (seen, _)| now.saturating_sub(*seen) < FLOWBIT_IDLE_US / 60);
        if self.flows.len() >= MAX_FLOWS {
            self.flows.clear();
        }
    }

    fn prune_counters(&mut self, now: Timestamp) {
        // Counters older than a day have surely expired.
        self.counters
            .retain(|_, c| now.saturating_sub(c.start) < 86_400_000_000);
        if self.counters.len() >= MAX_COUNTERS {
            self.counters.clear();
        }
    }

    /// Drops what no later flow can need.
    pub fn expire(&mut self, now: Timestamp) {
        self.flows
            .retain(|_, (seen, _)| now.saturating_sub(*seen) < FLOWBIT_IDLE_US);
        self.counters
            .retain(|_, c| now.saturating_sub(c.start) < 86_400_000_000);
    }
}

impl State {
    /// The state as bytes, for a replacement instance.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// State written by [`State::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}
