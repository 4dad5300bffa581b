//! Builds plugin crates of this workspace as WebAssembly components, from a
//! build script.
//!
//! The engine embeds its built-in plugins, and the test suite needs its
//! hostile test plugins, so both have build scripts that must compile other
//! workspace crates for `wasm32-wasip2`. Cargo cannot express "this package
//! depends on that package's artifact for another target" on stable, so the
//! build script runs a nested `cargo build`, the same way wasmtime builds its
//! test programs.
//!
//! The nested build uses its own target directory (`<target>/wasm-plugins`),
//! shared by every profile of the outer build, so a plugin and its
//! dependencies compile once whether the host is being checked, tested or
//! benchmarked. It always uses the workspace profile `plugin`.

use std::env;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target plugins are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// Cargo profile used for every plugin build (defined in the workspace
/// manifest).
pub const PROFILE: &str = "plugin";

/// A plugin crate to build.
#[derive(Debug, Clone)]
pub struct Package {
    /// Cargo package name (`portscan`).
    pub name: String,
    /// The crate's folder, watched for changes.
    pub dir: PathBuf,
}

/// A built component, copied into the caller's `OUT_DIR`.
#[derive(Debug, Clone)]
pub struct Built {
    /// Cargo package name.
    pub name: String,
    /// Path of the `.wasm` component inside `OUT_DIR`.
    pub wasm: PathBuf,
}

/// Why plugins could not be built.
#[derive(Debug)]
pub struct BuildError(String);

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BuildError {}

/// Builds `packages` for [`TARGET`] and copies the components into
/// `OUT_DIR`. Emits the `cargo:rerun-if-*` lines for the packages, the
/// contract in `wit/`, the SDK and the lock file.
///
/// # Errors
///
/// When the target is not installed (with the command that installs it), or
/// when the nested build fails (cargo has already printed why).
pub fn build(workspace: &Path, packages: &[Package]) -> Result<Vec<Built>, BuildError> {
    let out_dir = env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .ok_or_else(|| BuildError("OUT_DIR is not set: call this from a build script".into()))?;
    for watched in [
        workspace.join("wit"),
        workspace.join("plugins/sdk"),
        workspace.join("Cargo.lock"),
        workspace.join("Cargo.toml"),
        workspace.join(".cargo/config.toml"),
    ]
    .iter()
    .chain(packages.iter().map(|p| &p.dir))
    {
        println!("cargo:rerun-if-changed={}", watched.display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    check_target_installed()?;

    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("wasm-plugins");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--target",
            TARGET,
            "--profile",
            PROFILE,
            "--target-dir",
        ])
        .arg(&target_dir);
    for package in packages {
        cmd.args(["-p", &package.name]);
    }
    // The outer build's flags and wrappers are for the host, not for wasm:
    // `cargo clippy` would otherwise lint (and fail) the plugins through
    // clippy-driver, and host RUSTFLAGS such as `-C target-cpu` do not apply.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_PRIMARY_PACKAGE",
        "__CARGO_FIX_PLZ",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .map_err(|e| BuildError(format!("cannot run cargo to build the plugins: {e}")))?;
    if !status.success() {
        return Err(BuildError(format!(
            "building the plugins for {TARGET} failed ({status}); see the cargo output above"
        )));
    }

    let artifacts = target_dir.join(TARGET).join(PROFILE);
    packages
        .iter()
        .map(|package| {
            // Cargo names the artifact after the crate (dashes become
            // underscores); the copy is named after the plugin.
            let from = artifacts.join(format!("{}.wasm", package.name.replace('-', "_")));
            let to = out_dir.join(format!("{}.wasm", package.name));
            fs::copy(&from, &to).map_err(|e| {
                BuildError(format!(
                    "cannot copy {} to {}: {e}",
                    from.display(),
                    to.display()
                ))
            })?;
            Ok(Built {
                name: package.name.clone(),
                wasm: to,
            })
        })
        .collect()
}

/// Fails early with the fix when the wasm target's standard library is
/// missing: machines here set `RUSTUP_AUTO_INSTALL=0`, so the toolchain file
/// alone does not install it, and rustc's own error is about a missing
/// `core` crate.
fn check_target_installed() -> Result<(), BuildError> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .map_err(|e| BuildError(format!("cannot run rustc: {e}")))?;
    let libdir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() && Path::new(&libdir).is_dir() {
        return Ok(());
    }
    Err(BuildError(format!(
        "the Rust target {TARGET} is not installed, so the built-in plugins cannot be built.\n\
         Install it with: rustup target add {TARGET}\n\
         (or run `make demo` / `make test`, which do this for you)"
    )))
}
