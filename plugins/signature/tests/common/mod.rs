//! What the integration tests share: the ET Open selection.

use std::io::Read;
use std::path::{Path, PathBuf};

use kansoku_plugin::Ruleset;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every ET file: the default rulesets and the gzipped fixtures.
pub fn et_open() -> Vec<Ruleset> {
    let mut sets = Vec::new();
    let defaults = root().join("rulesets/signature");
    let mut names: Vec<_> = std::fs::read_dir(&defaults)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.ends_with("README.md"))
        .collect();
    names.sort();
    for path in names {
        sets.push(Ruleset {
            name: path.file_name().unwrap().to_string_lossy().into_owned(),
            content: std::fs::read(&path).unwrap(),
        });
    }
    let fixtures = root().join("tests/fixtures/et-open");
    let mut names: Vec<_> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names {
        let mut content = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
            .read_to_end(&mut content)
            .unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        sets.push(Ruleset {
            name: name.trim_end_matches(".gz").to_owned(),
            content,
        });
    }
    sets
}

/// The names [`et_open`] gives the gzipped fixtures (the non-default files).
#[allow(dead_code, reason = "not every test binary uses it")]
pub fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("tests/fixtures/et-open"))
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.trim_end_matches(".gz").to_owned()
        })
        .collect();
    names.sort();
    names
}
