//! Period keys as an institution sees them: what kansoku wraps, the
//! institution's own tools unwrap with its private key
//! (`clients/python/kansoku_keys.py`, Python `cryptography`), and no other
//! institution's key does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::venv_python;
use kansoku::storage::keys::{
    InstitutionCertificate, KeyMaterial, KeyRegistry, KeyRing, PeriodLength,
};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn key_fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/keys").join(name)
}

fn unwrap_with(private_key: &str, material: &Path) -> Output {
    venv_python()
        .arg(root().join("clients/python/kansoku_keys.py"))
        .arg("--private-key")
        .arg(key_fixture(private_key))
        .arg(material)
        .output()
        .unwrap()
}

#[test]
fn the_institution_unwraps_its_data_keys_with_its_private_key_and_no_other_can() {
    let dir = tempfile::tempdir().unwrap();
    let now = jiff::Timestamp::now();
    let certificates: HashMap<String, InstitutionCertificate> = [("alpha", "alpha.pem")]
        .into_iter()
        .map(|(id, file)| {
            let cert = InstitutionCertificate::load(&key_fixture(file), now).unwrap();
            (id.to_owned(), cert)
        })
        .collect();
    let registry = KeyRegistry::open(&dir.path().join("keys.sqlite")).unwrap();
    let mut ring = KeyRing::new(registry, PeriodLength::WEEK, certificates);
    let key = ring
        .key_for("alpha", jiff::civil::date(2026, 12, 4), now)
        .unwrap();
    let dek: Vec<u8> = (0..32).collect();
    let footer = KeyMaterial::footer(key, "alpha", &dek).unwrap();
    let path = dir.path().join("footer.json");
    std::fs::write(&path, footer.to_json()).unwrap();

    let own = unwrap_with("alpha.key", &path);
    assert!(
        own.status.success(),
        "{}",
        String::from_utf8_lossy(&own.stderr)
    );
    let hex: String = dek.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(String::from_utf8_lossy(&own.stdout).trim(), hex);

    let other = unwrap_with("beta.key", &path);
    assert!(!other.status.success());
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("does not open with this private key"),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
}
