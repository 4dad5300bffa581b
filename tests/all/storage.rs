//! Encrypted Parquet files as their readers see them: pyarrow reads the
//! plain columns without any key, and the encrypted ones only through the
//! shipped `KmsClient` with the owning institution's private key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use arrow_array::{RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use kansoku::storage::keys::{InstitutionCertificate, KeyRegistry, KeyRing, PeriodLength};
use kansoku::storage::parquet::{FileSpec, write};

use crate::venv_python;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn python(code: &str, args: &[&Path]) -> Output {
    venv_python()
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap()
}

const MAILS: [&str; 3] = [
    "alice@kansoku-secret.example",
    "bob@kansoku-secret.example",
    "carol@kansoku-secret.example",
];

fn written(dir: &Path) -> PathBuf {
    let now = jiff::Timestamp::now();
    let cert =
        InstitutionCertificate::load(&root().join("tests/fixtures/keys/alpha.pem"), now).unwrap();
    let registry = KeyRegistry::open(&dir.join("keys.sqlite")).unwrap();
    let certificates = HashMap::from([("alpha".to_owned(), cert)]);
    let mut ring = KeyRing::new(registry, PeriodLength::WEEK, certificates);
    let key = ring
        .key_for("alpha", jiff::civil::date(2026, 12, 4), now)
        .unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("src_ip", DataType::Utf8, false),
        Field::new("src_bytes", DataType::UInt64, false),
        Field::new("mail_from", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(TimestampMicrosecondArray::from(vec![1, 2, 3]).with_timezone("UTC")),
            Arc::new(StringArray::from(vec!["10.0.0.1", "10.0.0.2", "10.0.0.3"])),
            Arc::new(UInt64Array::from(vec![100, 200, 300])),
            Arc::new(StringArray::from(MAILS.to_vec())),
        ],
    )
    .unwrap();
    let relative = "alerts/institution=alpha/date=2026-12-04/part-0.parquet";
    let path = dir.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let spec = FileSpec {
        relative_path: relative,
        institution: "alpha",
        key,
        encrypted: &["mail_from"],
    };
    let file = std::fs::File::create(&path).unwrap();
    write(file, &spec, &[batch]).unwrap();
    path
}

#[test]
fn pyarrow_reads_plain_columns_without_keys_and_encrypted_ones_only_with_the_institutions_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = written(dir.path());

    let plain = python(
        "import sys, pyarrow.parquet as pq\n\
         t = pq.read_table(sys.argv[1], columns=['ts', 'src_ip', 'src_bytes'])\n\
         print(t.column('src_ip').to_pylist(), t.column('src_bytes').to_pylist())\n\
         try:\n    pq.read_table(sys.argv[1], columns=['mail_from'])\n    print('READ')\n\
         except Exception as e:\n    print('refused')\n",
        &[&path],
    );
    let out = String::from_utf8_lossy(&plain.stdout);
    assert!(
        plain.status.success(),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    assert!(
        out.contains("['10.0.0.1', '10.0.0.2', '10.0.0.3'] [100, 200, 300]"),
        "{out}"
    );
    assert!(out.contains("refused"), "{out}");

    let read_as = |key: &str| {
        python(
            "import sys, kansoku_kms\n\
             t = kansoku_kms.read_table(sys.argv[1], sys.argv[2])\n\
             print(t.column('mail_from').to_pylist())\n",
            &[&path, &root().join("tests/fixtures/keys").join(key)],
        )
    };
    let own = read_as("alpha.key");
    assert!(
        own.status.success(),
        "{}",
        String::from_utf8_lossy(&own.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&own.stdout).trim(),
        format!("{:?}", MAILS).replace('"', "'")
    );
    let other = read_as("beta.key");
    assert!(!other.status.success());

    // The plaintext of the encrypted column is nowhere in the file.
    let bytes = std::fs::read(&path).unwrap();
    for mail in MAILS {
        assert!(
            !bytes.windows(mail.len()).any(|w| w == mail.as_bytes()),
            "{mail} in the file"
        );
    }
}
