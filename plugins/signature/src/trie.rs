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

/// A node: its edges `edges[edges.0..edges.1]`, sorted by byte, and the
/// groups of the patterns that end at it, `groups[groups.0..groups.1]`.
#[derive(Debug, Clone, Copy, Default)]
struct Node {
    edges: (u32, u32),
    groups: (u32, u32),
}

#[derive(Debug, Default)]
pub struct Trie {
    side: Side,
    nodes: Vec<Node>,
    edges: Vec<(u8, u32)>,
    groups: Vec<u32>,
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

    /// The flat, searchable form.
    pub fn build(self) -> Trie {
        let mut trie = Trie {
            side: self.side,
            ..Trie::default()
        };
        let index = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        for (children, groups) in self.children.into_iter().zip(self.groups) {
            let edges = (index(trie.edges.len()), 0);
            trie.edges.extend(children);
            let first = index(trie.groups.len());
            trie.groups.extend(groups);
            trie.nodes.push(Node {
                edges: (edges.0, index(trie.edges.len())),
                groups: (first, index(trie.groups.len())),
            });
        }
        trie
    }
}

impl Trie {
    /// Calls `found` with the group of every pattern `value` starts or
    /// ends with (by the trie's side), shortest first.
    pub fn walk(&self, value: &[u8], mut found: impl FnMut(u32)) {
        let Some(mut node) = self.nodes.first() else {
            return;
        };
        let mut step = |byte: u8| -> bool {
            let byte = byte.to_ascii_lowercase();
            let edges = self
                .edges
                .get(node.edges.0 as usize..node.edges.1 as usize)
                .unwrap_or_default();
            let Ok(at) = edges.binary_search_by_key(&byte, |&(b, _)| b) else {
                return false;
            };
            let Some(next) = edges.get(at).and_then(|&(_, n)| self.nodes.get(n as usize)) else {
                return false;
            };
            node = next;
            let groups = self
                .groups
                .get(node.groups.0 as usize..node.groups.1 as usize)
                .unwrap_or_default();
            groups.iter().for_each(|&g| found(g));
            true
        };
        match self.side {
            Side::Start => {
                for &b in value {
                    if !step(b) {
                        break;
                    }
                }
            }
            Side::End => {
                for &b in value.iter().rev() {
                    if !step(b) {
                        break;
                    }
                }
            }
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
    }
}
