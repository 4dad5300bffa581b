//! Domain names: the registered domain by the public suffix list, and the
//! character statistics that tell random labels from words.

use psl::Psl as _;

/// Longest name worth looking at: a DNS name has at most 253 characters as
/// text, so anything longer did not come from a resolver.
pub const MAX_NAME: usize = 253;

/// A query name cut at its registered domain. All parts borrow the
/// lower-cased name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Name<'a> {
    /// The whole name.
    pub full: &'a [u8],
    /// The registered domain (`example.ac.jp`), or the whole name when it is
    /// itself a public suffix or has a single label.
    pub registered: &'a [u8],
    /// The public suffix (`ac.jp`); empty when there is none.
    pub suffix: &'a [u8],
}

impl<'a> Name<'a> {
    /// Splits `name`, which must be lower case and without the trailing dot.
    pub fn split(full: &'a [u8]) -> Self {
        match psl::List.domain(full) {
            Some(domain) => {
                let registered = domain.as_bytes();
                // The suffix is the tail of the registered domain.
                let suffix_len = domain.suffix().as_bytes().len().min(registered.len());
                Self {
                    full,
                    registered,
                    suffix: &registered[registered.len() - suffix_len..],
                }
            }
            None => Self {
                full,
                registered: full,
                suffix: psl::List.suffix(full).map_or(&[][..], |s| s.as_bytes()),
            },
        }
    }

    /// The label the owner chose: the registered domain without its suffix
    /// (`example` of `www.example.ac.jp`).
    pub fn label(&self) -> &'a [u8] {
        let cut = self.registered.len().saturating_sub(self.suffix.len() + 1);
        if self.suffix.is_empty() || self.registered.len() <= self.suffix.len() {
            return self.registered;
        }
        &self.registered[..cut]
    }

    /// The labels left of the registered domain (`a.b` of
    /// `a.b.example.com`); empty when there are none.
    pub fn subdomain(&self) -> &'a [u8] {
        let cut = self.full.len().saturating_sub(self.registered.len() + 1);
        if self.full.len() <= self.registered.len() {
            return &[];
        }
        &self.full[..cut]
    }
}

/// Copies `name` into `buf` lower-cased, without a trailing dot; `None`
/// when it is empty or too long to be a DNS name.
pub fn normalise<'b>(name: &[u8], buf: &'b mut [u8; MAX_NAME]) -> Option<&'b [u8]> {
    let name = name.strip_suffix(b".").unwrap_or(name);
    if name.is_empty() || name.len() > MAX_NAME {
        return None;
    }
    let out = &mut buf[..name.len()];
    for (o, c) in out.iter_mut().zip(name) {
        *o = c.to_ascii_lowercase();
    }
    Some(out)
}

/// Character statistics of a string of DNS labels.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// Characters, dots excluded.
    pub len: u32,
    /// Share of digits.
    pub digits: f32,
    /// Share of vowels among letters.
    pub vowels: f32,
    /// Shannon entropy of the characters, bits per character.
    pub entropy: f32,
    /// Longest run of consonants.
    pub consonant_run: u32,
    /// Longest run of digits.
    pub digit_run: u32,
    /// Hyphens.
    pub hyphens: u32,
    /// Number of labels.
    pub labels: u32,
    /// Length of the longest label.
    pub longest_label: u32,
    /// Distinct characters.
    pub distinct: u32,
}

impl Stats {
    /// Measures `text` (labels separated by dots).
    pub fn of(text: &[u8]) -> Self {
        let mut counts = [0u16; 256];
        // The range of bytes seen, so that the entropy sum visits only it
        // (in the same order, so to the same result).
        let (mut lo, mut hi) = (u8::MAX, 0u8);
        let mut s = Stats::default();
        if text.is_empty() {
            return s;
        }
        s.labels = 1;
        let (mut letters, mut vowels, mut digits) = (0u32, 0u32, 0u32);
        let (mut crun, mut drun, mut lrun) = (0u32, 0u32, 0u32);
        for &c in text {
            if c == b'.' {
                s.labels += 1;
                crun = 0;
                drun = 0;
                lrun = 0;
                continue;
            }
            s.len += 1;
            lrun += 1;
            s.longest_label = s.longest_label.max(lrun);
            counts[usize::from(c)] = counts[usize::from(c)].saturating_add(1);
            (lo, hi) = (lo.min(c), hi.max(c));
            if c.is_ascii_digit() {
                digits += 1;
                drun += 1;
                s.digit_run = s.digit_run.max(drun);
                crun = 0;
            } else if c.is_ascii_alphabetic() {
                letters += 1;
                drun = 0;
                if matches!(c, b'a' | b'e' | b'i' | b'o' | b'u') {
                    vowels += 1;
                    crun = 0;
                } else {
                    crun += 1;
                    s.consonant_run = s.consonant_run.max(crun);
                }
            } else {
                if c == b'-' {
                    s.hyphens += 1;
                }
                crun = 0;
                drun = 0;
            }
        }
        if s.len == 0 {
            return s;
        }
        let n = s.len as f32;
        s.digits = digits as f32 / n;
        s.vowels = if letters == 0 {
            0.0
        } else {
            vowels as f32 / letters as f32
        };
        let mut entropy = 0.0f32;
        for &count in counts[usize::from(lo)..=usize::from(hi)]
            .iter()
            .filter(|&&c| c > 0)
        {
            let p = f32::from(count) / n;
            entropy -= p * p.log2();
            s.distinct += 1;
        }
        s.entropy = entropy;
        s
    }

    /// A rough 0–1 measure of how random the labels look, for evidence and
    /// for picking tunnelling candidates: high entropy for their length,
    /// digits mixed with letters, few vowels, long consonant runs.
    pub fn randomness(&self) -> f32 {
        if self.len == 0 {
            return 0.0;
        }
        // The most entropy `len` characters can have over a 36-letter
        // alphabet; short strings cannot reach 5.17 bits.
        let max_entropy = (self.len.min(36) as f32).log2().max(1.0);
        let entropy = (self.entropy / max_entropy).min(1.0);
        let mixed = if self.digits > 0.0 && self.digits < 1.0 {
            (self.digits * 4.0).min(1.0)
        } else {
            0.0
        };
        let vowel_gap = ((0.38 - self.vowels) / 0.38).clamp(0.0, 1.0);
        let run = (self.consonant_run.saturating_sub(2) as f32 / 4.0).min(1.0);
        (0.4 * entropy + 0.2 * mixed + 0.2 * vowel_gap + 0.2 * run).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(name: &str) -> (String, String, String, String) {
        let n = Name::split(name.as_bytes());
        let s = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        (s(n.registered), s(n.suffix), s(n.label()), s(n.subdomain()))
    }

    #[test]
    fn names_split_at_the_registered_domain() {
        assert_eq!(
            parts("www.example.ac.jp"),
            (
                "example.ac.jp".into(),
                "ac.jp".into(),
                "example".into(),
                "www".into()
            )
        );
        assert_eq!(
            parts("a.b.example.com"),
            (
                "example.com".into(),
                "com".into(),
                "example".into(),
                "a.b".into()
            )
        );
        // Private suffixes count: a dynamic-DNS customer owns its label.
        assert_eq!(parts("x7kq2.ddns.net").0, "x7kq2.ddns.net");
        // A bare suffix has no label of its own.
        assert_eq!(parts("com").0, "com");
        assert_eq!(parts("com").3, "");
        // Unknown top-level domains follow the implicit `*` rule.
        assert_eq!(parts("host.corp.internal").0, "corp.internal");
    }

    #[test]
    fn normalising_lowercases_and_drops_the_root() {
        let mut buf = [0; MAX_NAME];
        assert_eq!(
            normalise(b"WWW.Example.COM.", &mut buf),
            Some(&b"www.example.com"[..])
        );
        assert_eq!(normalise(b".", &mut buf), None);
        assert_eq!(normalise(&[b'a'; 300], &mut buf), None);
    }

    #[test]
    fn random_labels_score_higher_than_words() {
        let word = Stats::of(b"mail.university");
        let random = Stats::of(b"x7kq2vz9rtw4p");
        assert!(random.randomness() > word.randomness() + 0.2);
        assert_eq!(word.labels, 2);
        assert_eq!(word.longest_label, 10);
        assert_eq!(random.consonant_run, 3);
    }
}
