//! Acceptance: beacon scores reproduce RITA v5 on its proxy test data
//! (tests/fixtures/rita, from activecm/rita `test_data/proxy`): exactly the
//! two expected beacons, exact connection counts, scores within ±0.05 of
//! `expected_beacons.tsv` (and in practice much closer).

#![allow(clippy::unwrap_used, reason = "test helpers panic to fail the test")]

use std::path::PathBuf;

use kansoku_plugin::testing::{BatchBuilder, ZeekRow, read_tsv};
use kansoku_plugin::{Detector, Finding, Ruleset, Subject};
use ml_score::MlScore;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn default_ruleset() -> Ruleset {
    let path = root().join("rulesets/ml-score/default.toml");
    Ruleset {
        name: "default.toml".into(),
        content: std::fs::read(path).unwrap(),
    }
}

fn rows(log: &str) -> Vec<ZeekRow> {
    let path = root().join("tests/fixtures/rita").join(log);
    read_tsv(log, &std::fs::read_to_string(path).unwrap()).unwrap()
}

/// conn, http and ssl rows merged in time order, as a sorted replay would
/// feed them.
fn proxy_rows() -> Vec<ZeekRow> {
    let mut all = rows("conn.log");
    all.extend(rows("http.log"));
    all.extend(rows("ssl.log"));
    all.sort_by_key(|r| r.ts);
    all
}

fn feed(detector: &mut MlScore, rows: &[ZeekRow], batch: usize) -> Vec<Finding> {
    let mut findings = Vec::new();
    for chunk in rows.chunks(batch) {
        let mut builder = BatchBuilder::new();
        for row in chunk {
            builder.zeek(row);
        }
        findings.extend(detector.process(&builder.build()));
    }
    findings
}

fn configured() -> MlScore {
    let mut detector = MlScore::default();
    detector.configure(vec![default_ruleset()]).unwrap();
    detector
}

fn evidence<'a>(finding: &'a Finding, key: &str) -> &'a str {
    finding
        .evidence
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {finding:?}"))
}

struct Expected {
    src: String,
    fqdn: String,
    count: usize,
    proxy_count: usize,
    total_bytes: u64,
    total_duration: f64,
    pps: String,
    scores: [f64; 5],
}

fn expected() -> Vec<Expected> {
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/rita/expected_beacons.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f[0] == "proxy")
        .map(|f| Expected {
            src: f[1].into(),
            fqdn: f[2].into(),
            count: f[4].parse().unwrap(),
            proxy_count: f[5].parse().unwrap(),
            total_bytes: f[6].parse().unwrap(),
            total_duration: f[7].parse().unwrap(),
            pps: f[8].into(),
            scores: [9, 10, 11, 12, 13].map(|i| f[i].parse().unwrap()),
        })
        .collect()
}

fn run_proxy_data(batch: usize) -> Vec<Finding> {
    let rows = proxy_rows();
    let last = rows.iter().map(|r| r.ts).max().unwrap();
    let mut detector = configured();
    assert!(
        feed(&mut detector, &rows, batch).is_empty(),
        "findings come from tick"
    );
    let findings = detector.tick(last + 3_600_000_000);
    // Reported once per window.
    assert!(detector.tick(last + 7_200_000_000).is_empty());
    findings
}

#[test]
fn proxy_beacons_match_rita() {
    let findings = run_proxy_data(100);
    let expected = expected();
    assert_eq!(expected.len(), 2);
    assert_eq!(
        findings.len(),
        2,
        "exactly the two expected beacons: {findings:#?}"
    );
    for want in &expected {
        let got = findings
            .iter()
            .find(|f| evidence(f, "fqdn") == want.fqdn)
            .unwrap_or_else(|| panic!("{} not found in {findings:#?}", want.fqdn));
        assert_eq!(got.rule_id, "beacon-sni");
        assert_eq!(got.category, "c2");
        let Subject::Entity(entity) = &got.subject else {
            panic!("an entity finding")
        };
        assert_eq!(std::net::IpAddr::from(entity.src).to_string(), want.src);
        assert_eq!(entity.flows as usize, want.count);
        assert_eq!(evidence(got, "count").parse::<usize>().unwrap(), want.count);
        assert_eq!(
            evidence(got, "proxy_count").parse::<usize>().unwrap(),
            want.proxy_count
        );
        assert_eq!(evidence(got, "port_proto_service"), want.pps);
        let keys = ["score", "ts_score", "ds_score", "dur_score", "hist_score"];
        for (key, want_score) in keys.iter().zip(want.scores) {
            let got_score: f64 = evidence(got, key).parse().unwrap();
            eprintln!("{} {key}: {got_score} (RITA {want_score})", want.fqdn);
            assert!(
                (got_score - want_score).abs() <= 0.05,
                "{} {key}: {got_score} vs RITA {want_score}",
                want.fqdn
            );
            // Closer still in practice: the largest gap is ds_score of
            // honestimnotevil, 1.0 against RITA's 0.995, which the same
            // connections give even with Zeek's exact orig_ip_bytes.
            assert!((got_score - want_score).abs() <= 0.006, "{key}");
        }
        // IP bytes are estimated from payload and packets (the batch does
        // not carry Zeek's ip_bytes): within 1 %.
        let bytes: f64 = evidence(got, "total_ip_bytes_est").parse().unwrap();
        let want_bytes = want.total_bytes as f64;
        assert!(
            (bytes - want_bytes).abs() / want_bytes < 0.01,
            "{bytes} vs {want_bytes}"
        );
        let secs: f64 = evidence(got, "total_duration_secs").parse().unwrap();
        assert!((secs - want.total_duration).abs() < 0.001 * want.count as f64);
    }
}

#[test]
fn batch_size_does_not_change_the_result() {
    let summary = |findings: Vec<Finding>| {
        let mut v: Vec<String> = findings
            .iter()
            .map(|f| {
                format!(
                    "{} {} {}",
                    evidence(f, "fqdn"),
                    evidence(f, "count"),
                    evidence(f, "score")
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(summary(run_proxy_data(1)), summary(run_proxy_data(1000)));
}

#[test]
fn connection_records_after_their_names_join_as_well() {
    // Zeek writes conn.log when a connection ends, after its ssl and http
    // rows: feed each connection's name rows first.
    let mut rows = proxy_rows();
    rows.sort_by_key(|r| (r.ts / 1_000_000, r.kind == 0));
    let last = rows.iter().map(|r| r.ts).max().unwrap();
    let mut detector = configured();
    feed(&mut detector, &rows, 64);
    let findings = detector.tick(last + 3_600_000_000);
    let mut counts: Vec<(String, String)> = findings
        .iter()
        .map(|f| {
            (
                evidence(f, "fqdn").to_owned(),
                evidence(f, "count").to_owned(),
            )
        })
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [
            ("www.google.com".to_owned(), "6".to_owned()),
            ("www.honestimnotevil.com".to_owned(), "357".to_owned())
        ]
    );
}

#[test]
fn without_names_the_proxy_itself_is_the_beacon() {
    // Connection records alone: the client → proxy address pair carries all
    // 407 connections, and nothing is reported by name.
    let rows: Vec<ZeekRow> = proxy_rows().into_iter().filter(|r| r.kind == 0).collect();
    let last = rows.iter().map(|r| r.ts).max().unwrap();
    let mut detector = configured();
    feed(&mut detector, &rows, 100);
    let findings = detector.tick(last + 3_600_000_000);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].rule_id, "beacon-ip");
    assert_eq!(evidence(&findings[0], "dst"), "10.136.0.16");
    // The window keeps the 363 connections from 18:00 the day before.
    assert_eq!(evidence(&findings[0], "count"), "363");
}
