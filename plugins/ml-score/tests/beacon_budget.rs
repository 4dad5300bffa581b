//! The sample budget under sustained load: busy pairs are thinned, not
//! allowed to fill the log, so a beacon that starts late in the day is
//! still found with all of its connections.

#![allow(clippy::unwrap_used, reason = "test helpers panic to fail the test")]

use std::net::IpAddr;
use std::path::PathBuf;

use kansoku_plugin::testing::BatchBuilder;
use kansoku_plugin::{Detector, Finding, Ruleset, TextField};
use ml_score::MlScore;

const T0: i64 = 1_700_000_000_000_000;
const SECOND: i64 = 1_000_000;
const DAY: i64 = 86_400;

/// The shipped defaults with a sample log of 100,000 (a twentieth of the
/// default) so that a test-sized load overruns it many times over.
fn ruleset() -> Ruleset {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rulesets/ml-score/default.toml");
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains("max_samples = 2000000"));
    Ruleset {
        name: "default.toml".into(),
        content: text
            .replace("max_samples = 2000000", "max_samples = 100000")
            .into_bytes(),
    }
}

/// xorshift: reproducible irregular traffic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn number(notes: &str, suffix: &str) -> u64 {
    notes
        .split([',', ';', '\n'])
        .find_map(|p| {
            p.trim()
                .strip_suffix(suffix)?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no '{suffix}' in {notes}"))
}

#[test]
fn a_beacon_starting_late_is_found_after_heavy_traffic() {
    let mut d = MlScore::default();
    d.configure(vec![ruleset()]).unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    let mut builder = BatchBuilder::new();
    let mut rows = 0u64;
    // A day of 2 M connections of 400 busy, irregular pairs (5,000 each:
    // 20 times the sample log), and from noon a beacon every 5 minutes.
    for sec in 0..DAY {
        let ts = T0 + sec * SECOND;
        for _ in 0..23 {
            let r = rng.next();
            let n = (r % 400) as u16;
            let src = IpAddr::from([10, 9, (n >> 8) as u8, n as u8]);
            let dst = IpAddr::from([203, 0, 113, (n % 7) as u8]);
            builder
                .flow(src, 40_000 + (r >> 16) as u16 % 20_000, dst, 443)
                .ts(ts + (r >> 40) as i64 % SECOND)
                .bytes(100 + (r >> 20) % 5000, 2000)
                .pkts(4, 4)
                .duration((r >> 32) % 3_000_000);
            rows += 1;
        }
        if sec >= DAY / 2 && sec % 300 == 0 {
            builder
                .flow(
                    IpAddr::from([10, 1, 2, 3]),
                    50_000,
                    IpAddr::from([198, 51, 100, 7]),
                    443,
                )
                .ts(ts)
                .bytes(900, 4000)
                .pkts(8, 7)
                .duration(250_000)
                .text(TextField::Service, "ssl")
                .text(TextField::TlsSni, "c2.example.net");
        }
        if sec % 200 == 199 {
            d.process(&std::mem::take(&mut builder).build());
        }
    }
    d.process(&builder.build());
    assert!(rows > 1_900_000);

    let notes = d.configure(vec![ruleset()]).unwrap().notes.join("\n");
    // The log never overflowed: busy pairs were thinned instead.
    assert_eq!(number(&notes, " samples dropped"), 0, "{notes}");
    assert!(number(&notes, " pairs thinned") >= 400, "{notes}");
    assert!(number(&notes, " samples thinned") > 1_000_000, "{notes}");
    let held = notes
        .split(" name pairs, ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse::<u64>().ok())
        .unwrap();
    assert!(held <= 100_000, "{notes}");

    let findings = d.tick(T0 + (DAY + 3600) * SECOND);
    let beacon: Vec<&Finding> = findings
        .iter()
        .filter(|f| {
            f.evidence
                .iter()
                .any(|(k, v)| k == "fqdn" && v == "c2.example.net")
        })
        .collect();
    assert_eq!(beacon.len(), 1, "the late beacon is found");
    let evidence = |key: &str| {
        beacon[0]
            .evidence
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    // Every one of its 144 connections was kept (it never needed thinning).
    assert_eq!(evidence("count"), "144");
    assert_eq!(evidence("sampled_one_in"), "1");
    assert!(evidence("evictions").contains(" samples thinned"));
}

/// One connection of a fast beacon: every 15 s, named in the row.
fn fast_beacon(builder: &mut BatchBuilder, i: i64) {
    builder
        .flow(
            IpAddr::from([10, 1, 2, 4]),
            40_000 + (i % 20_000) as u16,
            IpAddr::from([198, 51, 100, 8]),
            443,
        )
        .ts(T0 + i * 15 * SECOND)
        .duration(200_000)
        .bytes(700, 3000)
        .pkts(6, 6)
        .text(TextField::Service, "ssl")
        .text(TextField::TlsSni, "fast.example.net");
}

#[test]
fn a_busy_beacon_is_thinned_counted_and_survives_a_hot_swap() {
    // 5,760 connections in a day: past the 4,096 samples a pair keeps
    // before it is sampled one in two. Three quarters go to one instance,
    // which hands over its state (samples of both weights, thinned to one
    // on the way) to the next.
    let total = DAY / 15;
    let mut a = MlScore::default();
    a.configure(vec![ruleset()]).unwrap();
    let mut builder = BatchBuilder::new();
    for i in 0..total * 3 / 4 {
        fast_beacon(&mut builder, i);
    }
    a.process(&builder.build());
    let mut b = MlScore::default();
    b.configure(vec![ruleset()]).unwrap();
    b.restore(&a.snapshot()).unwrap();
    let mut builder = BatchBuilder::new();
    for i in total * 3 / 4..total {
        fast_beacon(&mut builder, i);
    }
    b.process(&builder.build());

    let findings = b.tick(T0 + (DAY + 3600) * SECOND);
    assert_eq!(findings.len(), 1, "by name only: {findings:#?}");
    let evidence = |key: &str| {
        findings[0]
            .evidence
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(evidence("fqdn"), "fast.example.net");
    assert_eq!(evidence("sampled_one_in"), "2");
    // Counted to within one stride; still a clean beacon.
    let count: i64 = evidence("count").parse().unwrap();
    assert!((count - total).abs() <= 2, "count {count} of {total}");
    assert!(evidence("score").parse::<f64>().unwrap() > 0.9);
    let bytes: i64 = evidence("total_ip_bytes_est").parse().unwrap();
    let per_conn = 700 + 6 * (20 + 32);
    assert!(
        (bytes / total - (per_conn + 3000 + 6 * 52)).abs() <= 2,
        "{bytes}"
    );
}
