//! Address ranges (CIDRs, `a-b` spans) to ids, looked up by binary search:
//! the ranges are cut at every boundary into disjoint segments, each with
//! the ids that cover it, so a lookup is one search whatever the overlaps.
//!
//! Addresses are `u128`, IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`), the
//! form [`crate::Flow::src_octets`] gives.

/// IPv4 addresses as IPv6 (`::ffff:a.b.c.d`).
pub const V4_MAPPED: u128 = 0xffff_0000_0000;

/// Disjoint segments `[starts[i], starts[i+1])` and the ids of each, and
/// for IPv4 the first segment at or after each /16: an address is searched
/// for among the few segments of its /16, not all of them, which keeps a
/// lookup in a million ranges to a couple of cache lines.
#[derive(Debug, Default)]
pub struct RangeMap {
    /// For /16 block `b`, `v4_index[b]` segments start at or before its
    /// first address; 65,537 entries (the last is past IPv4).
    v4_index: Vec<u32>,
    /// A bit per /16 block that some id covers part of: most addresses in
    /// traffic fall in blocks no range touches, and this 8 KiB answers
    /// them without touching the index.
    v4_covered: Vec<u64>,
    starts: Vec<u128>,
    /// `starts` as offsets from [`V4_MAPPED`] (clamped to 0 and 2^32), so
    /// the search inside a /16 compares 64-bit words: half the memory of
    /// `u128` and, in a 32-bit sandbox, a fraction of the instructions.
    v4_starts: Vec<u64>,
    /// For segment `i`, `ids[offsets[i]..offsets[i+1]]`.
    offsets: Vec<u32>,
    ids: Vec<u32>,
    ranges: usize,
    ids_total: usize,
}

impl RangeMap {
    /// Builds the map from inclusive `(low, high, id)` ranges.
    pub fn build(ranges: &[(u128, u128, u32)]) -> Self {
        // (boundary, +1 for a start / -1 for one past an end, id)
        let mut events: Vec<(u128, bool, u32)> = Vec::with_capacity(ranges.len() * 2);
        for &(low, high, id) in ranges {
            events.push((low, true, id));
            if let Some(after) = high.checked_add(1) {
                events.push((after, false, id));
            }
        }
        events.sort_unstable_by_key(|&(at, start, id)| (at, start, id));
        let mut map = RangeMap {
            ranges: ranges.len(),
            ..RangeMap::default()
        };
        let mut distinct: Vec<u32> = ranges.iter().map(|r| r.2).collect();
        distinct.sort_unstable();
        distinct.dedup();
        map.ids_total = distinct.len();
        let mut active: Vec<u32> = Vec::new();
        let mut i = 0;
        while i < events.len() {
            let at = events[i].0;
            while i < events.len() && events[i].0 == at {
                let (_, start, id) = events[i];
                if start {
                    active.push(id);
                } else if let Some(pos) = active.iter().position(|&a| a == id) {
                    active.swap_remove(pos);
                }
                i += 1;
            }
            let mut segment = active.clone();
            segment.sort_unstable();
            segment.dedup();
            map.starts.push(at);
            map.offsets
                .push(u32::try_from(map.ids.len()).unwrap_or(u32::MAX));
            map.ids.extend(segment);
        }
        map.offsets
            .push(u32::try_from(map.ids.len()).unwrap_or(u32::MAX));
        map.v4_index = (0..=1u128 << 16)
            .map(|block| {
                let first = V4_MAPPED + (block << 16);
                u32::try_from(map.starts.partition_point(|&s| s <= first)).unwrap_or(u32::MAX)
            })
            .collect();
        map.v4_starts = map
            .starts
            .iter()
            .map(|&s| s.saturating_sub(V4_MAPPED).min(1 << 32) as u64)
            .collect();
        map.v4_covered = vec![0; (1 << 16) / 64];
        for block in 0..1usize << 16 {
            let (from, to) = (
                map.v4_index[block] as usize,
                map.v4_index[block + 1] as usize,
            );
            // The segment in force at the block's start, and those starting
            // in it (and perhaps one at the next block's start: harmless).
            let covered = (from.saturating_sub(1)..to)
                .any(|segment| map.offsets[segment] != map.offsets[segment + 1]);
            if covered {
                map.v4_covered[block / 64] |= 1 << (block % 64);
            }
        }
        map
    }

    /// The ids whose ranges hold `ip`, ascending.
    pub fn get(&self, ip: u128) -> &[u32] {
        // The last segment starting at or before `ip`.
        let after = if ip >> 32 == V4_MAPPED >> 32 {
            let block = ((ip >> 16) & 0xffff) as usize;
            let word = self.v4_covered.get(block / 64).copied().unwrap_or(0);
            if word & (1 << (block % 64)) == 0 {
                return &[];
            }
            let from = self.v4_index.get(block).copied().unwrap_or(0) as usize;
            let to = self.v4_index.get(block + 1).copied().unwrap_or(0) as usize;
            let offset = (ip - V4_MAPPED) as u64;
            from + self
                .v4_starts
                .get(from..to)
                .unwrap_or_default()
                .partition_point(|&s| s <= offset)
        } else {
            self.starts.partition_point(|&s| s <= ip)
        };
        let Some(segment) = after.checked_sub(1) else {
            return &[];
        };
        let from = self.offsets.get(segment).copied().unwrap_or(0) as usize;
        let to = self.offsets.get(segment + 1).copied().unwrap_or(0) as usize;
        self.ids.get(from..to).unwrap_or_default()
    }

    /// Whether no range was given.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Ranges it was built from.
    pub fn len(&self) -> usize {
        self.ranges
    }

    /// Distinct ids.
    pub fn id_count(&self) -> usize {
        self.ids_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_ranges_give_every_covering_id() {
        let map = RangeMap::build(&[(10, 20, 1), (15, 30, 2), (15, 15, 3), (40, u128::MAX, 4)]);
        assert_eq!(map.get(9), &[] as &[u32]);
        assert_eq!(map.get(10), &[1]);
        assert_eq!(map.get(15), &[1, 2, 3]);
        assert_eq!(map.get(16), &[1, 2]);
        assert_eq!(map.get(21), &[2]);
        assert_eq!(map.get(31), &[] as &[u32]);
        assert_eq!(map.get(u128::MAX), &[4]);
        assert_eq!((map.len(), map.id_count()), (4, 4));
        assert!(RangeMap::build(&[]).get(5).is_empty());

        let v4 = |a: [u8; 4]| u128::from(std::net::Ipv4Addr::from(a).to_ipv6_mapped());
        let map = RangeMap::build(&[
            (v4([10, 0, 0, 0]), v4([10, 0, 255, 255]), 7),
            (v4([192, 0, 2, 1]), v4([192, 0, 2, 1]), 8),
        ]);
        assert_eq!(map.get(v4([10, 0, 9, 9])), &[7]);
        assert_eq!(map.get(v4([192, 0, 2, 1])), &[8]);
        assert!(map.get(v4([192, 0, 2, 2])).is_empty());
        assert!(map.get(v4([10, 1, 0, 0])).is_empty());
    }

    #[test]
    fn lookups_agree_with_a_scan_across_block_edges() {
        let v4 = |a: u32| V4_MAPPED | u128::from(a);
        // Ranges that start, end and straddle /16 edges, and an IPv6 one.
        let ranges = [
            (v4(0x0a00_ff00), v4(0x0a01_00ff), 0),
            (v4(0x0a01_0000), v4(0x0a01_0000), 1),
            (v4(0x0a01_0001), v4(0x0a02_ffff), 2),
            (v4(0xffff_ff00), v4(0xffff_ffff), 3),
            (v4(0), v4(0), 4),
            // Many blocks, none with a boundary inside.
            (v4(0x0c00_0000), v4(0x0cff_ffff), 6),
            (1 << 120, (1 << 121) - 1, 5),
        ];
        let map = RangeMap::build(&ranges);
        let mut probes: Vec<u128> = ranges
            .iter()
            .flat_map(|&(l, h, _)| [l.wrapping_sub(1), l, l + 1, h - 1, h, h.wrapping_add(1)])
            .collect();
        probes.extend([
            v4(0x0a01_8000),
            v4(0x0b00_0000),
            v4(0x0c80_1234),
            v4(0x0d00_0000),
            v4(0x7f00_0001),
            0,
            u128::MAX,
        ]);
        for ip in probes {
            let want: Vec<u32> = ranges
                .iter()
                .filter(|&&(l, h, _)| l <= ip && ip <= h)
                .map(|r| r.2)
                .collect();
            assert_eq!(map.get(ip), want.as_slice(), "{ip:#x}");
        }
    }
}
