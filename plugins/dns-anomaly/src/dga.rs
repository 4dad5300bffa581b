//! The DGA model: a multinomial logistic regression (benign and one class
//! per DGA family) over hashed character n-grams of a name and a few dense
//! statistics, scoring how likely a domain was made by a
//! domain-generation algorithm.
//!
//! Hand-built statistics (n-gram log-likelihood against a benign corpus,
//! entropy, consonant runs) leave too many DGA families looking like words;
//! a discriminative model learns which n-grams tell the families apart. Its
//! parameters are a ruleset file (`rulesets/dns-anomaly/dga-model.toml`),
//! written by [`train`] and read by [`Model::parse`].

pub mod train;

use base64::Engine as _;
use serde::Deserialize;

use crate::names::{Name, Stats};

/// Shortest and longest n-gram of the registered label.
const LABEL_NGRAMS: std::ops::RangeInclusive<usize> = 1..=4;
/// Longest n-gram of the subdomain part: it is only a weak hint.
const SUB_NGRAMS: std::ops::RangeInclusive<usize> = 1..=3;
/// N-grams of the label's consonant/vowel shape.
const SHAPE_NGRAMS: std::ops::RangeInclusive<usize> = 2..=6;
/// Longest text hashed into n-grams; longer labels are cut (a DGA label is
/// never near it, a tunnel's is scored elsewhere).
const MAX_TEXT: usize = 64;

/// Names of the dense features, in the order of [`dense`]; the model file
/// lists them so that a file from another version is refused.
pub const DENSE: [&str; 17] = [
    "label_len",
    "label_digits",
    "label_vowels",
    "label_entropy",
    "label_consonant_run",
    "label_digit_run",
    "label_hyphens",
    "label_distinct_ratio",
    "labels",
    "subdomain_len",
    "suffix_len",
    "label_word_coverage",
    "label_words",
    "label_longest_word",
    "label_logp_mean",
    "label_logp_min",
    "label_unseen_trigrams",
];

/// Words the model segments labels into (`words` of the model file).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lexicon {
    words: foldhash::HashSet<u64>,
    /// Log-probability of each character given the two before it, from
    /// the words (a character trigram model of natural language).
    trigram: Vec<f32>,
}

/// Symbols of the trigram model: `a`–`z`, a word boundary, anything else.
const SYMBOLS: usize = 28;

fn symbol(c: u8) -> usize {
    match c {
        b'a'..=b'z' => usize::from(c - b'a'),
        b'^' => 26,
        _ => 27,
    }
}

/// Shortest and longest word looked up.
const WORD_LEN: std::ops::RangeInclusive<usize> = 3..=12;

impl Lexicon {
    /// A lexicon of whitespace-separated words.
    pub fn new(words: &str) -> Self {
        let mut counts = vec![0u32; SYMBOLS * SYMBOLS * SYMBOLS];
        for word in words.split_whitespace() {
            let mut ctx = (26, 26);
            for &c in word.as_bytes().iter().chain(b"^") {
                let c = symbol(c);
                counts[(ctx.0 * SYMBOLS + ctx.1) * SYMBOLS + c] += 1;
                ctx = (ctx.1, c);
            }
        }
        // Add-half smoothing: an unseen trigram is unlikely, not impossible.
        let trigram = counts
            .chunks(SYMBOLS)
            .flat_map(|next| {
                let total: u32 = next.iter().sum();
                next.iter().map(move |&n| {
                    ((f64::from(n) + 0.5) / (f64::from(total) + 0.5 * SYMBOLS as f64)).ln() as f32
                })
            })
            .collect();
        Self {
            words: words
                .split_whitespace()
                .map(|w| fnv1a(5, w.as_bytes()))
                .collect(),
            trigram,
        }
    }

    /// Mean and lowest log-probability per character of `label` under the
    /// trigram model (runs of letters are words; other characters break
    /// them), and the share of characters whose trigram the words never
    /// have.
    fn likelihood(&self, label: &[u8]) -> (f32, f32, f32) {
        if self.trigram.is_empty() || label.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        let (mut sum, mut min, mut unseen, mut n) = (0.0f32, 0.0f32, 0u32, 0u32);
        let mut ctx = (26, 26);
        for &c in label.iter().take(MAX_TEXT).chain(b"^") {
            let c = if c.is_ascii_lowercase() {
                symbol(c)
            } else {
                26
            };
            if c == 26 && ctx.1 == 26 {
                continue;
            }
            let lp = self.trigram[(ctx.0 * SYMBOLS + ctx.1) * SYMBOLS + c];
            sum += lp;
            min = min.min(lp);
            n += 1;
            // Below add-half's floor for a context seen 1,000 times.
            if lp < -7.5 {
                unseen += 1;
            }
            ctx = if c == 26 { (26, 26) } else { (ctx.1, c) };
        }
        let n = n.max(1) as f32;
        (sum / n, min, unseen as f32 / n)
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether it has no words.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Splits `label` into words so that as many characters as possible are
    /// covered, with as few words as possible among equals. Calls `f` with
    /// each word; returns (characters covered, words, longest word).
    fn segment<'l>(&self, label: &'l [u8], mut f: impl FnMut(&'l [u8])) -> (u32, u32, u32) {
        let n = label.len().min(MAX_TEXT);
        // best[i]: (covered, -words) of label[..i], and where its last word
        // starts (i when character i - 1 is not covered). Relaxed forwards,
        // so that the words starting at one position share their hash's
        // prefix.
        let mut best = [(0u32, i32::MIN, 0usize); MAX_TEXT + 1];
        best[0] = (0, 0, 0);
        for start in 0..=n {
            if start > 0 {
                let skip = (best[start - 1].0, best[start - 1].1, start);
                if (skip.0, skip.1) > (best[start].0, best[start].1) {
                    best[start] = skip;
                }
            }
            let mut h = fnv1a(5, b"");
            for (len, &c) in label[start..n].iter().take(*WORD_LEN.end()).enumerate() {
                h = fnv_step(h, c);
                let (len, end) = (len + 1, start + len + 1);
                if len >= *WORD_LEN.start() && self.words.contains(&h) {
                    let cand = (best[start].0 + len as u32, best[start].1 - 1, start);
                    if (cand.0, cand.1) > (best[end].0, best[end].1) {
                        best[end] = cand;
                    }
                }
            }
        }
        let (covered, words) = (best[n].0, best[n].1.unsigned_abs());
        let mut longest = 0;
        let mut i = n;
        while i > 0 {
            let start = best[i].2;
            if start == i {
                i -= 1;
            } else {
                f(&label[start..i]);
                longest = longest.max((i - start) as u32);
                i = start;
            }
        }
        (covered, words, longest)
    }
}

/// The features of `name`: calls `f(hash, weight)` for every hashed
/// feature (n-grams of the label, of its consonant/vowel shape and of the
/// subdomain part, with `^`/`$` boundary markers; the words the label
/// splits into; the suffix as one token) and returns the dense ones,
/// unscaled. Each n-gram group is scaled to unit length, so long names do
/// not outvote short ones.
pub fn features(
    name: &Name<'_>,
    lexicon: &Lexicon,
    mut f: impl FnMut(u64, f32),
) -> [f32; DENSE.len()] {
    let label = name.label();
    ngrams(fnv1a(1, b""), label, LABEL_NGRAMS, &mut f);
    ngrams(fnv2(13, name.suffix, b""), label, 2..=2, &mut f);
    // The shape of the label (consonant, vowel, digit, other): generated
    // names that are pronounceable by design still alternate too regularly.
    let mut shape = [0u8; MAX_TEXT];
    let n = label.len().min(MAX_TEXT);
    for (s, &c) in shape.iter_mut().zip(&label[..n]) {
        *s = match c {
            b'a' | b'e' | b'i' | b'o' | b'u' => b'v',
            b'y' => b'y',
            b'a'..=b'z' => b'c',
            b'0'..=b'9' => b'd',
            _ => b'-',
        };
    }
    ngrams(fnv1a(4, b""), &shape[..n], SHAPE_NGRAMS, &mut f);
    ngrams(fnv2(12, name.suffix, b""), &shape[..n], 3..=3, &mut f);
    ngrams(fnv1a(2, b""), name.subdomain(), SUB_NGRAMS, &mut f);
    f(fnv1a(3, name.suffix), 1.0);
    // The words, alone, with the suffix, and in pairs: the dictionary
    // families draw from small word lists and put them under few suffixes.
    let mut list: [&[u8]; MAX_TEXT / 3] = [&[]; MAX_TEXT / 3];
    let mut count = 0;
    let (covered, words, longest) = lexicon.segment(label, |w| {
        f(fnv1a(6, w), 0.5);
        if let Some(slot) = list.get_mut(count) {
            *slot = w;
            count += 1;
        }
    });
    for w in &list[..count] {
        f(fnv2(9, name.suffix, w), 0.5);
    }
    for pair in list[..count].windows(2) {
        f(fnv2(10, pair[0], pair[1]), 0.5);
    }

    let (logp_mean, logp_min, unseen) = lexicon.likelihood(label);
    let stats = Stats::of(label);
    let full = Stats::of(name.full);
    let per_char = |x: u32| {
        if stats.len == 0 {
            0.0
        } else {
            x as f32 / stats.len as f32
        }
    };
    let dense = [
        stats.len as f32,
        stats.digits,
        stats.vowels,
        stats.entropy,
        stats.consonant_run as f32,
        stats.digit_run as f32,
        stats.hyphens as f32,
        per_char(stats.distinct),
        full.labels as f32,
        name.subdomain().len() as f32,
        name.suffix.len() as f32,
        per_char(covered),
        words as f32,
        longest as f32,
        logp_mean,
        logp_min,
        unseen,
    ];
    // The dense features in bins, alone and in pairs, as tokens: a linear
    // model cannot otherwise tell that, say, a low likelihood matters more
    // in a long label than in a short one.
    let mut bins = [0u8; DENSE.len()];
    for (i, (&x, &step)) in dense.iter().zip(&BIN_STEPS).enumerate() {
        bins[i] = (x / step).floor().clamp(-40.0, 40.0) as i8 as u8;
        f(fnv1a(7, &[i as u8, bins[i]]), 0.5);
    }
    // ... and with the suffix: a label of words under `.com` is common, under
    // a country's or a new suffix less so.
    for &i in &SUFFIX_CROSSED {
        f(fnv2(11, name.suffix, &[i, bins[usize::from(i)]]), 0.5);
    }
    for (k, &i) in CROSSED.iter().enumerate() {
        for &j in &CROSSED[k + 1..] {
            f(
                fnv1a(8, &[i, bins[usize::from(i)], j, bins[usize::from(j)]]),
                0.25,
            );
        }
    }
    dense
}

/// Bin widths of the dense features, in the order of [`DENSE`].
const BIN_STEPS: [f32; DENSE.len()] = [
    2.0, 0.1, 0.1, 0.25, 1.0, 1.0, 1.0, 0.1, 1.0, 4.0, 1.0, 0.1, 1.0, 1.0, 0.25, 0.5, 0.05,
];

/// Dense features whose bins are also crossed pairwise: length, digits,
/// vowels, entropy, consonant run, word coverage, mean and lowest
/// likelihood, unseen trigrams.
const CROSSED: [u8; 13] = [0, 1, 2, 3, 4, 5, 7, 10, 11, 12, 14, 15, 16];

/// Dense features whose bins are also crossed with the suffix: all but the
/// number of labels and the suffix's length (the suffix is in the cross).
const SUFFIX_CROSSED: [u8; 15] = [0, 1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 14, 15, 16, 9];

fn ngrams(
    seed: u64,
    text: &[u8],
    sizes: std::ops::RangeInclusive<usize>,
    f: &mut impl FnMut(u64, f32),
) {
    if text.is_empty() {
        return;
    }
    let mut buf = [0u8; MAX_TEXT + 2];
    let text = &text[..text.len().min(MAX_TEXT)];
    buf[0] = b'^';
    buf[1..=text.len()].copy_from_slice(text);
    buf[text.len() + 1] = b'$';
    let marked = &buf[..text.len() + 2];
    let count: usize = sizes
        .clone()
        .map(|n| marked.len().saturating_sub(n - 1))
        .sum();
    let weight = 1.0 / (count as f32).sqrt();
    // The n-grams starting at one position share their hash's prefix: one
    // FNV step per n-gram instead of n.
    let (min, max) = (*sizes.start(), *sizes.end());
    for start in 0..marked.len() {
        let mut h = seed;
        for (len, &c) in marked[start..].iter().take(max).enumerate() {
            h = fnv_step(h, c);
            // `^` and `$` alone say nothing.
            if len + 1 >= min && !(len == 0 && (c == b'^' || c == b'$')) {
                f(h, weight);
            }
        }
    }
}

/// FNV-1a, 64 bits, over a tag byte and `bytes`: stable across platforms
/// and versions, as the model file's buckets depend on it.
pub fn fnv1a(tag: u8, bytes: &[u8]) -> u64 {
    let mut h = fnv_step(0xcbf2_9ce4_8422_2325, tag);
    for &b in bytes {
        h = fnv_step(h, b);
    }
    h
}

/// FNV-1a over a tag byte and two byte strings, with a separator.
fn fnv2(tag: u8, a: &[u8], b: &[u8]) -> u64 {
    let mut h = fnv1a(tag, a);
    h = fnv_step(h, b'|');
    for &c in b {
        h = fnv_step(h, c);
    }
    h
}

/// One byte of FNV-1a.
#[inline]
fn fnv_step(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
}

/// Bucket and sign of a feature hash in a table of `2^bits` weights. The
/// sign halves the bias that colliding features add to each other.
fn bucket(hash: u64, bits: u8) -> (usize, f32) {
    let mixed = hash ^ (hash >> 29);
    let index = (mixed & ((1u64 << bits) - 1)) as usize;
    let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
    (index, sign)
}

/// Most classes (benign and DGA families) a model file may have.
pub const MAX_CLASSES: usize = 32;

/// One bucket's weights, a lane per class (the unused ones zero), scaled
/// back from 16 bits: two cache lines, summed with vector instructions.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(align(64))]
pub(crate) struct Row([f32; MAX_CLASSES]);

/// A trained model: a multinomial (softmax) regression with one class for
/// benign names and one for each DGA family, so that each family gets its
/// own weights (a dictionary family's words under `.net`, a random one's
/// short labels under a country's suffix) where one binary model must
/// average them. The score is the probability of the families together.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    bits: u8,
    /// Classes, the benign one first.
    classes: Vec<String>,
    /// Weights, a row for each bucket, quantised.
    weights: Vec<Row>,
    /// A row of one weight per class for each dense feature.
    dense_weights: Vec<f32>,
    dense_mean: [f32; DENSE.len()],
    dense_scale: [f32; DENSE.len()],
    bias: Vec<f32>,
    lexicon: Lexicon,
    /// Score (probability) from which a name counts as generated.
    pub threshold: f32,
}

impl Model {
    /// The probability that `name` was generated.
    pub fn score(&self, name: &Name<'_>) -> f32 {
        let k = self.classes.len();
        // The buckets first, then the sums in a loop of their own, which
        // keeps the sums in registers.
        let mut buf = [(0u32, 0.0f32); 512];
        let mut n = 0;
        let mut sparse = [0.0f32; MAX_CLASSES];
        let x = features(name, &self.lexicon, |h, v| {
            let (i, sign) = bucket(h, self.bits);
            if n == buf.len() {
                self.add_rows(&mut sparse, &buf);
                n = 0;
            }
            buf[n] = (i as u32, sign * v);
            n += 1;
        });
        self.add_rows(&mut sparse, &buf[..n]);
        let mut z = [0.0f32; MAX_CLASSES];
        let z = &mut z[..k];
        for (c, z) in z.iter_mut().enumerate() {
            *z = self.bias[c] + sparse[c];
        }
        for (j, x) in x.iter().enumerate() {
            let x = (x - self.dense_mean[j]) * self.dense_scale[j];
            for (z, &w) in z.iter_mut().zip(&self.dense_weights[j * k..(j + 1) * k]) {
                *z += w * x;
            }
        }
        generated(z)
    }

    /// Adds each bucket's row times its value to `acc`.
    fn add_rows(&self, acc: &mut [f32; MAX_CLASSES], buckets: &[(u32, f32)]) {
        let mut sum = *acc;
        for &(i, v) in buckets {
            let row = &self.weights[i as usize].0;
            for (a, w) in sum.iter_mut().zip(row) {
                *a += v * w;
            }
        }
        *acc = sum;
    }

    /// The classes, the benign one first.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Whether `text` is a model file rather than thresholds: it has a
    /// `[dga_model]` table.
    pub fn is_model_file(text: &str) -> bool {
        text.lines().any(|l| l.trim() == "[dga_model]")
    }

    /// Reads a model file; errors are `(line, message)`.
    pub fn parse(text: &str) -> Result<Self, (Option<usize>, String)> {
        let file: File = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            (line, e.message().to_owned())
        })?;
        let m = file.dga_model;
        let fail = |msg: String| Err((None, msg));
        if m.format != FORMAT {
            return fail(format!(
                "dga_model.format {} is not {FORMAT}: retrain with this version",
                m.format
            ));
        }
        if !(8..=24).contains(&m.bits) {
            return fail(format!("dga_model.bits {} is not within 8..=24", m.bits));
        }
        let k = m.classes.len();
        if !(2..=MAX_CLASSES).contains(&k) {
            return fail(format!(
                "dga_model.classes: {k} classes, expected 2 to {MAX_CLASSES}"
            ));
        }
        if m.bias.len() != k {
            return fail(format!("dga_model.bias must have {k} numbers, one a class"));
        }
        if m.dense_features != DENSE {
            return fail(format!(
                "dga_model.dense_features must be {DENSE:?}: retrain with this version"
            ));
        }
        if m.dense_weights.len() != DENSE.len() * k {
            return fail(format!(
                "dga_model.dense_weights must have {} numbers (a class's for each dense feature)",
                DENSE.len() * k
            ));
        }
        let dense =
            |name: &str, v: &[f32]| -> Result<[f32; DENSE.len()], (Option<usize>, String)> {
                <[f32; DENSE.len()]>::try_from(v).map_err(|_| {
                    (
                        None,
                        format!("dga_model.{name} must have {} numbers", DENSE.len()),
                    )
                })
            };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(m.weights.split_whitespace().collect::<String>())
            .map_err(|e| (None, format!("dga_model.weights: not base64: {e}")))?;
        let expected = (2usize << m.bits) * k;
        if raw.len() != expected {
            return fail(format!(
                "dga_model.weights: {} bytes, expected {expected} (2^bits 16-bit weights a class)",
                raw.len()
            ));
        }
        let weights = rows(
            k,
            m.weight_scale,
            raw.chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]])),
        );
        let model = Model {
            bits: m.bits,
            classes: m.classes,
            weights,
            dense_weights: m.dense_weights,
            dense_mean: dense("dense_mean", &m.dense_mean)?,
            dense_scale: dense("dense_scale", &m.dense_scale)?,
            bias: m.bias,
            lexicon: Lexicon::new(&m.words),
            threshold: m.threshold,
        };
        if !(0.0..=1.0).contains(&model.threshold) {
            return fail("dga_model.threshold must be within 0..=1".into());
        }
        Ok(model)
    }
}

/// Rows of `k` weights each from `weights`, padded to [`Row`]s.
pub(crate) fn rows(k: usize, scale: f32, weights: impl IntoIterator<Item = i16>) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut row = Row([0.0; MAX_CLASSES]);
    for (n, w) in weights.into_iter().enumerate() {
        row.0[n % k] = f32::from(w) * scale;
        if n % k == k - 1 {
            rows.push(row);
        }
    }
    rows
}

/// The probability of any class but the first (benign) under a softmax of
/// the logits `z`: the sigmoid of their log-sum-exp less the first's.
pub fn generated(z: &[f32]) -> f32 {
    let Some((&benign, rest)) = z.split_first() else {
        return 0.0;
    };
    let max = rest.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = rest.iter().map(|&x| (x - max).exp()).sum();
    sigmoid(max + sum.ln() - benign)
}

/// Version of the model file layout and feature definitions.
pub const FORMAT: u32 = 5;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    dga_model: ModelToml,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "documentation fields, kept for the reader")]
struct ModelToml {
    format: u32,
    #[serde(default)]
    trained_on: String,
    #[serde(default)]
    validation: String,
    bits: u8,
    classes: Vec<String>,
    bias: Vec<f32>,
    threshold: f32,
    dense_features: Vec<String>,
    dense_weights: Vec<f32>,
    dense_mean: Vec<f32>,
    dense_scale: Vec<f32>,
    weight_scale: f32,
    weights: String,
    words: String,
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable() {
        // The model file's buckets depend on these exact values.
        assert_eq!(fnv1a(0, b""), 0xaf63_bd4c_8601_b7df);
        assert_eq!(
            fnv1a(7, b"ab"),
            fnv_step(fnv_step(fnv1a(7, b""), b'a'), b'b')
        );
        assert_eq!(fnv1a(1, b"ab"), fnv1a(1, b"ab"));
        assert_ne!(fnv1a(1, b"ab"), fnv1a(2, b"ab"));
    }

    #[test]
    fn every_ngram_of_the_label_is_fed() {
        let name = Name::split(b"abc.com");
        let mut n = 0;
        features(&name, &Lexicon::default(), |_, _| n += 1);
        // ^abc$: 3 unigrams, 4 bigrams, 3 trigrams, 2 four-grams; its shape
        // ^cvc$ (2..=6): 4 + 3 + 2 + 1; the suffix; with the suffix, the
        // bigrams of ^abc$ and trigrams of ^cvc$; the dense features'
        // bins, alone, with the suffix and in crossed pairs.
        assert_eq!(
            n,
            3 + 4
                + 3
                + 2
                + 4
                + 3
                + 2
                + 1
                + 1
                + 4
                + 3
                + DENSE.len()
                + SUFFIX_CROSSED.len()
                + 13 * 12 / 2
        );
    }

    #[test]
    fn labels_split_into_the_most_covering_words() {
        let lexicon = Lexicon::new("glass mountain mount ain mag");
        let mut words = Vec::new();
        let (covered, n, longest) =
            lexicon.segment(b"glassmountainmagx", |w| words.push(w.to_vec()));
        assert_eq!((covered, n, longest), (16, 3, 8));
        assert_eq!(
            words,
            [b"mag".to_vec(), b"mountain".to_vec(), b"glass".to_vec()]
        );
    }

    #[test]
    fn the_score_is_the_families_share_of_the_softmax() {
        // Benign against two families: their probabilities together.
        let (b, f1, f2) = (1.0f32, 0.5f32, -0.3f32);
        let total = b.exp() + f1.exp() + f2.exp();
        let expected = (f1.exp() + f2.exp()) / total;
        assert!((generated(&[b, f1, f2]) - expected).abs() < 1e-6);
        // One family: the sigmoid of the difference.
        assert!((generated(&[0.0, 2.0]) - sigmoid(2.0)).abs() < 1e-6);
    }

    #[test]
    fn rows_are_padded_per_class() {
        let rows = rows(3, 0.5, [1, 2, 3, 4, 5, 6]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].0[..4], [2.0, 2.5, 3.0, 0.0]);
    }

    #[test]
    fn labels_split_around_characters_no_word_covers() {
        let lexicon = Lexicon::new("glass glassy mountain");
        assert_eq!(lexicon.len(), 3);
        let mut words = Vec::new();
        lexicon.segment(b"glassyzmountain", |w| words.push(w.to_vec()));
        assert_eq!(words, [b"mountain".to_vec(), b"glassy".to_vec()]);
    }

    #[test]
    fn a_model_file_with_the_wrong_size_is_refused() {
        let text = include_str!("../../../rulesets/dns-anomaly/dga-model.toml");
        let broken = text.replacen("bits = ", "bits = 1", 1);
        assert!(Model::parse(&broken).is_err());
        assert!(Model::is_model_file(text));
        assert!(!Model::is_model_file("window_secs = 60\n"));
    }
}
