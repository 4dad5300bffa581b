//! Parsing and matching of single rules, through the whole detector.

use kansoku_plugin::testing::BatchBuilder;
use kansoku_plugin::{Batch, Detector, Ruleset, TextField};

use super::*;
use crate::Signature;

const HOME: u8 = 2; // outbound: the originator is at home
const INBOUND: u8 = 1;

fn detector(rules: &str) -> Signature {
    let sets = [Ruleset {
        name: "local.rules".into(),
        content: rules.as_bytes().to_vec(),
    }];
    let (detector, report) = Signature::with_rulesets(&sets).unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    detector
}

fn sids(detector: &mut Signature, batch: &Batch) -> Vec<String> {
    detector
        .process(batch)
        .into_iter()
        .map(|f| f.rule_id)
        .collect()
}

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

fn dns(query: &str, direction: u8) -> Batch {
    let mut b = BatchBuilder::new();
    b.flow(ip("10.1.2.3"), 53000, ip("192.0.2.53"), 53)
        .proto(17)
        .kind(1)
        .direction(direction)
        .dns(query, 1, Some(0));
    b.build()
}

#[test]
fn a_rule_reads_back_as_written() {
    let location = Location {
        file: "t.rules".into(),
        line: 3,
    };
    let text = r#"alert tls $HOME_NET any -> $EXTERNAL_NET [443,8443] (msg:"ET JA3 x"; flow:established,to_server; ja3.hash; content:"eb88d0b3e1961a0562f006e5ce2a0b87"; classtype:trojan-activity; reference:url,example.org; sid:2028831; rev:4; metadata:created_at 2019_10_15;)"#;
    let Line::Rule(rule) = parse_line(text, &location, &Vars::default()) else {
        panic!("not a rule");
    };
    assert_eq!((rule.sid, rule.rev, rule.gid), (2028831, 4, 1));
    assert_eq!(rule.msg, "ET JA3 x");
    assert_eq!(rule.proto, Proto::Tls);
    assert_eq!(rule.flow.toward, Toward::Server);
    assert_eq!(rule.flow.established, Some(true));
    assert_eq!(rule.buffers.len(), 1);
    assert_eq!(rule.buffers[0].buffer, Buffer::Ja3Hash);
    assert_eq!(rule.classtype.as_deref(), Some("trojan-activity"));

    let payload =
        r#"alert udp any any -> any 53 (msg:"p"; content:"|00 00 FC|"; offset:14; sid:5;)"#;
    let Line::Skipped(skip) = parse_line(payload, &location, &Vars::default()) else {
        panic!("payload rule loaded");
    };
    assert_eq!((skip.reason, skip.sid), (Reason::NeedsPayload, Some(5)));
    assert!(matches!(
        parse_line(
            "# alert ip any any -> any any (msg:\"off\"; sid:9;)",
            &location,
            &Vars::default()
        ),
        Line::Disabled
    ));
    assert!(matches!(
        parse_line("# a comment", &location, &Vars::default()),
        Line::Nothing
    ));
    let Line::Skipped(bad) =
        parse_line("alert ip any any any (sid:1;)", &location, &Vars::default())
    else {
        panic!("bad header loaded");
    };
    assert_eq!(bad.reason, Reason::Syntax);
}

#[test]
fn dns_suffix_rules_match_the_name_and_its_subdomains_only() {
    let mut d = detector(
        r#"alert dns $HOME_NET any -> any any (msg:"evil"; dns.query; dotprefix; content:".evil.example"; endswith; nocase; sid:1;)"#,
    );
    assert_eq!(sids(&mut d, &dns("www.EVIL.example", HOME)), ["1"]);
    assert_eq!(sids(&mut d, &dns("evil.example", HOME)), ["1"]);
    assert!(sids(&mut d, &dns("notevil.example", HOME)).is_empty());
    assert!(sids(&mut d, &dns("evil.example.org", HOME)).is_empty());
    // $HOME_NET as the source: a query from outside is not it.
    assert!(sids(&mut d, &dns("www.evil.example", INBOUND)).is_empty());
}

fn connection(src: &str, dst: &str, direction: u8, state: u8, dst_pkts: bool) -> Batch {
    let mut b = BatchBuilder::new();
    b.flow(ip(src), 40000, ip(dst), 443)
        .proto(6)
        .direction(direction)
        .conn_state(state);
    if dst_pkts {
        b.bytes(100, 200);
    }
    b.build()
}

#[test]
fn address_lists_match_packets_either_way_only_when_the_other_side_answered() {
    let mut d = detector(
        r#"alert ip [192.0.2.0/24,198.51.100.7] any -> $HOME_NET any (msg:"listed"; sid:7;)"#,
    );
    // From the listed host in.
    assert_eq!(
        sids(
            &mut d,
            &connection("192.0.2.9", "10.0.0.1", INBOUND, 1, false)
        ),
        ["7"]
    );
    // Out to it, answered: its replies come in.
    assert_eq!(
        sids(
            &mut d,
            &connection("10.0.0.1", "198.51.100.7", HOME, 3, true)
        ),
        ["7"]
    );
    // Out to it, never answered: no packet of it reached home.
    assert!(
        sids(
            &mut d,
            &connection("10.0.0.1", "198.51.100.7", HOME, 1, false)
        )
        .is_empty()
    );
    assert!(
        sids(
            &mut d,
            &connection("203.0.113.1", "10.0.0.1", INBOUND, 3, true)
        )
        .is_empty()
    );
}

#[test]
fn threshold_and_flowbits_remember_across_flows() {
    const RULES: &str = "alert ip 192.0.2.1 any -> $HOME_NET any (msg:\"limited\"; threshold:type limit, track by_src, count 1, seconds 60; sid:1;)\n\
         alert tls $HOME_NET any -> any any (msg:\"set\"; ja3.hash; content:\"aaaa\"; flowbits:set,seen.aaaa; flowbits:noalert; sid:2;)\n\
         alert tls $HOME_NET any -> any any (msg:\"then\"; tls.sni; content:\"c2.example\"; flowbits:isset,seen.aaaa; sid:3;)\n";
    let mut d = detector(RULES);
    let mut b = BatchBuilder::new();
    for ts in [1, 2, 3] {
        b.flow(ip("192.0.2.1"), 1, ip("10.0.0.1"), 22)
            .proto(6)
            .direction(INBOUND)
            .conn_state(3)
            .ts(ts * 1_000_000);
    }
    assert_eq!(sids(&mut d, &b.build()), ["1"]);

    let tls = |ja3: &str| {
        let mut b = BatchBuilder::new();
        b.flow(ip("10.0.0.5"), 50000, ip("203.0.113.80"), 443)
            .proto(6)
            .kind(2)
            .direction(HOME)
            .text(TextField::TlsSni, "c2.example")
            .text(TextField::Ja3, ja3);
        b.build()
    };
    assert!(sids(&mut d, &tls("bbbb")).is_empty(), "no bit set yet");
    assert_eq!(
        sids(&mut d, &tls("aaaa")),
        ["3"],
        "set, then seen, in rule order"
    );

    // A replacement instance (hot swap) takes the bits and counts over.
    let mut swapped = detector(RULES);
    swapped.restore(&d.snapshot()).unwrap();
    assert_eq!(sids(&mut swapped, &tls("bbbb")), ["3"], "the bit survived");
    let mut b = BatchBuilder::new();
    b.flow(ip("192.0.2.1"), 1, ip("10.0.0.1"), 22)
        .proto(6)
        .direction(INBOUND)
        .conn_state(3)
        .ts(4_000_000);
    assert!(
        sids(&mut swapped, &b.build()).is_empty(),
        "the limit survived"
    );
    assert!(detector(RULES).restore(b"\xff\xff\xff").is_err());
}

#[test]
fn http_contents_pcre_and_sizes_apply_in_order() {
    let mut d = detector(
        r#"alert http $HOME_NET any -> any any (msg:"uri"; http.method; content:"POST"; http.uri; content:"/gate"; startswith; content:".php"; distance:0; pcre:"/^\?id=[0-9]+$/R"; urilen:<40; sid:11;)"#,
    );
    let http = |method: &str, uri: &str| {
        let mut b = BatchBuilder::new();
        b.flow(ip("10.0.0.5"), 50000, ip("203.0.113.80"), 80)
            .proto(6)
            .kind(3)
            .direction(HOME)
            .text(TextField::HttpMethod, method)
            .text(TextField::HttpUri, uri);
        b.build()
    };
    assert_eq!(sids(&mut d, &http("POST", "/gate/x.php?id=42")), ["11"]);
    assert!(sids(&mut d, &http("GET", "/gate/x.php?id=42")).is_empty());
    assert!(
        sids(&mut d, &http("POST", "/x/gate.php?id=42")).is_empty(),
        "startswith"
    );
    assert!(
        sids(&mut d, &http("POST", "/gate/x.php?id=4a")).is_empty(),
        "pcre after .php"
    );
    assert!(
        sids(
            &mut d,
            &http("POST", "/gate/xxxxxxxxxxxxxxxxxxxxxxxxx.php?id=1")
        )
        .is_empty(),
        "urilen"
    );
}
