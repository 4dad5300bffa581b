//! Detector throughput through the host: a mixed batch of connections, DNS,
//! TLS and HTTP records into the real `signature` plugin, via
//! `PluginWorker::process` (the engine's path: lowering, the call, lifting
//! the findings), with three rule sets: 100 ET rules, the default rulesets,
//! and every ET Open file of the shared selection.
//!
//! ```sh
//! cargo bench -p kansoku-suite --bench detectors
//! ```
//!
//! Targets (issue 3): ≥ 2 M flows/s per plugin on one core with its default
//! rulesets; with every ET file, within 2× of the 100-rule throughput.

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
use rng::Rng;

const ROWS: usize = 4096;

/// A quarter each of connections, DNS, TLS and HTTP records between home
/// hosts and random outside addresses, with names and URIs of typical
/// length.
fn batch() -> FlowBatch {
    let mut rng = Rng(0x7369_676e_6174_7572);
    let mut batch = FlowBatch::with_capacity(ROWS);
    for i in 0..ROWS {
        let outside = IpAddr::from((rng.next() as u32).to_be_bytes());
        let inside = IpAddr::from([10, 1, (i / 256) as u8, (i % 256) as u8]);
        let mut record = FlowRecord::new(1_700_000_000_000_000 + i as i64 * 1_000, inside, outside);
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
                record.text.set(
                    TextField::HttpUserAgent,
                    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
                );
                record.http_status = 200;
            }
            _ => {}
        }
        let placement = Placement {
            institution: 0,
            peer_institution: None,
            direction: Direction::Outbound,
            src_country: None,
            dst_country: None,
            input: 0,
            line: i as u64,
        };
        batch.push(&record, &placement);
    }
    batch
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn defaults() -> Vec<Ruleset> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("rulesets/signature"))
        .expect("rulesets/signature exists")
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

/// The first 100 enabled DNS, TLS, HTTP and address rules of the defaults.
fn hundred_rules() -> Vec<Ruleset> {
    let mut lines = Vec::new();
    for set in defaults().iter().filter(|s| s.name.ends_with(".rules")) {
        let text = String::from_utf8_lossy(&set.content);
        lines.extend(
            text.lines()
                .filter(|l| l.starts_with("alert "))
                .take(15)
                .map(str::to_owned),
        );
    }
    lines.truncate(100);
    let mut sets: Vec<Ruleset> = defaults()
        .into_iter()
        .filter(|s| !s.name.ends_with(".rules"))
        .collect();
    sets.push(Ruleset {
        name: "hundred.rules".into(),
        content: lines.join("\n").into_bytes(),
    });
    sets
}

fn worker(rulesets: Vec<Ruleset>) -> (PluginWorker, u32) {
    let runtime = Runtime::new(&RuntimeConfig::default()).expect("the runtime starts");
    let path = PathBuf::from(env!("KANSOKU_TEST_PLUGINS")).join("signature.wasm");
    let mut spec = PluginSpec::file("signature", path);
    spec.rulesets = rulesets;
    let plugin =
        LoadedPlugin::load(&runtime, spec).unwrap_or_else(|e| panic!("signature loads: {e}"));
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

fn main() {
    // `cargo test --benches` runs this unoptimised only to see it work.
    let measure = if std::env::args().any(|a| a == "--bench") {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(50)
    };
    let batch = batch();
    println!("signature through the host, {ROWS} flows per batch (¼ each conn, DNS, TLS, HTTP)");
    println!("| rules | loaded | ns/flow | Mflows/s | findings/batch |");
    println!("|-------|-------:|--------:|---------:|---------------:|");
    for (name, sets) in [
        ("100 ET rules", hundred_rules()),
        ("defaults", defaults()),
        ("every ET file", every_et_file()),
    ] {
        let (mut worker, loaded) = worker(sets);
        let (ns, findings) = ns_per_flow(&mut worker, &batch, measure);
        println!(
            "| {name} | {loaded} | {ns:.1} | {:.2} | {findings} |",
            1_000.0 / ns
        );
        assert_eq!(worker.stats().traps(kansoku::plugins::TrapKind::ALL[0]), 0);
    }
}
