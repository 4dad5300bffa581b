//! The anchors found in recent values of buffers whose values repeat.
//!
//! A network's user agents are its browsers and tools, its certificate
//! subjects and issuers its servers': a few hundred distinct values behind
//! millions of flows, and the longest values rules read. Scanning a
//! 110-byte user agent costs more than the rest of the flow; remembering
//! what the last scan of the same value found costs a hash and a compare.
//! Names, URIs and hashes vary too much to gain from this.

use std::hash::BuildHasher;

use crate::rule::Buffer;

/// Direct-mapped: a slot per hash, the newest value wins it.
const SLOTS: usize = 512;

#[derive(Debug, Default)]
struct Slot {
    buffer: Option<Buffer>,
    hash: u64,
    value: Vec<u8>,
    groups: Vec<u32>,
}

#[derive(Debug)]
pub struct Memo {
    slots: Vec<Slot>,
    hasher: foldhash::fast::RandomState,
}

impl Default for Memo {
    fn default() -> Self {
        Self {
            slots: std::iter::repeat_with(Slot::default).take(SLOTS).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

/// Whether a buffer's values repeat enough to remember.
pub fn remembers(buffer: Buffer) -> bool {
    matches!(
        buffer,
        Buffer::HttpUserAgent | Buffer::TlsSubject | Buffer::TlsIssuer
    )
}

impl Memo {
    /// The groups found in `value` of `buffer`: remembered ones, or those
    /// `find` reports, remembered for next time.
    pub fn groups(
        &mut self,
        buffer: Buffer,
        value: &[u8],
        find: impl FnOnce(&mut dyn FnMut(u32)),
    ) -> &[u32] {
        let hash = self.hasher.hash_one((buffer, value));
        let at = (hash as usize) % SLOTS;
        let Some(slot) = self.slots.get_mut(at) else {
            return &[];
        };
        if slot.hash != hash || slot.buffer != Some(buffer) || !same(&slot.value, value) {
            slot.buffer = Some(buffer);
            slot.hash = hash;
            slot.value.clear();
            slot.value.extend_from_slice(value);
            slot.groups.clear();
            find(&mut |g| slot.groups.push(g));
            slot.groups.sort_unstable();
            slot.groups.dedup();
        }
        &slot.groups
    }
}

/// Byte equality eight bytes at a time: inside the sandbox `==` on slices
/// is the C library's byte-by-byte `memcmp`, slower than the scan it saves
/// on a long user agent.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tails = a8.remainder() == b8.remainder();
    tails
        && a8.zip(b8).all(|(x, y)| {
            u64::from_ne_bytes(x.try_into().unwrap_or_default())
                == u64::from_ne_bytes(y.try_into().unwrap_or_default())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_per_buffer_and_value() {
        let mut memo = Memo::default();
        let mut scans = 0;
        let mut groups = |memo: &mut Memo, buffer, value: &str, found: &[u32]| {
            memo.groups(buffer, value.as_bytes(), |report| {
                scans += 1;
                found.iter().for_each(|&g| report(g));
            })
            .to_vec()
        };
        assert_eq!(
            groups(&mut memo, Buffer::HttpUserAgent, "curl/8", &[3, 1, 3]),
            [1, 3]
        );
        assert_eq!(
            groups(&mut memo, Buffer::HttpUserAgent, "curl/8", &[9]),
            [1, 3]
        );
        assert_eq!(
            groups(&mut memo, Buffer::TlsSubject, "curl/8", &[]),
            [] as [u32; 0]
        );
        assert_eq!(
            groups(&mut memo, Buffer::HttpUserAgent, "curl/9", &[2]),
            [2]
        );
        // The closure's borrow of `scans` ends with its last use.
        assert_eq!(scans, 3);
    }

    #[test]
    fn same_bytes() {
        let long = b"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101";
        assert!(same(long, long));
        assert!(same(b"", b""));
        let mut other = long.to_vec();
        for i in [0, 7, 8, long.len() - 1] {
            other[i] ^= 1;
            assert!(!same(long, &other), "byte {i}");
            other[i] ^= 1;
        }
        assert!(!same(long, &long[1..]));
    }
}
