//! The real lists: the defaults in `rulesets/reputation/` (Feodo Tracker
//! via FireHOL, Spamhaus DROP) and the STIX examples and Feodo-layout CSV in
//! `tests/fixtures/iocs/`.

#![allow(clippy::unwrap_used, reason = "tests panic to fail")]

use std::path::{Path, PathBuf};

use kansoku_plugin::testing::BatchBuilder;
use kansoku_plugin::{Batch, Detector, Finding, LoadReport, Ruleset, Severity, TextField};
use reputation::Reputation;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn file(path: &str) -> Ruleset {
    let path = root().join(path);
    Ruleset {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        content: std::fs::read(&path).unwrap(),
    }
}

fn defaults() -> Vec<Ruleset> {
    let mut files: Vec<_> = std::fs::read_dir(root().join("rulesets/reputation"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "md"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| file(p.strip_prefix(root()).unwrap().to_str().unwrap()))
        .collect()
}

fn load(rulesets: &[Ruleset]) -> (Reputation, LoadReport) {
    Reputation::with_rulesets(rulesets).unwrap()
}

fn evidence<'a>(f: &'a Finding, key: &str) -> Option<&'a str> {
    f.evidence
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Inside host 10.1.2.3 talks to `dst` at 2021-06-07.
fn outbound(dst: &str) -> Batch {
    let mut b = BatchBuilder::new();
    b.flow(
        "10.1.2.3".parse().unwrap(),
        40000,
        dst.parse().unwrap(),
        443,
    )
    .direction(2)
    .ts(1_623_024_000_000_000);
    b.build()
}

#[test]
fn the_default_lists_load_whole() {
    let (d, report) = load(&defaults());
    assert_eq!(report.loaded, 235 + 1_323);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(d.len(), 1_558);
    assert!(
        report.notes.iter().any(|n| n
            == "feodo.ipset: 235 indicators (abuse.ch Feodo Tracker (FireHOL feodo, 2015-10-23))"),
        "{:?}",
        report.notes
    );
}

#[test]
fn feodo_addresses_are_c2_and_drop_networks_contain_their_addresses() {
    let (mut d, _) = load(&defaults());
    // First and last entries of feodo.ipset.
    for ip in ["2.50.11.28", "5.39.222.172"] {
        let f = d.process(&outbound(ip));
        assert_eq!(f.len(), 1, "{ip}");
        assert_eq!(
            (f[0].category.as_str(), f[0].severity),
            ("c2", Severity::High)
        );
        assert_eq!(evidence(&f[0], "list"), Some("feodo.ipset"));
    }
    assert!(d.process(&outbound("2.50.11.29")).is_empty());
    // 1.10.16.0/20: the first and the last address, and one past each end.
    for (ip, hit) in [
        ("1.10.16.0", true),
        ("1.10.31.255", true),
        ("1.10.15.255", false),
        ("1.10.32.0", false),
    ] {
        let f = d.process(&outbound(ip));
        assert_eq!(f.len(), usize::from(hit), "{ip}");
        if hit {
            assert_eq!(evidence(&f[0], "indicator"), Some("1.10.16.0/20"));
            assert_eq!(f[0].category, "hijacked");
        }
    }
    // An address of the demo's honeypot capture in a DROP network.
    assert_eq!(
        evidence(&d.process(&outbound("31.210.20.24"))[0], "indicator"),
        Some("31.210.20.0/24")
    );
}

#[test]
fn stix_examples_21_and_20() {
    let names = [
        "indicator-for-c2-ip-address.json",
        "indicators-for-C2-with-COA.json",
        "indicator-for-malicious-URL.json",
        "malware-indicator-for-file-hash.json",
    ];
    let rulesets: Vec<_> = names
        .iter()
        .map(|n| file(&format!("tests/fixtures/iocs/stix/{n}")))
        .collect();
    let (mut d, report) = load(&rulesets);
    assert_eq!(report.loaded, 5, "{report:?}");
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);

    let f = d.process(&outbound("10.0.0.0"));
    assert_eq!(f.len(), 1, "one finding, the other list named");
    assert_eq!(
        evidence(&f[0], "list"),
        Some("indicator-for-c2-ip-address.json")
    );
    assert_eq!(
        evidence(&f[0], "label"),
        Some("IP Address for known C2 channel")
    );
    assert_eq!(
        evidence(&f[0], "also_in"),
        Some("indicators-for-C2-with-COA.json")
    );
    // The C2-with-COA indicator `indicates` Poison Ivy, a RAT: C2.
    let (mut coa, _) = load(&rulesets[1..2]);
    let f = coa.process(&outbound("10.0.0.0"));
    assert_eq!(
        (evidence(&f[0], "label"), f[0].category.as_str()),
        (Some("Poison Ivy"), "c2")
    );

    let mut b = BatchBuilder::new();
    b.flow(
        "10.1.2.3".parse().unwrap(),
        40000,
        "192.0.2.1".parse().unwrap(),
        80,
    )
    .ts(1_623_024_000_000_000)
    .text(TextField::HttpHost, "x4z9arb.cn")
    .text(TextField::HttpUri, "/4712/");
    b.flow(
        "10.1.2.3".parse().unwrap(),
        40001,
        "192.0.2.1".parse().unwrap(),
        80,
    )
    .ts(1_623_024_000_000_000)
    .text(
        TextField::FileSha256,
        "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c",
    );
    let f = d.process(&b.build());
    let got: Vec<_> = f
        .iter()
        .map(|f| {
            (
                evidence(f, "indicator").unwrap(),
                evidence(f, "label").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("x4z9arb.cn/4712/", "x4z9arb backdoor"),
            (
                "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c",
                "Poison Ivy"
            )
        ]
    );
    // Before valid_from (2014-05-08) the indicator does not hold.
    let mut b = BatchBuilder::new();
    b.flow(
        "10.1.2.3".parse().unwrap(),
        1,
        "10.0.0.0".parse().unwrap(),
        443,
    )
    .ts(1_300_000_000_000_000);
    let f = d.process(&b.build());
    assert!(
        f.iter()
            .all(|f| evidence(f, "list") != Some("indicators-for-C2-with-COA.json"))
    );
}

#[test]
fn a_malformed_bundle_is_an_error_and_the_lists_in_force_stay() {
    let mut d = Reputation::default();
    let mut rulesets = defaults();
    d.configure(rulesets.clone()).unwrap();
    let good =
        std::fs::read(root().join("tests/fixtures/iocs/stix/indicator-for-c2-ip-address.json"))
            .unwrap();
    // Cut inside the pattern string.
    let cut = good.len() / 2;
    rulesets.push(Ruleset {
        name: "cut.json".into(),
        content: good[..cut].to_vec(),
    });
    let e = d.configure(rulesets).unwrap_err();
    assert!(e.location.starts_with("cut.json:"), "{e:?}");
    assert!(e.message.starts_with("not a STIX bundle: "), "{e:?}");
    assert_eq!(d.process(&outbound("2.50.11.28")).len(), 1);
    assert_eq!(d.process(&outbound("1.10.16.1")).len(), 1);
}

#[test]
fn a_feodo_csv_with_its_column_mapping() {
    let settings = r#"
[lists."feodo-ipblocklist.csv"]
source = "abuse.ch Feodo Tracker"
category = "c2"
max_age_days = 30
[lists."feodo-ipblocklist.csv".columns]
value = "dst_ip"
first_seen = "first_seen_utc"
last_seen = "last_online"
label = "malware"
"#;
    let rulesets = vec![
        Ruleset {
            name: "lists.toml".into(),
            content: settings.as_bytes().to_vec(),
        },
        file("tests/fixtures/iocs/feodo-ipblocklist.csv"),
    ];
    let (mut d, report) = load(&rulesets);
    assert_eq!(report.loaded, 4);
    let skipped: Vec<_> = report
        .skipped
        .iter()
        .map(|s| (s.location.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            (
                "feodo-ipblocklist.csv:10",
                "`not-an-address` is not a domain name"
            ),
            (
                "feodo-ipblocklist.csv:11",
                "last seen: `never` is not a time (RFC 3339, `YYYY-MM-DD HH:MM:SS` UTC or a date)"
            ),
        ]
    );
    let at = |dst: &str, ts: &str| {
        let mut b = BatchBuilder::new();
        let ts = ts.parse::<i64>().unwrap() * 1_000_000;
        b.flow("10.1.2.3".parse().unwrap(), 1, dst.parse().unwrap(), 443)
            .ts(ts);
        b.build()
    };
    // Last online 2015-10-20 + 30 days = 2015-11-19.
    let f = d.process(&at("2.50.11.28", "1447000000")); // 2015-11-08
    assert_eq!(evidence(&f[0], "label"), Some("Dridex"));
    assert!(d.process(&at("2.50.11.28", "1448000000")).is_empty()); // 2015-11-20
    // Earlier traffic still matches: first seen is not validity.
    assert_eq!(d.process(&at("2.50.11.28", "1400000000")).len(), 1);
    assert_eq!(d.process(&at("2001:db8:feed::1", "1446000000")).len(), 1);
}
