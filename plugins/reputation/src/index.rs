//! Every loaded indicator, keyed for the lookups a flow needs: exact
//! addresses in a hash map, networks as disjoint ranges (one binary search
//! whatever the overlaps), domains exact and by parent suffix, normalised
//! URLs and hashes in hash maps. The same value in several lists is one key
//! whose entries are chained.

use std::collections::HashMap;

use ipnet::IpNet;
use kansoku_plugin::ranges::RangeMap;
use kansoku_plugin::{Flow, LoadReport, SkippedRule, Timestamp};

use crate::entry::{Category, END, Entry};
use crate::format::Item;
use crate::indicator::{Indicator, from_u128, normalise_url, shown};
use crate::settings::ListSettings;
use crate::time::DAY;

type Map<K> = HashMap<K, u32, foldhash::fast::RandomState>;

/// A list as loaded.
#[derive(Debug, Clone)]
pub struct List {
    pub name: Box<str>,
    pub source: Box<str>,
    pub loaded: u32,
}

#[derive(Debug, Default)]
pub struct Index {
    pub entries: Vec<Entry>,
    addresses: Map<u128>,
    /// A bit per hashed address of `addresses` (64 Ki bits): most flows'
    /// addresses are on no list, and 8 KiB answers them without hashing
    /// into the map.
    address_filter: Vec<u64>,
    networks: RangeMap,
    /// The CIDR of each range id, and its entry.
    nets: Vec<(IpNet, u32)>,
    domains: Map<Box<str>>,
    /// `.example.com` (the name and everything under it) and
    /// `*.example.com` (only what is under it, [`Entry::below_only`]).
    suffixes: Map<Box<str>>,
    /// Bit `n` set when some suffix has `n` labels (63: more): a name's
    /// parents of other depths are not looked up.
    suffix_depths: u64,
    urls: Map<Box<str>>,
    hashes: Map<Box<str>>,
    conjunctions: Vec<Box<[Indicator]>>,
    pub categories: Vec<Category>,
    pub labels: Vec<Box<str>>,
    pub lists: Vec<List>,
}

/// Size of [`Index::address_filter`].
const ADDRESS_FILTER_BITS: usize = 1 << 16;

/// An address's bit in the filter: a multiplicative hash of its 32-bit
/// fold, cheap inside a 32-bit sandbox (a full 128-bit hash is not).
fn address_slot(ip: u128) -> usize {
    let folded = (ip as u64) ^ ((ip >> 64) as u64);
    let folded = (folded as u32) ^ ((folded >> 32) as u32);
    (folded.wrapping_mul(0x9e37_79b1) >> 16) as usize
}

/// Where on a flow an indicator was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Src,
    Dst,
    DnsQuery,
    DnsAnswer,
    TlsSni,
    HttpHost,
    HttpUrl,
    FileHash,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Self::Src => "src",
            Self::Dst => "dst",
            Self::DnsQuery => "dns.query",
            Self::DnsAnswer => "dns.answer",
            Self::TlsSni => "tls.sni",
            Self::HttpHost => "http.host",
            Self::HttpUrl => "http.url",
            Self::FileHash => "file.hash",
        }
    }
}

/// An entry that holds for a flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub field: Field,
    /// The indicator as the list wrote it (normalised).
    pub indicator: String,
    pub entry: u32,
}

impl Index {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends every entry valid at the flow's time that the flow shows.
    pub fn scan(&self, flow: &Flow<'_>, hits: &mut Vec<Hit>) {
        if self.entries.is_empty() {
            return;
        }
        let ts = flow.ts();
        for (field, octets) in [
            (Field::Src, flow.src_octets()),
            (Field::Dst, flow.dst_octets()),
        ] {
            self.address(u128::from_be_bytes(octets), field, flow, ts, hits);
        }
        if let Some(name) = flow.dns_query() {
            self.name(name, Field::DnsQuery, flow, ts, hits);
        }
        if let Some(answers) = flow.dns_answers() {
            for answer in answers.split(',') {
                let answer = answer.trim();
                match answer.parse::<std::net::IpAddr>() {
                    Ok(ip) => self.address(
                        crate::indicator::to_u128(ip),
                        Field::DnsAnswer,
                        flow,
                        ts,
                        hits,
                    ),
                    Err(_) => self.name(answer, Field::DnsAnswer, flow, ts, hits),
                }
            }
        }
        if let Some(sni) = flow.tls_sni() {
            self.name(sni, Field::TlsSni, flow, ts, hits);
        }
        if let Some(host) = flow.http_host() {
            self.name(strip_port(host), Field::HttpHost, flow, ts, hits);
            if !self.urls.is_empty()
                && let Some(url) = flow_url(flow)
            {
                self.chain(
                    self.urls.get(&*url).copied(),
                    Field::HttpUrl,
                    &url,
                    flow,
                    ts,
                    hits,
                );
                if let Some((without_query, _)) = url.split_once('?') {
                    self.chain(
                        self.urls.get(without_query).copied(),
                        Field::HttpUrl,
                        without_query,
                        flow,
                        ts,
                        hits,
                    );
                }
            }
        }
        if !self.hashes.is_empty() {
            for hash in [flow.file_md5(), flow.file_sha1(), flow.file_sha256()]
                .into_iter()
                .flatten()
            {
                let hash = lower(hash);
                self.chain(
                    self.hashes.get(&*hash).copied(),
                    Field::FileHash,
                    &hash,
                    flow,
                    ts,
                    hits,
                );
            }
        }
    }

    fn address(&self, ip: u128, field: Field, flow: &Flow<'_>, ts: Timestamp, hits: &mut Vec<Hit>) {
        let slot = address_slot(ip);
        let word = self.address_filter.get(slot / 64).copied().unwrap_or(0);
        if word & (1 << (slot % 64)) != 0
            && let Some(&head) = self.addresses.get(&ip)
        {
            self.chain(
                Some(head),
                field,
                &from_u128(ip).to_string(),
                flow,
                ts,
                hits,
            );
        }
        for &net in self.networks.get(ip) {
            if let Some((cidr, entry)) = self.nets.get(net as usize) {
                self.chain(Some(*entry), field, &cidr.to_string(), flow, ts, hits);
            }
        }
    }

    fn name(&self, name: &str, field: Field, flow: &Flow<'_>, ts: Timestamp, hits: &mut Vec<Hit>) {
        if self.domains.is_empty() && self.suffixes.is_empty() {
            return;
        }
        let name = lower(name.strip_suffix('.').unwrap_or(name));
        if let Some(&head) = self.domains.get(&*name) {
            self.chain(Some(head), field, &name, flow, ts, hits);
        }
        if self.suffixes.is_empty() {
            return;
        }
        if let Some(&head) = self.suffixes.get(&*name) {
            self.suffix_chain(head, &name, true, field, flow, ts, hits);
        }
        let mut labels = name.bytes().filter(|&b| b == b'.').count() + 1;
        for (at, _) in name.match_indices('.') {
            labels -= 1;
            if self.suffix_depths & (1 << labels.min(63)) == 0 {
                continue;
            }
            let parent = &name[at + 1..];
            if let Some(&head) = self.suffixes.get(parent) {
                self.suffix_chain(head, parent, false, field, flow, ts, hits);
            }
        }
    }

    /// The entries of a suffix key; `itself` when the name is the key.
    #[allow(
        clippy::too_many_arguments,
        reason = "one flow's lookup state, passed along"
    )]
    fn suffix_chain(
        &self,
        head: u32,
        domain: &str,
        itself: bool,
        field: Field,
        flow: &Flow<'_>,
        ts: Timestamp,
        hits: &mut Vec<Hit>,
    ) {
        let mut at = head;
        while let Some(entry) = self.entries.get(at as usize) {
            if !(itself && entry.below_only)
                && entry.valid_at(ts)
                && self.conjunction_holds(entry.and, flow)
            {
                let star = if entry.below_only { "*" } else { "" };
                hits.push(Hit {
                    field,
                    indicator: format!("{star}.{domain}"),
                    entry: at,
                });
            }
            at = entry.next;
        }
    }

    fn chain(
        &self,
        head: Option<u32>,
        field: Field,
        shown: &str,
        flow: &Flow<'_>,
        ts: Timestamp,
        hits: &mut Vec<Hit>,
    ) {
        let mut at = head.unwrap_or(END);
        while let Some(entry) = self.entries.get(at as usize) {
            if entry.valid_at(ts) && self.conjunction_holds(entry.and, flow) {
                hits.push(Hit {
                    field,
                    indicator: shown.to_owned(),
                    entry: at,
                });
            }
            at = entry.next;
        }
    }

    fn conjunction_holds(&self, and: u32, flow: &Flow<'_>) -> bool {
        if and == END {
            return true;
        }
        let Some(all) = self.conjunctions.get(and as usize) else {
            return false;
        };
        all.iter().all(|i| shows(flow, i))
    }
}

/// Whether `flow` shows `indicator` anywhere (for the other terms of an
/// `AND`; rare, so plainly).
fn shows(flow: &Flow<'_>, indicator: &Indicator) -> bool {
    let addresses = [
        u128::from_be_bytes(flow.src_octets()),
        u128::from_be_bytes(flow.dst_octets()),
    ];
    let names = || {
        [
            flow.dns_query(),
            flow.tls_sni(),
            flow.http_host().map(strip_port),
        ]
        .into_iter()
        .flatten()
        .chain(flow.dns_answers().into_iter().flat_map(|a| a.split(',')))
        .map(|n| lower(n.trim().strip_suffix('.').unwrap_or(n.trim())).into_owned())
    };
    match indicator {
        Indicator::Address(a) => addresses.contains(a),
        Indicator::Network(low, high, _) => addresses.iter().any(|a| low <= a && a <= high),
        Indicator::Domain(d) => names().any(|n| *n == **d),
        Indicator::Suffix { domain, apex } => names().any(|n| {
            (*apex && *n == **domain)
                || n.strip_suffix(&**domain)
                    .is_some_and(|rest| rest.ends_with('.'))
        }),
        Indicator::Url(u) => flow_url(flow)
            .is_some_and(|url| *url == **u || url.split_once('?').is_some_and(|(p, _)| p == &**u)),
        Indicator::Hash(_, h) => [flow.file_md5(), flow.file_sha1(), flow.file_sha256()]
            .into_iter()
            .flatten()
            .any(|x| x.eq_ignore_ascii_case(h)),
    }
}

fn flow_url(flow: &Flow<'_>) -> Option<Box<str>> {
    let host = flow.http_host()?;
    let uri = flow.http_uri().unwrap_or("/");
    // A proxy request carries the absolute URL as its target.
    if uri.contains("://") {
        return normalise_url(uri);
    }
    let mut url = String::with_capacity(host.len() + uri.len() + 1);
    url.push_str(host);
    if !uri.starts_with('/') {
        url.push('/');
    }
    url.push_str(uri);
    normalise_url(&url)
}

fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

fn lower(text: &str) -> std::borrow::Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(text.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// How many skipped entries a list reports one by one; the rest are
/// counted.
const SKIPS_LISTED: usize = 200;

/// Builds an [`Index`] list by list.
#[derive(Debug, Default)]
pub struct Builder {
    index: Index,
    ranges: Vec<(u128, u128, u32)>,
    category_ids: HashMap<Category, u16>,
    label_ids: HashMap<Box<str>, u32>,
    list: Defaults,
    skipped: Vec<SkippedRule>,
    skipped_in_list: usize,
    notes: Vec<String>,
}

/// What a list's entries get when they say nothing.
#[derive(Debug, Default)]
struct Defaults {
    id: u16,
    name: String,
    category: u16,
    confidence: u8,
    until: Option<Timestamp>,
    max_age: Option<Timestamp>,
}

impl Builder {
    /// Starts the list `name`; what follows is added to it.
    pub fn begin(&mut self, name: &str, settings: &ListSettings) -> Result<(), String> {
        self.end_list();
        let id = u16::try_from(self.index.lists.len())
            .map_err(|_| "more than 65,535 lists".to_owned())?;
        let category = Category::parse(settings.category.as_deref().unwrap_or("suspicious"));
        self.list = Defaults {
            id,
            name: name.to_owned(),
            category: self.category(category),
            confidence: settings.confidence.unwrap_or(50),
            until: settings.expires(),
            max_age: settings.max_age_days.map(|d| i64::from(d) * DAY),
        };
        self.index.lists.push(List {
            name: name.into(),
            source: settings.source.as_deref().unwrap_or(name).into(),
            loaded: 0,
        });
        self.skipped_in_list = 0;
        Ok(())
    }

    fn end_list(&mut self) {
        if self.skipped_in_list > SKIPS_LISTED {
            self.notes.push(format!(
                "{}: {} more entries skipped, not listed one by one",
                self.list.name,
                self.skipped_in_list - SKIPS_LISTED
            ));
        }
        self.skipped_in_list = 0;
    }

    fn category(&mut self, category: Category) -> u16 {
        if let Some(&id) = self.category_ids.get(&category) {
            return id;
        }
        let id = u16::try_from(self.index.categories.len()).unwrap_or(u16::MAX);
        self.index.categories.push(category.clone());
        self.category_ids.insert(category, id);
        id
    }

    fn label(&mut self, label: String) -> u32 {
        if let Some(&id) = self.label_ids.get(label.as_str()) {
            return id;
        }
        let id = u32::try_from(self.index.labels.len()).unwrap_or(u32::MAX);
        let label: Box<str> = label.into();
        self.index.labels.push(label.clone());
        self.label_ids.insert(label, id);
        id
    }

    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// Records an entry that was not loaded.
    pub fn skip(&mut self, location: &str, value: &str, reason: String) {
        self.skipped_in_list += 1;
        if self.skipped_in_list <= SKIPS_LISTED {
            self.skipped.push(SkippedRule {
                location: location.to_owned(),
                id: shown(value),
                reason,
            });
        }
    }

    pub fn add(&mut self, item: Item) {
        let Some(indicator) = item.indicator else {
            return;
        };
        let Ok(id) = u32::try_from(self.index.entries.len()) else {
            return;
        };
        let aged = match (item.last_seen, self.list.max_age) {
            (Some(seen), Some(age)) => Some(seen.saturating_add(age)),
            _ => None,
        };
        let until = [item.until, self.list.until, aged]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Timestamp::MAX);
        let category = match item.category {
            Some(c) => self.category(c),
            None => self.list.category,
        };
        let label = item.label.map(|l| self.label(l));
        let and = if item.and.is_empty() {
            END
        } else {
            self.index.conjunctions.push(item.and.into());
            u32::try_from(self.index.conjunctions.len() - 1).unwrap_or(END)
        };
        let index = &mut self.index;
        let next = match &indicator {
            Indicator::Address(a) => index.addresses.insert(*a, id),
            Indicator::Network(low, high, net) => {
                let net_id = u32::try_from(index.nets.len()).unwrap_or(u32::MAX);
                index.nets.push((*net, id));
                self.ranges.push((*low, *high, net_id));
                None
            }
            Indicator::Domain(d) => index.domains.insert(d.clone(), id),
            Indicator::Suffix { domain, .. } => {
                let labels = domain.bytes().filter(|&b| b == b'.').count() + 1;
                index.suffix_depths |= 1 << labels.min(63);
                index.suffixes.insert(domain.clone(), id)
            }
            Indicator::Url(u) => index.urls.insert(u.clone(), id),
            Indicator::Hash(_, h) => index.hashes.insert(h.clone(), id),
        };
        index.entries.push(Entry {
            list: self.list.id,
            category,
            confidence: item.confidence.unwrap_or(self.list.confidence),
            from: item.from.unwrap_or(Timestamp::MIN),
            until,
            label,
            and,
            below_only: matches!(indicator, Indicator::Suffix { apex: false, .. }),
            next: next.unwrap_or(END),
        });
        if let Some(list) = index.lists.last_mut() {
            list.loaded += 1;
        }
    }

    pub fn finish(mut self) -> (Index, LoadReport) {
        self.end_list();
        self.index.networks = RangeMap::build(&self.ranges);
        let mut filter = vec![0u64; ADDRESS_FILTER_BITS / 64];
        for &ip in self.index.addresses.keys() {
            let slot = address_slot(ip);
            if let Some(word) = filter.get_mut(slot / 64) {
                *word |= 1 << (slot % 64);
            }
        }
        self.index.address_filter = filter;
        let index = self.index;
        let mut notes = self.notes;
        for list in &index.lists {
            notes.push(format!(
                "{}: {} indicators ({})",
                list.name, list.loaded, list.source
            ));
        }
        notes.push(format!(
            "{} indicators: {} addresses, {} networks, {} domains, {} domain suffixes, {} URLs, {} hashes",
            index.entries.len(),
            index.addresses.len(),
            index.nets.len(),
            index.domains.len(),
            index.suffixes.len(),
            index.urls.len(),
            index.hashes.len()
        ));
        let report = LoadReport {
            loaded: u32::try_from(index.entries.len()).unwrap_or(u32::MAX),
            skipped: self.skipped,
            notes,
        };
        (index, report)
    }
}
