//! The `kansoku` binary as an operator and a plugin author use it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kansoku(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kansoku"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("the kansoku binary runs")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is in the workspace")
        .to_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_demo_runs_on_embedded_defaults_and_writes_eve_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let out = kansoku(&["demo", "--summary-json", "summary.json"], dir.path());
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("flows read"), "{stderr}");
    let alerts: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("alerts are JSON lines"))
        .collect();
    assert!(!alerts.is_empty(), "the demo data holds a scan: {stderr}");
    assert!(alerts.iter().all(|a| a["event_type"] == "alert"));
    for plugin in ["portscan", "reputation"] {
        assert!(
            alerts.iter().any(|a| a["kansoku"]["plugin"] == plugin),
            "{plugin} finds something in the demo data"
        );
    }
    // The honeypot capture holds scanners from Spamhaus DROP networks.
    assert!(alerts.iter().any(|a| a["kansoku"]["plugin"] == "reputation"
        && a["src_ip"] == "31.210.20.24"
        && a["kansoku"]["evidence"]["indicator"] == "31.210.20.0/24"));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    assert!(summary["flows_kept"].as_u64().unwrap() > 0);
    assert!(summary["dropped"]["out_of_scope"].as_u64().unwrap() > 0);

    // `run` without arguments is the demo too.
    let again = kansoku(&["run"], dir.path());
    assert!(again.status.success());
    assert_eq!(again.stdout.len(), out.stdout.len());
}

#[test]
fn configuration_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("k.toml"),
        "[ingest]\nformat = \"eve\"\nbatch = 3\n",
    )
    .unwrap();
    let out = kansoku(&["run", "--config", "k.toml", "--input", "-"], dir.path());
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("k.toml:3: unknown field `batch`"),
        "{stderr}"
    );

    let out = kansoku(&["run", "--input", "x", "--format", "pcap"], dir.path());
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unknown format `pcap`"));
}

#[test]
fn validate_lists_institutions_and_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let out = kansoku(&["validate"], dir.path());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("portscan"), "{stdout}");
    assert!(stdout.contains("institutions:"), "{stdout}");
}

#[test]
fn a_scaffolded_plugin_builds_tests_and_finds_things_in_real_flows() {
    let dir = tempfile::tempdir().unwrap();
    let sdk = workspace().join("plugins/sdk");
    let out = kansoku(
        &["plugin", "new", "dns-watch", "--sdk", sdk.to_str().unwrap()],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let crate_dir = dir.path().join("dns-watch");
    std::fs::write(crate_dir.join("rules/domains.txt"), "wrccdc.org\n").unwrap();

    // A target directory shared across runs keeps this test's builds
    // incremental.
    let target = workspace().join("target/scaffold-test");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for args in [
        vec!["test", "--quiet"],
        vec!["build", "--release", "--target", "wasm32-wasip2"],
    ] {
        let built = Command::new(&cargo)
            .args(&args)
            .current_dir(&crate_dir)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .unwrap();
        assert!(
            built.status.success(),
            "cargo {args:?}: {}",
            text(&built.stderr)
        );
    }
    let wasm = target.join("wasm32-wasip2/release/dns_watch.wasm");
    let dns = workspace().join("tests/fixtures/zeek/brimdata/dns.log.gz");
    std::fs::write(
        dir.path().join("inst.toml"),
        "[[institution]]\nid = \"wrccdc\"\nname = \"WRCCDC\"\nprefixes = [\"10.0.0.0/8\"]\ncontact = \"soc@wrccdc.example\"\n",
    )
    .unwrap();
    let out = kansoku(
        &[
            "plugin",
            "test",
            wasm.to_str().unwrap(),
            "--rules",
            crate_dir.join("rules/domains.txt").to_str().unwrap(),
            "--input",
            dns.to_str().unwrap(),
            "--institutions",
            "inst.toml",
        ],
        dir.path(),
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("dns-watch 0.1.0 ("), "{stderr}");
    assert!(stderr.contains("): 1 rules loaded, 0 skipped"), "{stderr}");
    let findings: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 1300 queries for ise.wrccdc.org, plus other wrccdc.org names.
    assert!(
        findings.len() >= 1300,
        "{} findings\n{stderr}",
        findings.len()
    );
    assert!(
        findings
            .iter()
            .all(|f| f["kansoku"]["rule_id"] == "listed-domain")
    );
    assert!(findings.iter().all(|f| {
        f["dns"]["query"][0]["rrname"]
            .as_str()
            .unwrap()
            .ends_with("wrccdc.org")
    }));
}
