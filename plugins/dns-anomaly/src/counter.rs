//! Counting distinct names in bounded memory: exactly while there are few,
//! then with a HyperLogLog sketch, so that a domain under a random-subdomain
//! flood costs a kilobyte however many names it sees.

use serde::{Deserialize, Serialize};

/// Names counted exactly before switching to the sketch; above every
/// default threshold, so alerts fire on exact counts.
const EXACT: usize = 128;
/// log2 of the sketch's registers: 1,024 registers, about 3 % error.
const BITS: u32 = 10;
const REGISTERS: usize = 1 << BITS;

/// Distinct 64-bit hashes seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Distinct {
    /// Up to [`FEW`] hashes, inline: most windows see a handful of names,
    /// and this way they cost no allocation.
    Few([u64; FEW], u8),
    /// Sorted hashes.
    Exact(Vec<u64>),
    /// HyperLogLog registers.
    Sketch(Box<Sketch>),
}

/// HyperLogLog registers, with the harmonic sum and the empty registers
/// kept up to date so that a count costs no pass over them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sketch {
    registers: Vec<u8>,
    /// Sum of 2^-register.
    sum: f64,
    zeros: u32,
}

impl Sketch {
    fn new() -> Self {
        Self {
            registers: vec![0; REGISTERS],
            sum: REGISTERS as f64,
            zeros: REGISTERS as u32,
        }
    }

    fn observe(&mut self, hash: u64) -> bool {
        let index = (hash >> (64 - BITS)) as usize;
        // Rank of the first set bit in the rest, 1-based; the low bit keeps
        // an all-zero rest finite.
        let rank = ((hash << BITS) | 1).leading_zeros() as u8 + 1;
        match self.registers.get_mut(index) {
            Some(r) if *r < rank => {
                if *r == 0 {
                    self.zeros -= 1;
                }
                self.sum += pow2(rank) - pow2(*r);
                *r = rank;
                true
            }
            _ => false,
        }
    }

    fn estimate(&self) -> u32 {
        let m = REGISTERS as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let raw = alpha * m * m / self.sum;
        // Linear counting is the better estimate while many registers are
        // empty.
        let estimate = if raw <= 2.5 * m && self.zeros > 0 {
            m * (m / f64::from(self.zeros)).ln()
        } else {
            raw
        };
        estimate.round().min(f64::from(u32::MAX)) as u32
    }
}

/// 2^-rank.
fn pow2(rank: u8) -> f64 {
    f64::from_bits((1023u64.saturating_sub(u64::from(rank))) << 52)
}

/// Hashes kept inline.
const FEW: usize = 4;

impl Default for Distinct {
    fn default() -> Self {
        Self::Few([0; FEW], 0)
    }
}

impl Distinct {
    /// Adds `hash`; returns whether the count may have grown.
    pub fn insert(&mut self, hash: u64) -> bool {
        match self {
            Distinct::Few(hashes, n) => {
                let held = &hashes[..usize::from(*n)];
                if held.contains(&hash) {
                    return false;
                }
                if usize::from(*n) < FEW {
                    hashes[usize::from(*n)] = hash;
                    *n += 1;
                } else {
                    let mut all = Vec::with_capacity(2 * FEW);
                    all.extend_from_slice(held);
                    all.push(hash);
                    all.sort_unstable();
                    *self = Distinct::Exact(all);
                }
                true
            }
            Distinct::Exact(hashes) => match hashes.binary_search(&hash) {
                Ok(_) => false,
                Err(at) if hashes.len() < EXACT => {
                    hashes.insert(at, hash);
                    true
                }
                Err(_) => {
                    let mut sketch = Sketch::new();
                    for &h in hashes.iter().chain(std::iter::once(&hash)) {
                        sketch.observe(h);
                    }
                    *self = Distinct::Sketch(Box::new(sketch));
                    true
                }
            },
            Distinct::Sketch(sketch) => sketch.observe(hash),
        }
    }

    /// The number of distinct hashes: exact up to 128, estimated above.
    pub fn count(&self) -> u32 {
        match self {
            Distinct::Few(_, n) => u32::from(*n),
            Distinct::Exact(hashes) => hashes.len() as u32,
            Distinct::Sketch(sketch) => sketch.estimate(),
        }
    }

    /// Bytes of heap this counter holds.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Distinct::Few(..) => 0,
            Distinct::Exact(hashes) => hashes.capacity() * 8,
            Distinct::Sketch(sketch) => sketch.registers.len() + 32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(i: u64) -> u64 {
        // SplitMix64's finaliser: distinct inputs, well-spread hashes.
        let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn small_counts_are_exact_and_repeats_do_not_count() {
        let mut d = Distinct::default();
        for i in 0..100 {
            d.insert(spread(i));
            d.insert(spread(i));
        }
        assert_eq!(d.count(), 100);
        assert!(!d.insert(spread(5)));
    }

    #[test]
    fn large_counts_are_estimated_in_fixed_memory() {
        let mut d = Distinct::default();
        for i in 0..100_000 {
            d.insert(spread(i));
        }
        let n = f64::from(d.count());
        assert!((n - 100_000.0).abs() / 100_000.0 < 0.15, "{n}");
        assert_eq!(d.heap_bytes(), 1024 + 32);
        // Just past the switch, the estimate is still close.
        let mut d = Distinct::default();
        for i in 0..200 {
            d.insert(spread(i));
        }
        let n = f64::from(d.count());
        assert!((n - 200.0).abs() < 30.0, "{n}");
        // The running sums match a count from scratch.
        if let Distinct::Sketch(sketch) = &d {
            let sum: f64 = sketch
                .registers
                .iter()
                .map(|&r| 2f64.powi(-i32::from(r)))
                .sum();
            assert!((sum - sketch.sum).abs() < 1e-9);
        }
    }
}
