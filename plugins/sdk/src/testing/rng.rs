//! A seeded pseudo-random generator for test data, examples and
//! deterministic training: the same seed gives the same stream on every
//! machine and in every crate version, which a generated fixture or a model
//! that must retrain byte for byte needs.

/// SplitMix64 (Steele, Lea and Flood, 2014): 64-bit state, every seed
/// valid, good enough statistics for test traffic and shuffles. Not for
/// anything an adversary may predict.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n` > 0; the modulo bias is immaterial for the
    /// small `n` of test data).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `len` characters drawn from `alphabet` (ASCII, not empty): a random
    /// host label, say.
    pub fn label(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| char::from(alphabet[self.below(alphabet.len() as u64) as usize]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_the_published_one() {
        // First outputs for seed 0 of the reference implementation
        // (Vigna's splitmix64.c).
        let mut rng = SplitMix64(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }
}
