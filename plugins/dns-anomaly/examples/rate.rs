//! Native throughput of the detector, in ns per DNS flow, and the size of
//! its state: on the real WRCCDC dns.log replayed, on the benchmark's
//! synthetic traffic (names under 1,000 registered domains, fresh
//! subdomains), and on fresh registered domains (every name new, one in
//! eight NXDOMAIN, so scored by the DGA model).
//!
//! `cargo run --release -p dns-anomaly --example rate [-- FLOWS [NAME]]`
//! (default 10 M flows per synthetic run; NAME picks the scenarios whose
//! name starts with it). Only `process` is timed, not building
//! the batches.

use std::io::Read as _;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use dns_anomaly::DnsAnomaly;
use kansoku_plugin::testing::{BatchBuilder, SplitMix64, read_tsv};
use kansoku_plugin::{Batch, Detector, Ruleset};

const ROWS: usize = 4096;

fn configured(root: &std::path::Path) -> Result<DnsAnomaly, Box<dyn std::error::Error>> {
    let mut detector = DnsAnomaly::default();
    let mut rulesets = Vec::new();
    for name in ["default.toml", "dga-model.toml"] {
        rulesets.push(Ruleset {
            name: name.into(),
            content: std::fs::read(root.join("rulesets/dns-anomaly").join(name))?,
        });
    }
    detector
        .configure(rulesets)
        .map_err(|e| format!("{}: {}", e.location, e.message))?;
    Ok(detector)
}

fn run(
    only: Option<&str>,
    label: &str,
    detector: &mut DnsAnomaly,
    flows: usize,
    mut batch: impl FnMut(usize) -> (Batch, i64),
) {
    if only.is_some_and(|o| !label.starts_with(o)) {
        return;
    }
    let mut spent = Duration::ZERO;
    let mut done = 0;
    let mut findings = 0;
    let mut round = 0;
    let mut peak = 0;
    while done < flows {
        let (b, last) = batch(round);
        let start = Instant::now();
        findings += detector.process(&b).len();
        findings += detector.tick(last).len();
        spent += start.elapsed();
        done += b.len();
        round += 1;
        if round % 64 == 0 {
            peak = peak.max(detector.state_size().1);
        }
    }
    let (entries, bytes) = detector.state_size();
    println!(
        "{label}: {done} flows, {:.0} ns/flow ({:.2} M flows/s), {findings} findings, \
         state {entries:?} entries, {:.1} MiB (peak {:.1} MiB)",
        spent.as_nanos() as f64 / done as f64,
        done as f64 / spent.as_secs_f64() / 1e6,
        bytes as f64 / 1048576.0,
        peak.max(bytes) as f64 / 1048576.0,
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let flows: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    // A second argument runs only the scenarios whose name starts with it.
    let only = std::env::args().nth(2);
    let only = only.as_deref();

    // Real traffic: the WRCCDC log, replayed with time shifted each pass.
    let gz = std::fs::read(root.join("tests/fixtures/zeek/brimdata-full/dns.log.gz"))?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut text)?;
    let rows = read_tsv("dns.log", &text)?;
    let span = rows.iter().map(|r| r.ts).max().unwrap_or(0)
        - rows.iter().map(|r| r.ts).min().unwrap_or(0)
        + 1;
    let passes = 20;
    let batches: Vec<Vec<(Batch, i64)>> = (0..passes)
        .map(|pass| {
            rows.chunks(ROWS)
                .map(|chunk| {
                    let mut builder = BatchBuilder::new();
                    let mut last = 0;
                    for row in chunk {
                        let ts = row.ts + pass as i64 * span;
                        builder.zeek(row).ts(ts);
                        last = ts;
                    }
                    (builder.build(), last)
                })
                .collect()
        })
        .collect();
    let all: Vec<&(Batch, i64)> = batches.iter().flatten().collect();
    let mut detector = configured(&root)?;
    let total = all.iter().map(|(b, _)| b.len()).sum();
    let mut i = 0;
    run(
        only,
        "real (WRCCDC dns.log x20)",
        &mut detector,
        total,
        |_| {
            let (b, last) = all[i];
            i += 1;
            (Batch::new(b.raw().clone()), *last)
        },
    );

    // The benchmark's traffic: 64 resolvers, fresh names under 1,000 domains.
    let mut detector = configured(&root)?;
    let mut rng = SplitMix64(0x646e_735f_6261_7463);
    run(
        only,
        "synthetic, fresh subdomains",
        &mut detector,
        flows,
        |round| {
            let mut builder = BatchBuilder::new();
            let mut last = 0;
            for i in 0..ROWS {
                let ts = 1_700_000_000_000_000 + (round * ROWS + i) as i64 * 1_000;
                let name = format!(
                    "{}.s{}.domain{}.{}",
                    ["www", "api", "cdn", "mail", "img"][rng.below(5) as usize],
                    rng.below(1_000_000),
                    rng.below(1_000),
                    ["com", "net", "ac.jp", "co.uk"][rng.below(4) as usize]
                );
                let rcode = if rng.below(8) == 0 { 3 } else { 0 };
                builder
                    .flow(
                        IpAddr::from([10, 1, 0, (i % 64) as u8]),
                        5353,
                        IpAddr::from([192, 0, 2, 53]),
                        53,
                    )
                    .ts(ts)
                    .proto(17)
                    .dns(&name, [1, 28, 1, 65][i % 4], Some(rcode));
                last = ts;
            }
            (builder.build(), last)
        },
    );

    // Every registered domain new.
    let mut detector = configured(&root)?;
    let mut rng = SplitMix64(42);
    run(
        only,
        "synthetic, fresh registered domains",
        &mut detector,
        flows,
        |round| {
            let mut builder = BatchBuilder::new();
            let mut last = 0;
            for i in 0..ROWS {
                let ts = 1_700_000_000_000_000 + (round * ROWS + i) as i64 * 1_000;
                let label: String = (0..10)
                    .map(|_| char::from(b'a' + rng.below(26) as u8))
                    .collect();
                let rcode = if rng.below(8) == 0 { 3 } else { 0 };
                builder
                    .flow(
                        IpAddr::from([10, 1, (i / 256 % 4) as u8, i as u8]),
                        5353,
                        IpAddr::from([192, 0, 2, 53]),
                        53,
                    )
                    .ts(ts)
                    .proto(17)
                    .dns(&format!("www.{label}.com"), 1, Some(rcode));
                last = ts;
            }
            (builder.build(), last)
        },
    );

    // Every registered domain new, and seen twice, so that it enters the
    // domain table: the caps and evictions at work.
    let mut detector = configured(&root)?;
    let mut rng = SplitMix64(43);
    run(
        only,
        "synthetic, fresh domains seen twice",
        &mut detector,
        flows,
        |round| {
            let mut builder = BatchBuilder::new();
            let mut last = 0;
            let mut name = String::new();
            for i in 0..ROWS {
                let ts = 1_700_000_000_000_000 + (round * ROWS + i) as i64 * 1_000;
                if i % 2 == 0 {
                    let label: String = (0..10)
                        .map(|_| char::from(b'a' + rng.below(26) as u8))
                        .collect();
                    name = format!("www.{label}.com");
                }
                builder
                    .flow(
                        IpAddr::from([10, 1, (i / 256 % 4) as u8, i as u8]),
                        5353,
                        IpAddr::from([192, 0, 2, 53]),
                        53,
                    )
                    .ts(ts)
                    .proto(17)
                    .dns(&name, 1, Some(0));
                last = ts;
            }
            (builder.build(), last)
        },
    );
    Ok(())
}
