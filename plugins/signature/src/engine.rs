//! Finding the rules that may match a flow without trying every rule.
//!
//! Each rule gets one way in:
//! - a rule with metadata buffers is found through one content it needs
//!   (its [`anchor`](crate::anchor)): anchors a value must start or end
//!   with (domain suffixes, exact names, whole JA3 hashes, URI and
//!   user-agent prefixes) by a trie walked from that end of the value, the
//!   rest by a 4-gram index per buffer ([`Substrings`]). Both are
//!   case-insensitive and rules sharing an anchor share one entry; the
//!   rule's own check then applies case, position and the rest. What the
//!   anchors of a user agent or certificate name were is remembered
//!   ([`Memo`]): those values repeat;
//! - a header-only rule with literal addresses is found through the flow's
//!   addresses (disjoint segments, see [`RangeMap`]);
//! - a header-only rule with a single destination port, through the port;
//! - what is left (a handful: pcre-only rules, `any any` rules) is checked
//!   for every flow of its protocol.
//!
//! Candidates are then checked in full, in rule order, so findings come out
//! in a stable order.

use std::borrow::Cow;
use std::collections::HashMap;

use kansoku_plugin::{Flow, Kind};

use crate::anchor::{Place, anchor};
use crate::memo::{self, Memo};
use crate::rule::header::{Addr, Spec};
use crate::rule::{Buffer, Rule, Toward};
use crate::substrings::Substrings;
use crate::trie::{Side, Trie, TrieBuilder};
use crate::values::Values;
use kansoku_plugin::ranges::RangeMap;

/// Hashing for lookups keyed by traffic: fast, still seeded per instance.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The record kinds that carry buffers.
const BUFFER_KINDS: [Kind; 3] = [Kind::Dns, Kind::Tls, Kind::Http];

/// How one buffer's anchors are found.
#[derive(Debug)]
struct BufferIndex {
    buffer: Buffer,
    prefixes: Trie,
    suffixes: Trie,
    /// The other anchors, and the group of each pattern.
    anywhere: Option<(Substrings, Vec<u32>)>,
}

/// What a rule is reached through.
#[derive(Debug, Default)]
pub struct Index {
    buffers: Vec<BufferIndex>,
    /// The rules of each distinct anchor.
    groups: Vec<Vec<u32>>,
    /// Buffer rules without a usable content, per buffer.
    buffer_scan: Vec<(Buffer, Vec<u32>)>,
    /// Per record kind, the buffers any rule reads.
    watched: Vec<(Kind, Vec<Buffer>)>,
    /// Header-only rules with literal addresses, by address.
    addresses: RangeMap,
    /// Header-only rules by destination port.
    ports: FastMap<u16, Vec<u32>>,
    /// Header-only rules checked for every flow.
    header_scan: Vec<u32>,
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

/// Anchors of one buffer while the index is built.
#[derive(Debug)]
struct Pending {
    prefixes: TrieBuilder,
    suffixes: TrieBuilder,
    anywhere: (Vec<Vec<u8>>, Vec<u32>),
}

impl Default for Pending {
    fn default() -> Self {
        Self {
            prefixes: TrieBuilder::new(Side::Start),
            suffixes: TrieBuilder::new(Side::End),
            anywhere: (Vec::new(), Vec::new()),
        }
    }
}

impl Index {
    pub fn build(rules: &[Rule]) -> Self {
        let mut index = Index::default();
        let mut pending: HashMap<Buffer, Pending> = HashMap::new();
        let mut group_of: HashMap<(Buffer, Place, Vec<u8>), u32> = HashMap::new();
        let mut scan: HashMap<Buffer, Vec<u32>> = HashMap::new();
        let mut ranges = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let id = u32::try_from(i).unwrap_or(u32::MAX);
            if let Some(first) = rule.buffers.first() {
                for b in &rule.buffers {
                    let kind = buffer_kind(b.buffer);
                    match index.watched.iter_mut().find(|(k, _)| *k == kind) {
                        Some((_, buffers)) if !buffers.contains(&b.buffer) => {
                            buffers.push(b.buffer);
                        }
                        Some(_) => {}
                        None => index.watched.push((kind, vec![b.buffer])),
                    }
                }
                let Some(anchor) = anchor(rule) else {
                    scan.entry(first.buffer).or_default().push(id);
                    continue;
                };
                let key = (anchor.buffer, anchor.place, anchor.pattern);
                if let Some(&group) = group_of.get(&key) {
                    if let Some(ids) = index.groups.get_mut(group as usize) {
                        ids.push(id);
                    }
                    continue;
                }
                let group = u32::try_from(index.groups.len()).unwrap_or(u32::MAX);
                index.groups.push(vec![id]);
                let (buffer, place, pattern) = key;
                let entry = pending.entry(buffer).or_default();
                match place {
                    Place::Prefix => entry.prefixes.add(&pattern, group),
                    Place::Suffix => entry.suffixes.add(&pattern, group),
                    Place::Anywhere => {
                        entry.anywhere.0.push(pattern.clone());
                        entry.anywhere.1.push(group);
                    }
                }
                group_of.insert((buffer, place, pattern), group);
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
        for (buffer, p) in pending {
            let (patterns, groups) = p.anywhere;
            let anywhere = (!patterns.is_empty()).then(|| (Substrings::build(&patterns), groups));
            index.buffers.push(BufferIndex {
                buffer,
                prefixes: p.prefixes.build(),
                suffixes: p.suffixes.build(),
                anywhere,
            });
        }
        index.buffers.sort_by_key(|b| b.buffer);
        index.buffer_scan = scan.into_iter().collect();
        index.buffer_scan.sort_by_key(|(b, _)| *b);
        index.watched.iter_mut().for_each(|(_, b)| b.sort());
        index.addresses = RangeMap::build(&ranges);
        index
    }

    /// How the rules are reached, for the load report.
    pub fn summary(&self) -> String {
        let contents: usize = self.groups.iter().map(Vec::len).sum();
        let scanned: usize = self.buffer_scan.iter().map(|(_, ids)| ids.len()).sum();
        let ports: usize = self.ports.values().map(Vec::len).sum();
        format!(
            "index: {contents} rules by content ({} distinct), {} by address ({} ranges), {ports} by port, {} checked on every flow",
            self.groups.len(),
            self.addresses.id_count(),
            self.addresses.len(),
            scanned + self.header_scan.len()
        )
    }

    /// The buffers rules read in records of `kind`.
    pub fn watched(&self, kind: Kind) -> &[Buffer] {
        if !BUFFER_KINDS.contains(&kind) {
            return &[];
        }
        self.watched
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(&[], |(_, b)| b.as_slice())
    }

    /// Rules that may match `flow`, whose buffers are `values`, in rule
    /// order, each once.
    pub fn candidates<'s>(
        &self,
        flow: &Flow<'_>,
        values: &Values<'_>,
        scratch: &'s mut Scratch,
    ) -> &'s [u32] {
        let Scratch { seen, out, memo } = scratch;
        out.clear();
        let mut add = |ids: &[u32]| {
            for &id in ids {
                if let Some(slot) = seen.get_mut(id as usize)
                    && !*slot
                {
                    *slot = true;
                    out.push(id);
                }
            }
        };
        let group = |g: u32| self.groups.get(g as usize).map_or(&[][..], Vec::as_slice);
        if !values.is_empty() {
            for b in &self.buffers {
                // Values hold only the buffers of the flow's own kind.
                let Some(value) = values.get(b.buffer) else {
                    continue;
                };
                if memo::remembers(b.buffer) {
                    let found = memo.groups(b.buffer, value, |report| b.anchors(value, report));
                    found.iter().for_each(|&g| add(group(g)));
                } else {
                    b.anchors(value, &mut |g| add(group(g)));
                }
            }
            for (buffer, ids) in &self.buffer_scan {
                if values.get(*buffer).is_some() {
                    add(ids);
                }
            }
        }
        if !self.addresses.is_empty() {
            add(self.addresses.get(u128::from_be_bytes(flow.src_octets())));
            add(self.addresses.get(u128::from_be_bytes(flow.dst_octets())));
        }
        if !self.ports.is_empty()
            && let Some(ids) = self.ports.get(&flow.dst_port())
        {
            add(ids);
        }
        add(&self.header_scan);
        out.sort_unstable();
        for &id in out.iter() {
            if let Some(slot) = seen.get_mut(id as usize) {
                *slot = false;
            }
        }
        out
    }
}

impl BufferIndex {
    /// Reports the group of every anchor of this buffer in `value`.
    fn anchors(&self, value: &[u8], report: &mut dyn FnMut(u32)) {
        self.suffixes.walk(value, &mut *report);
        self.prefixes.walk(value, &mut *report);
        if let Some((substrings, groups)) = &self.anywhere {
            substrings.each(value, |p| {
                if let Some(&g) = groups.get(p) {
                    report(g);
                }
            });
        }
    }
}

/// The working space of [`Index::candidates`], kept between flows.
#[derive(Debug, Default)]
pub struct Scratch {
    /// A flag per rule: already a candidate for this flow.
    seen: Vec<bool>,
    out: Vec<u32>,
    memo: Memo,
}

impl Scratch {
    pub fn new(rules: usize) -> Self {
        Self {
            seen: vec![false; rules],
            ..Self::default()
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
