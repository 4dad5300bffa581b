#![allow(clippy::unwrap_used, reason = "tests panic to fail")]

use kansoku_plugin::testing::BatchBuilder;
use kansoku_plugin::{Batch, Detector, Finding, Ruleset, Severity, TextField};

use super::Reputation;

const INSIDE: &str = "10.1.2.3";

pub fn ruleset(name: &str, content: &str) -> Ruleset {
    Ruleset {
        name: name.into(),
        content: content.as_bytes().to_vec(),
    }
}

fn detector(lists: &[(&str, &str)]) -> Reputation {
    let rulesets: Vec<Ruleset> = lists.iter().map(|(n, c)| ruleset(n, c)).collect();
    Reputation::with_rulesets(&rulesets).unwrap().0
}

fn evidence<'a>(f: &'a Finding, key: &str) -> Option<&'a str> {
    f.evidence
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// An outbound connection from inside to `dst`, at `ts` seconds.
fn to(dst: &str, ts: i64) -> Batch {
    let mut b = BatchBuilder::new();
    b.flow(INSIDE.parse().unwrap(), 40000, dst.parse().unwrap(), 443)
        .direction(2)
        .ts(ts * 1_000_000);
    b.build()
}

fn with_text(field: TextField, value: &str) -> Batch {
    let mut b = BatchBuilder::new();
    b.flow(
        INSIDE.parse().unwrap(),
        40000,
        "192.0.2.200".parse().unwrap(),
        80,
    )
    .direction(2)
    .text(field, value);
    b.build()
}

#[test]
fn addresses_and_networks_v4_and_v6_on_either_side() {
    let mut d = detector(&[(
        "mixed.txt",
        "# comment\n198.51.100.7\n203.0.113.0/24 ; SBL1234\n2001:db8:bad::/48\n2001:db8::99 # trailing\n",
    )]);
    let hit = |d: &mut Reputation, dst: &str| d.process(&to(dst, 0));
    let f = hit(&mut d, "198.51.100.7");
    assert_eq!(f.len(), 1);
    assert_eq!(evidence(&f[0], "indicator"), Some("198.51.100.7"));
    assert_eq!(evidence(&f[0], "field"), Some("dst"));
    assert_eq!(hit(&mut d, "198.51.100.8").len(), 0);
    let f = hit(&mut d, "203.0.113.255");
    assert_eq!(evidence(&f[0], "indicator"), Some("203.0.113.0/24"));
    assert_eq!(evidence(&f[0], "label"), Some("SBL1234"));
    assert_eq!(hit(&mut d, "203.0.114.0").len(), 0);
    assert_eq!(
        evidence(&hit(&mut d, "2001:db8:bad:ffff::1")[0], "indicator"),
        Some("2001:db8:bad::/48")
    );
    assert_eq!(hit(&mut d, "2001:db8:bae::1").len(), 0);
    assert_eq!(hit(&mut d, "2001:db8::99").len(), 1);

    // The source side too.
    let mut b = BatchBuilder::new();
    b.flow(
        "198.51.100.7".parse().unwrap(),
        5555,
        INSIDE.parse().unwrap(),
        22,
    )
    .direction(1);
    let f = d.process(&b.build());
    assert_eq!(evidence(&f[0], "field"), Some("src"));
}

#[test]
fn domains_exact_suffix_and_below_over_every_name_field() {
    let mut d = detector(&[(
        "domains.txt",
        "evil.example\n.bad.example\n*.under.example\n0.0.0.0 hosts.example\n",
    )]);
    let seen = |d: &mut Reputation, field, name: &str| {
        d.process(&with_text(field, name))
            .iter()
            .map(|f| evidence(f, "indicator").unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        seen(&mut d, TextField::DnsQuery, "EVIL.example."),
        ["evil.example"]
    );
    assert!(seen(&mut d, TextField::DnsQuery, "www.evil.example").is_empty());
    assert_eq!(
        seen(&mut d, TextField::TlsSni, "bad.example"),
        [".bad.example"]
    );
    assert_eq!(
        seen(&mut d, TextField::TlsSni, "a.b.bad.example"),
        [".bad.example"]
    );
    assert!(seen(&mut d, TextField::TlsSni, "notbad.example").is_empty());
    assert!(seen(&mut d, TextField::HttpHost, "under.example").is_empty());
    assert_eq!(
        seen(&mut d, TextField::HttpHost, "x.under.example:8080"),
        ["*.under.example"]
    );
    assert_eq!(
        seen(&mut d, TextField::DnsAnswers, "cdn.example,hosts.example"),
        ["hosts.example"]
    );
}

#[test]
fn urls_and_hashes() {
    let mut d = detector(&[(
        "mixed.txt",
        "http://x4z9arb.cn/4712/\nhttps://dl.example/payload.bin?id=1\nEF537F25C895BFA782526529A9B63D97AA631564D5D789C2B765448C8635FB6C\n",
    )]);
    let mut b = BatchBuilder::new();
    b.flow(
        INSIDE.parse().unwrap(),
        40000,
        "192.0.2.1".parse().unwrap(),
        80,
    )
    .direction(2)
    .text(TextField::HttpHost, "X4Z9ARB.cn")
    .text(TextField::HttpUri, "/%34712/");
    b.flow(
        INSIDE.parse().unwrap(),
        40001,
        "192.0.2.1".parse().unwrap(),
        80,
    )
    .text(TextField::HttpHost, "dl.example")
    .text(TextField::HttpUri, "/payload.bin?id=2");
    b.flow(
        INSIDE.parse().unwrap(),
        40002,
        "192.0.2.1".parse().unwrap(),
        80,
    )
    .text(
        TextField::FileSha256,
        "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c",
    );
    let f = d.process(&b.build());
    let got: Vec<_> = f
        .iter()
        .map(|f| {
            (
                evidence(f, "field").unwrap(),
                evidence(f, "indicator").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("http.url", "x4z9arb.cn/4712/"),
            (
                "file.hash",
                "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"
            )
        ]
    );
}

#[test]
fn expired_and_not_yet_valid_indicators_never_match() {
    let bundle = r#"{"type":"bundle","id":"bundle--1","objects":[
      {"type":"indicator","spec_version":"2.1","id":"indicator--1","pattern_type":"stix",
       "pattern":"[ipv4-addr:value = '198.51.100.1']","indicator_types":["malicious-activity"],
       "valid_from":"2020-01-01T00:00:00Z","valid_until":"2020-02-01T00:00:00Z"}]}"#;
    let mut d = detector(&[("b.json", bundle)]);
    let jan = 1_578_000_000; // 2020-01-02
    let feb = 1_581_000_000; // 2020-02-06
    let dec = 1_577_000_000; // 2019-12-22
    assert_eq!(d.process(&to("198.51.100.1", jan)).len(), 1);
    assert!(d.process(&to("198.51.100.1", feb)).is_empty());
    assert!(d.process(&to("198.51.100.1", dec)).is_empty());

    // A list-wide expiry, and an age limit from the last sighting.
    let settings = "[lists.\"old.txt\"]\nexpires = \"2020-01-15\"\n";
    let mut d = detector(&[("lists.toml", settings), ("old.txt", "198.51.100.2\n")]);
    assert_eq!(d.process(&to("198.51.100.2", jan)).len(), 1);
    assert!(d.process(&to("198.51.100.2", feb)).is_empty());

    let settings = "[lists.\"feed.csv\"]\nmax_age_days = 10\n[lists.\"feed.csv\".columns]\nvalue = 1\nlast_seen = 2\n";
    let mut d = detector(&[
        ("lists.toml", settings),
        ("feed.csv", "198.51.100.3,2020-01-01\n"),
    ]);
    assert_eq!(d.process(&to("198.51.100.3", jan)).len(), 1);
    assert!(d.process(&to("198.51.100.3", jan + 10 * 86_400)).is_empty());
}

#[test]
fn categories_set_severity_noise_and_sinkholes() {
    let settings = r#"
[lists."scanners.txt"]
category = "scanner"
[lists."sinkholes.txt"]
category = "sinkhole"
confidence = 95
[lists."c2.txt"]
category = "c2"
"#;
    let mut d = detector(&[
        ("lists.toml", settings),
        ("scanners.txt", "198.51.100.10\n"),
        ("sinkholes.txt", "198.51.100.20\n"),
        ("c2.txt", "198.51.100.30\n198.51.100.20\n"),
    ]);
    let f = d.process(&to("198.51.100.10", 0));
    assert_eq!(
        (f[0].severity, evidence(&f[0], "noise")),
        (Severity::Info, Some("true"))
    );
    let f = d.process(&to("198.51.100.20", 0));
    assert_eq!(f.len(), 1, "one finding per indicator, whatever the lists");
    assert_eq!((f[0].severity, f[0].confidence), (Severity::High, 95));
    assert!(f[0].title.contains("infected"), "{}", f[0].title);
    assert_eq!(evidence(&f[0], "also_in"), Some("c2.txt"));
    assert_eq!(f[0].category, "sinkhole");

    // A C2 address knocking from outside on a closed port is one step less.
    let mut b = BatchBuilder::new();
    b.flow(
        "198.51.100.30".parse().unwrap(),
        5555,
        INSIDE.parse().unwrap(),
        23,
    )
    .direction(1)
    .conn_state(1);
    let f = d.process(&b.build());
    assert_eq!(f[0].severity, Severity::Medium);
    assert_eq!(
        d.process(&to("198.51.100.30", 0))[0].severity,
        Severity::High
    );
}

#[test]
fn stix_and_needs_every_term_on_the_flow() {
    let bundle = r#"{"type":"bundle","id":"bundle--2","objects":[
      {"type":"indicator","id":"indicator--2","pattern_type":"stix",
       "pattern":"[domain-name:value = 'c2.example' AND ipv4-addr:value = '198.51.100.40']",
       "valid_from":"2020-01-01T00:00:00Z"}]}"#;
    let mut d = detector(&[("and.json", bundle)]);
    let mut b = BatchBuilder::new();
    b.flow(
        INSIDE.parse().unwrap(),
        1,
        "198.51.100.40".parse().unwrap(),
        443,
    )
    .ts(1_600_000_000_000_000)
    .text(TextField::TlsSni, "c2.example");
    b.flow(
        INSIDE.parse().unwrap(),
        1,
        "198.51.100.41".parse().unwrap(),
        443,
    )
    .ts(1_600_000_000_000_000)
    .text(TextField::TlsSni, "c2.example");
    let f = d.process(&b.build());
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].subject, kansoku_plugin::Subject::Row(0));
}

#[test]
fn unreadable_entries_are_skipped_with_line_and_reason() {
    let (d, report) = Reputation::with_rulesets(&[ruleset(
        "l.txt",
        "198.51.100.1\nnot a thing\n10.0.0.0/99\nlocalhost\n",
    )])
    .unwrap();
    assert_eq!((d.len(), report.loaded), (1, 1));
    let skipped: Vec<_> = report
        .skipped
        .iter()
        .map(|s| (s.location.as_str(), s.id.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            ("l.txt:2", "not"),
            ("l.txt:3", "10.0.0.0/99"),
            ("l.txt:4", "localhost")
        ]
    );
    assert!(
        report.skipped[1].reason.contains("not a CIDR"),
        "{:?}",
        report.skipped[1]
    );
}

#[test]
fn bad_settings_and_unreadable_lists_are_errors_naming_them() {
    let err = |lists: &[(&str, &str)]| {
        let rulesets: Vec<Ruleset> = lists.iter().map(|(n, c)| ruleset(n, c)).collect();
        let e = Reputation::with_rulesets(&rulesets).unwrap_err();
        format!("{}: {}", e.location, e.message)
    };
    assert_eq!(
        err(&[("lists.toml", "[lists.\"a\"]\nconfidence = 101\n")]),
        "lists.toml: lists.a: confidence is a percentage, 0 to 100"
    );
    let e = err(&[("lists.toml", "[lists.\"a\"]\ncolour = 1\n")]);
    assert!(e.starts_with("lists.toml:2: unknown field `colour`"), "{e}");
    assert!(
        err(&[("feed.csv", "a,b\n")]).starts_with("feed.csv: a CSV list needs a column mapping")
    );
    let e = err(&[
        ("lists.toml", "[lists.\"f.csv\".columns]\nvalue = \"ip\"\n"),
        ("f.csv", "addr,seen\n1.2.3.4,x\n"),
    ]);
    assert!(
        e.starts_with("f.csv:1: column value `ip` is not in the header (addr, seen)"),
        "{e}"
    );
    assert_eq!(
        err(&[(
            "bad.json",
            "{\"type\": \"bundle\", \"objects\": [\n  {\"type\": \"indicator\",,}]}"
        )]),
        "bad.json:2:24: not a STIX bundle: key must be a string"
    );
    let binary = Ruleset {
        name: "x.txt".into(),
        content: b"ok.example\nbad\xff".to_vec(),
    };
    let e = Reputation::with_rulesets(&[binary]).unwrap_err();
    assert_eq!(
        (e.location.as_str(), e.message.as_str()),
        ("x.txt:2", "not UTF-8 text")
    );
}

#[test]
fn a_failed_swap_keeps_every_list_in_force() {
    let mut d = Reputation::default();
    d.configure(vec![
        ruleset("a.txt", "198.51.100.1\n"),
        ruleset("b.txt", "198.51.100.2\n"),
    ])
    .unwrap();
    let broken = ruleset("b.json", "{\"type\":\"bundle\",\"objects\":[");
    let e = d
        .configure(vec![ruleset("a.txt", "198.51.100.1\n"), broken])
        .unwrap_err();
    assert!(e.location.starts_with("b.json:1:"), "{e:?}");
    assert_eq!(d.process(&to("198.51.100.1", 0)).len(), 1);
    assert_eq!(d.process(&to("198.51.100.2", 0)).len(), 1);
    // Swapping one list changes only what it holds.
    d.configure(vec![
        ruleset("a.txt", "198.51.100.1\n"),
        ruleset("b.txt", "198.51.100.3\n"),
    ])
    .unwrap();
    assert_eq!(d.process(&to("198.51.100.1", 0)).len(), 1);
    assert!(d.process(&to("198.51.100.2", 0)).is_empty());
    assert_eq!(d.process(&to("198.51.100.3", 0)).len(), 1);
}
