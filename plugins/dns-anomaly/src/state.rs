//! Windows: per (institution, registered domain) for random-subdomain
//! attacks, per (institution, client) for DGA failures, per (client,
//! domain) for tunnels. All are capped; evictions are counted.

use std::hash::BuildHasher;

use foldhash::HashMap;
use foldhash::fast::FixedState;
use kansoku_plugin::Timestamp;
use serde::{Deserialize, Serialize};

use crate::counter::Distinct;
use crate::names::{Name, Stats};
use crate::rules::Rules;

/// Sample names kept per window, for the analyst.
const SAMPLES: usize = 5;
/// Slots of the probation table for domains seen once.
const PROBATION_SLOTS: usize = 1 << 16;
/// Slots of the DGA score cache.
const SCORE_SLOTS: usize = 1 << 12;
/// NXDOMAIN answers a client must have had in a window before its failing
/// names are scored: scoring costs about a microsecond, and a client with a
/// stray failure or two cannot make a finding anyway (it needs
/// `min_failed_names` generated names), so those are not worth it.
const GATE_FAILURES: u32 = 3;
/// Slots of the per-client NXDOMAIN counters of the gate.
const GATE_SLOTS: usize = 1 << 14;
/// Windows a domain may stay idle before its entry (and baseline) goes.
const IDLE_WINDOWS: i64 = 30;
/// Windows whose activity sets the eviction cut-off.
const EVICTION_SAMPLE: usize = 4096;

/// One DNS query, as the state sees it.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub institution: u16,
    pub src: [u8; 16],
    pub ts: Timestamp,
    /// Lower case, no trailing dot.
    pub name: Name<'a>,
    pub qtype: u16,
    pub rcode: Option<u16>,
    pub bytes: u64,
}

impl Query<'_> {
    /// NXDOMAIN, SERVFAIL, or no answer at all.
    fn failed(&self) -> bool {
        matches!(self.rcode, None | Some(2) | Some(3))
    }
}

/// A threshold crossed by the query just observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Alert {
    /// Random-subdomain flood against `domain`.
    WaterTorture {
        domain: String,
        first_seen: Timestamp,
        queries: u32,
        failures: u32,
        unique: u32,
        resolvers: u32,
        baseline: f32,
        samples: Vec<String>,
    },
    /// A client failing on many generated names.
    Dga {
        first_seen: Timestamp,
        failed_names: u32,
        failures: u32,
        mean_score: f32,
        samples: Vec<String>,
    },
    /// A client tunnelling through `domain`.
    Tunnel {
        domain: String,
        first_seen: Timestamp,
        queries: u32,
        unique: u32,
        mean_len: f32,
        mean_entropy: f32,
        unusual_types: u32,
        bytes: u64,
        samples: Vec<String>,
    },
}

/// Everything tracked.
#[derive(Debug, Serialize, Deserialize)]
pub struct State {
    /// Seed of the hashes of names kept in the tables, carried across a
    /// swap so that counts continue.
    seed: u64,
    domains: HashMap<(u16, u64), Domain>,
    clients: HashMap<(u16, [u8; 16]), Client>,
    tunnels: HashMap<(u16, [u8; 16], u64), Tunnel>,
    /// Entries dropped to stay within the caps: domains, clients, tunnels.
    pub evicted: [u64; 3],
    /// Data time of the last sweep of ended windows.
    last_sweep: Timestamp,
    /// Domains seen once; not carried across a swap (a domain then enters
    /// at its next two queries).
    #[serde(skip)]
    probation: Vec<Option<Probe>>,
    /// Recent DGA scores by registered-domain hash.
    #[serde(skip)]
    scores: Vec<(u64, f32)>,
    /// NXDOMAIN answers per client hash in its current window, in front of
    /// the DGA model; not carried across a swap (a client then waits for
    /// its next few failures), a collision at worst resets a count.
    #[serde(skip)]
    failing: Vec<(u64, Timestamp, u32)>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            seed: foldhash::fast::RandomState::default().hash_one(0x0064_6e73_u64),
            domains: HashMap::default(),
            clients: HashMap::default(),
            tunnels: HashMap::default(),
            evicted: [0; 3],
            last_sweep: Timestamp::MIN,
            probation: Vec::new(),
            scores: Vec::new(),
            failing: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Probe {
    key: (u16, u64),
    ts: Timestamp,
    failed: bool,
    name: u64,
    resolver: u64,
}

/// A registered domain of one institution.
#[derive(Debug, Serialize, Deserialize)]
struct Domain {
    allowed: bool,
    /// DGA score of the registered domain; NaN until needed.
    #[serde(skip, default = "nan")]
    score: f32,
    /// Distinct names per ordinary window, smoothed.
    baseline: f32,
    learned: u32,
    last_seen: Timestamp,
    window: DomainWindow,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct DomainWindow {
    start: Timestamp,
    queries: u32,
    failures: u32,
    names: Distinct,
    resolvers: Distinct,
    reported: bool,
    samples: Vec<String>,
}

/// DGA evidence of one client.
#[derive(Debug, Serialize, Deserialize)]
struct Client {
    start: Timestamp,
    last_seen: Timestamp,
    failures: u32,
    names: Distinct,
    score_sum: f32,
    reported: bool,
    samples: Vec<String>,
}

/// Tunnelling evidence of one client under one domain.
#[derive(Debug, Serialize, Deserialize)]
struct Tunnel {
    domain: String,
    start: Timestamp,
    last_seen: Timestamp,
    queries: u32,
    names: Distinct,
    len_sum: u64,
    entropy_sum: f32,
    unusual_types: u32,
    bytes: u64,
    reported: bool,
    samples: Vec<String>,
}

fn nan() -> f32 {
    f32::NAN
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl State {
    fn hash(&self, bytes: &[u8]) -> u64 {
        FixedState::with_seed(self.seed).hash_one(bytes)
    }

    /// Number of entries in the three tables.
    pub fn len(&self) -> [usize; 3] {
        [self.domains.len(), self.clients.len(), self.tunnels.len()]
    }

    /// Approximate bytes held, for the benchmarks.
    pub fn heap_bytes(&self) -> usize {
        let table = |n: usize, entry: usize| n * (entry + 8);
        let samples = |s: &[String]| s.iter().map(|x| x.capacity() + 24).sum::<usize>();
        table(self.domains.capacity(), 16 + size_of::<Domain>())
            + self
                .domains
                .values()
                .map(|d| {
                    d.window.names.heap_bytes()
                        + d.window.resolvers.heap_bytes()
                        + samples(&d.window.samples)
                })
                .sum::<usize>()
            + table(self.clients.capacity(), 24 + size_of::<Client>())
            + self
                .clients
                .values()
                .map(|c| c.names.heap_bytes() + samples(&c.samples))
                .sum::<usize>()
            + table(self.tunnels.capacity(), 32 + size_of::<Tunnel>())
            + self
                .tunnels
                .values()
                .map(|t| t.domain.capacity() + t.names.heap_bytes() + samples(&t.samples))
                .sum::<usize>()
            + self.probation.capacity() * size_of::<Option<Probe>>()
            + self.scores.capacity() * 16
            + self.failing.capacity() * size_of::<(u64, Timestamp, u32)>()
    }

    /// Counts one query and returns the thresholds it crossed.
    pub fn observe(&mut self, rules: &Rules, q: &Query<'_>, alerts: &mut Vec<Alert>) {
        let t = &rules.thresholds;
        let window_us = i64::from(t.window_secs) * 1_000_000;
        let rd_hash = self.hash(q.name.registered);
        let key = (q.institution, rd_hash);
        let name_hash = self.hash(q.name.full);
        let resolver = self.hash(&q.src);
        let failed = q.failed();

        let allowed = match self.domains.get_mut(&key) {
            Some(domain) => {
                let allowed = domain.allowed;
                if !allowed && t.water_torture.enabled {
                    if let Some(alert) =
                        domain.count(rules, q.ts, failed, name_hash, resolver, &q.name)
                    {
                        alerts.push(alert);
                    }
                } else {
                    domain.last_seen = domain.last_seen.max(q.ts);
                }
                allowed
            }
            None => {
                if self.probation.is_empty() {
                    self.probation = vec![None; PROBATION_SLOTS];
                }
                let slot = (rd_hash ^ u64::from(q.institution)) as usize % PROBATION_SLOTS;
                let held = self.probation[slot];
                match held {
                    Some(first)
                        if first.key == key
                            && first.ts.abs_diff(q.ts) < window_us.unsigned_abs() =>
                    {
                        self.probation[slot] = None;
                        let allowed = allowed(t, q.name.full);
                        if self.domains.len() >= t.max_domains {
                            let dropped = make_room(&mut self.domains, q.ts, |d| d.last_seen);
                            note("domain", t.max_domains, &mut self.evicted[0], dropped);
                        }
                        let domain = self.domains.entry(key).or_insert_with(|| Domain {
                            allowed,
                            score: f32::NAN,
                            baseline: 0.0,
                            learned: 0,
                            last_seen: first.ts,
                            window: DomainWindow {
                                start: first.ts.min(q.ts),
                                ..DomainWindow::default()
                            },
                        });
                        if !allowed && t.water_torture.enabled {
                            // The first query's name is not kept: a sample
                            // is only taken from the second on.
                            let _ = domain.count(
                                rules,
                                first.ts,
                                first.failed,
                                first.name,
                                first.resolver,
                                &Name {
                                    full: b"",
                                    ..q.name
                                },
                            );
                            if let Some(alert) =
                                domain.count(rules, q.ts, failed, name_hash, resolver, &q.name)
                            {
                                alerts.push(alert);
                            }
                        }
                        allowed
                    }
                    _ => {
                        self.probation[slot] = Some(Probe {
                            key,
                            ts: q.ts,
                            failed,
                            name: name_hash,
                            resolver,
                        });
                        // Decided below only for the rarer candidates.
                        false
                    }
                }
            }
        };
        if allowed {
            return;
        }

        if q.rcode == Some(3)
            && t.dga.enabled
            && let Some(alert) = self.dga(rules, q, rd_hash, window_us)
        {
            alerts.push(alert);
        }
        let sub = q.name.subdomain();
        if t.tunnel.enabled
            && sub.len() >= t.tunnel.min_subdomain_len as usize
            && let Some(alert) = self.tunnel(rules, q, rd_hash, name_hash, window_us)
        {
            alerts.push(alert);
        }
    }

    fn score(&mut self, rules: &Rules, q: &Query<'_>, rd_hash: u64) -> Option<f32> {
        let model = rules.model.as_ref()?;
        let registered = Name {
            full: q.name.registered,
            ..q.name
        };
        // A tracked domain keeps its score; the cache serves the others.
        if let Some(domain) = self.domains.get_mut(&(q.institution, rd_hash)) {
            if domain.score.is_nan() {
                domain.score = model.score(&registered);
            }
            return Some(domain.score);
        }
        if self.scores.is_empty() {
            self.scores = vec![(0, f32::NAN); SCORE_SLOTS];
        }
        let slot = &mut self.scores[rd_hash as usize % SCORE_SLOTS];
        if slot.0 == rd_hash && !slot.1.is_nan() {
            return Some(slot.1);
        }
        let score = model.score(&registered);
        *slot = (rd_hash, score);
        Some(score)
    }

    /// Counts an NXDOMAIN answer to the client of `q`; whether it has had
    /// [`GATE_FAILURES`] in its window.
    fn fails_often(&mut self, q: &Query<'_>, window_us: i64) -> bool {
        let mut key = [0u8; 18];
        key[..2].copy_from_slice(&q.institution.to_le_bytes());
        key[2..].copy_from_slice(&q.src);
        let h = self.hash(&key);
        if self.failing.is_empty() {
            self.failing = vec![(0, Timestamp::MIN, 0); GATE_SLOTS];
        }
        let slot = &mut self.failing[h as usize % GATE_SLOTS];
        if slot.0 != h || q.ts.saturating_sub(slot.1) >= window_us {
            *slot = (h, q.ts, 0);
        }
        slot.2 = slot.2.saturating_add(1);
        slot.2 >= GATE_FAILURES
    }

    fn dga(&mut self, rules: &Rules, q: &Query<'_>, rd_hash: u64, window_us: i64) -> Option<Alert> {
        let t = &rules.thresholds;
        let threshold = rules.dga_threshold()?;
        let key = (q.institution, q.src);
        if !self.clients.contains_key(&key) && !self.fails_often(q, window_us) {
            return None;
        }
        let score = self.score(rules, q, rd_hash)?;
        if score < threshold || allowed(t, q.name.full) {
            return None;
        }
        if !self.clients.contains_key(&key) && self.clients.len() >= t.max_clients {
            let dropped = make_room(&mut self.clients, q.ts, |c| c.last_seen);
            note("DGA client", t.max_clients, &mut self.evicted[1], dropped);
        }
        let client = self.clients.entry(key).or_insert_with(|| Client {
            start: q.ts,
            last_seen: q.ts,
            failures: 0,
            names: Distinct::default(),
            score_sum: 0.0,
            reported: false,
            samples: Vec::new(),
        });
        if q.ts.saturating_sub(client.start) >= window_us {
            *client = Client {
                start: q.ts,
                last_seen: q.ts,
                failures: 0,
                names: Distinct::default(),
                score_sum: 0.0,
                reported: false,
                samples: Vec::new(),
            };
        }
        client.last_seen = client.last_seen.max(q.ts);
        client.failures = client.failures.saturating_add(1);
        if !client.names.insert(rd_hash) {
            return None;
        }
        client.score_sum += score;
        if client.samples.len() < SAMPLES {
            client.samples.push(text(q.name.registered));
        }
        let failed_names = client.names.count();
        if client.reported || failed_names < t.dga.min_failed_names {
            return None;
        }
        client.reported = true;
        Some(Alert::Dga {
            first_seen: client.start,
            failed_names,
            failures: client.failures,
            mean_score: client.score_sum / failed_names.max(1) as f32,
            samples: client.samples.clone(),
        })
    }

    fn tunnel(
        &mut self,
        rules: &Rules,
        q: &Query<'_>,
        rd_hash: u64,
        name_hash: u64,
        window_us: i64,
    ) -> Option<Alert> {
        let t = &rules.thresholds;
        let key = (q.institution, q.src, rd_hash);
        if !self.tunnels.contains_key(&key) {
            if allowed(t, q.name.full) {
                return None;
            }
            if self.tunnels.len() >= t.max_tunnels {
                let dropped = make_room(&mut self.tunnels, q.ts, |w| w.last_seen);
                note("tunnel", t.max_tunnels, &mut self.evicted[2], dropped);
            }
        }
        let fresh = |ts| Tunnel {
            domain: text(q.name.registered),
            start: ts,
            last_seen: ts,
            queries: 0,
            names: Distinct::default(),
            len_sum: 0,
            entropy_sum: 0.0,
            unusual_types: 0,
            bytes: 0,
            reported: false,
            samples: Vec::new(),
        };
        let w = self.tunnels.entry(key).or_insert_with(|| fresh(q.ts));
        if q.ts.saturating_sub(w.start) >= window_us {
            *w = fresh(q.ts);
        }
        w.last_seen = w.last_seen.max(q.ts);
        w.queries = w.queries.saturating_add(1);
        w.bytes = w.bytes.saturating_add(q.bytes);
        // TXT, NULL, CNAME, MX, PRIVATE/ANY-style types carry more data back
        // than an address does, which is why tunnels use them.
        if matches!(q.qtype, 5 | 10 | 15 | 16 | 255) {
            w.unusual_types = w.unusual_types.saturating_add(1);
        }
        if !w.names.insert(name_hash) {
            return None;
        }
        let sub = q.name.subdomain();
        let stats = Stats::of(sub);
        w.len_sum += u64::from(stats.len);
        w.entropy_sum += stats.entropy;
        if w.samples.len() < 3 {
            w.samples.push(text(q.name.full));
        }
        let unique = w.names.count();
        let n = unique.max(1) as f32;
        let (mean_len, mean_entropy) = (w.len_sum as f32 / n, w.entropy_sum / n);
        if w.reported
            || unique < t.tunnel.min_unique_names
            || mean_len < t.tunnel.min_mean_len
            || mean_entropy < t.tunnel.min_mean_entropy
        {
            return None;
        }
        w.reported = true;
        Some(Alert::Tunnel {
            domain: w.domain.clone(),
            first_seen: w.start,
            queries: w.queries,
            unique,
            mean_len,
            mean_entropy,
            unusual_types: w.unusual_types,
            bytes: w.bytes,
            samples: w.samples.clone(),
        })
    }

    /// Closes windows that ended before `now`, learning each domain's
    /// baseline from windows that raised nothing, and drops idle entries.
    pub fn expire(&mut self, rules: &Rules, now: Timestamp) {
        let window_us = i64::from(rules.thresholds.window_secs) * 1_000_000;
        // The engine ticks often, and a sweep visits every entry: sweep once
        // a window only. Windows also roll over when next counted, so a late
        // sweep costs nothing but memory for a while.
        if now < self.last_sweep.saturating_add(window_us) {
            return;
        }
        self.last_sweep = now;
        self.domains.retain(|_, d| {
            if d.window.queries > 0 && d.window.start.saturating_add(window_us) <= now {
                d.close();
            }
            d.last_seen.saturating_add(IDLE_WINDOWS * window_us) > now
        });
        self.clients
            .retain(|_, c| c.start.saturating_add(window_us) > now);
        self.tunnels
            .retain(|_, w| w.start.saturating_add(window_us) > now);
    }

    /// Serialises the tables for a snapshot.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Plain maps of integers and strings: serialising cannot fail.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Reads tables written by [`State::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, postcard::Error> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        postcard::from_bytes(bytes)
    }
}

impl Domain {
    /// Learns from the window that ended and starts the next.
    fn close(&mut self) {
        let w = std::mem::take(&mut self.window);
        if !w.reported {
            let unique = w.names.count() as f32;
            self.baseline = if self.learned == 0 {
                unique
            } else {
                0.8 * self.baseline + 0.2 * unique
            };
            self.learned = self.learned.saturating_add(1);
        }
    }

    fn count(
        &mut self,
        rules: &Rules,
        ts: Timestamp,
        failed: bool,
        name_hash: u64,
        resolver: u64,
        name: &Name<'_>,
    ) -> Option<Alert> {
        let t = &rules.thresholds.water_torture;
        let window_us = i64::from(rules.thresholds.window_secs) * 1_000_000;
        if ts.saturating_sub(self.window.start) >= window_us && self.window.queries > 0 {
            self.close();
        }
        if self.window.queries == 0 {
            self.window.start = ts;
        }
        self.last_seen = self.last_seen.max(ts);
        let w = &mut self.window;
        w.queries = w.queries.saturating_add(1);
        if failed {
            w.failures = w.failures.saturating_add(1);
        }
        w.resolvers.insert(resolver);
        let new = w.names.insert(name_hash);
        if failed && new && !name.full.is_empty() && w.samples.len() < SAMPLES {
            w.samples.push(text(name.full));
        }
        // The failure ratio first: it is the cheaper test, and ordinary
        // traffic fails it.
        if !new || w.reported || (w.failures as f32) < t.min_failure_ratio * w.queries as f32 {
            return None;
        }
        let unique = w.names.count();
        let needed = (t.min_unique_subdomains as f32).max(t.baseline_factor * self.baseline);
        if (unique as f32) < needed {
            return None;
        }
        w.reported = true;
        Some(Alert::WaterTorture {
            // The registered domain of the query that crossed: the key is
            // its hash, so the text need not be kept for every domain.
            domain: text(name.registered),
            first_seen: w.start,
            queries: w.queries,
            failures: w.failures,
            unique,
            resolvers: w.resolvers.count(),
            baseline: self.baseline,
            samples: w.samples.clone(),
        })
    }
}

/// Whether `name` is an allow-listed domain or lies under one.
pub fn allowed(t: &crate::rules::Thresholds, name: &[u8]) -> bool {
    t.allow.iter().any(|a| {
        let a = a.as_bytes();
        name.ends_with(a) && (name.len() == a.len() || name[name.len() - a.len() - 1] == b'.')
    })
}

/// Drops ended entries' worth of the least recently active fifth, in bulk
/// (as portscan does: the cut-off is the 20th percentile of a sample), and
/// returns how many went.
fn make_room<K, V>(
    map: &mut HashMap<K, V>,
    now: Timestamp,
    last_seen: impl Fn(&V) -> Timestamp,
) -> u64
where
    K: std::hash::Hash + Eq,
{
    let before = map.len();
    let mut sample: Vec<Timestamp> = map.values().take(EVICTION_SAMPLE).map(&last_seen).collect();
    let threshold = if sample.is_empty() {
        now
    } else {
        let cut = (sample.len() / 5).max(1).min(sample.len() - 1);
        *sample.select_nth_unstable(cut).1
    };
    map.retain(|_, v| last_seen(v) > threshold);
    if map.len() == before {
        // All equally recent: drop any fifth rather than none.
        let mut n = before / 5 + 1;
        map.retain(|_, _| {
            if n > 0 {
                n -= 1;
                false
            } else {
                true
            }
        });
    }
    (before - map.len()) as u64
}

/// Says that a table is full at the first eviction and then at every power
/// of two, not at every eviction: under a flood it happens often.
fn note(table: &str, cap: usize, total: &mut u64, dropped: u64) {
    let before = *total;
    *total += dropped;
    if dropped > 0 && (before == 0 || before.ilog2() != total.ilog2()) {
        kansoku_plugin::warn!(
            "{table} table full ({cap} max): dropped {dropped} entries, {total} in total"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000;

    fn observe(state: &mut State, rules: &Rules, ts: i64, name: &str, rcode: u16) -> Vec<Alert> {
        let mut alerts = Vec::new();
        let q = Query {
            institution: 1,
            src: [7; 16],
            ts,
            name: Name::split(name.as_bytes()),
            qtype: 1,
            rcode: Some(rcode),
            bytes: 0,
        };
        state.observe(rules, &q, &mut alerts);
        alerts
    }

    #[test]
    fn windows_expire_and_teach_the_domain_its_baseline() {
        let rules = Rules::default();
        let mut state = State::default();
        // A busy domain that answers: 300 distinct names a minute for three
        // minutes, which teaches it a baseline of about 300...
        let minute = |state: &mut State, m: i64, names: i64, rcode: u16| {
            let mut alerts = 0;
            for i in 0..names {
                let ts = m * 60 * SEC + i * (50 * SEC / names);
                alerts +=
                    observe(state, &rules, ts, &format!("n{m}x{i}.busy.example"), rcode).len();
                state.expire(&rules, ts);
            }
            alerts
        };
        for m in 0..3 {
            assert_eq!(minute(&mut state, m, 300, 0), 0);
        }
        let domain = &state.domains[&(1, state.hash(b"busy.example"))];
        assert!(
            (250.0..=340.0).contains(&domain.baseline),
            "{}",
            domain.baseline
        );
        // ...so 300 failing names are not an attack on it, but 2,000 are.
        assert_eq!(minute(&mut state, 3, 300, 3), 0);
        assert_eq!(minute(&mut state, 4, 2000, 3), 1);
        // Idle long enough, the entry goes.
        state.expire(&rules, 5 * 60 * SEC + IDLE_WINDOWS * 60 * SEC + SEC);
        assert_eq!(state.len(), [0, 0, 0]);
    }

    #[test]
    fn allow_listed_names_are_matched_on_label_boundaries() {
        let t = crate::rules::Thresholds {
            allow: vec!["in-addr.arpa".into(), "cloudfront.net".into()],
            ..Default::default()
        };
        assert!(allowed(&t, b"4.3.2.1.in-addr.arpa"));
        assert!(allowed(&t, b"cloudfront.net"));
        assert!(!allowed(&t, b"evilcloudfront.net"));
    }

    #[test]
    fn a_client_is_scored_from_its_third_failure_in_a_window() {
        let mut rules = Rules::default();
        rules.thresholds.dga.min_failed_names = 2;
        rules.model = Some(
            crate::dga::Model::parse(include_str!("../../../rulesets/dns-anomaly/dga-model.toml"))
                .unwrap(),
        );
        let names = ["xkqzvbtwpl.com", "qzjxvkrwtm.net", "vbzqxkplwj.org"];
        let model = rules.model.as_ref().unwrap();
        for name in names {
            assert!(model.score(&Name::split(name.as_bytes())) >= model.threshold);
        }
        let mut state = State::default();
        let mut alerts = 0;
        for (i, name) in names.iter().enumerate() {
            alerts += observe(&mut state, &rules, i as i64 * SEC, name, 3).len();
        }
        // Two generated names would do, but the first two failures only
        // open the gate.
        assert_eq!(alerts, 0);
        assert_eq!(
            observe(&mut state, &rules, 3 * SEC, "wkzqjxvbtp.info", 3).len(),
            1
        );
    }
}
