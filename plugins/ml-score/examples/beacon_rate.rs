//! Per-flow cost of the beacon analysis, natively (no wasm host).
//!
//! `cargo run --release -p ml-score --example beacon_rate -- [flows [known|mixed|fresh]]`
//!
//! Three runs with the shipped `[beacon]` defaults (or the file named by
//! `BEACON_TOML`):
//! * known: as mixed, but every client talks to its four usual servers only
//!   (after warm-up, every pair is known);
//! * mixed: 5,000 clients, 20,000 servers, a skewed choice of server per
//!   client (most connections go to pairs seen before), 60 % connection
//!   records, 20 % TLS and 10 % HTTP records naming them, 10 % DNS;
//! * fresh: every connection is a new address pair (10 M by default), the
//!   worst case for the pair table and its cap.
//!
//! Batch building is not timed; `process` and the `tick`s are, in wall time
//! and in the thread's CPU time (which leaves out time other processes had
//! the core: the figure to compare on a loaded machine).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use kansoku_plugin::TextField;
use kansoku_plugin::testing::BatchBuilder;
use ml_score::beacon::Beacons;

const BATCH: usize = 1024;
const T0: i64 = 1_700_000_000_000_000;

fn settings() -> ml_score::beacon::Settings {
    // BEACON_TOML: another configuration (to compare with older code).
    let path = std::env::var("BEACON_TOML").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../rulesets/ml-score/default.toml"
        )
        .into()
    });
    let text = std::fs::read_to_string(&path).expect("rulesets/ml-score/default.toml");
    let config: ml_score::Config = toml::from_str(&text).expect("valid default.toml");
    let mut settings = config.beacon.expect("a [beacon] section");
    if let Some(max) = std::env::var("MAX_PAIRS").ok().and_then(|v| v.parse().ok()) {
        settings.max_pairs = max;
    }
    settings
}

/// xorshift: reproducible and cheap.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn ip_dns() -> IpAddr {
    IpAddr::from([10, 0, 0, 53])
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// User and system CPU time of this thread, in clock ticks (1/100 s):
/// unlike wall time it leaves out the time other processes had the core.
/// Coarse, but sampled, so it averages out over a run.
fn cpu_time_ticks() -> u64 {
    std::fs::read_to_string("/proc/thread-self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name, which ends with ')'.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

fn run(name: &str, flows: usize, us_per_row: i64, mut row: impl FnMut(&mut BatchBuilder, usize)) {
    let mut beacons = Beacons::default();
    beacons.configure(settings());
    let mut busy = Duration::ZERO;
    let mut cpu_ticks = 0;
    let mut done = 0;
    while done < flows {
        // Batches are built ahead, 64 at a time, so that the CPU time of
        // processing them can be told apart.
        let mut batches = Vec::new();
        let mut at = done;
        while at < flows && batches.len() < 64 {
            let n = BATCH.min(flows - at);
            let mut builder = BatchBuilder::new();
            for i in at..at + n {
                row(&mut builder, i);
            }
            batches.push((at, builder.build()));
            at += n;
        }
        let ticks = cpu_time_ticks();
        let start = Instant::now();
        for (at, batch) in &batches {
            beacons.process(batch);
            if at % (BATCH * 64) == 0 {
                // The engine ticks about once a second of data.
                beacons.tick(T0 + *at as i64 * us_per_row);
            }
        }
        busy += start.elapsed();
        cpu_ticks += cpu_time_ticks() - ticks;
        done = at;
    }
    let (ips, names, samples, pending) = beacons.sizes();
    let notes = beacons.configure(settings());
    let state = beacons.state();
    let snapshot = postcard::to_allocvec(&state).map_or(0, |v| v.len());
    println!(
        "{name}: {flows} flows, {:.0} ns/flow ({:.2} M flows/s), CPU {:.0} ns/flow; held {ips} address pairs, \
         {names} name pairs, {samples} samples, {pending} pending joins; snapshot {:.1} MiB; \
         peak RSS {:.0} MiB",
        busy.as_nanos() as f64 / flows as f64,
        flows as f64 / busy.as_secs_f64() / 1e6,
        cpu_ticks as f64 * 1e7 / flows as f64,
        snapshot as f64 / 1048576.0,
        peak_rss_mib()
    );
    println!("  {}", notes.last().map_or("", |n| n.as_str()));
}

fn main() {
    let flows: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let only = std::env::args().nth(2);
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);

    let names: Vec<String> = (0..2000)
        .map(|i| format!("svc{i}.example{}.org", i % 97))
        .collect();
    for (label, known) in [("known", true), ("mixed", false)] {
        if !wanted(label) {
            continue;
        }
        run(label, flows.min(5_000_000), 500, |b, i| {
            // Rows come in pairs: a connection and the TLS or HTTP record that
            // names it (Zeek logs both); plain connections and DNS rows fill
            // the other slot of a pair.
            let event = i / 2;
            let mut r =
                Rng(0x9e37_79b9_7f4a_7c15 ^ (event as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
            let r = r.next();
            let client = (r % 5000) as u32;
            // Skewed: most connections go to a client's few usual servers.
            let server = if known || r >> 60 < 12 {
                (client * 7 + (r >> 20) as u32 % 4) % 20_000
            } else {
                (r >> 24) as u32 % 20_000
            };
            let src = IpAddr::from([10, 0, (client >> 8) as u8, client as u8]);
            let dst = IpAddr::from([198, 18, (server >> 8) as u8, server as u8]);
            let sport = 1024 + (event % 60_000) as u16;
            let ts = T0 + event as i64 * 1000;
            let name = &names[server as usize % names.len()];
            let kind = (r >> 40) % 10;
            let second = i % 2 == 1;
            match (kind, second) {
                (0..=5, false) => {
                    b.flow(src, sport, dst, 443)
                        .ts(ts)
                        .bytes(700 + (r >> 50) % 500, 5000)
                        .pkts(8, 9)
                        .duration(300_000)
                        .text(TextField::Service, "ssl");
                }
                (0..=5, true) => {
                    b.flow(src, sport, dst, 443)
                        .ts(ts + 20_000)
                        .kind(2)
                        .text(TextField::TlsSni, name);
                }
                (6 | 7, false) => {
                    b.flow(src, sport, dst, 80)
                        .ts(ts)
                        .bytes(400, 20_000)
                        .pkts(6, 20)
                        .duration(100_000)
                        .text(TextField::Service, "http");
                }
                (6 | 7, true) => {
                    b.flow(src, sport, dst, 80)
                        .ts(ts + 10_000)
                        .kind(3)
                        .text(TextField::HttpHost, name)
                        .text(TextField::HttpMethod, "GET");
                }
                (8, _) => {
                    b.flow(src, sport, dst, 123)
                        .ts(ts)
                        .proto(17)
                        .bytes(48, 48)
                        .pkts(1, 1);
                }
                _ => {
                    b.flow(src, sport, ip_dns(), 53).ts(ts).proto(17).dns(
                        "www.example.org",
                        1,
                        Some(0),
                    );
                }
            }
        });
    }

    if !wanted("fresh") {
        return;
    }
    run("fresh", flows, 100, |b, i| {
        let src = IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        let dst = IpAddr::from([203, (i >> 24) as u8 ^ 0x55, (i >> 12) as u8, (i >> 4) as u8]);
        b.flow(src, 40_000, dst, 443)
            .ts(T0 + i as i64 * 100)
            .bytes(500, 1500)
            .pkts(5, 5)
            .duration(100_000);
    });
}
