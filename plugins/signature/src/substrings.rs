//! Anchors found anywhere in a value, ASCII case-insensitively.
//!
//! Each pattern of four bytes or more is indexed by one of its 4-grams (the
//! one fewest patterns share); a value is scanned one position at a time,
//! its 4-gram (case folded) tested against a small bitmap, and only a set
//! bit leads to the patterns of that 4-gram, each then compared at its
//! place (the keys of a filter slot are listed together, so a hit costs
//! one more access, not a search). Every position is independent of the one before, so the scan runs
//! at the processor's throughput; an automaton's state-to-state chain costs
//! a cache access per byte instead, and with a few thousand patterns its
//! tables are far larger than L1. Shorter patterns (HTTP methods, `~1`) are
//! few and compared directly.

use std::collections::HashMap;

/// Filter bits per pattern: about one 4-gram in 32 that no pattern is keyed
/// by still reaches the key search.
const BITS_PER_PATTERN: usize = 32;
/// Filter size bounds, in bits (log 2). The filters of every buffer are
/// read for every flow and must stay in L1 together: 8 KiB each would not.
const FILTER_BITS: std::ops::RangeInclusive<u32> = 9..=16;
/// The window the index keys patterns by.
const GRAM: usize = 4;

/// Values typical of benign traffic: a pattern is keyed by a 4-gram these
/// lack when it has one, so the browser user agents, common URI parts and
/// top-level domains every flow carries do not stop the scan for a pattern
/// that merely contains them (like the byte-frequency table a substring
/// searcher uses to pick its rare byte).
const TYPICAL: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
    "Microsoft-CryptoAPI/10.0 Windows-Update-Agent/10.0.10011.16384 Client-Protocol/2.50 curl/8.4.0 Wget/1.21 python-requests/2.31",
    "GET POST HEAD PUT OPTIONS HTTP/1.1 HTTP/2",
    "/index.html /static/js/app.min.js?v=1 /assets/css/style.css /images/logo.png /api/v1/ /wp-content/ /favicon.ico /search?q=",
    "www.example.com .co.jp .ac.jp .ne.jp .or.jp .go.jp .com .net .org .edu .info .io .cn .ru .de .uk .amazonaws.com .cloudfront.net .googleapis.com",
];

#[derive(Debug, Default)]
pub struct Substrings {
    /// Patterns, lower case.
    patterns: Vec<Vec<u8>>,
    /// A bit per hashed 4-gram that some pattern is keyed by.
    filter: Vec<u64>,
    /// `32 - log2(filter bits)`: how far a hash is shifted to index it.
    shift: u32,
    /// (4-gram, pattern, where the 4-gram is in the pattern), by slot.
    keys: Vec<(u32, u32, u32)>,
    /// The keys of slot `s` are `keys[buckets[s]..buckets[s + 1]]`.
    buckets: Vec<u32>,
    /// Patterns shorter than a 4-gram.
    short: Vec<u32>,
}

/// Four bytes with bit 5 set in each: ASCII upper and lower case become
/// one, at the price of a few punctuation pairs (`[` and `{`) becoming one
/// too, which only lets a few more 4-grams through to the exact check.
fn fold(word: u32) -> u32 {
    word | 0x2020_2020
}

fn gram(window: &[u8]) -> u32 {
    let mut bytes = [0u8; GRAM];
    bytes.iter_mut().zip(window).for_each(|(b, w)| *b = *w);
    fold(u32::from_le_bytes(bytes))
}

fn slot(gram: u32, shift: u32) -> usize {
    (gram.wrapping_mul(0x9e37_79b1) >> shift) as usize
}

impl Substrings {
    /// Indexes `patterns`; empty ones are never reported.
    pub fn build(patterns: &[Vec<u8>]) -> Self {
        let patterns: Vec<Vec<u8>> = patterns.iter().map(|p| p.to_ascii_lowercase()).collect();
        let typical: std::collections::HashSet<u32> = TYPICAL
            .iter()
            .flat_map(|t| t.as_bytes().windows(GRAM).map(gram))
            .collect();
        let mut shared: HashMap<u32, usize> = HashMap::new();
        for p in &patterns {
            let mut grams: Vec<u32> = p.windows(GRAM).map(gram).collect();
            grams.sort_unstable();
            grams.dedup();
            grams
                .into_iter()
                .for_each(|g| *shared.entry(g).or_default() += 1);
        }
        let wanted = (patterns.len() * BITS_PER_PATTERN).next_power_of_two();
        let bits = wanted
            .trailing_zeros()
            .clamp(*FILTER_BITS.start(), *FILTER_BITS.end());
        let mut index = Substrings {
            filter: vec![0; (1 << bits) / 64],
            shift: 32 - bits,
            ..Substrings::default()
        };
        for (i, p) in patterns.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            if p.is_empty() {
                continue;
            }
            let rarest = p.windows(GRAM).enumerate().min_by_key(|(_, w)| {
                let g = gram(w);
                (typical.contains(&g), shared.get(&g).copied().unwrap_or(0))
            });
            match rarest {
                Some((at, w)) => {
                    let g = gram(w);
                    let s = slot(g, index.shift);
                    if let Some(word) = index.filter.get_mut(s / 64) {
                        *word |= 1 << (s % 64);
                    }
                    index
                        .keys
                        .push((g, i, u32::try_from(at).unwrap_or(u32::MAX)));
                }
                None => index.short.push(i),
            }
        }
        let shift = index.shift;
        index.keys.sort_unstable_by_key(|k| (slot(k.0, shift), k.0));
        let slots = 1usize << (32 - shift);
        let mut at = 0;
        index.buckets = (0..=slots)
            .map(|s| {
                while index.keys.get(at).is_some_and(|k| slot(k.0, shift) < s) {
                    at += 1;
                }
                u32::try_from(at).unwrap_or(u32::MAX)
            })
            .collect();
        index.patterns = patterns;
        index
    }

    /// Calls `found` with the index of every pattern in `value`, at least
    /// once each.
    pub fn each(&self, value: &[u8], mut found: impl FnMut(usize)) {
        for &i in &self.short {
            if let Some(p) = self.patterns.get(i as usize)
                && value.windows(p.len()).any(|w| w.eq_ignore_ascii_case(p))
            {
                found(i as usize);
            }
        }
        if self.keys.is_empty() {
            return;
        }
        for (at, w) in value.windows(GRAM).enumerate() {
            let g = fold(u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
            let s = slot(g, self.shift);
            let word = self.filter.get(s / 64).copied().unwrap_or(0);
            if word & (1 << (s % 64)) != 0 {
                self.verify(value, at, g, s, &mut found);
            }
        }
    }

    /// Reports the patterns keyed by `g` that are in `value` where that
    /// 4-gram, at `at`, puts them.
    #[cold]
    fn verify(&self, value: &[u8], at: usize, g: u32, s: usize, found: &mut impl FnMut(usize)) {
        let from = self.buckets.get(s).copied().unwrap_or(0) as usize;
        let to = self.buckets.get(s + 1).copied().unwrap_or(0) as usize;
        for &(key, i, offset) in self.keys.get(from..to).unwrap_or_default() {
            if key != g {
                continue;
            }
            let Some(start) = at.checked_sub(offset as usize) else {
                continue;
            };
            let Some(p) = self.patterns.get(i as usize) else {
                continue;
            };
            if value
                .get(start..start + p.len())
                .is_some_and(|v| v.eq_ignore_ascii_case(p))
            {
                found(i as usize);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(s: &Substrings, value: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        s.each(value, |p| out.push(p));
        out.sort_unstable();
        out.dedup();
        out
    }

    #[test]
    fn every_pattern_in_the_value_whatever_the_overlaps_and_case() {
        let patterns: Vec<Vec<u8>> = ["abcd", "bcde", "c", "xyzw", "cdeab", "", "GET", "dab"]
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect();
        let s = Substrings::build(&patterns);
        assert_eq!(found(&s, b"ABCDEab"), [0, 1, 2, 4]);
        assert_eq!(found(&s, b"get"), [6]);
        assert_eq!(found(&s, b"xyz"), [] as [usize; 0]);
        assert_eq!(found(&s, b""), [] as [usize; 0]);
        let long = [b"x".repeat(1000), b"xyzW".to_vec()].concat();
        assert_eq!(found(&s, &long), [3]);
    }
}
