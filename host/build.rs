//! Builds the built-in plugins (every crate under `plugins/` except the SDK
//! and the build helper) for wasm32-wasip2 and embeds them, with their
//! default rulesets from `rulesets/<plugin>/`, so the `kansoku` binary
//! carries everything `kansoku demo` needs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

use kansoku_plugin_build::{Package, build};

/// Built-in plugins, in the order they run.
const BUILTIN: &[&str] = &[
    "portscan",
    "signature",
    "reputation",
    "dns-anomaly",
    "ml-score",
];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest
        .parent()
        .expect("host/ is inside the workspace")
        .to_path_buf();
    let packages: Vec<Package> = BUILTIN
        .iter()
        .map(|name| Package {
            name: (*name).to_owned(),
            dir: workspace.join("plugins").join(name),
        })
        .collect();
    let built = match build(&workspace, &packages) {
        Ok(built) => built,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };

    let mut code = String::from(
        "/// Plugins compiled into this binary, with their default rulesets.\n\
         pub static BUILTIN: &[Builtin] = &[\n",
    );
    for plugin in &built {
        let rulesets_dir = workspace.join("rulesets").join(&plugin.name);
        println!("cargo:rerun-if-changed={}", rulesets_dir.display());
        let _ = writeln!(
            code,
            "    Builtin {{ name: {:?}, wasm: include_bytes!({:?}), rulesets: &[",
            plugin.name,
            plugin.wasm.display().to_string()
        );
        for file in ruleset_files(&rulesets_dir) {
            let name = file
                .file_name()
                .expect("listed files have names")
                .to_string_lossy();
            let _ = writeln!(
                code,
                "        ({:?}, include_bytes!({:?})),",
                name,
                file.display().to_string()
            );
        }
        code.push_str("    ] },\n");
    }
    code.push_str("];\n");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    fs::write(out.join("builtin_plugins.rs"), code).expect("OUT_DIR is writable");
    fs::write(out.join("demo_samples.rs"), demo_samples(&workspace)).expect("OUT_DIR is writable");
}

/// The demo's inputs: every file in `data/samples/`, in name order.
fn demo_samples(workspace: &Path) -> String {
    let dir = workspace.join("data").join("samples");
    println!("cargo:rerun-if-changed={}", dir.display());
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("data").join("institutions.toml").display()
    );
    let mut code = String::from(
        "/// The bundled sample inputs of `kansoku demo`.\n\
         pub static SAMPLES: &[InputPath] = &[\n",
    );
    for file in ruleset_files(&dir) {
        let name = file
            .file_name()
            .expect("listed files have names")
            .to_string_lossy();
        let _ = writeln!(
            code,
            "    InputPath::Bundled {{ name: {:?}, bytes: include_bytes!({:?}) }},",
            format!("data/samples/{name}"),
            file.display().to_string()
        );
    }
    code.push_str("];\n");
    code
}

/// The files of a plugin's default ruleset folder, sorted by name; hidden
/// files and READMEs are documentation, not rules.
fn ruleset_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_lowercase())
                .unwrap_or_default();
            !name.starts_with('.') && !name.starts_with("readme")
        })
        .collect();
    files.sort();
    files
}
