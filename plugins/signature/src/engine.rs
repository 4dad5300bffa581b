//! Matching flows against loaded rules without trying every rule.
//!
//! Each rule gets one way in:
//! - a rule with metadata buffers is found through its longest positive
//!   `content`, by one Aho-Corasick automaton per buffer (case-insensitive;
//!   the rule's own check then applies case, position and the rest);
//! - a header-only rule with literal addresses is found through the flow's
//!   addresses, one hash lookup per prefix length in use;
//! - a header-only rule with a single destination port, through the port;
//! - what is left (a handful: pcre-only rules, `any any` rules) is checked
//!   for every flow of its protocol.
//!
//! Candidates are then checked in full, in rule order, so findings come out
//! in a stable order.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use kansoku_plugin::{ConnState, Direction, Flow, Kind};

use crate::ranges::RangeMap;
use crate::rule::header::{Addr, Spec, address_matches, port_matches};
use std::borrow::Cow;

use crate::rule::{Buffer, BufferMatch, Content, Item, Proto, Rule, Toward};

/// What a rule is reached through.
#[derive(Debug, Default)]
pub struct Index {
    /// Per buffer: the automaton over anchor contents and the rule of each.
    contents: Vec<(Buffer, AhoCorasick, Vec<u32>)>,
    /// Buffer rules without a positive content, per buffer.
    buffer_scan: HashMap<Buffer, Vec<u32>>,
    /// Header-only rules with literal addresses, by address.
    addresses: RangeMap,
    /// Header-only rules by destination port.
    ports: HashMap<u16, Vec<u32>>,
    /// Header-only rules checked for every flow.
    header_scan: Vec<u32>,
}

/// The record kinds a rule looks at.
fn wants_kind(rule: &Rule, kind: Kind) -> bool {
    match rule.buffers.first() {
        Some(b) => buffer_kind(b.buffer) == kind,
        // Header-only: transport rules look at connections (one record per
        // connection, not one more per protocol event), application
        // rules at their events.
        None => match rule.proto {
            Proto::Ip | Proto::Tcp | Proto::Udp | Proto::Icmp => kind == Kind::Connection,
            Proto::Dns => kind == Kind::Dns,
            Proto::Tls => kind == Kind::Tls,
            Proto::Http => kind == Kind::Http,
            Proto::Smtp => kind == Kind::Smtp,
        },
    }
}

/// The application protocol a buffer belongs to; a rule mixing two never
/// matches one record.
pub fn buffer_kind(buffer: Buffer) -> Kind {
    match buffer {
        Buffer::DnsQuery => Kind::Dns,
        Buffer::TlsSni
        | Buffer::TlsSubject
        | Buffer::TlsIssuer
        | Buffer::Ja3Hash
        | Buffer::Ja3sHash => Kind::Tls,
        Buffer::HttpHost
        | Buffer::HttpUri
        | Buffer::HttpUserAgent
        | Buffer::HttpMethod
        | Buffer::HttpStatCode => Kind::Http,
    }
}

/// The value of a buffer in a flow, if it has one.
pub fn buffer_value<'a>(flow: &Flow<'a>, buffer: Buffer) -> Option<Cow<'a, str>> {
    match buffer.field() {
        Some(field) => flow.text(field).map(Cow::Borrowed),
        None => flow.http_status().map(|s| Cow::Owned(s.to_string())),
    }
}

fn proto_matches(proto: Proto, number: u8) -> bool {
    match proto {
        Proto::Tcp => number == 6,
        Proto::Udp => number == 17,
        Proto::Icmp => number == 1 || number == 58,
        // Application protocols: DNS over either transport, the rest TCP
        // (or unknown, for logs that do not say).
        Proto::Ip | Proto::Dns => true,
        Proto::Tls | Proto::Http | Proto::Smtp => number == 6 || number == 0 || number == 17,
    }
}

/// The content a rule is found by: its longest positive one, without the
/// dot `dotprefix` adds.
fn anchor(rule: &Rule) -> Option<(Buffer, Vec<u8>)> {
    rule.buffers
        .iter()
        .flat_map(|b| {
            b.items.iter().filter_map(move |item| match item {
                Item::Content(c) if !c.negated => Some((b, c)),
                _ => None,
            })
        })
        .map(|(b, c)| {
            let pattern = match c.pattern.strip_prefix(b".") {
                Some(rest) if b.dotprefix && !rest.is_empty() => rest,
                _ => c.pattern.as_slice(),
            };
            (b.buffer, pattern.to_vec())
        })
        .max_by_key(|(_, p)| p.len())
}

impl Index {
    pub fn build(rules: &[Rule]) -> Self {
        let mut index = Index::default();
        let mut anchors: HashMap<Buffer, (Vec<Vec<u8>>, Vec<u32>)> = HashMap::new();
        let mut ranges = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let id = u32::try_from(i).unwrap_or(u32::MAX);
            if let Some(first) = rule.buffers.first() {
                match anchor(rule) {
                    Some((buffer, pattern)) => {
                        let entry = anchors.entry(buffer).or_default();
                        entry.0.push(pattern);
                        entry.1.push(id);
                    }
                    None => index.buffer_scan.entry(first.buffer).or_default().push(id),
                }
                continue;
            }
            if let Some(literal) = literal_ranges(rule) {
                ranges.extend(literal.into_iter().map(|(low, high)| (low, high, id)));
                continue;
            }
            match rule.dst_ports.positive_atoms().as_deref() {
                Some([(low, high)])
                    if low == high && !rule.bidirectional && rule.flow.toward != Toward::Client =>
                {
                    index.ports.entry(*low).or_default().push(id);
                }
                _ => index.header_scan.push(id),
            }
        }
        for (buffer, (patterns, ids)) in anchors {
            // Every pattern is non-empty, so building cannot fail; a failure
            // would leave those rules unreachable, so fall back to scanning.
            match AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(&patterns)
            {
                Ok(ac) => index.contents.push((buffer, ac, ids)),
                Err(_) => index.buffer_scan.entry(buffer).or_default().extend(ids),
            }
        }
        index.contents.sort_by_key(|(b, _, _)| *b);
        index.addresses = RangeMap::build(&ranges);
        index
    }

    /// How the rules are reached, for the load report.
    pub fn summary(&self) -> String {
        let contents: usize = self.contents.iter().map(|(_, _, ids)| ids.len()).sum();
        let scanned: usize = self.buffer_scan.values().map(Vec::len).sum();
        let ports: usize = self.ports.values().map(Vec::len).sum();
        format!(
            "index: {contents} rules by content, {} by address ({} ranges), {ports} by port, {} checked on every flow",
            self.addresses.rule_count(),
            self.addresses.len(),
            scanned + self.header_scan.len()
        )
    }

    /// Rules that may match `flow`, in rule order, each once. `seen` is
    /// scratch space sized to the rule count.
    pub fn candidates(&self, flow: &Flow<'_>, seen: &mut [bool], out: &mut Vec<u32>) {
        out.clear();
        let mut add = |id: u32, out: &mut Vec<u32>| {
            if let Some(slot) = seen.get_mut(id as usize)
                && !*slot
            {
                *slot = true;
                out.push(id);
            }
        };
        let kind = flow.kind();
        // Buffers live in protocol events only: a connection skips them all.
        let buffers = kind != Kind::Connection;
        for (buffer, ac, ids) in self.contents.iter().filter(|_| buffers) {
            if buffer_kind(*buffer) != kind {
                continue;
            }
            let Some(value) = buffer_value(flow, *buffer) else {
                continue;
            };
            for hit in ac.find_overlapping_iter(value.as_bytes()) {
                if let Some(&id) = ids.get(hit.pattern().as_usize()) {
                    add(id, out);
                }
            }
        }
        for (buffer, ids) in self.buffer_scan.iter().filter(|_| buffers) {
            if buffer_kind(*buffer) == kind && buffer_value(flow, *buffer).is_some() {
                ids.iter().for_each(|&id| add(id, out));
            }
        }
        if !self.addresses.is_empty() {
            for ip in [
                u128::from_be_bytes(flow.src_octets()),
                u128::from_be_bytes(flow.dst_octets()),
            ] {
                self.addresses.get(ip).iter().for_each(|&id| add(id, out));
            }
        }
        if !self.ports.is_empty()
            && let Some(ids) = self.ports.get(&flow.dst_port())
        {
            ids.iter().for_each(|&id| add(id, out));
        }
        self.header_scan.iter().for_each(|&id| add(id, out));
        out.sort_unstable();
        for &id in out.iter() {
            if let Some(slot) = seen.get_mut(id as usize) {
                *slot = false;
            }
        }
    }
}

/// Address ranges one of which a header-only rule's flow must touch: the
/// literal positive addresses of its source or destination list.
fn literal_ranges(rule: &Rule) -> Option<Vec<(u128, u128)>> {
    let literal = |spec: &Spec<Addr>| -> Option<Vec<(u128, u128)>> {
        let atoms = spec.positive_atoms()?;
        atoms
            .into_iter()
            .map(|a| match a {
                Addr::Range(low, high) => Some((*low, *high)),
                Addr::Home => None,
            })
            .collect()
    };
    literal(&rule.src).or_else(|| literal(&rule.dst))
}

/// One end of a flow as a rule header sees it.
#[derive(Debug, Clone, Copy)]
pub struct End {
    pub ip: u128,
    pub port: u16,
    pub home: bool,
}

/// The flow's originator and responder.
pub fn ends(flow: &Flow<'_>) -> (End, End) {
    let (src_home, dst_home) = match flow.direction() {
        Direction::Outbound => (true, false),
        Direction::Inbound => (false, true),
        Direction::Internal => (true, true),
        Direction::Unknown => (false, false),
    };
    (
        End {
            ip: u128::from_be_bytes(flow.src_octets()),
            port: flow.src_port(),
            home: src_home,
        },
        End {
            ip: u128::from_be_bytes(flow.dst_octets()),
            port: flow.dst_port(),
            home: dst_home,
        },
    )
}

/// Whether the responder sent anything back.
pub fn answered(flow: &Flow<'_>) -> bool {
    flow.kind() != Kind::Connection
        || flow.dst_pkts() > 0
        || flow.dst_bytes() > 0
        || !matches!(
            flow.conn_state(),
            ConnState::Unknown | ConnState::S0 | ConnState::SH | ConnState::OTH
        )
}

/// Whether the connection got past its handshake.
pub fn established(flow: &Flow<'_>) -> bool {
    match flow.kind() {
        Kind::Connection => match flow.conn_state() {
            ConnState::S1
            | ConnState::SF
            | ConnState::S2
            | ConnState::S3
            | ConnState::RSTO
            | ConnState::RSTR => true,
            ConnState::Unknown => flow.dst_pkts() > 0,
            _ => false,
        },
        // A protocol event means both sides spoke.
        _ => true,
    }
}

fn header_matches(rule: &Rule, from: End, to: End) -> bool {
    address_matches(&rule.src, from.ip, from.home)
        && address_matches(&rule.dst, to.ip, to.home)
        && port_matches(&rule.src_ports, from.port)
        && port_matches(&rule.dst_ports, to.port)
}

/// The header, protocol and `flow` parts of a rule.
pub fn header_holds(rule: &Rule, flow: &Flow<'_>) -> bool {
    if !wants_kind(rule, flow.kind()) || !proto_matches(rule.proto, flow.proto()) {
        return false;
    }
    if let Some(want) = rule.flow.established
        && want != established(flow)
    {
        return false;
    }
    let (orig, resp) = ends(flow);
    let toward = match (rule.flow.toward, rule.buffers.first()) {
        (Toward::Either, Some(b)) if b.buffer.to_server() => Toward::Server,
        (Toward::Either, Some(_)) => Toward::Client,
        (toward, _) => toward,
    };
    let forward = header_matches(rule, orig, resp);
    let backward = || header_matches(rule, resp, orig);
    match toward {
        Toward::Server => forward || (rule.bidirectional && backward()),
        Toward::Client => backward() || (rule.bidirectional && forward),
        // Packets both ways: the reply's only if there was one.
        Toward::Either => forward || ((rule.bidirectional || answered(flow)) && backward()),
    }
}

/// The buffer checks of a rule, given the datasets.
pub fn buffers_hold(
    rule: &Rule,
    flow: &Flow<'_>,
    datasets: &HashMap<String, std::collections::HashSet<Vec<u8>>>,
) -> bool {
    rule.buffers.iter().all(|b| {
        let Some(value) = buffer_value(flow, b.buffer) else {
            return false;
        };
        buffer_holds(b, value.as_bytes(), datasets)
    })
}

fn buffer_holds(
    b: &BufferMatch,
    raw: &[u8],
    datasets: &HashMap<String, std::collections::HashSet<Vec<u8>>>,
) -> bool {
    let dotted;
    let value: &[u8] = if b.dotprefix {
        dotted = [b".", raw].concat();
        &dotted
    } else {
        raw
    };
    if !b.sizes.iter().all(|s| s.holds(value.len())) {
        return false;
    }
    let mut end = 0usize;
    for item in &b.items {
        match item {
            Item::Content(content) => match find(content, value, end) {
                Some(found) if !content.negated => end = found,
                None if content.negated => {}
                _ => return false,
            },
            Item::Pcre(pcre) => {
                let from = if pcre.relative { end } else { 0 };
                let found = value.get(from..).and_then(|rest| pcre.regex.find(rest));
                match found {
                    Some(m) if !pcre.negated => {
                        if pcre.relative {
                            end = from + m.end();
                        }
                    }
                    None if pcre.negated => {}
                    _ => return false,
                }
            }
        }
    }
    if !b.isdataat.iter().all(|d| {
        let at = if d.relative {
            end.saturating_add(d.at)
        } else {
            d.at
        };
        (at < value.len()) != d.negated
    }) {
        return false;
    }
    b.datasets.iter().all(|d| {
        let key = d.load.rsplit(['/', '\\']).next().unwrap_or(&d.load);
        let present = datasets.get(key).is_some_and(|set| set.contains(raw));
        present != d.negated
    })
}

/// Where `content` ends in `value` when it matches, searching from the
/// window its modifiers allow; `previous` is where the last match ended.
fn find(content: &Content, value: &[u8], previous: usize) -> Option<usize> {
    let len = content.pattern.len();
    let (mut start, mut limit) = if content.is_relative() {
        let start = match content.distance {
            Some(d) if d < 0 => previous.checked_sub(d.unsigned_abs() as usize)?,
            Some(d) => previous.checked_add(d as usize)?,
            None => previous,
        };
        let limit = content
            .within
            .map_or(value.len(), |w| start.saturating_add(w).min(value.len()));
        (start, limit)
    } else {
        let start = content.offset.unwrap_or(0);
        let limit = content
            .depth
            .map_or(value.len(), |d| start.saturating_add(d).min(value.len()));
        (start, limit)
    };
    if content.startswith {
        limit = limit.min(start.saturating_add(len));
    }
    if content.endswith {
        start = start.max(value.len().saturating_sub(len));
    }
    let window = value.get(start..limit)?;
    let at = if content.nocase {
        window
            .windows(len)
            .position(|w| w.eq_ignore_ascii_case(&content.pattern))
    } else {
        window
            .windows(len)
            .position(|w| w == content.pattern.as_slice())
    }?;
    let end = start + at + len;
    (!content.endswith || end == value.len()).then_some(end)
}
