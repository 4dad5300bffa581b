//! The full check of a candidate rule against a flow: header, protocol,
//! `flow` options, then each buffer's contents, pcres, sizes and datasets.

use std::collections::{HashMap, HashSet};

use kansoku_plugin::{ConnState, Direction, Flow, Kind};

use crate::engine::buffer_kind;
use crate::rule::header::{address_matches, port_matches};
use crate::rule::{BufferMatch, Content, Item, Proto, Rule, Toward};
use crate::values::Values;

/// Dataset contents by file name.
pub type Datasets = HashMap<String, HashSet<Vec<u8>>>;

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
pub fn buffers_hold(rule: &Rule, values: &Values<'_>, datasets: &Datasets) -> bool {
    rule.buffers.iter().all(|b| {
        let Some(value) = values.get(b.buffer) else {
            return false;
        };
        buffer_holds(b, value, datasets)
    })
}

/// Names and the like fit here; longer values are copied to the heap.
const DOTTED_INLINE: usize = 256;

fn buffer_holds(b: &BufferMatch, raw: &[u8], datasets: &Datasets) -> bool {
    let mut inline = [0u8; DOTTED_INLINE];
    let heap;
    let value: &[u8] = match (b.dotprefix, inline.get_mut(..=raw.len())) {
        (false, _) => raw,
        (true, Some(dotted)) => {
            let (dot, rest) = dotted.split_at_mut(1);
            dot.fill(b'.');
            rest.copy_from_slice(raw);
            dotted
        }
        (true, None) => {
            heap = [b".", raw].concat();
            &heap
        }
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
