//! Flows per second through the model slot with the shipped model, natively
//! (`cargo run --release -p ml-score --example model_rate`).
//!
//! The flows are the EVE fixture's, repeated with the source address shifted
//! per repetition so the windows keep growing, in batches of 4096 as the
//! engine sends them. Prints the time per flow of feature extraction alone
//! and of the whole slot (features, tract, findings).

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Instant;

use kansoku_plugin::testing::BatchBuilder;
use kansoku_plugin::{Batch, Detector, Ruleset, TextField};
use ml_score::MlScore;
use ml_score::features::{Extractor, Windows};

const BATCH: usize = 4096;
const FLOWS: usize = 2_000_000;

struct Row {
    src: u32,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    ts: i64,
    proto: u8,
    bytes: (u64, u64),
    pkts: (u32, u32),
    service: Option<String>,
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let read = |p: &str| std::fs::read(root.join(p)).expect(p);
    let mut text = String::new();
    flate2::read::GzDecoder::new(&read("tests/fixtures/onnx/test6-flows.json.gz")[..])
        .read_to_string(&mut text)
        .expect("fixture");
    let rows: Vec<Row> = text
        .lines()
        .map(|l| {
            let e: serde_json::Value = serde_json::from_str(l).expect("json");
            let src = match e["src_ip"].as_str().and_then(|s| s.parse().ok()) {
                Some(IpAddr::V4(v4)) => u32::from(v4),
                _ => 0,
            };
            let f = &e["flow"];
            Row {
                src,
                sport: e["src_port"].as_u64().unwrap_or(0) as u16,
                dst: e["dest_ip"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .expect("dst"),
                dport: e["dest_port"].as_u64().unwrap_or(0) as u16,
                ts: 1_622_988_000_000_000,
                proto: if e["proto"] == "TCP" { 6 } else { 17 },
                bytes: (
                    f["bytes_toserver"].as_u64().unwrap_or(0),
                    f["bytes_toclient"].as_u64().unwrap_or(0),
                ),
                pkts: (
                    f["pkts_toserver"].as_u64().unwrap_or(0) as u32,
                    f["pkts_toclient"].as_u64().unwrap_or(0) as u32,
                ),
                service: e["app_proto"]
                    .as_str()
                    .filter(|a| *a != "failed")
                    .map(str::to_owned),
            }
        })
        .collect();

    let batches: Vec<Batch> = (0..FLOWS / BATCH)
        .map(|b| {
            let mut builder = BatchBuilder::new();
            for i in 0..BATCH {
                let n = b * BATCH + i;
                let r = &rows[n % rows.len()];
                let rep = (n / rows.len()) as u32;
                let src = IpAddr::V4(Ipv4Addr::from(r.src.wrapping_add(rep.wrapping_mul(7919))));
                builder
                    .flow(src, r.sport, r.dst, r.dport)
                    .ts(r.ts + n as i64 * 1000)
                    .proto(r.proto)
                    .bytes(r.bytes.0, r.bytes.1)
                    .pkts(r.pkts.0, r.pkts.1)
                    .conn_state(3);
                if let Some(s) = &r.service {
                    builder.text(TextField::Service, s);
                }
            }
            builder.build()
        })
        .collect();
    let flows = batches.len() * BATCH;

    let spec = String::from_utf8(read("rulesets/ml-score/model.toml")).expect("utf-8");
    let mut plugin = MlScore::default();
    let report = plugin
        .configure(vec![
            Ruleset {
                name: "model.toml".into(),
                content: spec.clone().into_bytes(),
            },
            Ruleset {
                name: "flows.onnx".into(),
                content: read("rulesets/ml-score/flows.onnx"),
            },
        ])
        .expect("configure");
    println!("{}", report.notes.join("; "));

    let features = toml::from_str::<toml::Table>(&spec).expect("toml")["model"]["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| toml::Value::try_into(f.clone()).expect("feature"))
        .collect();
    let extractor = Extractor::new(features);
    let mut windows = Windows::new(300_000_000, 200_000);
    let mut out = Vec::new();
    let start = Instant::now();
    for batch in &batches {
        out.clear();
        extractor.extract(batch, &mut windows, &mut Vec::new(), &mut out);
    }
    let extract_ns = start.elapsed().as_nanos() as f64 / flows as f64;

    let start = Instant::now();
    let mut findings = 0;
    for batch in &batches {
        findings += plugin.process(batch).len();
    }
    let total_ns = start.elapsed().as_nanos() as f64 / flows as f64;
    println!(
        "{flows} flows in batches of {BATCH}: features {extract_ns:.0} ns/flow, \
         whole slot {total_ns:.0} ns/flow ({:.2} M flows/s), {findings} findings",
        1e3 / total_ns
    );
}
