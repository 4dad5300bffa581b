//! Retrains the DGA model from `tests/fixtures/dga/dga_domains_sample.csv`
//! and writes `rulesets/dns-anomaly/dga-model.toml`, then reports the
//! held-out figures.
//!
//! `cargo run --release -p dns-anomaly --example train_dga [-- --check]`:
//! with `--check`, compares instead of writing.

use std::path::Path;

use dns_anomaly::dga::Model;
use dns_anomaly::dga::train::{Split, build, read_csv, roc, score_all, split_of};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let csv = std::fs::read_to_string(root.join("tests/fixtures/dga/dga_domains_sample.csv"))?;
    let samples = read_csv(&csv)?;
    let words = std::fs::read_to_string(root.join("tests/fixtures/dga/words.txt"))?;
    let (text, log) = build(&samples, &words);
    for line in log {
        println!("{line}");
    }
    let out = root.join("rulesets/dns-anomaly/dga-model.toml");
    if std::env::args().any(|a| a == "--check") {
        let committed = std::fs::read_to_string(&out)?;
        println!("identical to {}: {}", out.display(), committed == text);
    } else {
        std::fs::write(&out, &text)?;
        println!("wrote {} ({} bytes)", out.display(), text.len());
    }
    let model = Model::parse(&text).map_err(|(line, msg)| format!("{line:?}: {msg}"))?;
    let test: Vec<_> = samples
        .iter()
        .filter(|s| split_of(&s.domain) == Split::Test)
        .collect();
    let scored = score_all(&model, &test);
    let at2 = roc(&scored, 0.02);
    let flagged = |dga: bool| {
        let all = scored.iter().filter(|s| s.1 == dga).count().max(1);
        let hit = scored
            .iter()
            .filter(|s| s.1 == dga && s.0 >= model.threshold)
            .count();
        hit as f64 / all as f64
    };
    println!(
        "held-out ({} rows): AUC {:.4}; best TPR {:.4} at FPR {:.4} (<= 0.02); \
         at the shipped threshold {:.4}: TPR {:.4}, FPR {:.4}",
        scored.len(),
        at2.auc,
        at2.tpr,
        at2.fpr,
        model.threshold,
        flagged(true),
        flagged(false)
    );
    let mut families: Vec<&str> = test
        .iter()
        .filter(|s| s.dga)
        .map(|s| s.family.as_str())
        .collect();
    families.sort_unstable();
    families.dedup();
    for family in families {
        let rows: Vec<_> = test
            .iter()
            .filter(|s| s.family == family)
            .copied()
            .collect();
        let scores = score_all(&model, &rows);
        let hit = scores.iter().filter(|s| s.0 >= model.threshold).count();
        println!("  {family:12} {hit:4}/{:4}", scores.len());
    }
    Ok(())
}
