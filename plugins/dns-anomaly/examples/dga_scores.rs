//! Prints the DGA score of each name given on the command line, or of the
//! held-out rows with `--held-out` (score, class, family, domain), for
//! looking at what the model gets wrong.

use dns_anomaly::dga::Model;
use dns_anomaly::dga::train::{Split, read_csv, split_of};
use dns_anomaly::names::{MAX_NAME, Name, normalise};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("rulesets/dns-anomaly/dga-model.toml"))?;
    let model = Model::parse(&text).map_err(|(l, m)| format!("{l:?}: {m}"))?;
    let score = |domain: &str| {
        let mut buf = [0; MAX_NAME];
        normalise(domain.as_bytes(), &mut buf).map(|full| model.score(&Name::split(full)))
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--held-out") {
        let csv = std::fs::read_to_string(root.join("tests/fixtures/dga/dga_domains_sample.csv"))?;
        for s in read_csv(&csv)?
            .iter()
            .filter(|s| split_of(&s.domain) == Split::Test)
        {
            if let Some(p) = score(&s.domain) {
                println!("{p:.4}\t{}\t{}\t{}", s.dga, s.family, s.domain);
            }
        }
    } else {
        for name in args {
            println!("{:?}\t{name}", score(&name));
        }
    }
    Ok(())
}
