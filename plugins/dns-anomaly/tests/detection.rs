//! The detector on a real Zeek dns.log (WRCCDC 2018, 53,615 rows) with
//! generated attacks mixed in.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

use std::io::Read as _;
use std::net::IpAddr;

use dns_anomaly::DnsAnomaly;
use kansoku_plugin::testing::{BatchBuilder, SplitMix64, ZeekRow, read_tsv};
use kansoku_plugin::{Detector, Finding, Ruleset, Subject, TextField};

const SECOND: i64 = 1_000_000;
const BATCH: usize = 1024;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn background() -> Vec<(u16, ZeekRow)> {
    let gz = std::fs::read(root().join("tests/fixtures/zeek/brimdata-full/dns.log.gz")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    let rows = read_tsv("dns.log", &text).unwrap();
    assert!(rows.len() > 50_000);
    rows.into_iter().map(|r| (0, r)).collect()
}

fn configured() -> DnsAnomaly {
    let mut detector = DnsAnomaly::default();
    let ruleset = |name: &str| Ruleset {
        name: name.into(),
        content: std::fs::read(root().join("rulesets/dns-anomaly").join(name)).unwrap(),
    };
    detector
        .configure(vec![ruleset("default.toml"), ruleset("dga-model.toml")])
        .unwrap();
    detector
}

/// Feeds rows in time order, in batches, ticking after each as the engine
/// does; returns each finding with the time of the batch's last row.
fn replay(detector: &mut DnsAnomaly, mut rows: Vec<(u16, ZeekRow)>) -> Vec<(i64, Finding)> {
    rows.sort_by_key(|(_, r)| r.ts);
    let mut out = Vec::new();
    for chunk in rows.chunks(BATCH) {
        let mut builder = BatchBuilder::new();
        for (institution, row) in chunk {
            builder.zeek(row).institution(*institution);
        }
        let last = chunk.last().map_or(0, |(_, r)| r.ts);
        let batch = builder.build();
        for finding in detector.process(&batch) {
            out.push((last, finding));
        }
        for finding in detector.tick(last) {
            out.push((last, finding));
        }
    }
    out
}

fn query(ts: i64, src: &str, name: &str, qtype: u16, rcode: Option<u16>) -> ZeekRow {
    ZeekRow {
        kind: 1,
        ts,
        uid: String::new(),
        src: src.parse().unwrap(),
        src_port: 40000,
        dst: "192.0.2.53".parse().unwrap(),
        dst_port: 53,
        proto: 17,
        duration_us: 0,
        src_bytes: 0,
        dst_bytes: 0,
        src_pkts: 0,
        dst_pkts: 0,
        ip_bytes: 0,
        conn_state: 0,
        dns_qtype: qtype,
        dns_rcode: rcode,
        text: vec![(TextField::DnsQuery, name.to_owned())],
    }
}

fn start_of(rows: &[(u16, ZeekRow)]) -> i64 {
    rows.iter().map(|(_, r)| r.ts).min().unwrap()
}

fn evidence<'a>(finding: &'a Finding, key: &str) -> &'a str {
    finding
        .evidence
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {finding:?}"))
}

fn entity(finding: &Finding) -> &kansoku_plugin::Entity {
    match &finding.subject {
        Subject::Entity(e) => e,
        Subject::Row(_) => panic!("expected an entity"),
    }
}

/// 5,000 queries for random 8-16 character names under
/// victim.example.ac.jp from three resolvers of institution 2, 90 % NXDOMAIN
/// and the rest SERVFAIL or unanswered, over 50 s from `start`.
fn water_torture(start: i64) -> Vec<(u16, ZeekRow)> {
    let mut rng = SplitMix64(7);
    (0..5000)
        .map(|i| {
            let len = 8 + rng.below(9) as usize;
            let name = format!(
                "{}.victim.example.ac.jp",
                rng.label(b"abcdefghijklmnopqrstuvwxyz0123456789", len)
            );
            let rcode = match rng.below(10) {
                0 => Some(2),
                1 => None,
                _ => Some(3),
            };
            let resolver = ["10.20.0.53", "10.20.0.54", "10.20.1.53"][i % 3];
            (
                2,
                query(start + i as i64 * 10_000, resolver, &name, 1, rcode),
            )
        })
        .collect()
}

#[test]
fn the_real_background_alone_raises_nothing() {
    let findings = replay(&mut configured(), background());
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn a_random_subdomain_attack_is_reported_once_within_a_window() {
    let rows = background();
    let start = start_of(&rows) + 300 * SECOND;
    let mut all = rows;
    all.extend(water_torture(start));
    let findings = replay(&mut configured(), all);
    let attacks: Vec<_> = findings
        .iter()
        .filter(|(_, f)| f.rule_id == "water-torture")
        .collect();
    assert_eq!(attacks.len(), 1, "{findings:#?}");
    let (at, finding) = attacks[0];
    assert!(
        *at - start < 60 * SECOND,
        "reported {}s in",
        (*at - start) / SECOND
    );
    assert_eq!(evidence(finding, "domain"), "example.ac.jp");
    assert_eq!(finding.category, "dos");
    assert_eq!(entity(finding).institution, 2);
    assert!(
        evidence(finding, "unique_subdomains")
            .parse::<u32>()
            .unwrap()
            >= 100
    );
    assert!(evidence(finding, "failure_ratio").parse::<f32>().unwrap() > 0.8);
    assert_eq!(evidence(finding, "resolvers"), "3");
    assert!(evidence(finding, "sample_names").contains(".victim.example.ac.jp"));
    // Nothing else fires: the background stays quiet with the attack in it.
    assert_eq!(findings.len(), 1, "{findings:#?}");
}

#[test]
fn an_attack_split_across_a_hot_swap_is_reported_once() {
    let attack = water_torture(1_521_911_720 * SECOND);
    let (first, second) = attack.split_at(60);
    let mut old = configured();
    assert!(replay(&mut old, first.to_vec()).is_empty());
    let mut new = configured();
    new.restore(&old.snapshot()).unwrap();
    let findings = replay(&mut new, second.to_vec());
    assert_eq!(findings.len(), 1, "{findings:#?}");
    // The counts carried over: the threshold was crossed at the 100th
    // distinct name, 40 queries after the swap.
    let flows = entity(&findings[0].1).flows;
    assert!((100..=110).contains(&flows), "{flows}");
    // And a corrupt snapshot is refused.
    assert!(new.restore(&[0xff; 9]).is_err());
}

/// dnscat2-like: hex-encoded data in two labels, TXT/CNAME/MX answers.
fn dnscat(start: i64, client: &str) -> Vec<(u16, ZeekRow)> {
    let mut rng = SplitMix64(11);
    (0..300)
        .map(|i| {
            let name = format!(
                "{}.{}.c2.badcat.example.net",
                rng.label(b"0123456789abcdef", 30),
                rng.label(b"0123456789abcdef", 30)
            );
            let qtype = [16, 5, 15][i % 3];
            (
                0,
                query(start + i as i64 * 150_000, client, &name, qtype, Some(0)),
            )
        })
        .collect()
}

/// iodine-like: base32 data labels up to 63 characters, NULL queries.
fn iodine(start: i64, client: &str) -> Vec<(u16, ZeekRow)> {
    let mut rng = SplitMix64(13);
    (0..300)
        .map(|i| {
            let name = format!(
                "p{}.{}.t.iodine-test.org",
                rng.label(b"abcdefghijklmnopqrstuvwxyz012345", 56),
                rng.label(b"abcdefghijklmnopqrstuvwxyz012345", 20)
            );
            (
                0,
                query(start + i as i64 * 100_000, client, &name, 10, Some(0)),
            )
        })
        .collect()
}

#[test]
fn tunnels_are_reported_and_the_background_is_not() {
    let rows = background();
    let start = start_of(&rows) + 120 * SECOND;
    let mut all = rows;
    all.extend(dnscat(start, "10.47.1.20"));
    all.extend(iodine(start + 400 * SECOND, "10.47.2.30"));
    let findings = replay(&mut configured(), all);
    let tunnels: Vec<_> = findings
        .iter()
        .filter(|(_, f)| f.rule_id == "dns-tunnel")
        .map(|(_, f)| f)
        .collect();
    assert_eq!(tunnels.len(), 2, "{findings:#?}");
    assert_eq!(evidence(tunnels[0], "domain"), "example.net");
    assert_eq!(
        IpAddr::from(entity(tunnels[0]).src),
        "10.47.1.20".parse::<IpAddr>().unwrap()
    );
    assert_eq!(evidence(tunnels[1], "domain"), "iodine-test.org");
    assert_eq!(evidence(tunnels[1], "txt_null_cname_mx_share"), "1.00");
    assert!(tunnels.iter().all(|f| f.category == "exfiltration"));
    assert_eq!(findings.len(), 2, "{findings:#?}");
}

#[test]
fn a_client_failing_on_generated_names_is_reported() {
    use dns_anomaly::dga::train::{Split, read_csv, split_of};
    let csv =
        std::fs::read_to_string(root().join("tests/fixtures/dga/dga_domains_sample.csv")).unwrap();
    // Held-out names of a character-based family, which the model never saw.
    let names: Vec<String> = read_csv(&csv)
        .unwrap()
        .into_iter()
        .filter(|s| s.family == "ramnit" && split_of(&s.domain) == Split::Test)
        .map(|s| s.domain)
        .take(40)
        .collect();
    assert_eq!(names.len(), 40);
    let rows = background();
    let start = start_of(&rows) + 200 * SECOND;
    let mut all = rows;
    all.extend(names.iter().enumerate().map(|(i, name)| {
        (
            0,
            query(start + i as i64 * SECOND, "10.47.3.40", name, 1, Some(3)),
        )
    }));
    let findings = replay(&mut configured(), all);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let finding = &findings[0].1;
    assert_eq!(finding.rule_id, "dga-nxdomain");
    assert_eq!(finding.category, "dga");
    assert_eq!(
        IpAddr::from(entity(finding).src),
        "10.47.3.40".parse::<IpAddr>().unwrap()
    );
    assert_eq!(evidence(finding, "failed_generated_domains"), "10");
}

#[test]
fn state_stays_within_its_caps_under_fresh_names() {
    let mut detector = DnsAnomaly::default();
    detector
        .configure(vec![Ruleset {
            name: "caps.toml".into(),
            content: b"max_domains = 1000\nmax_tunnels = 100\n".to_vec(),
        }])
        .unwrap();
    let mut rng = SplitMix64(3);
    for round in 0..20 {
        let mut builder = BatchBuilder::new();
        for i in 0..5000 {
            let ts = 1_700_000_000 * SECOND + (round * 5000 + i) * 1000;
            // Each domain twice, so each enters the table.
            let domain = rng.label(b"abcdefghijklmnopqrstuvwxyz", 12);
            for sub in ["www", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"] {
                builder.zeek(&query(
                    ts,
                    "10.0.0.1",
                    &format!("{sub}.{domain}.com"),
                    1,
                    Some(0),
                ));
            }
        }
        detector.process(&builder.build());
    }
    let ([domains, _, tunnels], bytes) = detector.state_size();
    assert!(domains <= 1000, "{domains}");
    assert!(tunnels <= 100, "{tunnels}");
    assert!(bytes < 16 << 20, "{bytes}");
    let report = detector
        .configure(vec![Ruleset {
            name: "caps.toml".into(),
            content: b"max_domains = 1000\n".to_vec(),
        }])
        .unwrap();
    assert!(
        report.notes.iter().any(|n| n.starts_with("evicted so far")),
        "{:?}",
        report.notes
    );
}
