//! The ET Open files in `rulesets/signature/` (the defaults) and
//! `tests/fixtures/et-open/` (the rest of the shared selection), loaded
//! whole.

// Test helpers fail the test by panicking; that is their job.
#![allow(clippy::unwrap_used, reason = "test helpers panic to fail the test")]

use std::collections::{BTreeMap, HashMap, HashSet};

mod common;
#[path = "../../../benches/support/spread.rs"]
mod spread;

use common::et_open;
use signature::Signature;

const STICKY: &[&str] = &[
    "dns.query",
    "dns_query",
    "tls.sni",
    "tls_sni",
    "tls.cert_subject",
    "tls_cert_subject",
    "tls.cert_issuer",
    "tls_cert_issuer",
    "http.host",
    "http.uri",
    "http.user_agent",
    "http.method",
    "http.stat_code",
    "ja3.hash",
    "ja3_hash",
    "ja3s.hash",
    "ja3s_hash",
];
const MODIFIERS: &[&str] = &[
    "http_uri",
    "http_host",
    "http_user_agent",
    "http_method",
    "http_stat_code",
];
const NEUTRAL: &[&str] = &[
    "msg",
    "flow",
    "nocase",
    "depth",
    "offset",
    "distance",
    "within",
    "startswith",
    "endswith",
    "bsize",
    "fast_pattern",
    "dotprefix",
    "isdataat",
    "flowbits",
    "threshold",
    "detection_filter",
    "classtype",
    "sid",
    "rev",
    "gid",
    "reference",
    "metadata",
    "priority",
    "target",
    "urilen",
    "noalert",
];
const PAYLOAD: &[&str] = &[
    "file_data",
    "file.data",
    "http.request_body",
    "http_client_body",
    "http.response_body",
    "http_server_body",
    "pkt_data",
    "base64_data",
    "byte_test",
    "byte_jump",
    "byte_extract",
    "byte_math",
    "dsize",
    "rawbytes",
];
const METADATA_PROTOCOLS: &[&str] = &[
    "ip", "tcp", "udp", "icmp", "dns", "tls", "http", "http1", "smtp",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Decidable from flow metadata: must load.
    Metadata,
    /// Inspects payload: must be skipped as such.
    Payload,
    /// Something else kansoku does not carry (HTTP headers, TCP flags…).
    Other,
}

/// What a rule needs, told from its keywords alone, independently of the
/// parser under test.
fn classify(rule: &str) -> (Kind, Vec<String>) {
    let proto = rule.split_whitespace().nth(1).unwrap_or_default();
    let options = &rule[rule.find('(').unwrap() + 1..rule.rfind(')').unwrap()];
    let mut keywords = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in options.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ';' => {
                let part = options[start..i].trim();
                let keyword = part.split(':').next().unwrap_or_default().trim();
                if !keyword.is_empty() {
                    keywords.push((keyword.to_owned(), part.to_owned()));
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    let names: Vec<String> = keywords.iter().map(|(k, _)| k.clone()).collect();
    // The header is read first: a protocol flow logs do not describe is
    // the reason, whatever the options need.
    if !METADATA_PROTOCOLS.contains(&proto) {
        return (Kind::Other, names);
    }
    if keywords.iter().any(|(k, _)| PAYLOAD.contains(&k.as_str())) {
        return (Kind::Payload, names);
    }
    let mut in_buffer = false;
    for (i, (keyword, part)) in keywords.iter().enumerate() {
        let k = keyword.as_str();
        if STICKY.contains(&k) {
            in_buffer = true;
        } else if k == "content" && !in_buffer {
            // A payload content unless a legacy modifier follows it.
            let moved = keywords[i + 1..]
                .iter()
                .take_while(|(k, _)| k != "content" && k != "pcre")
                .any(|(k, _)| MODIFIERS.contains(&k.as_str()));
            if !moved {
                return (Kind::Payload, names);
            }
        } else if k == "pcre" {
            let flags = part.rsplit('/').next().unwrap_or_default();
            let named = flags.chars().any(|f| "UWVMS".contains(f));
            if !in_buffer && !named {
                return (Kind::Payload, names);
            }
            if flags.chars().any(|f| "HDCPQYIBO".contains(f)) {
                return (Kind::Other, names);
            }
        } else if !(k == "content" || MODIFIERS.contains(&k) || NEUTRAL.contains(&k) || k == "pcre")
        {
            return (Kind::Other, names);
        }
    }
    (Kind::Metadata, names)
}

fn sid_of(rule: &str) -> u32 {
    let at = rule.find("sid:").unwrap() + 4;
    rule[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[test]
fn every_metadata_rule_loads_and_every_payload_rule_is_skipped_with_its_reason() {
    let sets = et_open();
    let (detector, report) = Signature::with_rulesets(&sets).unwrap();
    let loaded: HashSet<u32> = detector.rules().iter().map(|r| r.sid).collect();
    let skipped: HashMap<u32, &str> = report
        .skipped
        .iter()
        .map(|s| {
            (
                s.id.trim_start_matches("sid:").parse().unwrap(),
                s.reason.as_str(),
            )
        })
        .collect();

    let (mut enabled, mut by_kind) = (0usize, BTreeMap::<&str, usize>::new());
    let mut wrong = Vec::new();
    for set in sets.iter().filter(|s| s.name.ends_with(".rules")) {
        let text = String::from_utf8(set.content.clone()).unwrap();
        for (n, line) in text.lines().enumerate() {
            if !["alert ", "drop ", "pass ", "reject "]
                .iter()
                .any(|a| line.starts_with(a))
            {
                continue;
            }
            enabled += 1;
            let sid = sid_of(line);
            let (kind, keywords) = classify(line);
            let is_loaded = loaded.contains(&sid);
            assert!(
                is_loaded != skipped.contains_key(&sid),
                "{}:{}: sid {sid} must be loaded or skipped, once",
                set.name,
                n + 1
            );
            let ok = match kind {
                // The regex crate has no backreferences or lookaround: the
                // one documented way a metadata rule may still be skipped.
                Kind::Metadata => is_loaded || skipped[&sid].starts_with("pcre not supported"),
                Kind::Payload => skipped
                    .get(&sid)
                    .is_some_and(|r| r.starts_with("needs payload")),
                Kind::Other => !is_loaded,
            };
            if !ok {
                wrong.push(format!(
                    "{}:{} sid {sid} {kind:?} {:?} {keywords:?}",
                    set.name,
                    n + 1,
                    skipped.get(&sid)
                ));
            }
            if kind == Kind::Metadata && is_loaded {
                let label = if keywords.iter().any(|k| k.starts_with("ja3")) {
                    "ja3"
                } else if keywords.iter().any(|k| k.starts_with("dns")) {
                    "dns"
                } else if keywords.iter().any(|k| k.starts_with("tls")) {
                    "tls"
                } else if keywords.iter().any(|k| k.starts_with("http")) {
                    "http"
                } else if !keywords.iter().any(|k| k == "content" || k == "pcre") {
                    "header only"
                } else {
                    "other"
                };
                *by_kind.entry(label).or_default() += 1;
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} rules misjudged:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // The shared selection's own counts (its README).
    assert_eq!(enabled, 6880);
    assert_eq!(report.loaded as usize + report.skipped.len(), enabled);
    assert!(
        report.notes[0].contains("1463 disabled"),
        "{:?}",
        report.notes
    );
    // Every IP-list rule of ciarmy, drop, compromised and tor.
    assert!(by_kind["header only"] >= 100 + 55 + 9 + 983, "{by_kind:?}");
    assert!(
        by_kind["dns"] >= 1000 && by_kind["tls"] >= 400 && by_kind["ja3"] >= 90,
        "{by_kind:?}"
    );
    assert!(by_kind["http"] >= 300, "{by_kind:?}");
}

/// Native throughput over random connections:
/// `cargo test --release -p signature --test et_open -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark; run in release mode"]
fn native_rate_on_connections() {
    use kansoku_plugin::Detector;
    use kansoku_plugin::testing::BatchBuilder;
    let (mut detector, _) = Signature::with_rulesets(&et_open()).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut builder = BatchBuilder::new();
    for i in 0..4096 {
        let outside = std::net::Ipv4Addr::from(next() as u32);
        let inside = std::net::Ipv4Addr::new(10, 1, (next() % 256) as u8, 7);
        builder
            .flow(inside.into(), 40000, outside.into(), 443)
            .direction(2)
            .proto(6)
            .conn_state(3)
            .kind((i % 4) as u8);
        let name = format!(
            "h{}.s{}.example{}.com",
            next() % 10_000,
            next() % 100,
            i % 7
        );
        match i % 4 {
            1 => {
                builder.text(kansoku_plugin::TextField::DnsQuery, &name);
            }
            2 => {
                builder.text(kansoku_plugin::TextField::TlsSni, &name);
            }
            3 => {
                builder
                    .text(kansoku_plugin::TextField::HttpHost, &name)
                    .text(kansoku_plugin::TextField::HttpUri, "/static/1/app.js?v=2")
                    .text(
                        kansoku_plugin::TextField::HttpUserAgent,
                        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
                    );
            }
            _ => {}
        }
    }
    let batch = builder.build();
    let start = std::time::Instant::now();
    let mut findings = 0;
    for _ in 0..50 {
        findings += detector.process(&batch).len();
    }
    let per = start.elapsed().as_nanos() as f64 / (50.0 * 4096.0);
    eprintln!("{per:.0} ns/flow native, {findings} findings");
}

/// 100 rules spread evenly over those every ET file loads, as the host
/// benchmark (`benches/detectors.rs`) takes them: the full set's mix of
/// kinds, a fortieth of its size.
fn hundred_rules() -> Vec<kansoku_plugin::Ruleset> {
    let every = et_open();
    let (_, report) = Signature::with_rulesets(&every).unwrap();
    let skipped: std::collections::HashSet<&str> =
        report.skipped.iter().map(|s| s.location.as_str()).collect();
    let hundred = spread::spread(
        every
            .iter()
            .map(|s| (s.name.as_str(), s.content.as_slice())),
        &skipped,
        100,
    );
    let mut sets: Vec<_> = every
        .into_iter()
        .filter(|s| !s.name.ends_with(".rules"))
        .collect();
    sets.push(kansoku_plugin::Ruleset {
        name: "hundred.rules".into(),
        content: hundred.into_bytes(),
    });
    sets
}

fn is_fixture(name: &str) -> bool {
    common::fixture_names().iter().any(|f| f == name)
}

/// Native throughput over the host benchmark's mixed batch (a quarter each
/// of connections, DNS, TLS with JA3, HTTP), for its three rule sets:
/// `cargo test --release -p signature --test et_open -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark; run in release mode"]
fn native_rate_on_mixed_records() {
    use kansoku_plugin::testing::BatchBuilder;
    use kansoku_plugin::{Detector, TextField};
    let mut state = 0x7369_676e_6174_7572u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // User agents as often as the real logs carry them (see
    // tests/fixtures/README.md), and one row in eight a new one.
    let agents: Vec<&str> = include_str!("../../../tests/fixtures/http/user-agents.tsv")
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .flat_map(|(count, agent)| std::iter::repeat_n(agent, count.parse().unwrap()))
        .collect();
    let mut builder = BatchBuilder::new();
    for i in 0..4096usize {
        let outside = std::net::Ipv4Addr::from(next() as u32);
        let inside = std::net::Ipv4Addr::new(10, 1, (i / 256) as u8, (i % 256) as u8);
        let sport = 1024 + (next() % 60_000) as u16;
        builder
            .flow(
                inside.into(),
                sport,
                outside.into(),
                [443, 53, 443, 80][i % 4],
            )
            .direction(2)
            .proto(if i % 4 == 1 { 17 } else { 6 })
            .conn_state(3)
            .bytes(300, 4_000)
            .kind((i % 4) as u8);
        let name = format!(
            "h{}.s{}.example{}.com",
            next() % 10_000,
            next() % 100,
            i % 7
        );
        match i % 4 {
            1 => {
                builder.text(TextField::DnsQuery, &name);
            }
            2 => {
                builder
                    .text(TextField::TlsSni, &name)
                    .text(TextField::Ja3, &format!("{:032x}", u128::from(next())));
            }
            3 => {
                let agent = if next() % 8 == 0 {
                    format!("python-requests/2.{}", next() % 1_000_000)
                } else {
                    agents[(next() % agents.len() as u64) as usize].to_owned()
                };
                builder
                    .text(TextField::HttpHost, &name)
                    .text(TextField::HttpMethod, "GET")
                    .text(
                        TextField::HttpUri,
                        &format!("/static/{}/app.js?v={i}", next() % 1000),
                    )
                    .text(TextField::HttpUserAgent, &agent);
            }
            _ => {}
        }
    }
    let batch = builder.build();
    let defaults: Vec<_> = et_open()
        .into_iter()
        .filter(|s| !is_fixture(&s.name))
        .collect();
    for (name, sets) in [
        ("100 ET rules", hundred_rules()),
        ("defaults", defaults),
        ("every ET file", et_open()),
    ] {
        let (mut detector, report) = Signature::with_rulesets(&sets).unwrap();
        let mut findings = 0;
        for _ in 0..5 {
            findings = detector.process(&batch).len();
        }
        // Best of several short rounds: the machine may be shared.
        let mut best = f64::INFINITY;
        for _ in 0..20 {
            let start = std::time::Instant::now();
            for _ in 0..5 {
                std::hint::black_box(detector.process(&batch));
            }
            best = best.min(start.elapsed().as_nanos() as f64 / (5.0 * 4096.0));
        }
        eprintln!(
            "{name} ({} loaded): {best:.0} ns/flow native, {findings} findings/batch",
            report.loaded
        );
    }
}
