//! Beacon state: it survives a hot swap, stays within its caps, and bad
//! `[beacon]` settings are refused with the file and line.

#![allow(clippy::unwrap_used, reason = "test helpers panic to fail the test")]

use std::net::IpAddr;
use std::path::PathBuf;

use kansoku_plugin::testing::BatchBuilder;
use kansoku_plugin::{Detector, Finding, Ruleset, Subject, TextField};
use ml_score::MlScore;

const T0: i64 = 1_700_000_000_000_000;
const SECOND: i64 = 1_000_000;

fn default_toml() -> String {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rulesets/ml-score/default.toml");
    std::fs::read_to_string(path).unwrap()
}

/// The shipped defaults with some values replaced.
fn ruleset(changes: &[(&str, &str)]) -> Ruleset {
    let mut text = default_toml();
    for (from, to) in changes {
        assert!(text.contains(from), "{from} not in default.toml");
        text = text.replace(from, to);
    }
    Ruleset {
        name: "default.toml".into(),
        content: text.into_bytes(),
    }
}

fn detector(changes: &[(&str, &str)]) -> MlScore {
    let mut d = MlScore::default();
    d.configure(vec![ruleset(changes)]).unwrap();
    d
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// One HTTPS connection of the beacon under test: 10.1.2.3 to
/// 198.51.100.7:443, every 30 minutes, same size, named in the row.
fn beacon_conn(builder: &mut BatchBuilder, i: i64) {
    builder
        .flow(ip("10.1.2.3"), 40_000 + i as u16, ip("198.51.100.7"), 443)
        .ts(T0 + i * 1800 * SECOND)
        .duration(250_000)
        .bytes(900, 4000)
        .pkts(8, 7)
        .text(TextField::Service, "ssl")
        .text(TextField::TlsSni, "c2.example.net");
}

fn feed(d: &mut MlScore, range: std::ops::Range<i64>) {
    let mut builder = BatchBuilder::new();
    for i in range {
        beacon_conn(&mut builder, i);
    }
    d.process(&builder.build());
}

fn evidence<'a>(f: &'a Finding, key: &str) -> &'a str {
    f.evidence
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap()
}

const NEEDS_20: (&str, &str) = ("min_connections = 4", "min_connections = 20");

#[test]
fn a_beacon_survives_a_hot_swap_halfway() {
    let end = T0 + 29 * 1800 * SECOND;
    let mut a = detector(&[NEEDS_20]);
    feed(&mut a, 0..15);
    let state = a.snapshot();

    let mut b = detector(&[NEEDS_20]);
    b.restore(&state).unwrap();
    feed(&mut b, 15..30);
    let findings = b.tick(end + 3600 * SECOND);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(f.rule_id, "beacon-sni");
    assert_eq!(evidence(f, "fqdn"), "c2.example.net");
    assert_eq!(evidence(f, "count"), "30");
    let Subject::Entity(entity) = &f.subject else {
        panic!("an entity finding")
    };
    assert_eq!(entity.flows, 30);
    assert_eq!(entity.first_seen, T0);
    assert_eq!(entity.last_seen, end);
    assert_eq!(entity.dst_port, Some(443));
    assert!(evidence(f, "score").parse::<f64>().unwrap() > 0.9);

    // Without the first half, the 15 connections are too few.
    let mut fresh = detector(&[NEEDS_20]);
    feed(&mut fresh, 15..30);
    assert!(fresh.tick(end + 3600 * SECOND).is_empty());
}

#[test]
fn an_empty_or_foreign_snapshot_is_handled() {
    let mut d = detector(&[]);
    d.restore(&[]).unwrap();
    let err = d.restore(&[0xff, 0xff, 0xff]).unwrap_err();
    assert_eq!(err.location, "snapshot");
}

#[test]
fn pairs_stay_within_their_cap_and_evictions_are_counted() {
    let mut d = detector(&[("max_pairs = 100000", "max_pairs = 1000")]);
    // 9,000 pairs of two connections each around a beacon of 30: each
    // enters the table with its second connection and fills it.
    let mut builder = BatchBuilder::new();
    let mut n = 0;
    for i in 0..30 {
        beacon_conn(&mut builder, i);
        for _ in 0..300 {
            let dst = IpAddr::from([203, 0, (n >> 8) as u8, n as u8]);
            let src = IpAddr::from([10, 9, (n >> 16) as u8, (n >> 3) as u8]);
            for k in 0..2 {
                builder
                    .flow(src, 50_000 + k, dst, 80)
                    .ts(T0 + i * 1800 * SECOND + n as i64)
                    .bytes(100, 100)
                    .pkts(3, 3);
            }
            n += 1;
        }
        if i % 5 == 4 {
            d.process(&std::mem::take(&mut builder).build());
        }
    }
    let notes = d.configure(vec![ruleset(&[("max_pairs = 100000", "max_pairs = 1000")])]);
    let notes = notes.unwrap().notes.join("\n");
    let evicted: u64 = notes
        .split(", ")
        .find_map(|part| {
            part.strip_suffix(" pairs evicted")?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no eviction count in {notes}"));
    assert!(evicted >= 7_000, "{notes}");
    let held: usize = notes
        .split("now ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no pair count in {notes}"));
    assert!(held <= 1000, "{notes}");

    let findings = d.tick(T0 + 40 * 1800 * SECOND);
    let beacon: Vec<&Finding> = findings
        .iter()
        .filter(|f| {
            f.evidence
                .iter()
                .any(|(k, v)| k == "fqdn" && v == "c2.example.net")
        })
        .collect();
    assert_eq!(beacon.len(), 1, "the beacon outlives the one-off pairs");
    assert_eq!(evidence(beacon[0], "count"), "30");
    assert!(evidence(beacon[0], "evictions").contains("pairs evicted"));
}

#[test]
fn samples_stay_within_their_cap() {
    const CAP: (&str, &str) = ("max_samples = 2000000", "max_samples = 20");
    let mut d = detector(&[CAP]);
    feed(&mut d, 0..30);
    let notes = d.configure(vec![ruleset(&[CAP])]).unwrap().notes.join("\n");
    // The address pair and the name pair share the 20 samples: when the
    // log is nearly full both are thinned, and nothing is dropped.
    let held: usize = notes
        .split(" name pairs, ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no sample count in {notes}"));
    assert!((4..=20).contains(&held), "{notes}");
    assert!(
        notes.contains(" 0 samples dropped, 2 pairs thinned,"),
        "{notes}"
    );
    // Held and thinned samples account for every connection of both pairs.
    let thinned: usize = notes
        .split(", ")
        .find_map(|p| p.strip_suffix(" samples thinned")?.parse().ok())
        .unwrap_or_else(|| panic!("{notes}"));
    assert_eq!(held + thinned, 60, "{notes}");
}

#[test]
fn a_log_too_small_for_its_pairs_drops_samples_and_says_so() {
    // 200 pairs of 40 connections, one connection of each in turn: the
    // log fills with 100 pairs of one sample each, at the floor of 8
    // samples a pair below which nothing is thinned.
    const CAP: (&str, &str) = ("max_samples = 2000000", "max_samples = 100");
    let mut d = detector(&[CAP]);
    let mut builder = BatchBuilder::new();
    for i in 0..40 {
        for n in 0..200u8 {
            builder
                .flow(ip("10.2.0.1"), 40_000, IpAddr::from([203, 0, 113, n]), 443)
                .ts(T0 + i * 60 * SECOND + i64::from(n))
                .bytes(100, 100)
                .pkts(2, 2);
        }
    }
    d.process(&builder.build());
    let notes = d.configure(vec![ruleset(&[CAP])]).unwrap().notes.join("\n");
    let held: usize = notes
        .split(" name pairs, ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no sample count in {notes}"));
    assert!(held <= 100, "{notes}");
    // No pair has more than the floor to give up: what does not fit is
    // dropped, and counted.
    assert!(notes.contains(" 7900 samples dropped"), "{notes}");
}

#[test]
fn bad_settings_name_the_file_and_line() {
    let text = default_toml();
    let cases = [
        ("min_connections = 4", "min_connections = 2", "at least 4"),
        ("min_score = 0.5", "min_score = 1.5", "between 0 and 1"),
        ("idle_secs = 3600", "idle_secs = 0", "above 0"),
        (
            "max_samples_per_pair = 4096",
            "max_samples_per_pair = 10",
            "at least 64",
        ),
        (
            "skip_multicast = true",
            "skip_multicst = true",
            "skip_multicst",
        ),
    ];
    for (from, to, words) in cases {
        let line = text.lines().position(|l| l.starts_with(from)).unwrap() + 1;
        let mut d = detector(&[]);
        let err = d.configure(vec![ruleset(&[(from, to)])]).unwrap_err();
        assert_eq!(
            err.location,
            format!("default.toml:{line}"),
            "{to}: {err:?}"
        );
        assert!(err.message.contains(words), "{to}: {err:?}");
    }
    // Weights are checked together; the error names the section.
    let mut d = detector(&[]);
    let err = d
        .configure(vec![ruleset(&[(
            "histogram_weight = 0.25",
            "histogram_weight = 0.5",
        )])])
        .unwrap_err();
    assert!(err.location.starts_with("default.toml:"), "{err:?}");
    assert!(err.message.contains("must be 1"), "{err:?}");
    // The previous configuration stays in force.
    feed(&mut d, 0..30);
    assert_eq!(d.tick(T0 + 40 * 1800 * SECOND).len(), 1);
}

#[test]
fn one_off_pairs_wait_in_a_fixed_table() {
    let mut d = detector(&[]);
    let mut builder = BatchBuilder::new();
    for n in 0..300_000u32 {
        let [_, a, b, c] = n.to_be_bytes();
        builder
            .flow(
                IpAddr::from([10, a, b, c]),
                40_000,
                IpAddr::from([198, 51, 100, 1]),
                443,
            )
            .ts(T0 + i64::from(n) * 1000)
            .bytes(100, 100)
            .pkts(2, 2);
    }
    d.process(&builder.build());
    let notes = d.configure(vec![ruleset(&[])]).unwrap().notes.join("\n");
    // None of them enters the pair table; the fixed table forgets some.
    assert!(notes.contains("now 0 address pairs"), "{notes}");
    let forgotten: u64 = notes
        .split([',', '\n'])
        .find_map(|p| {
            p.trim()
                .strip_suffix(" one-off pairs forgotten")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("{notes}"));
    assert!(forgotten > 0 && forgotten < 300_000, "{notes}");
}

#[test]
fn inbound_connections_are_left_out_by_default() {
    let run = |direction: u8, changes: &[(&str, &str)]| {
        let mut d = detector(changes);
        let mut builder = BatchBuilder::new();
        for i in 0..30 {
            beacon_conn(&mut builder, i);
            builder.direction(direction);
        }
        d.process(&builder.build());
        d.tick(T0 + 40 * 1800 * SECOND).len()
    };
    assert_eq!(run(2, &[]), 1, "outbound");
    assert_eq!(run(1, &[]), 0, "inbound");
    assert_eq!(
        run(1, &[("skip_inbound = true", "skip_inbound = false")]),
        1
    );
}
