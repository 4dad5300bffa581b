//! Detector throughput through the host: a mixed batch of connections, DNS,
//! TLS and HTTP records into the real plugins, via `PluginWorker::process`
//! (the engine's path: lowering, the call, lifting the findings):
//! `signature` with 100 ET rules, the default rulesets and every ET Open
//! file of the shared selection; `reputation` with its default lists and
//! with a generated million indicators (and the plugin memory that takes);
//! `dns-anomaly` and `ml-score` with their defaults, on traffic that keeps
//! the same names and hosts and on 10 M distinct ones (fresh rows in every
//! batch), which shows whether their state stays bounded.
//!
//! ```sh
//! cargo bench -p kansoku-suite --bench detectors [-- signature|reputation|dns|ml]
//! ```
//!
//! Targets: (issue 3) ≥ 2 M flows/s per plugin on one core with its default
//! rulesets; with every ET file, within 2× of the 100-rule throughput;
//! reputation with 1 M indicators ≤ 200 MiB of plugin memory and ≥ 2 M
//! lookups/s. (issue 4) dns-anomaly ≥ 1 M DNS flows/s, ml-score ≥ 1 M
//! flows/s with the default model, memory bounded under 10 M distinct
//! hosts and domains.

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kansoku::batch::{FlowBatch, Placement};
use kansoku::contract::Ruleset;
use kansoku::flow::{ConnState, FlowRecord, Kind, TextField};
use kansoku::plugins::{
    FailurePolicy, LoadedPlugin, PluginSpec, PluginWorker, Runtime, RuntimeConfig,
};
use kansoku::scope::Direction;

#[path = "support/rng.rs"]
mod rng;
#[path = "support/spread.rs"]
mod spread;
use rng::Rng;

const ROWS: usize = 4096;

/// Real user agents and how often they were seen (see
/// tests/fixtures/README.md).
const USER_AGENTS: &str = include_str!("../tests/fixtures/http/user-agents.tsv");

/// A quarter each of connections, DNS, TLS and HTTP records between home
/// hosts and random outside addresses, with names and URIs of typical
/// length.
fn batch() -> FlowBatch {
    mixed_batch(0x7369_676e_6174_7572, 0)
}

/// The mixed batch of [`batch`], from another seed, its times starting
/// `offset` seconds later.
fn mixed_batch(seed: u64, offset: i64) -> FlowBatch {
    let mut rng = Rng(seed);
    let mut batch = FlowBatch::with_capacity(ROWS);
    // Each agent as many times as it was seen.
    let agents: Vec<&str> = USER_AGENTS
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .flat_map(|(count, agent)| std::iter::repeat_n(agent, count.parse().unwrap_or(0)))
        .collect();
    for i in 0..ROWS {
        let outside = IpAddr::from((rng.next() as u32).to_be_bytes());
        let inside = IpAddr::from([10, 1, (i / 256) as u8, (i % 256) as u8]);
        let ts = 1_700_000_000_000_000 + offset * 1_000_000 + i as i64 * 1_000;
        let mut record = FlowRecord::new(ts, inside, outside);
        record.src_port = 1024 + rng.below(60_000) as u16;
        record.kind = [Kind::Connection, Kind::Dns, Kind::Tls, Kind::Http][i % 4];
        record.dst_port = [443, 53, 443, 80][i % 4];
        record.proto = if i % 4 == 1 { 17 } else { 6 };
        record.conn_state = ConnState::SF;
        record.src_bytes = 300;
        record.dst_bytes = 4_000;
        record.src_pkts = 5;
        record.dst_pkts = 6;
        let name = format!(
            "h{}.s{}.example{}.com",
            rng.next() % 10_000,
            rng.next() % 100,
            i % 7
        );
        match record.kind {
            Kind::Dns => record.text.set(TextField::DnsQuery, name),
            Kind::Tls => {
                record.text.set(TextField::TlsSni, name);
                record
                    .text
                    .set(TextField::Ja3, format!("{:032x}", u128::from(rng.next())));
            }
            Kind::Http => {
                record.text.set(TextField::HttpHost, name);
                record.text.set(TextField::HttpMethod, "GET");
                record.text.set(
                    TextField::HttpUri,
                    format!("/static/{}/app.js?v={}", rng.next() % 1000, i),
                );
                // User agents as often as the real logs carry them, and
                // one row in eight a value of the long tail, never seen before.
                let agent = if rng.below(8) == 0 {
                    format!("python-requests/2.{}", rng.next() % 1_000_000)
                } else {
                    agents[rng.below(agents.len() as u64) as usize].to_owned()
                };
                record.text.set(TextField::HttpUserAgent, agent);
                record.http_status = 200;
            }
            _ => {}
        }
        batch.push(&record, &placement(i));
    }
    batch
}

/// DNS only: lookups from 64 home resolvers, one in eight failing, of
/// names under 1,000 registered domains; `seed` varies the names.
fn dns_batch(seed: u64, offset: i64) -> FlowBatch {
    let mut rng = Rng(seed);
    let mut batch = FlowBatch::with_capacity(ROWS);
    for i in 0..ROWS {
        let resolver = IpAddr::from([10, 1, 0, (i % 64) as u8]);
        let ts = 1_700_000_000_000_000 + offset * 1_000_000 + i as i64 * 1_000;
        let mut record = FlowRecord::new(ts, resolver, IpAddr::from([192, 0, 2, 53]));
        record.kind = Kind::Dns;
        record.proto = 17;
        record.src_port = 1024 + rng.below(60_000) as u16;
        record.dst_port = 53;
        record.dns_qtype = [1, 28, 1, 65][i % 4];
        record.dns_rcode = Some(if rng.below(8) == 0 { 3 } else { 0 });
        let name = format!(
            "{}.s{}.domain{}.{}",
            ["www", "api", "cdn", "mail", "img"][rng.below(5) as usize],
            rng.below(1_000_000),
            rng.below(1_000),
            ["com", "net", "ac.jp", "co.uk"][rng.below(4) as usize]
        );
        record.text.set(TextField::DnsQuery, name);
        batch.push(&record, &placement(i));
    }
    batch
}

fn placement(line: usize) -> Placement {
    Placement {
        institution: 0,
        peer_institution: None,
        direction: Direction::Outbound,
        src_country: None,
        dst_country: None,
        input: 0,
        line: line as u64,
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn defaults() -> Vec<Ruleset> {
    rulesets_of("signature")
}

fn rulesets_of(plugin: &str) -> Vec<Ruleset> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("rulesets").join(plugin))
        .expect("the plugin's rulesets exist")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.is_file() && !p.ends_with("README.md"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| Ruleset {
            name: p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            content: std::fs::read(&p).expect("readable ruleset"),
        })
        .collect()
}

fn every_et_file() -> Vec<Ruleset> {
    let mut sets = defaults();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/fixtures/et-open"))
        .expect("tests/fixtures/et-open exists")
        .filter_map(|e| Some(e.ok()?.path()))
        .collect();
    files.sort();
    for path in files {
        let mut content = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&path).expect("fixture"))
            .read_to_end(&mut content)
            .expect("gzip fixture");
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        sets.push(Ruleset {
            name: name.trim_end_matches(".gz").to_owned(),
            content,
        });
    }
    sets
}

/// 100 rules spread evenly over the rules every ET file loads (every n-th
/// in file order), so the sample has the full set's mix of address, DNS,
/// TLS, JA3 and HTTP rules and the comparison is about the rule count
/// alone. Which rules load comes from the plugin's own load report.
fn hundred_rules() -> Vec<Ruleset> {
    let every = every_et_file();
    let (worker, _) = worker("signature", every.clone(), 1 << 30);
    let skipped: std::collections::HashSet<&str> = worker
        .plugin()
        .load_report
        .skipped
        .iter()
        .map(|s| s.location.as_str())
        .collect();
    let hundred = spread::spread(
        every
            .iter()
            .map(|s| (s.name.as_str(), s.content.as_slice())),
        &skipped,
        100,
    );
    let mut sets: Vec<Ruleset> = every
        .into_iter()
        .filter(|s| !s.name.ends_with(".rules"))
        .collect();
    sets.push(Ruleset {
        name: "hundred.rules".into(),
        content: hundred.into_bytes(),
    });
    sets
}

/// A million indicators of every type, a few of which the batch shows:
/// 600 k addresses, 100 k networks (v4 and v6), 250 k domains (a fifth as
/// suffixes), 25 k URLs and 25 k hashes.
fn million_indicators() -> Vec<Ruleset> {
    let mut rng = Rng(0x7265_7075_7461_7469);
    let mut list = String::with_capacity(32 << 20);
    for _ in 0..600_000 {
        let _ = writeln!(list, "{}", std::net::Ipv4Addr::from(rng.next() as u32));
    }
    for i in 0..100_000 {
        if i % 4 == 0 {
            let _ = writeln!(
                list,
                "2001:db8:{:x}:{:x}::/64",
                rng.below(65_536),
                rng.below(65_536)
            );
        } else {
            let _ = writeln!(
                list,
                "{}/{}",
                std::net::Ipv4Addr::from(rng.next() as u32 & !0xff),
                24
            );
        }
    }
    for i in 0..250_000 {
        let dot = if i % 5 == 0 { "." } else { "" };
        let _ = writeln!(
            list,
            "{dot}h{}.s{}.example{}.com",
            rng.below(100_000),
            rng.below(1_000),
            i % 7
        );
    }
    for _ in 0..25_000 {
        let _ = writeln!(
            list,
            "http://h{}.example.net/static/{}/app.js",
            rng.below(10_000),
            rng.below(1000)
        );
    }
    for _ in 0..25_000 {
        let _ = writeln!(
            list,
            "{:016x}{:016x}{:016x}{:016x}",
            rng.next(),
            rng.next(),
            rng.next(),
            rng.next()
        );
    }
    vec![Ruleset {
        name: "million.txt".into(),
        content: list.into_bytes(),
    }]
}

fn worker(plugin: &str, rulesets: Vec<Ruleset>, memory: u64) -> (PluginWorker, u32) {
    let runtime = Runtime::new(&RuntimeConfig::default()).expect("the runtime starts");
    let path = PathBuf::from(env!("KANSOKU_TEST_PLUGINS")).join(format!("{plugin}.wasm"));
    let mut spec = PluginSpec::file(plugin, path);
    spec.rulesets = rulesets;
    spec.limits.memory = memory;
    let plugin =
        LoadedPlugin::load(&runtime, spec).unwrap_or_else(|e| panic!("{plugin} loads: {e}"));
    let loaded = plugin.load_report.loaded;
    (
        PluginWorker::new(plugin, FailurePolicy::default(), 1),
        loaded,
    )
}

/// Best ns per flow over five rounds.
fn ns_per_flow(worker: &mut PluginWorker, batch: &FlowBatch, measure: Duration) -> (f64, usize) {
    let mut findings = 0;
    for _ in 0..10 {
        findings = worker.process(black_box(batch)).detections.len();
    }
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let started = Instant::now();
        let mut runs = 0u64;
        while started.elapsed() < measure / 5 {
            black_box(worker.process(black_box(batch)));
            runs += 1;
        }
        best = best.min(started.elapsed().as_nanos() as f64 / runs as f64);
    }
    (best / batch.len() as f64, findings)
}

/// Makes a run's rulesets (only when the run is selected).
type Rulesets = fn() -> Vec<Ruleset>;

/// What a run feeds the plugin.
#[derive(Clone, Copy)]
enum Traffic {
    /// The same mixed batch over and over.
    Mixed,
    /// The same DNS batch over and over.
    Dns,
    /// 10 M rows of fresh mixed traffic: new hosts and names in every batch.
    FreshMixed,
    /// 10 M rows of fresh DNS lookups.
    FreshDns,
}

/// Rows fed by the fresh-traffic runs.
const FRESH_ROWS: usize = 10_000_000;

/// Feeds [`FRESH_ROWS`] rows of new traffic, a batch of one second of
/// data time after another, ticking once per second of data as the engine
/// does; returns ns per flow of the plugin calls alone.
fn fresh_ns_per_flow(worker: &mut PluginWorker, dns: bool) -> (f64, usize) {
    let mut spent = Duration::ZERO;
    let mut findings = 0;
    for round in 0..FRESH_ROWS / ROWS {
        let seed = 0x6672_6573_6800_0000 + round as u64;
        let batch = if dns {
            dns_batch(seed, round as i64)
        } else {
            mixed_batch(seed, round as i64)
        };
        let started = Instant::now();
        findings += worker.process(black_box(&batch)).detections.len();
        findings += worker
            .tick(batch.max_ts().unwrap_or_default())
            .detections
            .len();
        spent += started.elapsed();
    }
    (
        spent.as_nanos() as f64 / (FRESH_ROWS / ROWS * ROWS) as f64,
        findings,
    )
}

fn main() {
    // `cargo test --benches` runs this unoptimised only to see it work.
    let bench = std::env::args().any(|a| a == "--bench");
    let measure = if bench {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(50)
    };
    let batch = batch();
    let dns = dns_batch(0x646e_735f_6261_7463, 0);
    println!("through the host, {ROWS} flows per batch (mixed: ¼ each conn, DNS, TLS, HTTP)");
    println!(
        "| plugin | rulesets | traffic | loaded | ns/flow | Mflows/s | findings/batch | plugin memory MiB |"
    );
    println!(
        "|--------|----------|---------|-------:|--------:|---------:|---------------:|------------------:|"
    );
    let runs: [(&str, &str, Rulesets, Traffic); 11] = [
        ("signature", "100 ET rules", hundred_rules, Traffic::Mixed),
        ("signature", "defaults", defaults, Traffic::Mixed),
        ("signature", "every ET file", every_et_file, Traffic::Mixed),
        (
            "reputation",
            "defaults",
            || rulesets_of("reputation"),
            Traffic::Mixed,
        ),
        (
            "reputation",
            "1 M indicators",
            million_indicators,
            Traffic::Mixed,
        ),
        (
            "dns-anomaly",
            "defaults",
            || rulesets_of("dns-anomaly"),
            Traffic::Mixed,
        ),
        (
            "dns-anomaly",
            "defaults",
            || rulesets_of("dns-anomaly"),
            Traffic::Dns,
        ),
        (
            "dns-anomaly",
            "defaults",
            || rulesets_of("dns-anomaly"),
            Traffic::FreshDns,
        ),
        (
            "ml-score",
            "defaults",
            || rulesets_of("ml-score"),
            Traffic::Mixed,
        ),
        (
            "ml-score",
            "defaults",
            || rulesets_of("ml-score"),
            Traffic::FreshMixed,
        ),
        (
            "portscan",
            "defaults",
            || rulesets_of("portscan"),
            Traffic::FreshMixed,
        ),
    ];
    // `cargo bench --bench detectors -- reputation` runs one plugin's rows.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    for (plugin, name, sets, traffic) in runs {
        if !only.is_empty() && !only.iter().any(|o| plugin.contains(o.as_str())) {
            continue;
        }
        // Ten million fresh rows take a while; unoptimised test runs of
        // the benches skip them.
        let fresh = matches!(traffic, Traffic::FreshMixed | Traffic::FreshDns);
        if fresh && !bench {
            continue;
        }
        let (mut worker, loaded) = worker(plugin, sets(), 1 << 30);
        let ((ns, findings), label) = match traffic {
            Traffic::Mixed => (ns_per_flow(&mut worker, &batch, measure), "mixed"),
            Traffic::Dns => (ns_per_flow(&mut worker, &dns, measure), "DNS"),
            Traffic::FreshMixed => (fresh_ns_per_flow(&mut worker, false), "10 M fresh mixed"),
            Traffic::FreshDns => (fresh_ns_per_flow(&mut worker, true), "10 M fresh DNS"),
        };
        let memory = worker
            .stats()
            .memory_peak
            .load(std::sync::atomic::Ordering::Relaxed);
        println!(
            "| {plugin} | {name} | {label} | {loaded} | {ns:.1} | {:.2} | {findings} | {:.1} |",
            1_000.0 / ns,
            memory as f64 / f64::from(1 << 20)
        );
        assert_eq!(worker.stats().total_traps(), 0);
    }
}
