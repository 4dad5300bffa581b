//! Writing the `flows` table: rows per second with the sensitive columns
//! encrypted (Parquet Modular Encryption, the production path: key ring,
//! atomic files, registry) against the same rows and writer settings
//! without encryption, and the bytes each flow takes on disk.
//!
//! The flows are generated deterministically: two institutions, one day,
//! mostly connections, with DNS queries and SMTP transactions (sender,
//! recipients, attachment names) among them.
//!
//! ```sh
//! cargo bench -p kansoku-suite --bench storage
//! ```

use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kansoku::batch::{FlowBatch, Placement};
use kansoku::config::{InstitutionsSource, StorageConfig};
use kansoku::flow::{FlowRecord, Kind, TextField};
use kansoku::scope::Direction;
use kansoku::storage::keys::PeriodLength;
use kansoku::storage::table::{FlowRows, Rows};
use kansoku::storage::writer::layout;
use kansoku::storage::{FileLimits, Shard, Store, Table};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

const ROWS: usize = 1_000_000;
const BATCH_ROWS: usize = 4096;

fn institutions(dir: &Path) -> std::path::PathBuf {
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys");
    let text = format!(
        "[[institution]]\nid = \"alpha\"\nname = \"Alpha\"\nprefixes = [\"10.1.0.0/16\"]\n\
         contact = \"soc@alpha.example\"\ncertificate = \"{}\"\n\n\
         [[institution]]\nid = \"beta\"\nname = \"Beta\"\nprefixes = [\"10.2.0.0/16\"]\n\
         contact = \"soc@beta.example\"\ncertificate = \"{}\"\n",
        keys.join("alpha.pem").display(),
        keys.join("beta.pem").display()
    );
    let path = dir.join("institutions.toml");
    std::fs::write(&path, text).expect("institutions file");
    path
}

fn batches() -> Vec<FlowBatch> {
    let mut rng = Rng(0x6b61_6e73_6f6b_7532);
    let mut ts = 1_764_806_400_000_000i64; // 2025-12-04T00:00Z
    let mut out = Vec::new();
    let mut batch = FlowBatch::with_capacity(BATCH_ROWS);
    for i in 0..ROWS {
        ts += 40;
        let institution = rng.below(2) as u16;
        let inside = format!(
            "10.{}.{}.{}",
            institution + 1,
            rng.below(256),
            rng.below(256)
        );
        let outside = format!("198.51.{}.{}", rng.below(256), rng.below(256));
        let (src, dst) = (inside.parse().expect("ip"), outside.parse().expect("ip"));
        let mut record = FlowRecord::new(ts, src, dst);
        record.src_port = 1024 + (rng.below(60000)) as u16;
        record.proto = 6;
        record.src_bytes = rng.below(100_000);
        record.dst_bytes = rng.below(1_000_000);
        record.src_pkts = (rng.below(1000)) as u32;
        record.dst_pkts = (rng.below(1000)) as u32;
        record.duration = rng.below(10_000_000);
        match i % 20 {
            0 => {
                record.kind = Kind::Smtp;
                record.dst_port = 25;
                let from = format!("user{}@univ.example", rng.below(5000));
                let to = format!("peer{}@mail.example", rng.below(50000));
                record.text.set(TextField::Service, "smtp");
                record.text.set(TextField::MailFrom, from);
                record.text.set(TextField::MailTo, to);
                if i % 60 == 0 {
                    record.text.set(TextField::FileName, "invoice.pdf");
                }
            }
            1 | 2 => {
                record.kind = Kind::Dns;
                record.proto = 17;
                record.dst_port = 53;
                let query = format!("host{}.example.org", rng.below(100_000));
                record.text.set(TextField::Service, "dns");
                record.text.set(TextField::DnsQuery, query);
            }
            _ => {
                record.dst_port = [443, 80, 22, 8080][(rng.below(4)) as usize];
                record.text.set(TextField::Service, "ssl");
            }
        }
        let placement = Placement {
            institution,
            peer_institution: None,
            direction: Direction::Outbound,
            src_country: Some(*b"JP"),
            dst_country: Some(*b"US"),
            input: 0,
            line: i as u64,
        };
        batch.push(&record, &placement);
        if batch.len() == BATCH_ROWS {
            out.push(std::mem::replace(
                &mut batch,
                FlowBatch::with_capacity(BATCH_ROWS),
            ));
        }
    }
    if !batch.is_empty() {
        out.push(batch);
    }
    out
}

fn size_of(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            total += size_of(&path);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            total += entry.metadata().map_or(0, |m| m.len());
        }
    }
    total
}

/// The production path: key ring, encryption, atomic files, registry.
fn write_encrypted(dir: &Path, institutions: &Path, batches: &[FlowBatch]) -> u64 {
    let data_dir = dir.join("data");
    let config = StorageConfig {
        key_registry: data_dir.join("keys.sqlite"),
        data_dir: data_dir.clone(),
        key_period: PeriodLength::WEEK,
        retention_months: 3,
    };
    let institutions = InstitutionsSource::File(institutions.to_owned())
        .load()
        .expect("institutions");
    let store = Store::open(&config, &institutions, FileLimits::default()).expect("store");
    // As `kansoku run` does: one writer thread per core, each with its
    // share of the institutions.
    let rows: u64 = std::thread::scope(|s| {
        let writers: Vec<_> = (0..Shard::per_core())
            .map(|index| {
                let store = &store;
                s.spawn(move || {
                    let shard = Shard {
                        index,
                        count: Shard::per_core(),
                    };
                    let mut writer = store.writer::<FlowRows>();
                    for batch in batches {
                        writer.append_batch(batch, shard).expect("append");
                    }
                    writer.finish().expect("finish").rows
                })
            })
            .collect();
        writers.into_iter().map(|w| w.join().expect("writer")).sum()
    });
    assert_eq!(rows as usize, ROWS);
    size_of(&data_dir)
}

/// The same rows, builders and writer settings, without encryption: one
/// file per institution.
fn write_plain(dir: &Path, batches: &[FlowBatch]) -> u64 {
    let properties = || {
        let builder = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_bloom_filter_enabled(false);
        layout(builder, &FileLimits::default()).build()
    };
    // The same threads as the encrypted path: one per share of the
    // institutions.
    std::thread::scope(|s| {
        for index in 0..Shard::per_core() {
            let properties = properties();
            s.spawn(move || {
                let mut writers = Vec::new();
                for institution in (0..2).filter(|i| i % Shard::per_core() == index) {
                    let file =
                        std::fs::File::create(dir.join(format!("plain-{institution}.parquet")))
                            .expect("file");
                    let writer =
                        ArrowWriter::try_new(file, Table::Flows.schema(), Some(properties.clone()))
                            .expect("writer");
                    writers.push((institution, writer, FlowRows::default()));
                }
                for batch in batches {
                    for (institution, writer, rows) in &mut writers {
                        let mine: Vec<usize> = (0..batch.len())
                            .filter(|&row| usize::from(batch.institution[row]) == *institution)
                            .collect();
                        rows.append_rows(batch, &mine);
                        if rows.len() >= 16 * 1024 {
                            writer.write(&rows.finish().expect("rows")).expect("write");
                        }
                    }
                }
                for (_, mut writer, mut rows) in writers {
                    if !rows.is_empty() {
                        writer.write(&rows.finish().expect("rows")).expect("write");
                    }
                    writer.close().expect("close");
                }
            });
        }
    });
    size_of(dir)
}

fn bench(c: &mut Criterion) {
    let batches = batches();
    let setup = tempfile::tempdir().expect("tempdir");
    let institutions = institutions(setup.path());

    // Sizes once, outside the timing.
    let dir = tempfile::tempdir().expect("tempdir");
    let encrypted = write_encrypted(dir.path(), &institutions, &batches);
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = write_plain(dir.path(), &batches);
    eprintln!(
        "storage: {ROWS} flows: encrypted {encrypted} bytes ({:.1} B/flow), plain {plain} bytes ({:.1} B/flow)",
        encrypted as f64 / ROWS as f64,
        plain as f64 / ROWS as f64
    );

    // Assembling the Arrow rows alone, the part before Parquet encoding.
    let started = std::time::Instant::now();
    let mut rows = FlowRows::default();
    let mut assembled = 0;
    for batch in &batches {
        let all: Vec<usize> = (0..batch.len()).collect();
        rows.append_rows(batch, &all);
        if rows.len() >= 16 * 1024 {
            assembled += rows.finish().expect("rows").num_rows();
        }
    }
    assembled += rows.finish().expect("rows").num_rows();
    eprintln!(
        "storage: assembling {assembled} rows alone: {:.2?}",
        started.elapsed()
    );

    let mut group = c.benchmark_group("storage");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("flows encrypted", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |dir| write_encrypted(dir.path(), &institutions, &batches),
            BatchSize::PerIteration,
        );
    });
    group.bench_function("flows plain", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |dir| write_plain(dir.path(), &batches),
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
