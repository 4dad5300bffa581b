//! The cost of the plugin boundary: a batch into the `noop` plugin and its
//! (empty) answer back, through `PluginWorker::process`, the path the engine
//! uses. Every fixed-width column is populated, plus the two text fields
//! `noop` asks for (`dns-query`, `tls-sni`).
//!
//! Target (DESIGN.md): ≤ 5 ns per flow at 4096 flows per batch, on 2 cores.
//!
//! `cargo bench -p kansoku-suite --bench boundary` runs criterion (reported
//! as elements per second, one element per flow) and then prints a table of
//! ns per flow for each batch size, with the bytes lowered per flow and what
//! a plain `memcpy` of those bytes costs on the same machine: the floor of
//! any lowering of this batch.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use kansoku::batch::{FlowBatch, Placement};
use kansoku::flow::{ConnState, FlowRecord, Kind, TextField};
use kansoku::plugins::{
    FailurePolicy, LoadedPlugin, PluginSpec, PluginWorker, Runtime, RuntimeConfig,
};
use kansoku::scope::Direction;

const SIZES: [usize; 6] = [256, 512, 1024, 2048, 4096, 8192];

/// A batch of `rows` flows with every column the contract lowers filled in,
/// and DNS names and SNIs of typical length.
fn batch(rows: usize) -> FlowBatch {
    let mut batch = FlowBatch::with_capacity(rows);
    for i in 0..rows {
        let n = i as u32;
        let src: IpAddr = if i % 8 == 0 {
            IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, (n >> 16) as u16, n as u16])
        } else {
            IpAddr::from([10, (n >> 16) as u8, (n >> 8) as u8, n as u8])
        };
        let dst = IpAddr::from([198, 51, 100, (n % 251) as u8]);
        let mut record = FlowRecord::new(1_700_000_000_000_000 + i64::from(n) * 1_000, src, dst);
        record.duration = 1_500 + u64::from(n % 997);
        record.src_port = 1024 + (n % 60_000) as u16;
        record.dst_port = [53, 443, 80, 22][i % 4];
        record.proto = if i % 4 == 0 { 17 } else { 6 };
        record.kind = [Kind::Dns, Kind::Tls, Kind::Http, Kind::Connection][i % 4];
        record.src_bytes = 120 + u64::from(n % 4_000);
        record.dst_bytes = 900 + u64::from(n % 90_000);
        record.src_pkts = 3 + n % 40;
        record.dst_pkts = 2 + n % 80;
        record.conn_state = ConnState::SF;
        record.dns_qtype = if i % 4 == 0 { 1 } else { 0 };
        record.dns_rcode = (i % 4 == 0).then_some(0);
        record.http_status = if i % 4 == 2 { 200 } else { 0 };
        record.flow_id = u64::from(n) * 7_919;
        let name = format!("host{}.cdn{}.example.org", n % 1_000, n % 37);
        record.text.set(TextField::DnsQuery, name.clone());
        record.text.set(TextField::TlsSni, name);
        let placement = Placement {
            institution: (n % 3) as u16,
            peer_institution: None,
            direction: Direction::Outbound,
            src_country: Some(*b"JP"),
            dst_country: Some(*b"US"),
            input: 0,
            line: u64::from(n),
        };
        batch.push(&record, &placement);
    }
    batch
}

fn noop_worker() -> PluginWorker {
    let runtime = Runtime::new(&RuntimeConfig::default()).expect("the runtime starts");
    let path = PathBuf::from(env!("KANSOKU_TEST_PLUGINS")).join("noop.wasm");
    let plugin = LoadedPlugin::load(&runtime, PluginSpec::file("noop", path))
        .unwrap_or_else(|e| panic!("noop loads: {e}"));
    PluginWorker::new(plugin, FailurePolicy::default(), 3)
}

fn process(worker: &mut PluginWorker, batch: &FlowBatch) {
    let verdict = worker.process(black_box(batch));
    assert!(verdict.events.is_empty(), "{:?}", verdict.events);
    black_box(verdict);
}

fn criterion_benches(c: &mut Criterion, worker: &mut PluginWorker) {
    let mut group = c.benchmark_group("boundary/noop");
    for rows in SIZES {
        let batch = batch(rows);
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_with_input(BenchmarkId::from_parameter(rows), &batch, |b, batch| {
            b.iter(|| process(worker, batch));
        });
    }
    group.finish();
}

/// Bytes the component model copies into the plugin for `batch`: every
/// column of the view the worker builds, with the text fields `noop` gets.
fn lowered_bytes(batch: &FlowBatch, fields: &[TextField]) -> usize {
    let mut scratch = Vec::new();
    let v = batch.view(0..batch.len(), fields, &mut scratch);
    let fixed = 8 * (v.ts.len() + v.duration.len() + v.src_bytes.len() + v.dst_bytes.len())
        + v.src_addr.len()
        + v.dst_addr.len()
        + 4 * (v.src_pkts.len() + v.dst_pkts.len())
        + 2 * (v.src_port.len()
            + v.dst_port.len()
            + v.institution.len()
            + v.src_country.len()
            + v.dst_country.len()
            + v.dns_qtype.len()
            + v.dns_rcode.len()
            + v.http_status.len())
        + v.proto.len()
        + v.kind.len()
        + v.direction.len()
        + v.conn_state.len();
    let text: usize = v
        .text
        .iter()
        .map(|c| 4 * c.offsets.len() + c.bytes.len())
        .sum();
    fixed + text
}

/// Best time of `f`, in ns, over five rounds of `measure / 5`: the round
/// least disturbed by whatever else the machine is doing.
fn best_ns(measure: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..50 {
        f();
    }
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let started = Instant::now();
        let mut runs = 0u64;
        while started.elapsed() < measure / 5 {
            f();
            runs += 1;
        }
        best = best.min(started.elapsed().as_nanos() as f64 / runs as f64);
    }
    best
}

/// ns per flow for each batch size, measured directly, so the number the
/// target is stated in is printed as is; next to it, a plain `memcpy` of
/// the same number of bytes, the floor any lowering of this batch has.
fn table(worker: &mut PluginWorker, measure: Duration) {
    let fields = worker.plugin().fields.clone();
    println!();
    println!("plugin boundary, noop plugin, PluginWorker::process");
    println!("| rows/batch | ns/flow | µs/batch | Mflows/s | bytes/flow | memcpy ns/flow |");
    println!("|-----------:|--------:|---------:|---------:|-----------:|---------------:|");
    for rows in SIZES {
        let batch = batch(rows);
        let bytes = lowered_bytes(&batch, &fields);
        let boundary = best_ns(measure, || process(worker, &batch));
        let source = vec![0x5au8; bytes];
        let mut target = vec![0u8; bytes];
        let copy = best_ns(measure / 2, || {
            target.copy_from_slice(black_box(&source));
            black_box(&mut target);
        });
        let per_flow = boundary / rows as f64;
        println!(
            "| {rows:>10} | {per_flow:>7.2} | {:>8.2} | {:>8.1} | {:>10} | {:>14.2} |",
            boundary / 1_000.0,
            1_000.0 / per_flow,
            bytes / rows,
            copy / rows as f64,
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut worker = noop_worker();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    criterion_benches(&mut criterion, &mut worker);
    criterion.final_summary();
    // The table only under `cargo bench` (which passes `--bench`), and not
    // when profiling one benchmark: `cargo test --benches` builds without
    // optimisation and only checks that the benchmarks run.
    let benchmarking = args.iter().any(|a| a == "--bench");
    let profiling = args.iter().any(|a| a == "--profile-time");
    if benchmarking && !profiling {
        table(&mut worker, Duration::from_secs(2));
    }
}
