//! `kansoku run` throughput on a large Zeek `conn.log`: the whole path
//! (read, split, parse, scope, batch, every built-in plugin, triage), with
//! the default configuration.
//!
//! The input is generated deterministically (a fixed-seed generator) into
//! the target directory once and reused: `KANSOKU_BENCH_FLOWS` flows
//! (default 5 000 000) between two registered /16s and the outside, with a
//! scanner among them so the plugin finds something.
//!
//! ```sh
//! cargo bench -p kansoku-suite --bench pipeline
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kansoku::config::{Config, InstitutionsSource};
use kansoku::ingest::InputPath;
use kansoku::pipeline::Engine;

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

const INSTITUTIONS: &str = r#"
[[institution]]
id = "univ-a"
name = "University A"
prefixes = ["10.1.0.0/16", "2001:db8:a::/48"]
contact = "soc@univ-a.example"

[[institution]]
id = "univ-b"
name = "University B"
prefixes = ["10.2.0.0/16"]
contact = "soc@univ-b.example"
"#;

fn generate(path: &Path, flows: u64) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    writeln!(out, "#separator \\x09")?;
    writeln!(out, "#set_separator\t,")?;
    writeln!(out, "#empty_field\t(empty)")?;
    writeln!(out, "#unset_field\t-")?;
    writeln!(out, "#path\tconn")?;
    writeln!(
        out,
        "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents"
    )?;
    writeln!(
        out,
        "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]"
    )?;
    let mut rng = Rng(0x6b61_6e73_6f6b_7521);
    let mut ts = 1_700_000_000_000_000u64;
    const SERVICES: [&str; 5] = ["-", "dns", "ssl", "http", "ssh"];
    for i in 0..flows {
        ts += rng.below(400);
        let (src, dst, dport, state) = if i % 97 == 0 {
            // The scanner: one outside host walking the ports of one server.
            (
                "198.51.100.7".to_owned(),
                "10.1.3.4".to_owned(),
                (i / 97 % 60_000) as u16 + 1,
                "S0",
            )
        } else {
            let inside = format!(
                "10.{}.{}.{}",
                1 + rng.below(2),
                rng.below(256),
                rng.below(256)
            );
            let outside = format!(
                "{}.{}.{}.{}",
                11 + rng.below(180),
                rng.below(256),
                rng.below(256),
                1 + rng.below(254)
            );
            let dport = [53, 443, 80, 22, 123][rng.below(5) as usize];
            let state = ["SF", "SF", "SF", "S0", "REJ", "RSTO"][rng.below(6) as usize];
            if rng.below(2) == 0 {
                (inside, outside, dport, state)
            } else {
                (outside, inside, dport, state)
            }
        };
        writeln!(
            out,
            "{}.{:06}\tC{:016x}\t{src}\t{}\t{dst}\t{dport}\t{}\t{}\t{}.{:06}\t{}\t{}\t{state}\tF\tT\t0\tShADadFf\t{}\t{}\t{}\t{}\t-",
            ts / 1_000_000,
            ts % 1_000_000,
            rng.next(),
            1024 + rng.below(60_000),
            if dport == 53 || dport == 123 {
                "udp"
            } else {
                "tcp"
            },
            SERVICES[rng.below(5) as usize],
            rng.below(5),
            rng.below(1_000_000),
            rng.below(100_000),
            rng.below(1_000_000),
            rng.below(200),
            rng.below(100_000),
            rng.below(200),
            rng.below(1_000_000),
        )?;
    }
    out.flush()
}

fn input(flows: u64) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("bench-conn-{flows}.log"));
    if !path.exists() {
        let partial = dir.join(format!("bench-conn-{flows}.log.partial"));
        eprintln!("generating {flows} flows into {}", path.display());
        generate(&partial, flows).expect("the target directory is writable");
        std::fs::rename(&partial, &path).expect("the target directory is writable");
    }
    path
}

fn pipeline(c: &mut Criterion) {
    let flows: u64 = std::env::var("KANSOKU_BENCH_FLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000_000);
    let path = input(flows);
    let institutions = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-institutions.toml");
    std::fs::write(&institutions, INSTITUTIONS).expect("the target directory is writable");
    let config = Config {
        institutions: InstitutionsSource::File(institutions),
        ..Config::default()
    };
    let engine = Engine::prepare(config).expect("the bench configuration loads");

    let mut group = c.benchmark_group("pipeline");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Elements(flows));
    group.bench_function(format!("zeek-conn-{flows}"), |b| {
        b.iter(|| {
            let summary = engine
                .run(
                    vec![InputPath::File(path.clone())],
                    Box::new(std::io::sink()),
                    false,
                )
                .expect("alerts go to a sink");
            assert_eq!(summary.flows_read, flows);
            summary
        });
    });
    group.finish();

    // One more run for the figures criterion does not show.
    let summary = engine
        .run(
            vec![InputPath::File(path)],
            Box::new(std::io::sink()),
            false,
        )
        .expect("alerts go to a sink");
    eprintln!("{summary}");
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
