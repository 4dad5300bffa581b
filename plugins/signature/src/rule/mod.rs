//! Suricata rules, parsed into what flow metadata can decide.
//!
//! A rule is taken whole or not at all: a keyword that needs payload, a
//! buffer flow logs do not carry, or anything not understood makes the
//! whole rule a [`Skip`] with its reason, so no rule is half-applied.

mod buffer;
pub mod header;
mod options;

use std::collections::BTreeMap;

pub use buffer::Buffer;
use header::{Addr, Ports, Spec, Vars};
use options::{RawOption, content_bytes, unquote, unquote_pcre};

/// Where a rule was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// The protocol of a rule header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Ip,
    Tcp,
    Udp,
    Icmp,
    Dns,
    Tls,
    Http,
    Smtp,
}

impl Proto {
    fn parse(name: &str) -> Option<Proto> {
        Some(match name {
            "ip" => Proto::Ip,
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "icmp" => Proto::Icmp,
            "dns" => Proto::Dns,
            "tls" => Proto::Tls,
            "http" | "http1" => Proto::Http,
            "smtp" => Proto::Smtp,
            _ => return None,
        })
    }
}

/// Which way the inspected traffic goes (`flow:to_server` / `to_client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toward {
    Server,
    Client,
    /// No `flow` direction: either way.
    Either,
}

/// The `flow` keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowOpts {
    pub toward: Toward,
    /// `Some(true)`: established; `Some(false)`: not_established.
    pub established: Option<bool>,
}

/// `bsize`: the buffer's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    Eq(usize),
    Lt(usize),
    Gt(usize),
    Range(usize, usize),
}

impl Size {
    fn parse(text: &str) -> Option<Size> {
        let text = text.trim();
        let n = |s: &str| s.trim().parse::<usize>().ok();
        if let Some(rest) = text.strip_prefix("<=") {
            return Some(Size::Range(0, n(rest)?));
        }
        if let Some(rest) = text.strip_prefix(">=") {
            return Some(Size::Range(n(rest)?, usize::MAX));
        }
        if let Some(rest) = text.strip_prefix('<') {
            return Some(Size::Lt(n(rest)?));
        }
        if let Some(rest) = text.strip_prefix('>') {
            return Some(Size::Gt(n(rest)?));
        }
        if let Some((low, high)) = text.split_once("<>") {
            return Some(Size::Range(n(low)?, n(high)?));
        }
        if let Some((low, high)) = text.split_once('-') {
            return Some(Size::Range(n(low)?, n(high)?));
        }
        Some(Size::Eq(n(text)?))
    }

    pub fn holds(self, len: usize) -> bool {
        match self {
            Size::Eq(n) => len == n,
            Size::Lt(n) => len < n,
            Size::Gt(n) => len > n,
            Size::Range(low, high) => (low..=high).contains(&len),
        }
    }
}

/// One `content` and its modifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub pattern: Vec<u8>,
    pub negated: bool,
    pub nocase: bool,
    pub startswith: bool,
    pub endswith: bool,
    pub offset: Option<usize>,
    pub depth: Option<usize>,
    /// Relative to the end of the previous match in the same buffer.
    pub distance: Option<i64>,
    pub within: Option<usize>,
}

impl Content {
    fn new(pattern: Vec<u8>, negated: bool) -> Self {
        Self {
            pattern,
            negated,
            nocase: false,
            startswith: false,
            endswith: false,
            offset: None,
            depth: None,
            distance: None,
            within: None,
        }
    }

    pub fn is_relative(&self) -> bool {
        self.distance.is_some() || self.within.is_some()
    }
}

/// A `pcre`, compiled.
#[derive(Debug, Clone)]
pub struct Pcre {
    pub regex: regex::bytes::Regex,
    pub negated: bool,
    /// `R`: from where the previous match in the buffer ended.
    pub relative: bool,
}

/// A buffer's matches, in rule order: relative ones depend on the one
/// before.
#[derive(Debug, Clone)]
pub enum Item {
    Content(Content),
    Pcre(Pcre),
}

/// `isdataat` on a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsDataAt {
    pub at: usize,
    pub relative: bool,
    pub negated: bool,
}

/// `dataset:isset|isnotset` on a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetCheck {
    pub name: String,
    pub negated: bool,
    /// The file the set is loaded from, as named by `load`.
    pub load: String,
    pub kind: DatasetKind,
}

/// How a dataset file spells its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetKind {
    /// Base64 of the raw value, one per line (Suricata's `string`).
    String,
    /// Lower-case hex digests.
    Md5,
    Sha256,
}

/// Everything a rule inspects in one buffer, in rule order.
#[derive(Debug, Clone)]
pub struct BufferMatch {
    pub buffer: Buffer,
    pub dotprefix: bool,
    /// `bsize`, and `urilen` on the URI.
    pub sizes: Vec<Size>,
    pub items: Vec<Item>,
    pub isdataat: Vec<IsDataAt>,
    pub datasets: Vec<DatasetCheck>,
}

impl BufferMatch {
    fn new(buffer: Buffer) -> Self {
        Self {
            buffer,
            dotprefix: false,
            sizes: Vec::new(),
            items: Vec::new(),
            isdataat: Vec::new(),
            datasets: Vec::new(),
        }
    }
}

/// A `flowbits` action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flowbit {
    Set(Vec<String>),
    Unset(Vec<String>),
    Toggle(Vec<String>),
    /// All of the names (`&`) or any (`|`) must be set.
    IsSet(Vec<String>, bool),
    IsNotSet(Vec<String>),
}

/// Who a threshold or detection filter counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Track {
    BySrc,
    ByDst,
    ByRule,
    ByBoth,
}

/// `threshold` types, and `detection_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Alert on the first `count` hits per period.
    Limit,
    /// Alert on every `count`th hit.
    Threshold,
    /// Alert once per period, after `count` hits.
    Both,
    /// Alert on every hit after the first `count` in the period.
    DetectionFilter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub limit: Limit,
    pub track: Track,
    pub count: u32,
    pub seconds: u32,
}

/// What the rule does on a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Alert,
    Drop,
    Reject,
    Pass,
}

/// A rule kansoku can evaluate.
#[derive(Debug, Clone)]
pub struct Rule {
    pub location: Location,
    pub action: Action,
    pub proto: Proto,
    pub src: Spec<Addr>,
    pub src_ports: Spec<Ports>,
    pub bidirectional: bool,
    pub dst: Spec<Addr>,
    pub dst_ports: Spec<Ports>,
    pub gid: u32,
    pub sid: u32,
    pub rev: u32,
    pub msg: String,
    pub classtype: Option<String>,
    pub priority: Option<u8>,
    pub references: Vec<String>,
    pub metadata: Vec<String>,
    pub flow: FlowOpts,
    pub buffers: Vec<BufferMatch>,
    pub flowbits: Vec<Flowbit>,
    pub noalert: bool,
    pub threshold: Option<Threshold>,
}

/// Why a rule was not loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub location: Location,
    /// The sid, when the rule got that far.
    pub sid: Option<u32>,
    pub reason: Reason,
    /// Specifics (the keyword, the buffer, the parse error).
    pub detail: String,
}

/// Reasons, counted in the load report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// Payload or packet content: flow metadata cannot decide it.
    NeedsPayload,
    /// A buffer flow logs do not carry (headers, certificates' serials…).
    UnavailableBuffer,
    /// A keyword kansoku does not evaluate.
    UnsupportedKeyword,
    /// A protocol flow logs do not describe (smb, ssh, ftp…).
    UnsupportedProtocol,
    /// A `pcre` the regex crate cannot compile (backreferences, lookaround).
    UnsupportedPcre,
    /// A rule that can never fire on flow metadata (e.g. a client-side
    /// buffer with `flow:to_client`).
    NeverMatches,
    /// A dataset whose file is not among the rulesets.
    MissingDataset,
    /// Not valid rule syntax.
    Syntax,
}

impl Reason {
    pub fn label(self) -> &'static str {
        match self {
            Reason::NeedsPayload => "needs payload",
            Reason::UnavailableBuffer => "buffer not in flow metadata",
            Reason::UnsupportedKeyword => "unsupported keyword",
            Reason::UnsupportedProtocol => "unsupported protocol",
            Reason::UnsupportedPcre => "pcre not supported",
            Reason::NeverMatches => "never matches on flow metadata",
            Reason::MissingDataset => "dataset file missing",
            Reason::Syntax => "syntax error",
        }
    }
}

impl Skip {
    fn new(
        location: &Location,
        sid: Option<u32>,
        reason: Reason,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            location: location.clone(),
            sid,
            reason,
            detail: detail.into(),
        }
    }
}

/// What one line of a rules file is.
#[derive(Debug)]
pub enum Line {
    Rule(Box<Rule>),
    Skipped(Skip),
    /// A rule commented out (`# alert …`).
    Disabled,
    /// Blank or a comment.
    Nothing,
}

/// Parses one logical line (continuations already joined).
pub fn parse_line(text: &str, location: &Location, vars: &Vars) -> Line {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Line::Nothing;
    }
    if let Some(rest) = trimmed.strip_prefix('#') {
        let rest = rest.trim_start();
        let word = rest.split_ascii_whitespace().next().unwrap_or_default();
        let looks_like_rule = parse_action(word).is_some() && rest.contains("sid:");
        return if looks_like_rule {
            Line::Disabled
        } else {
            Line::Nothing
        };
    }
    match parse_rule(trimmed, location, vars) {
        Ok(rule) => Line::Rule(Box::new(rule)),
        Err(skip) => Line::Skipped(skip),
    }
}

fn parse_action(word: &str) -> Option<Action> {
    Some(match word {
        "alert" => Action::Alert,
        "drop" => Action::Drop,
        "reject" | "rejectsrc" | "rejectdst" | "rejectboth" => Action::Reject,
        "pass" => Action::Pass,
        _ => return None,
    })
}

/// The sid of a rule's text, for reports about rules that do not parse.
fn find_sid(text: &str) -> Option<u32> {
    let at = text.find("sid:")?;
    let digits: String = text[at + 4..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn parse_rule(text: &str, location: &Location, vars: &Vars) -> Result<Rule, Skip> {
    let sid = find_sid(text);
    let syntax = |detail: String| Skip::new(location, sid, Reason::Syntax, detail);
    let open = text
        .find('(')
        .ok_or_else(|| syntax("no `(` before the options".into()))?;
    let close = text
        .rfind(')')
        .filter(|&c| c > open)
        .ok_or_else(|| syntax("no `)` after the options".into()))?;
    if !text[close + 1..].trim().is_empty() {
        return Err(syntax("text after the closing `)`".into()));
    }
    let header = header_fields(&text[..open]).map_err(syntax)?;
    let [action, proto, src, src_ports, direction, dst, dst_ports] = header;
    let action =
        parse_action(action).ok_or_else(|| syntax(format!("unknown action `{action}`")))?;
    let proto = Proto::parse(proto).ok_or_else(|| {
        Skip::new(
            location,
            sid,
            Reason::UnsupportedProtocol,
            format!("protocol `{proto}`"),
        )
    })?;
    let bidirectional = match direction {
        "->" => false,
        "<>" => true,
        other => return Err(syntax(format!("unknown direction `{other}`"))),
    };
    let address = |t: &str| header::addresses(t, vars).map_err(syntax);
    let port = |t: &str| header::ports(t, vars).map_err(syntax);
    let mut rule = Rule {
        location: location.clone(),
        action,
        proto,
        src: address(src)?,
        src_ports: port(src_ports)?,
        bidirectional,
        dst: address(dst)?,
        dst_ports: port(dst_ports)?,
        gid: 1,
        sid: 0,
        rev: 0,
        msg: String::new(),
        classtype: None,
        priority: None,
        references: Vec::new(),
        metadata: Vec::new(),
        flow: FlowOpts {
            toward: Toward::Either,
            established: None,
        },
        buffers: Vec::new(),
        flowbits: Vec::new(),
        noalert: false,
        threshold: None,
    };
    let options = options::split(&text[open + 1..close]).map_err(syntax)?;
    Options::new(&mut rule, location, sid).apply(&options)?;
    if rule.sid == 0 {
        return Err(syntax("no sid".into()));
    }
    check_direction(&rule)
        .map_err(|detail| Skip::new(location, sid, Reason::NeverMatches, detail))?;
    Ok(rule)
}

/// The seven header fields; address and port lists may hold spaces.
fn header_fields(text: &str) -> Result<[&str; 7], String> {
    let mut fields = Vec::with_capacity(7);
    let (mut depth, mut start) = (0usize, None);
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if c.is_whitespace() && depth == 0 {
            if let Some(s) = start.take() {
                fields.push(&text[s..i]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        fields.push(&text[s..]);
    }
    fields
        .try_into()
        .map_err(|f: Vec<&str>| format!("the header has {} fields, not 7", f.len()))
}

/// A client-side buffer seen going to the client, or the reverse, never
/// matches in Suricata either.
fn check_direction(rule: &Rule) -> Result<(), String> {
    let kinds: Vec<_> = rule.buffers.iter().map(|b| b.buffer.protocol()).collect();
    if kinds.windows(2).any(|w| w[0] != w[1]) {
        return Err("buffers of two protocols in one rule".into());
    }
    // An HTTP transaction holds request and response: a rule may look at
    // both, whichever way it says the flow goes.
    if kinds.first() == Some(&"http") {
        return Ok(());
    }
    for b in &rule.buffers {
        let contradicts = match rule.flow.toward {
            Toward::Server => !b.buffer.to_server(),
            Toward::Client => b.buffer.to_server(),
            Toward::Either => false,
        };
        if contradicts {
            return Err(format!(
                "{} inspected in the other direction",
                b.buffer.name()
            ));
        }
    }
    let sides: Vec<bool> = rule.buffers.iter().map(|b| b.buffer.to_server()).collect();
    if sides.windows(2).any(|w| w[0] != w[1]) {
        return Err("buffers of both directions in one rule".into());
    }
    Ok(())
}

/// Walks a rule's options in order, keeping the sticky buffer.
struct Options<'r> {
    rule: &'r mut Rule,
    location: &'r Location,
    sid: Option<u32>,
    /// Index into `rule.buffers` of the sticky buffer.
    current: Option<usize>,
    /// A content not yet in a buffer: payload unless a legacy modifier
    /// moves it.
    pending: Option<Content>,
    /// Which content the modifiers apply to: (buffer index, item index).
    last: Option<(usize, usize)>,
}

impl<'r> Options<'r> {
    fn new(rule: &'r mut Rule, location: &'r Location, sid: Option<u32>) -> Self {
        Self {
            rule,
            location,
            sid,
            current: None,
            pending: None,
            last: None,
        }
    }

    fn skip(&self, reason: Reason, detail: impl Into<String>) -> Skip {
        Skip::new(self.location, self.sid, reason, detail)
    }

    fn syntax(&self, keyword: &str, detail: impl std::fmt::Display) -> Skip {
        self.skip(Reason::Syntax, format!("{keyword}: {detail}"))
    }

    fn apply(mut self, options: &[RawOption<'_>]) -> Result<(), Skip> {
        // Payload decides the reason even when another keyword would fail
        // first: the operator should read that the rule needs payload.
        if let Some(payload) = options.iter().find(|o| buffer::is_payload(o.keyword)) {
            return Err(self.skip(Reason::NeedsPayload, payload.keyword));
        }
        for (i, option) in options.iter().enumerate() {
            if let Err(skip) = self.one(option) {
                // A content no modifier moves out of the payload makes the
                // rule a payload rule, whatever failed after it.
                let moved = options[i..]
                    .iter()
                    .take_while(|o| o.keyword != "content")
                    .any(|o| {
                        Buffer::modifier(o.keyword).is_some() || o.keyword.starts_with("http_")
                    });
                if self.pending.is_some() && !moved && skip.reason != Reason::NeedsPayload {
                    return Err(
                        self.skip(Reason::NeedsPayload, "content outside a metadata buffer")
                    );
                }
                return Err(skip);
            }
        }
        self.flush_pending()?;
        Ok(())
    }

    /// A content left outside any buffer is a payload match.
    fn flush_pending(&mut self) -> Result<(), Skip> {
        if self.pending.is_some() {
            return Err(self.skip(Reason::NeedsPayload, "content outside a metadata buffer"));
        }
        Ok(())
    }

    fn buffer_index(&mut self, buffer: Buffer) -> usize {
        match self.rule.buffers.iter().position(|b| b.buffer == buffer) {
            Some(i) => i,
            None => {
                self.rule.buffers.push(BufferMatch::new(buffer));
                self.rule.buffers.len() - 1
            }
        }
    }

    fn value<'v>(&self, option: &RawOption<'v>) -> Result<&'v str, Skip> {
        option
            .value
            .ok_or_else(|| self.syntax(option.keyword, "needs a value"))
    }

    fn number<T: std::str::FromStr>(&self, option: &RawOption<'_>) -> Result<T, Skip> {
        let value = self.value(option)?;
        value
            .trim()
            .parse()
            .map_err(|_| self.syntax(option.keyword, format!("`{value}` is not a number")))
    }

    /// The content the modifier at hand applies to.
    fn content(&mut self, keyword: &str) -> Result<&mut Content, Skip> {
        if self.pending.is_some() {
            return self
                .pending
                .as_mut()
                .ok_or_else(|| Skip::new(self.location, self.sid, Reason::Syntax, keyword));
        }
        let (b, c) = self
            .last
            .ok_or_else(|| self.syntax(keyword, "no content before it"))?;
        match self
            .rule
            .buffers
            .get_mut(b)
            .and_then(|buffer| buffer.items.get_mut(c))
        {
            Some(Item::Content(content)) => Ok(content),
            _ => Err(Skip::new(
                self.location,
                self.sid,
                Reason::Syntax,
                format!("{keyword}: not after a content"),
            )),
        }
    }

    fn current_buffer(&mut self, keyword: &str) -> Result<&mut BufferMatch, Skip> {
        let index = match self.current {
            Some(i) => i,
            None => {
                return Err(self.skip(
                    Reason::NeedsPayload,
                    format!("{keyword} outside a metadata buffer"),
                ));
            }
        };
        self.rule
            .buffers
            .get_mut(index)
            .ok_or_else(|| Skip::new(self.location, self.sid, Reason::Syntax, keyword.to_owned()))
    }

    fn one(&mut self, option: &RawOption<'_>) -> Result<(), Skip> {
        let keyword = option.keyword;
        if let Some(buffer) = Buffer::sticky(keyword) {
            self.flush_pending()?;
            self.current = Some(self.buffer_index(buffer));
            return Ok(());
        }
        if let Some(buffer) = Buffer::modifier(keyword) {
            let content = self
                .pending
                .take()
                .ok_or_else(|| self.syntax(keyword, "no content before it"))?;
            let index = self.buffer_index(buffer);
            let items = &mut self.rule.buffers[index].items;
            items.push(Item::Content(content));
            self.last = Some((index, items.len() - 1));
            return Ok(());
        }
        if buffer::is_payload(keyword) {
            return Err(self.skip(Reason::NeedsPayload, keyword));
        }
        match keyword {
            "msg" => {
                self.rule.msg = unquote(self.value(option)?).map_err(|e| self.syntax(keyword, e))?
            }
            "sid" => self.rule.sid = self.number(option)?,
            "rev" => self.rule.rev = self.number(option)?,
            "gid" => self.rule.gid = self.number(option)?,
            "classtype" => self.rule.classtype = Some(self.value(option)?.trim().to_owned()),
            "priority" => self.rule.priority = Some(self.number(option)?),
            "reference" => self
                .rule
                .references
                .push(self.value(option)?.trim().to_owned()),
            "metadata" => self
                .rule
                .metadata
                .extend(self.value(option)?.split(',').map(|m| m.trim().to_owned())),
            // Hints to Suricata's engine; they do not change what matches.
            "fast_pattern" | "target" | "prefilter" => {}
            "flow" => self.flow(option)?,
            "content" => self.content_keyword(option)?,
            "nocase" => self.content(keyword)?.nocase = true,
            "startswith" => self.content(keyword)?.startswith = true,
            "endswith" => self.content(keyword)?.endswith = true,
            "depth" => {
                let n = self.number(option)?;
                self.content(keyword)?.depth = Some(n);
            }
            "offset" => {
                let n = self.number(option)?;
                self.content(keyword)?.offset = Some(n);
            }
            "distance" => {
                let n = self.number(option)?;
                self.content(keyword)?.distance = Some(n);
            }
            "within" => {
                let n = self.number(option)?;
                self.content(keyword)?.within = Some(n);
            }
            "bsize" => {
                let value = self.value(option)?;
                let size = Size::parse(value)
                    .ok_or_else(|| self.syntax(keyword, format!("`{value}` is not a size")))?;
                self.current_buffer(keyword)?.sizes.push(size);
            }
            "urilen" => {
                let value = self.value(option)?;
                // `,norm` / `,raw`: Zeek logs the URI as sent.
                let size = value
                    .split(',')
                    .next()
                    .and_then(Size::parse)
                    .ok_or_else(|| self.syntax(keyword, format!("`{value}` is not a length")))?;
                let index = self.buffer_index(Buffer::HttpUri);
                self.rule.buffers[index].sizes.push(size);
            }
            "dotprefix" => {
                let buffer = self.current_buffer(keyword)?;
                if !buffer.items.is_empty() {
                    return Err(self.syntax(keyword, "must come before the buffer's contents"));
                }
                buffer.dotprefix = true;
            }
            "isdataat" => self.isdataat(option)?,
            "pcre" => self.pcre(option)?,
            "flowbits" => self.flowbits(option)?,
            "threshold" | "detection_filter" => self.threshold(option)?,
            "dataset" => self.dataset(option)?,
            "noalert" => self.rule.noalert = true,
            other => {
                let reason = if other.contains('.')
                    || other.starts_with("http_")
                    || other.starts_with("tls_")
                {
                    Reason::UnavailableBuffer
                } else {
                    Reason::UnsupportedKeyword
                };
                return Err(self.skip(reason, other));
            }
        }
        Ok(())
    }

    fn flow(&mut self, option: &RawOption<'_>) -> Result<(), Skip> {
        for part in self.value(option)?.split(',') {
            match part.trim() {
                "to_server" | "from_client" => self.rule.flow.toward = Toward::Server,
                "to_client" | "from_server" => self.rule.flow.toward = Toward::Client,
                "established" => self.rule.flow.established = Some(true),
                "not_established" => self.rule.flow.established = Some(false),
                // Reassembly and fragment options: the sensor's business.
                "stateless" | "only_stream" | "no_stream" | "no_frag" | "only_frag" => {}
                other => {
                    return Err(self.skip(Reason::UnsupportedKeyword, format!("flow:{other}")));
                }
            }
        }
        Ok(())
    }

    fn content_keyword(&mut self, option: &RawOption<'_>) -> Result<(), Skip> {
        self.flush_pending()?;
        let value = self.value(option)?.trim();
        let (negated, value) = match value.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, value),
        };
        let text = unquote(value).map_err(|e| self.syntax("content", e))?;
        let pattern = content_bytes(&text).map_err(|e| self.syntax("content", e))?;
        if pattern.is_empty() {
            return Err(self.syntax("content", "empty pattern"));
        }
        let content = Content::new(pattern, negated);
        match self.current {
            Some(index) => {
                let items = &mut self.rule.buffers[index].items;
                items.push(Item::Content(content));
                self.last = Some((index, items.len() - 1));
            }
            None => self.pending = Some(content),
        }
        Ok(())
    }

    fn isdataat(&mut self, option: &RawOption<'_>) -> Result<(), Skip> {
        let value = self.value(option)?.trim();
        let (negated, value) = match value.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let mut parts = value.split(',').map(str::trim);
        let at = parts
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| self.syntax("isdataat", "needs a number"))?;
        let mut relative = false;
        for part in parts {
            match part {
                "relative" => relative = true,
                "rawbytes" => return Err(self.skip(Reason::NeedsPayload, "isdataat rawbytes")),
                other => return Err(self.syntax("isdataat", format!("unknown `{other}`"))),
            }
        }
        self.current_buffer("isdataat")?.isdataat.push(IsDataAt {
            at,
            relative,
            negated,
        });
        Ok(())
    }

    fn pcre(&mut self, option: &RawOption<'_>) -> Result<(), Skip> {
        let value = self.value(option)?.trim();
        let (negated, value) = match value.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, value),
        };
        let text = unquote_pcre(value).map_err(|e| self.syntax("pcre", e))?;
        let body = text
            .strip_prefix('/')
            .ok_or_else(|| self.syntax("pcre", "does not start with `/`"))?;
        let end = body
            .rfind('/')
            .ok_or_else(|| self.syntax("pcre", "no closing `/`"))?;
        let (pattern, flags) = (&body[..end], &body[end + 1..]);
        let (mut buffer, mut relative, mut anchored) = (None, false, false);
        let (mut nocase, mut dotall, mut multiline, mut extended) = (false, false, false, false);
        for flag in flags.chars() {
            match flag {
                'i' => nocase = true,
                's' => dotall = true,
                'm' => multiline = true,
                'x' => extended = true,
                'A' => anchored = true,
                'R' => relative = true,
                // Greediness and end-anchor tweaks that change no verdict.
                'E' | 'G' => {}
                f if Buffer::pcre_flag(f).is_some() => buffer = Buffer::pcre_flag(f),
                f if buffer::is_unavailable_pcre_flag(f) => {
                    return Err(self.skip(Reason::UnavailableBuffer, format!("pcre flag {f}")));
                }
                f => return Err(self.syntax("pcre", format!("unknown flag `{f}`"))),
            }
        }
        let pattern = if anchored {
            format!("^(?:{pattern})")
        } else {
            pattern.to_owned()
        };
        let mut builder = regex::bytes::RegexBuilder::new(&pattern);
        builder
            .unicode(false)
            .case_insensitive(nocase)
            .dot_matches_new_line(dotall)
            .multi_line(multiline)
            .ignore_whitespace(extended)
            .size_limit(1 << 20)
            .dfa_size_limit(1 << 20);
        if buffer.is_none() && self.current.is_none() {
            return Err(self.skip(Reason::NeedsPayload, "pcre outside a metadata buffer"));
        }
        let regex = builder
            .build()
            .map_err(|_| self.skip(Reason::UnsupportedPcre, "the regex crate cannot compile it"))?;
        let index = match (buffer, self.current) {
            (Some(b), _) => self.buffer_index(b),
            (None, Some(i)) => i,
            (None, None) => {
                return Err(self.skip(Reason::NeedsPayload, "pcre outside a metadata buffer"));
            }
        };
        self.rule.buffers[index].items.push(Item::Pcre(Pcre {
            regex,
            negated,
            relative,
        }));
        Ok(())
    }

    fn flowbits(&mut self, option: &RawOption<'_>) -> Result<(), Skip> {
        let value = self.value(option)?;
        let (command, names) = match value.split_once(',') {
            Some((c, n)) => (c.trim(), n.trim()),
            None => (value.trim(), ""),
        };
        let any = names.contains('|');
        let list: Vec<String> = names
            .split(['&', '|'])
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        let needs_names = |me: &Self| {
            if list.is_empty() {
                Err(me.syntax("flowbits", format!("{command} needs a name")))
            } else {
                Ok(())
            }
        };
        let bit = match command {
            "noalert" => {
                self.rule.noalert = true;
                return Ok(());
            }
            "set" => Flowbit::Set(list.clone()),
            "unset" => Flowbit::Unset(list.clone()),
            "toggle" => Flowbit::Toggle(list.clone()),
            "isset" => Flowbit::IsSet(list.clone(), any),
            "isnotset" => Flowbit::IsNotSet(list.clone()),
            other => return Err(self.syntax("flowbits", format!("unknown command `{other}`"))),
        };
        needs_names(self)?;
        self.rule.flowbits.push(bit);
        Ok(())
    }

    fn threshold(&mut self, option: &RawOption<'_>) -> Result<(), Skip> {
        let keyword = option.keyword;
        let mut fields = BTreeMap::new();
        for part in self.value(option)?.split(',') {
            let mut words = part.split_whitespace();
            if let (Some(k), Some(v)) = (words.next(), words.next()) {
                fields.insert(k, v);
            }
        }
        let limit = if keyword == "detection_filter" {
            Limit::DetectionFilter
        } else {
            match fields.get("type").copied() {
                Some("limit") => Limit::Limit,
                Some("threshold") => Limit::Threshold,
                Some("both") => Limit::Both,
                other => return Err(self.syntax(keyword, format!("type {other:?}"))),
            }
        };
        let track = match fields.get("track").copied() {
            Some("by_src") => Track::BySrc,
            Some("by_dst") => Track::ByDst,
            Some("by_rule") => Track::ByRule,
            Some("by_both") => Track::ByBoth,
            other => return Err(self.syntax(keyword, format!("track {other:?}"))),
        };
        let number = |name: &str| -> Result<u32, Skip> {
            fields
                .get(name)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| self.syntax(keyword, format!("needs `{name} N`")))
        };
        let threshold = Threshold {
            limit,
            track,
            count: number("count")?,
            seconds: number("seconds")?,
        };
        if self.rule.threshold.is_some() {
            return Err(self.skip(
                Reason::UnsupportedKeyword,
                "threshold and detection_filter together",
            ));
        }
        self.rule.threshold = Some(threshold);
        Ok(())
    }

    fn dataset(&mut self, option: &RawOption<'_>) -> Result<(), Skip> {
        let value = self.value(option)?;
        let mut parts = value.split(',').map(str::trim);
        let command = parts.next().unwrap_or_default();
        let negated = match command {
            "isset" => false,
            "isnotset" => true,
            other => {
                return Err(self.skip(Reason::UnsupportedKeyword, format!("dataset:{other}")));
            }
        };
        let name = parts
            .next()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| self.syntax("dataset", "needs a name"))?
            .to_owned();
        let (mut kind, mut load) = (None, None);
        for part in parts {
            let mut words = part.split_whitespace();
            match (words.next(), words.next()) {
                (Some("type"), Some(t)) => kind = Some(t),
                (Some("load"), Some(file)) => load = Some(file.to_owned()),
                // Sizes and persistence: the sensor's business.
                _ => {}
            }
        }
        let kind = match kind {
            Some("string") => DatasetKind::String,
            Some("md5") => DatasetKind::Md5,
            Some("sha256") => DatasetKind::Sha256,
            other => {
                return Err(self.skip(
                    Reason::UnsupportedKeyword,
                    format!("dataset type {other:?}"),
                ));
            }
        };
        let load = load.ok_or_else(|| {
            self.skip(
                Reason::MissingDataset,
                format!("dataset {name} names no `load` file"),
            )
        })?;
        self.current_buffer("dataset")?.datasets.push(DatasetCheck {
            name,
            negated,
            load,
            kind,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
