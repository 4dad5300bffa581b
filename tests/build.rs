//! Builds the test plugins (hostile and no-op guests under
//! `tests/plugins/`) and the detectors the benchmarks and tests load as
//! files (every crate under `plugins/` but the SDK) for wasm32-wasip2;
//! tests find them through `env!("KANSOKU_TEST_PLUGINS")`.

use std::env;
use std::path::PathBuf;

use kansoku_plugin_build::{Package, build};

const TEST_PLUGINS: &[&str] = &["chaos", "noop"];

/// Detectors under `plugins/` that benchmarks load as files.
const DETECTORS: &[&str] = &[
    "signature",
    "reputation",
    "portscan",
    "dns-anomaly",
    "ml-score",
];

fn main() {
    let workspace = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let packages: Vec<Package> = TEST_PLUGINS
        .iter()
        .map(|name| Package {
            name: (*name).to_owned(),
            dir: workspace.join("tests/plugins").join(name),
        })
        .chain(DETECTORS.iter().map(|name| Package {
            name: (*name).to_owned(),
            dir: workspace.join("plugins").join(name),
        }))
        .collect();
    match build(&workspace, &packages) {
        Ok(built) => {
            let dir = built
                .first()
                .and_then(|b| b.wasm.parent())
                .map(|d| d.display().to_string())
                .unwrap_or_default();
            println!("cargo:rustc-env=KANSOKU_TEST_PLUGINS={dir}");
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
