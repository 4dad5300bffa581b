//! Training the DGA model from labelled domains (`class,family,domain`
//! lines, as in `tests/fixtures/dga/dga_domains_sample.csv`).
//!
//! Everything is deterministic: the split is a hash of the domain, the
//! optimiser visits samples in an order drawn from a fixed seed, and the
//! file is written with a fixed layout, so retraining on the same data
//! gives the same file byte for byte (`cargo run --release -p dns-anomaly
//! --example train_dga`).

use std::fmt::Write as _;

use base64::Engine as _;
use kansoku_plugin::testing::SplitMix64;

use super::{DENSE, FORMAT, Lexicon, MAX_CLASSES, Model, bucket, features, fnv1a};
use crate::names::{MAX_NAME, Name, normalise};

/// One labelled domain.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The domain, lower case.
    pub domain: String,
    /// Whether it was generated.
    pub dga: bool,
    /// The DGA family, or the benign list it came from.
    pub family: String,
}

/// Which part of the data a domain belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Fits the weights and, by cross-validation, picks the
    /// hyperparameters and the threshold (70 %).
    Train,
    /// Held out for the reported figures (30 %), never seen in training.
    Test,
}

/// The split of `domain`: FNV-1a of its text, modulo 10.
pub fn split_of(domain: &str) -> Split {
    match fnv1a(0, domain.as_bytes()) % 10 {
        0..=2 => Split::Test,
        _ => Split::Train,
    }
}

/// Cross-validation folds of the training split.
pub const FOLDS: u64 = 5;

/// The cross-validation fold of a training `domain`: another hash than the
/// split's, so that folds cut across it.
fn fold_of(domain: &str) -> u64 {
    fnv1a(1, domain.as_bytes()) % FOLDS
}

/// Reads `class,family,domain` lines; errors name the line.
pub fn read_csv(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, ',');
        let (Some(class), Some(family), Some(domain)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("line {}: expected class,family,domain", i + 1));
        };
        let dga = match class {
            "dga" => true,
            "legit" => false,
            other => return Err(format!("line {}: unknown class {other:?}", i + 1)),
        };
        samples.push(Sample {
            domain: domain.trim().to_ascii_lowercase(),
            dga,
            family: family.to_owned(),
        });
    }
    Ok(samples)
}

/// Optimiser settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// log2 of the number of hashed weights.
    pub bits: u8,
    /// L2 penalty per sample.
    pub l2: f64,
    /// Passes over the training data.
    pub epochs: u32,
    /// AdaGrad base step.
    pub step: f64,
}

/// The hyperparameters tried by cross-validation. (More hash bits,
/// stronger penalties and fewer epochs were tried too and scored no
/// better.)
pub fn grid() -> Vec<Params> {
    [1e-4, 1e-5]
        .into_iter()
        .map(|l2| Params {
            bits: 14,
            l2,
            epochs: 20,
            step: 0.1,
        })
        .collect()
}

/// The classes of a model trained on `samples`: `benign`, then the DGA
/// families in order (`dga` when there are none).
pub fn classes_of(samples: &[&Sample]) -> Vec<String> {
    let mut families: Vec<String> = samples
        .iter()
        .filter(|s| s.dga)
        .map(|s| s.family.clone())
        .collect();
    families.sort_unstable();
    families.dedup();
    if families.is_empty() {
        families.push("dga".into());
    }
    // The model allows so many classes; families after the last one kept
    // (alphabetically) share its class.
    families.truncate(MAX_CLASSES - 1);
    std::iter::once("benign".to_owned())
        .chain(families)
        .collect()
}

/// The class index of `sample` among `classes`.
fn class_of(sample: &Sample, classes: &[String]) -> usize {
    if !sample.dga {
        return 0;
    }
    classes[1..]
        .iter()
        .position(|c| *c == sample.family)
        .map_or(classes.len() - 1, |i| i + 1)
}

/// One domain as the optimiser sees it.
struct Encoded {
    sparse: Vec<(u32, f64)>,
    dense: [f64; DENSE.len()],
    class: usize,
}

/// Dense features and (bucket, value) pairs of one domain.
type Vector = ([f64; DENSE.len()], Vec<(u32, f64)>);

fn encode(domain: &str, bits: u8, lexicon: &Lexicon) -> Option<Vector> {
    let mut buf = [0; MAX_NAME];
    let full = normalise(domain.as_bytes(), &mut buf)?;
    let name = Name::split(full);
    let mut sparse: Vec<(u32, f64)> = Vec::new();
    let dense = features(&name, lexicon, |h, v| {
        let (i, sign) = bucket(h, bits);
        sparse.push((i as u32, f64::from(sign * v)));
    });
    sparse.sort_by_key(|&(i, _)| i);
    sparse.dedup_by(|b, a| {
        if a.0 == b.0 {
            a.1 += b.1;
            true
        } else {
            false
        }
    });
    Some((dense.map(f64::from), sparse))
}

/// A model in training, in full precision. Weights are rows of one per
/// class, as in [`Model`].
struct Weights {
    bits: u8,
    classes: Vec<String>,
    sparse: Vec<f64>,
    dense: Vec<f64>,
    bias: Vec<f64>,
    mean: [f64; DENSE.len()],
    scale: [f64; DENSE.len()],
}

impl Weights {
    /// The logits of `e` into `z`.
    fn z(&self, e: &Encoded, z: &mut [f64]) {
        let k = self.classes.len();
        z.copy_from_slice(&self.bias);
        for &(i, v) in &e.sparse {
            let row = &self.sparse[i as usize * k..][..k];
            for (z, w) in z.iter_mut().zip(row) {
                *z += w * v;
            }
        }
        for j in 0..DENSE.len() {
            let x = (e.dense[j] - self.mean[j]) * self.scale[j];
            for (z, w) in z.iter_mut().zip(&self.dense[j * k..][..k]) {
                *z += w * x;
            }
        }
    }
}

fn fit(train: &[&Sample], params: Params, lexicon: &Lexicon, classes: &[String]) -> Weights {
    let encoded: Vec<Encoded> = train
        .iter()
        .filter_map(|s| {
            let (dense, sparse) = encode(&s.domain, params.bits, lexicon)?;
            Some(Encoded {
                sparse,
                dense,
                class: class_of(s, classes),
            })
        })
        .collect();
    let n = encoded.len().max(1) as f64;
    let mut mean = [0.0; DENSE.len()];
    let mut scale = [1.0; DENSE.len()];
    for k in 0..DENSE.len() {
        mean[k] = encoded.iter().map(|e| e.dense[k]).sum::<f64>() / n;
        let var = encoded
            .iter()
            .map(|e| (e.dense[k] - mean[k]).powi(2))
            .sum::<f64>()
            / n;
        scale[k] = if var > 1e-12 { 1.0 / var.sqrt() } else { 0.0 };
    }
    let k = classes.len();
    let mut w = Weights {
        bits: params.bits,
        classes: classes.to_vec(),
        sparse: vec![0.0; k << params.bits],
        dense: vec![0.0; DENSE.len() * k],
        bias: vec![0.0; k],
        mean,
        scale,
    };
    // AdaGrad: per-weight steps shrink with the gradient seen, so rare
    // n-grams still learn quickly while common ones settle.
    let mut g2_sparse = vec![1e-8; k << params.bits];
    let mut g2_dense = vec![1e-8; DENSE.len() * k];
    let mut g2_bias = vec![1e-8; k];
    let mut order: Vec<usize> = (0..encoded.len()).collect();
    let mut rng = SplitMix64(0x6467_615f_7365_6564);
    let (mut z, mut g) = (vec![0.0; k], vec![0.0; k]);
    let adagrad = |w: &mut [f64], g2: &mut [f64], g: &[f64], x: f64| {
        for ((w, g2), g) in w.iter_mut().zip(g2).zip(g) {
            let grad = g * x + params.l2 * *w;
            *g2 += grad * grad;
            *w -= params.step * grad / g2.sqrt();
        }
    };
    for _ in 0..params.epochs {
        for i in (1..order.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        for &idx in &order {
            let e = &encoded[idx];
            // Softmax cross-entropy: the gradient of a logit is its
            // probability less 1 for the true class.
            w.z(e, &mut z);
            let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = z.iter().map(|z| (z - max).exp()).sum();
            for (c, (g, z)) in g.iter_mut().zip(&z).enumerate() {
                *g = (z - max).exp() / sum - if c == e.class { 1.0 } else { 0.0 };
            }
            for &(i, v) in &e.sparse {
                let row = i as usize * k..(i as usize + 1) * k;
                adagrad(&mut w.sparse[row.clone()], &mut g2_sparse[row], &g, v);
            }
            for j in 0..DENSE.len() {
                let x = (e.dense[j] - w.mean[j]) * w.scale[j];
                let row = j * k..(j + 1) * k;
                adagrad(&mut w.dense[row.clone()], &mut g2_dense[row], &g, x);
            }
            for ((b, g2), g) in w.bias.iter_mut().zip(&mut g2_bias).zip(&g) {
                *g2 += g * g;
                *b -= params.step * g / g2.sqrt();
            }
        }
    }
    w
}

/// Area under the ROC curve and the best true-positive rate at a
/// false-positive rate of at most `max_fpr`, with the score threshold that
/// reaches it, from `(score, is_dga)` pairs.
pub fn roc(scored: &[(f32, bool)], max_fpr: f64) -> RocSummary {
    let mut sorted: Vec<(f32, bool)> = scored.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let pos = sorted.iter().filter(|s| s.1).count().max(1) as f64;
    let neg = sorted.iter().filter(|s| !s.1).count().max(1) as f64;
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut auc = 0.0;
    let mut best = RocSummary {
        auc: 0.0,
        tpr: 0.0,
        fpr: 0.0,
        threshold: 1.0,
    };
    let mut i = 0;
    while i < sorted.len() {
        // Ties move together: a threshold cannot split them.
        let score = sorted[i].0;
        let (tp0, fp0) = (tp, fp);
        while i < sorted.len() && sorted[i].0 == score {
            if sorted[i].1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        auc += (fp - fp0) / neg * (tp + tp0) / 2.0 / pos;
        if fp / neg <= max_fpr && tp / pos >= best.tpr {
            best.tpr = tp / pos;
            best.fpr = fp / neg;
            best.threshold = score;
        }
    }
    best.auc = auc;
    best
}

/// What [`roc`] found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RocSummary {
    /// Area under the curve.
    pub auc: f64,
    /// Best true-positive rate within the false-positive budget.
    pub tpr: f64,
    /// The false-positive rate there.
    pub fpr: f64,
    /// The lowest score flagged there.
    pub threshold: f32,
}

/// The false-positive rate at which the threshold is set, on the pooled
/// out-of-fold scores: below the acceptance budget (0.02), to leave room
/// for unseen data to differ.
pub const TARGET_FPR: f64 = 0.015;

/// Out-of-fold scores of `pool` under `params`: each fold scored by a model
/// trained on the others.
pub fn cross_validate(pool: &[&Sample], params: Params, lexicon: &Lexicon) -> Vec<(f32, bool)> {
    let classes = classes_of(pool);
    let mut scored = Vec::with_capacity(pool.len());
    for fold in 0..FOLDS {
        let (train, test): (Vec<&Sample>, Vec<&Sample>) =
            pool.iter().partition(|s| fold_of(&s.domain) != fold);
        let model = to_model(&fit(&train, params, lexicon, &classes), lexicon, 0.5);
        scored.extend(score_all(&model, &test));
    }
    scored
}

/// Picks the hyperparameters and the threshold by cross-validation on the
/// training split, trains on all of it and writes the model file. Also
/// returns a line per grid point for the log.
pub fn build(samples: &[Sample], words: &str) -> (String, Vec<String>) {
    let lexicon = Lexicon::new(words);
    let pool: Vec<&Sample> = samples
        .iter()
        .filter(|s| split_of(&s.domain) == Split::Train)
        .collect();
    let mut log = Vec::new();
    let mut best: Option<(RocSummary, Params)> = None;
    for params in grid() {
        let summary = roc(&cross_validate(&pool, params, &lexicon), TARGET_FPR);
        log.push(format!(
            "l2 {:e} epochs {} step {}: cross-validated AUC {:.4}, TPR {:.4} at FPR {:.4}",
            params.l2, params.epochs, params.step, summary.auc, summary.tpr, summary.fpr
        ));
        if best.is_none_or(|(b, _)| (summary.tpr, summary.auc) > (b.tpr, b.auc)) {
            best = Some((summary, params));
        }
    }
    let (summary, params) = best.unwrap_or_else(|| {
        let params = grid()[0];
        (
            roc(&cross_validate(&pool, params, &lexicon), TARGET_FPR),
            params,
        )
    });
    let weights = fit(&pool, params, &lexicon, &classes_of(&pool));
    let text = to_toml(&weights, params, summary, pool.len(), words);
    (text, log)
}

/// Scores every sample that has a name.
pub fn score_all(model: &Model, samples: &[&Sample]) -> Vec<(f32, bool)> {
    samples
        .iter()
        .filter_map(|s| {
            let mut buf = [0; MAX_NAME];
            let full = normalise(s.domain.as_bytes(), &mut buf)?;
            Some((model.score(&Name::split(full)), s.dga))
        })
        .collect()
}

/// Quantises the sparse weights to 16 bits against the largest one.
fn quantised(w: &Weights) -> (f32, Vec<i16>) {
    let max = w.sparse.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 32767.0 } else { 1.0 } as f32;
    let q = w
        .sparse
        .iter()
        .map(|x| (x / f64::from(scale)).round().clamp(-32767.0, 32767.0) as i16)
        .collect();
    (scale, q)
}

/// The model as the plugin will run it: quantised, in single precision.
fn to_model(w: &Weights, lexicon: &Lexicon, threshold: f32) -> Model {
    let (scale, q) = quantised(w);
    let narrow = |a: &[f64; DENSE.len()]| a.map(|x| x as f32);
    Model {
        bits: w.bits,
        classes: w.classes.clone(),
        weights: super::rows(w.classes.len(), scale, q),
        dense_weights: w.dense.iter().map(|&x| x as f32).collect(),
        dense_mean: narrow(&w.mean),
        dense_scale: narrow(&w.scale),
        bias: w.bias.iter().map(|&x| x as f32).collect(),
        lexicon: lexicon.clone(),
        threshold,
    }
}

fn to_toml(w: &Weights, params: Params, summary: RocSummary, train: usize, words: &str) -> String {
    let (scale, q) = quantised(w);
    let bytes: Vec<u8> = q.iter().flat_map(|x| x.to_le_bytes()).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let list = |a: &[f64]| {
        a.iter()
            .map(|x| format!("{:?}", *x as f32))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::new();
    // Infallible: writing to a String.
    let _ = write!(
        out,
        "# DGA model of the built-in `dns-anomaly` detector. Generated by\n\
         # `cargo run --release -p dns-anomaly --example train_dga`; do not edit.\n\
         # See rulesets/dns-anomaly/README.md for the features and how to retrain.\n\
         \n\
         [dga_model]\n\
         format = {FORMAT}\n\
         trained_on = \"tests/fixtures/dga/dga_domains_sample.csv: {train} training rows (FNV-1a mod 10 >= 3), l2 {:e}, {} epochs, AdaGrad step {}\"\n\
         validation = \"{FOLDS}-fold cross-validation on the training rows, pooled out-of-fold scores: AUC {:.4}, TPR {:.4} at FPR {:.4}\"\n\
         bits = {}\n\
         # The benign class first, then the DGA families.\n\
         classes = [{}]\n\
         bias = [{}]\n\
         # Lowest score flagged: the cross-validated FPR <= {TARGET_FPR} point.\n\
         threshold = {:?}\n\
         dense_features = [{}]\n\
         # A row of one weight per class for each dense feature.\n\
         dense_weights = [\n{}]\n\
         dense_mean = [{}]\n\
         dense_scale = [{}]\n\
         weight_scale = {:?}\n\
         # 16-bit weights, little-endian: a row of one per class for each bucket.\n\
         weights = \"\"\"\n",
        params.l2,
        params.epochs,
        params.step,
        summary.auc,
        summary.tpr,
        summary.fpr,
        w.bits,
        w.classes
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", "),
        list(&w.bias),
        summary.threshold,
        DENSE
            .iter()
            .map(|d| format!("\"{d}\""))
            .collect::<Vec<_>>()
            .join(", "),
        w.dense
            .chunks(w.classes.len())
            .map(|row| format!("    {},\n", list(row)))
            .collect::<String>(),
        list(&w.mean),
        list(&w.scale),
        scale,
    );
    for chunk in b64.as_bytes().chunks(100) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("\"\"\"\n");
    out.push_str(
        "# Lexicon for segmenting labels: tests/fixtures/dga/words.txt (wordfreq 3.1.1,\n\
         # data CC BY-SA 4.0; see rulesets/dns-anomaly/README.md).\n\
         words = \"\"\"\n",
    );
    let mut line = String::new();
    for word in words.split_whitespace() {
        if line.len() + word.len() >= 100 {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push_str("\n\"\"\"\n");
    out
}
