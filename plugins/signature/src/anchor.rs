//! The content a buffer rule is found by, and where in the value it must
//! be: a rule can only match a flow whose buffer holds its anchor there.

use crate::rule::{Buffer, BufferMatch, Content, Item, Rule, Size};

/// Where an anchor must be in the value for the rule to match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Place {
    /// The value starts with it.
    Prefix,
    /// The value ends with it (or is it).
    Suffix,
    Anywhere,
}

/// A content a rule needs, as the index looks it up: ASCII lower case,
/// without the dot `dotprefix` adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub buffer: Buffer,
    pub pattern: Vec<u8>,
    pub place: Place,
}

/// Below this length an anchored content is worse than a longer one found
/// anywhere (`.com` ends too many names).
const SHORT_ANCHORED: usize = 8;

/// The rule's anchor: its longest positive content, or a prefix or suffix
/// one about as long, which a trie finds in a few steps.
pub fn anchor(rule: &Rule) -> Option<Anchor> {
    let all: Vec<Anchor> = rule
        .buffers
        .iter()
        .flat_map(|b| {
            b.items.iter().filter_map(move |item| match item {
                Item::Content(c) if !c.negated => of(b, c),
                _ => None,
            })
        })
        .collect();
    let longest = all.iter().map(|a| a.pattern.len()).max()?;
    let anchored = all
        .iter()
        .filter(|a| a.place != Place::Anywhere)
        .filter(|a| a.pattern.len() >= longest.min(SHORT_ANCHORED))
        .max_by_key(|a| a.pattern.len());
    anchored
        .or_else(|| all.iter().max_by_key(|a| a.pattern.len()))
        .cloned()
}

fn of(b: &BufferMatch, c: &Content) -> Option<Anchor> {
    // With `dotprefix` the value checked is `.` and the buffer: `.evil.com`
    // in it is `evil.com` in the buffer, at the same place, and a content
    // not starting with the dot lies within the buffer. A lone `.` is the
    // added dot itself: no anchor.
    let pattern = match c.pattern.strip_prefix(b".") {
        Some(rest) if b.dotprefix && rest.is_empty() => return None,
        Some(rest) if b.dotprefix => rest,
        _ => c.pattern.as_slice(),
    };
    // An empty content is everywhere: it narrows nothing.
    if pattern.is_empty() {
        return None;
    }
    // A size equal to the content's own length leaves room for nothing
    // else: the content is the whole value, so it ends it.
    let whole = !b.dotprefix
        && (b.buffer.fixed_len() == Some(c.pattern.len())
            || b.sizes
                .iter()
                .any(|s| matches!(s, Size::Eq(n) if *n == c.pattern.len())));
    let at_start = !c.is_relative()
        && c.offset.unwrap_or(0) == 0
        && (c.startswith || c.depth == Some(c.pattern.len()));
    let place = if c.endswith || whole {
        Place::Suffix
    } else if at_start {
        Place::Prefix
    } else {
        Place::Anywhere
    };
    Some(Anchor {
        buffer: b.buffer,
        pattern: pattern.to_ascii_lowercase(),
        place,
    })
}
