//! A byte trie over anchored patterns, ASCII case-insensitive: walking a
//! value from one end reports every pattern the value starts (or, walked
//! backwards, ends) with, in as many steps as the longest such pattern,
//! whatever the number of patterns.
//!
//! Most DNS, SNI and Host rules name a domain exactly or by suffix, and
//! many URI and user-agent rules a prefix, so this is where most buffer
//! rules are found.

use std::collections::BTreeMap;

/// Which end of the value the patterns are anchored at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Side {
    #[default]
    Start,
    End,
}

/// Nodes with at least this many edges get a table indexed by byte class
/// rather than a search: the root and the nodes after `.com` have dozens,
/// and a search over them is a chain of dependent loads on every value.
const DENSE_EDGES: usize = 4;

/// A node: the bytes that must follow before it (`label`, a chain of
/// single-child nodes folded into one, in the value's own order whichever
/// the side), then its edges `edges[edges.0..edges.1]`, sorted by byte (or,
/// for a node with many, a row of `dense` from `dense_at`), and the groups
/// of the patterns that end at it, `groups[groups.0..groups.1]`.
#[derive(Debug, Clone, Copy, Default)]
struct Node {
    label: (u32, u32),
    edges: (u32, u32),
    dense_at: Option<u32>,
    groups: (u32, u32),
}

#[derive(Debug)]
pub struct Trie {
    side: Side,
    nodes: Vec<Node>,
    edges: Vec<(u8, u32)>,
    /// The class of each (lower-case) byte: 0 for bytes no edge has, so a
    /// walk stops there, else 1 and up.
    classes: [u8; 256],
    /// Rows of `classes + 1` entries: the child node plus one, 0 for none.
    dense: Vec<u32>,
    labels: Vec<u8>,
    groups: Vec<u32>,
}

impl Default for Trie {
    fn default() -> Self {
        Self {
            side: Side::default(),
            nodes: Vec::new(),
            edges: Vec::new(),
            classes: [0; 256],
            dense: Vec::new(),
            labels: Vec::new(),
            groups: Vec::new(),
        }
    }
}

/// A trie under construction: one map of children per node.
#[derive(Debug)]
pub struct TrieBuilder {
    side: Side,
    children: Vec<BTreeMap<u8, u32>>,
    groups: Vec<Vec<u32>>,
}

impl TrieBuilder {
    pub fn new(side: Side) -> Self {
        Self {
            side,
            children: vec![BTreeMap::new()],
            groups: vec![Vec::new()],
        }
    }

    /// Adds `pattern`, reported as `group`.
    pub fn add(&mut self, pattern: &[u8], group: u32) {
        let mut node = 0usize;
        // Node ids index `children`, which only grows: always in bounds.
        let mut step = |node: usize, byte: u8| -> usize {
            let next = u32::try_from(self.children.len()).unwrap_or(u32::MAX);
            let child = *self.children[node]
                .entry(byte.to_ascii_lowercase())
                .or_insert(next);
            if child == next {
                self.children.push(BTreeMap::new());
                self.groups.push(Vec::new());
            }
            child as usize
        };
        match self.side {
            Side::Start => pattern.iter().for_each(|&b| node = step(node, b)),
            Side::End => pattern.iter().rev().for_each(|&b| node = step(node, b)),
        }
        self.groups[node].push(group);
    }

    /// The flat, searchable form. Long runs of bytes that only one pattern
    /// family continues with (user-agent and URI prefixes share dozens)
    /// become one label compared at once instead of a node per byte.
    pub fn build(self) -> Trie {
        let mut trie = Trie {
            side: self.side,
            ..Trie::default()
        };
        let index = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        // (builder node a flat node starts at, its flat index), breadth first.
        let mut queue = std::collections::VecDeque::from([(0usize, 0u32)]);
        trie.nodes.push(Node::default());
        while let Some((start, flat)) = queue.pop_front() {
            let mut label = Vec::new();
            let mut end = start;
            // The root keeps no label: every walk starts at it.
            while flat != 0 && self.groups[end].is_empty() && self.children[end].len() == 1 {
                let Some((&byte, &child)) = self.children[end].iter().next() else {
                    break;
                };
                label.push(byte);
                end = child as usize;
            }
            if self.side == Side::End {
                label.reverse();
            }
            let first_label = index(trie.labels.len());
            trie.labels.extend(label);
            let first_edge = index(trie.edges.len());
            for (&byte, &child) in &self.children[end] {
                let target = index(trie.nodes.len());
                trie.nodes.push(Node::default());
                trie.edges.push((byte, target));
                queue.push_back((child as usize, target));
            }
            let first_group = index(trie.groups.len());
            trie.groups.extend(&self.groups[end]);
            if let Some(node) = trie.nodes.get_mut(flat as usize) {
                *node = Node {
                    label: (first_label, index(trie.labels.len())),
                    edges: (first_edge, index(trie.edges.len())),
                    dense_at: None,
                    groups: (first_group, index(trie.groups.len())),
                };
            }
        }
        let mut classes = 0u8;
        for &(byte, _) in &trie.edges {
            let class = &mut trie.classes[usize::from(byte)];
            if *class == 0 {
                // At most 256 distinct bytes; 255 classes and one "none"
                // hold all but a trie over every byte value, which then
                // shares the last class (resolved by the search below).
                classes = classes.saturating_add(1);
                *class = classes;
            }
        }
        let row = usize::from(classes) + 1;
        for node in &mut trie.nodes {
            let (from, to) = (node.edges.0 as usize, node.edges.1 as usize);
            if to - from < DENSE_EDGES || classes == u8::MAX {
                continue;
            }
            let at = trie.dense.len();
            trie.dense.resize(at + row, 0);
            for &(byte, child) in trie.edges.get(from..to).unwrap_or_default() {
                let class = usize::from(trie.classes[usize::from(byte)]);
                if let Some(slot) = trie.dense.get_mut(at + class) {
                    *slot = child.saturating_add(1);
                }
            }
            node.dense_at = Some(index(at));
        }
        trie
    }
}

impl Trie {
    /// Calls `found` with the group of every pattern `value` starts or
    /// ends with (by the trie's side), shortest first.
    pub fn walk(&self, value: &[u8], mut found: impl FnMut(u32)) {
        // A trie without patterns: most buffers have no prefix anchors.
        let Some(mut node) = self.nodes.first().filter(|_| self.nodes.len() > 1) else {
            return;
        };
        // Bytes of `value` the walk has consumed, from its end of the value.
        let mut used = 0usize;
        loop {
            let label = self
                .labels
                .get(node.label.0 as usize..node.label.1 as usize)
                .unwrap_or_default();
            if !label.is_empty() {
                let Some(rest) = value.len().checked_sub(used) else {
                    return;
                };
                let Some(span) = (match self.side {
                    Side::Start => value.get(used..used + label.len()),
                    Side::End => rest
                        .checked_sub(label.len())
                        .and_then(|from| value.get(from..rest)),
                }) else {
                    return;
                };
                if !span.eq_ignore_ascii_case(label) {
                    return;
                }
                used += label.len();
            }
            self.groups
                .get(node.groups.0 as usize..node.groups.1 as usize)
                .unwrap_or_default()
                .iter()
                .for_each(|&g| found(g));
            let next = match self.side {
                Side::Start => value.get(used),
                Side::End => value.len().checked_sub(used + 1).and_then(|i| value.get(i)),
            };
            let Some(byte) = next.map(u8::to_ascii_lowercase) else {
                return;
            };
            let class = self.classes[usize::from(byte)];
            if class == 0 {
                return;
            }
            let child = match node.dense_at {
                Some(at) => self
                    .dense
                    .get(at as usize + usize::from(class))
                    .and_then(|&c| c.checked_sub(1)),
                None => self
                    .edges
                    .get(node.edges.0 as usize..node.edges.1 as usize)
                    .unwrap_or_default()
                    .iter()
                    .find(|&&(b, _)| b == byte)
                    .map(|&(_, n)| n),
            };
            let Some(child) = child.and_then(|n| self.nodes.get(n as usize)) else {
                return;
            };
            node = child;
            used += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(trie: &Trie, value: &str) -> Vec<u32> {
        let mut out = Vec::new();
        trie.walk(value.as_bytes(), |g| out.push(g));
        out
    }

    #[test]
    fn suffixes_and_prefixes_case_insensitively() {
        let mut suffixes = TrieBuilder::new(Side::End);
        for (i, p) in ["evil.com", "com", "Bad.Evil.com", "other.org"]
            .iter()
            .enumerate()
        {
            suffixes.add(p.as_bytes(), i as u32);
        }
        let suffixes = suffixes.build();
        assert_eq!(walk(&suffixes, "a.bad.EVIL.com"), [1, 0, 2]);
        assert_eq!(walk(&suffixes, "notevil.com"), [1, 0]);
        assert_eq!(walk(&suffixes, "evil.co"), [] as [u32; 0]);
        assert_eq!(walk(&suffixes, ""), [] as [u32; 0]);

        let mut prefixes = TrieBuilder::new(Side::Start);
        prefixes.add(b"/api/", 7);
        prefixes.add(b"/API/v1", 8);
        let prefixes = prefixes.build();
        assert_eq!(walk(&prefixes, "/api/v1/x"), [7, 8]);
        assert_eq!(walk(&prefixes, "/ap"), [] as [u32; 0]);
        assert!(walk(&Trie::default(), "x").is_empty());

        // Chains folded into labels, cut where a pattern ends or branches.
        let mut suffixes = TrieBuilder::new(Side::End);
        for (i, p) in ["verylongsuffix.example", "other.example", "e"]
            .iter()
            .enumerate()
        {
            suffixes.add(p.as_bytes(), i as u32);
        }
        let suffixes = suffixes.build();
        assert_eq!(walk(&suffixes, "a.VeryLongSuffix.example"), [2, 0]);
        assert_eq!(walk(&suffixes, "verylongsuffix.example"), [2, 0]);
        assert_eq!(walk(&suffixes, "erylongsuffix.example"), [2]);
        assert_eq!(walk(&suffixes, "xother.example"), [2, 1]);
        assert_eq!(walk(&suffixes, "example"), [2]);
        let mut prefixes = TrieBuilder::new(Side::Start);
        for (i, p) in [
            "Mozilla/5.0 (Windows NT 6.1",
            "Mozilla/5.0 (X11",
            "Mozilla/4.0",
        ]
        .iter()
        .enumerate()
        {
            prefixes.add(p.as_bytes(), i as u32);
        }
        let prefixes = prefixes.build();
        assert_eq!(walk(&prefixes, "mozilla/5.0 (windows nt 6.1; WOW64)"), [0]);
        assert_eq!(walk(&prefixes, "Mozilla/5.0 (X11; Linux)"), [1]);
        assert_eq!(
            walk(&prefixes, "Mozilla/5.0 (Windows NT 10.0"),
            [] as [u32; 0]
        );
        assert_eq!(walk(&prefixes, "Mozilla/4.0"), [2]);
        assert_eq!(walk(&prefixes, "Mozilla/4."), [] as [u32; 0]);
    }
}
