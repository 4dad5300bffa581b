//! The shipped DGA model: reproducible from the repository, and its
//! held-out figures.

#![allow(clippy::unwrap_used, reason = "a failure is the test failing")]

use dns_anomaly::dga::Model;
use dns_anomaly::dga::train::{Split, build, read_csv, roc, score_all, split_of};

fn read(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap()
}

#[test]
fn retraining_reproduces_the_shipped_model_and_its_held_out_figures() {
    let samples = read_csv(&read("tests/fixtures/dga/dga_domains_sample.csv")).unwrap();
    assert_eq!(samples.len(), 10_000);
    let (text, _) = build(&samples, &read("tests/fixtures/dga/words.txt"));
    let shipped = read("rulesets/dns-anomaly/dga-model.toml");
    assert!(
        text == shipped,
        "rulesets/dns-anomaly/dga-model.toml is not what training gives: \
         run `cargo run --release -p dns-anomaly --example train_dga`"
    );

    let model = Model::parse(&shipped).unwrap();
    let test: Vec<_> = samples
        .iter()
        .filter(|s| split_of(&s.domain) == Split::Test)
        .collect();
    assert!((2800..3200).contains(&test.len()), "{}", test.len());
    let scored = score_all(&model, &test);
    let summary = roc(&scored, 0.02);
    println!(
        "held-out: {} names, AUC {:.4}, TPR {:.4} at FPR {:.4}",
        scored.len(),
        summary.auc,
        summary.tpr,
        summary.fpr
    );
    // The acceptance target is TPR 0.90 at FPR 0.02; this model does not
    // reach it yet (see rulesets/dns-anomaly/README.md). These bounds keep
    // it from getting worse.
    assert!(summary.auc >= 0.983, "{summary:?}");
    assert!(summary.tpr >= 0.88, "{summary:?}");
    let false_positives = scored
        .iter()
        .filter(|(score, dga)| !dga && *score >= model.threshold)
        .count();
    let benign = scored.iter().filter(|(_, dga)| !dga).count();
    assert!(
        (false_positives as f64) / (benign as f64) <= 0.02,
        "{false_positives} of {benign}"
    );
}
