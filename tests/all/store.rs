//! The stored tables through `kansoku run`: hive partitions that pyarrow
//! and DuckDB read without keys, encrypted columns only the owning
//! institution decrypts, no plaintext of them and no payload in any file,
//! keys gone after rollover, decryption by consent, and crash safety.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kansoku::config::{Config, InstitutionsSource, StorageConfig};
use kansoku::flow::TextField;
use kansoku::ingest::InputPath;
use kansoku::pipeline::Engine;
use kansoku::storage::consent::{Consent, Filter, Scope, Status, load_private_key};
use kansoku::storage::keys::{KeyRegistry, PeriodLength};
use kansoku::storage::{Store, Table};
use kansoku::summary::Summary;

use crate::run::chaos;
use crate::venv_python;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn key_file(name: &str) -> PathBuf {
    root().join("tests/fixtures/keys").join(name)
}

/// Days of the input: a Sunday of ISO week 48, then two days of week 49,
/// so the key period rolls over mid-input.
const DAYS: [&str; 3] = ["2026-11-29", "2026-11-30", "2026-12-01"];

const INSTITUTIONS: [(&str, &str); 2] = [("alpha", "10.1.0.5"), ("beta", "10.2.0.7")];

/// Marker of the input payloads: must be in no stored file.
const PAYLOAD: &str = "kansoku-payload-marker-7c1d";
/// Marker of a mail subject, which is not stored either.
const SUBJECT: &str = "kansoku-subject-marker-93ab";

fn sender(institution: &str, day: &str) -> String {
    format!("sender.{institution}.{day}@kansoku-secret.example")
}

fn recipient(institution: &str, day: &str) -> String {
    format!("rcpt.{institution}.{day}@kansoku-secret.example")
}

fn attachment(institution: &str, day: &str) -> String {
    format!("plan-{institution}-{day}-kansoku-secret.docx")
}

/// Every sensitive value the input carries.
fn secrets() -> Vec<String> {
    let mut all = Vec::new();
    for (institution, _) in INSTITUTIONS {
        for day in DAYS {
            all.push(sender(institution, day));
            all.push(recipient(institution, day));
            all.push(attachment(institution, day));
        }
        all.push(format!("zeek.{institution}@kansoku-secret.example"));
    }
    all
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// EVE events per institution and day: a flow, an SMTP transaction with
/// an attachment, the file, and a sensor alert with its payload.
fn eve(dir: &Path) -> PathBuf {
    let mut out = String::new();
    let mut flow_id = 1000;
    for day in DAYS {
        for (institution, host) in INSTITUTIONS {
            flow_id += 1;
            let ts = format!("{day}T10:00:00.000000+0000");
            let head = format!(
                r#""timestamp":"{ts}","flow_id":{flow_id},"src_ip":"{host}","src_port":40000,"dest_ip":"203.0.113.9","dest_port":25,"proto":"TCP""#
            );
            writeln!(
                out,
                r#"{{{head},"event_type":"flow","app_proto":"smtp","flow":{{"pkts_toserver":12,"pkts_toclient":10,"bytes_toserver":4000,"bytes_toclient":900,"start":"{ts}","end":"{day}T10:00:05.000000+0000","age":5,"state":"closed","reason":"timeout"}}}}"#
            )
            .unwrap();
            writeln!(
                out,
                r#"{{{head},"event_type":"smtp","smtp":{{"helo":"mx.example","mail_from":"<{}>","rcpt_to":["<{}>"]}},"email":{{"status":"PARSE_DONE","from":"{}","to":["{}"],"subject":"{SUBJECT}","attachment":["{}"]}}}}"#,
                sender(institution, day),
                recipient(institution, day),
                sender(institution, day),
                recipient(institution, day),
                attachment(institution, day),
            )
            .unwrap();
            writeln!(
                out,
                r#"{{{head},"event_type":"fileinfo","app_proto":"smtp","fileinfo":{{"filename":"{}","md5":"0f343b0931126a20f133d67c2b018a3b","sha256":"5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef","size":1024,"state":"CLOSED","stored":false}}}}"#,
                attachment(institution, day),
            )
            .unwrap();
            writeln!(
                out,
                r#"{{{head},"event_type":"alert","alert":{{"action":"allowed","gid":1,"signature_id":2000001,"rev":1,"signature":"ET TEST attachment","category":"Test","severity":2}},"payload":"{}","payload_printable":"{PAYLOAD}","packet":"{}"}}"#,
                base64(PAYLOAD.as_bytes()),
                base64(format!("\0\u{1}{PAYLOAD}").as_bytes()),
            )
            .unwrap();
        }
    }
    let path = dir.join("eve.json");
    std::fs::write(&path, out).unwrap();
    path
}

/// A Zeek smtp.log of each institution on the last day.
fn zeek_smtp(dir: &Path) -> PathBuf {
    let mut out = String::from(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tsmtp\n\
         #fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\ttrans_depth\tmailfrom\trcptto\tsubject\n\
         #types\ttime\tstring\taddr\tport\taddr\tport\tcount\tstring\tset[string]\tstring\n",
    );
    for (i, (institution, host)) in INSTITUTIONS.iter().enumerate() {
        writeln!(
            out,
            "1796119200.{i}\tCz{i}\t{host}\t41000\t203.0.113.9\t25\t1\tzeek.{institution}@kansoku-secret.example\tx@example.org\t{SUBJECT}"
        )
        .unwrap();
    }
    let path = dir.join("smtp.log");
    std::fs::write(&path, out).unwrap();
    path
}

/// The institutions file and configuration of a stored run under `dir`.
fn config(dir: &Path) -> Config {
    let mut institutions = String::new();
    for (id, host) in INSTITUTIONS {
        let prefix = host.rsplitn(3, '.').nth(2).unwrap();
        writeln!(
            institutions,
            "[[institution]]\nid = \"{id}\"\nname = \"{id}\"\nprefixes = [\"{prefix}.0.0/16\"]\n\
             contact = \"soc@{id}.example\"\ncertificate = \"{}\"\n",
            key_file(&format!("{id}.pem")).display()
        )
        .unwrap();
    }
    let path = dir.join("institutions.toml");
    std::fs::write(&path, institutions).unwrap();
    let data_dir = dir.join("data");
    // Granted the sender, the plugin cites it in its evidence, which is
    // stored in the clear: storage must redact it.
    let mut echo = chaos("echo");
    echo.grants.insert(TextField::MailFrom);
    Config {
        institutions: InstitutionsSource::File(path),
        plugins: vec![echo],
        storage: Some(StorageConfig {
            key_registry: data_dir.join("keys.sqlite"),
            data_dir,
            key_period: PeriodLength::WEEK,
            retention_months: 3,
        }),
        ..Config::default()
    }
}

fn run(config: Config, inputs: &[PathBuf]) -> (Engine, Summary) {
    let engine = Engine::prepare(config).unwrap();
    let summary = engine
        .run(
            inputs.iter().cloned().map(InputPath::File).collect(),
            Box::new(std::io::sink()),
            false,
        )
        .unwrap();
    (engine, summary)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found.sort();
    found
}

fn python(code: &str, args: &[&Path]) -> String {
    let output = venv_python()
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn a_run_stores_both_tables_readable_without_keys_and_decryptable_only_by_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = [eve(dir.path()), zeek_smtp(dir.path())];
    let config = config(dir.path());
    let data = config.storage.as_ref().unwrap().data_dir.clone();
    let (engine, summary) = run(config, &inputs);
    let flows = summary.stored["flows"];
    let alerts = summary.stored["alerts"];
    // 4 EVE events per institution and day, and one Zeek transaction each.
    assert_eq!(flows.rows, 2 * 3 * 4 + 2, "{summary}");
    assert_eq!(alerts.rows, summary.alerts["chaos"], "{summary}");
    assert!(
        alerts.rows >= flows.rows,
        "echo: an alert per flow: {summary}"
    );
    // One flows file per institution and day. Alerts lag behind flows:
    // one arriving after its institution's key rolled over goes to a new
    // file under the new key.
    assert_eq!(flows.files, 6, "{summary}");
    assert!(alerts.files >= 6, "{summary}");

    let parquet: Vec<PathBuf> = files(&data)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(parquet.len() as u64, flows.files + alerts.files);
    for path in &parquet {
        let relative = path.strip_prefix(&data).unwrap().to_string_lossy();
        assert!(
            relative.starts_with("flows/institution=")
                || relative.starts_with("alerts/institution="),
            "{relative}"
        );
        assert!(relative.contains("/date=20"), "{relative}");
    }

    // The plaintext of every encrypted value and the payloads: in no file.
    let secrets = secrets();
    for path in files(&data) {
        let bytes = std::fs::read(&path).unwrap();
        for needle in secrets.iter().map(String::as_str).chain([PAYLOAD, SUBJECT]) {
            let encoded = base64(needle.as_bytes());
            for n in [needle, encoded.as_str()] {
                assert!(
                    !bytes.windows(n.len()).any(|w| w == n.as_bytes()),
                    "{n} in {}",
                    path.display()
                );
            }
        }
    }

    // pyarrow and DuckDB: the viewable columns, hive partitioned, no key.
    let out = python(
        "import sys, pyarrow.dataset as ds, duckdb\n\
         cols = ['ts', 'src_ip', 'dst_port', 'kind', 'src_bytes', 'service', 'institution', 'date']\n\
         t = ds.dataset(sys.argv[1] + '/flows', format='parquet', partitioning='hive').to_table(columns=cols)\n\
         print('pyarrow', t.num_rows, sorted(set(t.column('institution').to_pylist())), sorted(set(str(d) for d in t.column('date').to_pylist())))\n\
         try:\n    ds.dataset(sys.argv[1] + '/flows', format='parquet', partitioning='hive').to_table(columns=['mail_from'])\n    print('READ')\n\
         except Exception:\n    print('mail_from refused')\n\
         con = duckdb.connect()\n\
         q = \"SELECT institution, count(*), sum(src_bytes) FROM read_parquet('\" + sys.argv[1] + \"/flows/*/*/*.parquet', hive_partitioning=true) GROUP BY institution ORDER BY institution\"\n\
         print('duckdb', con.execute(q).fetchall())\n\
         q = \"SELECT count(*), count(DISTINCT date) FROM read_parquet('\" + sys.argv[1] + \"/alerts/*/*/*.parquet', hive_partitioning=true) WHERE institution = 'alpha' AND rule_id = 'echo'\"\n\
         print('duckdb alerts', con.execute(q).fetchall())\n",
        &[&data],
    );
    assert!(
        out.contains("pyarrow 26 ['alpha', 'beta'] ['2026-11-29', '2026-11-30', '2026-12-01']"),
        "{out}"
    );
    assert!(out.contains("mail_from refused"), "{out}");
    assert!(
        out.contains("duckdb [('alpha', 13, 12000), ('beta', 13, 12000)]"),
        "{out}"
    );
    assert!(out.contains("duckdb alerts [(13, 3)]"), "{out}");

    // The owner decrypts with the shipped KmsClient; the other cannot.
    let read = |key: &str| {
        venv_python()
            .arg("-c")
            .arg(
                "import sys, kansoku_kms\n\
                 t = kansoku_kms.dataset(sys.argv[1] + '/flows/institution=alpha', sys.argv[2]).to_table(columns=['mail_from', 'mail_to', 'file_name'])\n\
                 for c in t.columns:\n    print(sorted(v for v in c.to_pylist() if v))\n",
            )
            .arg(&data)
            .arg(key_file(key))
            .output()
            .unwrap()
    };
    let own = read("alpha.key");
    let stdout = String::from_utf8_lossy(&own.stdout);
    assert!(
        own.status.success(),
        "{}",
        String::from_utf8_lossy(&own.stderr)
    );
    for day in DAYS {
        assert!(stdout.contains(&sender("alpha", day)), "{stdout}");
        assert!(stdout.contains(&recipient("alpha", day)), "{stdout}");
        assert!(stdout.contains(&attachment("alpha", day)), "{stdout}");
    }
    assert!(
        stdout.contains("zeek.alpha@kansoku-secret.example"),
        "{stdout}"
    );
    assert!(!stdout.contains("beta"), "{stdout}");
    let other = read("beta.key");
    assert!(!other.status.success(), "beta's key decrypted alpha's data");

    // The week-48 key of alpha is gone from the process that wrote it;
    // the registry holds it wrapped only, and the institution unwraps it.
    let registry = KeyRegistry::open(&data.join("keys.sqlite")).unwrap();
    let week48: Vec<_> = registry
        .files("alpha", "flows", "2026-11-29", "2026-11-29")
        .unwrap();
    assert_eq!(week48.len(), 1);
    let old_kek = &week48[0].kek_id;
    let week49 = registry
        .files("alpha", "flows", "2026-11-30", "2026-11-30")
        .unwrap();
    assert_ne!(&week49[0].kek_id, old_kek, "a file spans two key periods");
    let store: &Store = engine.store().unwrap();
    assert!(
        !store.holds_key(old_kek),
        "the finished period's KEK is still in memory"
    );
    let record = registry.by_id(old_kek).unwrap().unwrap();
    assert_eq!(record.period, "2026-W48");
    let unwrapped = python(
        "import sys, kansoku_keys\n\
         print(kansoku_keys.unwrap_kek(kansoku_keys.load_private_key(sys.argv[2]), sys.argv[1]).hex())\n",
        &[&PathBuf::from(&record.wrapped_kek), &key_file("alpha.key")],
    );
    let kek: Vec<u8> = (0..unwrapped.trim().len() / 2)
        .map(|i| u8::from_str_radix(&unwrapped.trim()[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    assert_eq!(kek.len(), 16, "{unwrapped}");
    // Nothing the service keeps on disk holds that KEK in the clear (nor
    // in base64): the registry, the partitions, the logs.
    let encoded = base64(&kek);
    for path in files(&data) {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(16).any(|w| w == kek.as_slice()),
            "the week-48 KEK is in {}",
            path.display()
        );
        assert!(
            !bytes
                .windows(encoded.len())
                .any(|w| w == encoded.as_bytes()),
            "the week-48 KEK is in {}",
            path.display()
        );
    }
}

#[test]
fn encrypted_columns_have_no_bloom_filter_or_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = [eve(dir.path())];
    let config = config(dir.path());
    let data = config.storage.as_ref().unwrap().data_dir.clone();
    let (_, summary) = run(config, &inputs);
    let stored: u64 = summary.stored.values().map(|c| c.files).sum();
    // The footer's column chunks, read as the owning institution (the
    // encrypted columns' metadata is itself encrypted): no bloom filter
    // offset or length, no statistics. A plain column as a control.
    let out = python(
        "import sys, glob, kansoku_kms, pyarrow.parquet as pq\n\
         keys = {'alpha': sys.argv[2], 'beta': sys.argv[3]}\n\
         for path in sorted(glob.glob(sys.argv[1] + '/*/*/*/*.parquet')):\n\
         \x20   owner = path.split('institution=')[1].split('/')[0]\n\
         \x20   md = pq.ParquetFile(path, decryption_properties=kansoku_kms.decryption_properties(keys[owner])).metadata\n\
         \x20   for g in range(md.num_row_groups):\n\
         \x20       for c in range(md.num_columns):\n\
         \x20           col = md.row_group(g).column(c)\n\
         \x20           if col.path_in_schema in ('mail_from', 'mail_to', 'file_name', 'detected_substring', 'src_bytes'):\n\
         \x20               print(col.path_in_schema, col.is_stats_set, col.bloom_filter_offset, col.bloom_filter_length)\n",
        &[&data, &key_file("alpha.key"), &key_file("beta.key")],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len() as u64, stored * 5, "{out}");
    for line in lines {
        if line.starts_with("src_bytes") {
            assert!(line.starts_with("src_bytes True"), "{line}");
        } else {
            assert!(line.ends_with(" False None None"), "{line}");
        }
    }
}

#[test]
fn decryption_needs_the_institutions_approval_and_shows_exactly_the_scope() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = [eve(dir.path())];
    let config = config(dir.path());
    let data = config.storage.as_ref().unwrap().data_dir.clone();
    run(config, &inputs);
    let registry = KeyRegistry::open(&data.join("keys.sqlite")).unwrap();
    let consent = Consent::open(&registry).unwrap();
    let scope = |from: &str, to: &str, filters: Vec<Filter>| Scope {
        institution: "alpha".into(),
        table: Table::Alerts,
        from: from.parse().unwrap(),
        to: to.parse().unwrap(),
        filters,
    };

    // Refused: nothing is visible, and the attempt is logged.
    let refused = consent
        .request(
            "analyst-a",
            &scope("2026-11-29", "2026-12-01", vec![]),
            "case 17",
        )
        .unwrap();
    assert!(consent.show(refused, "analyst-a", &data).is_err());
    consent.refuse(refused, "alpha-csirt").unwrap();
    let err = consent.show(refused, "analyst-a", &data).unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    assert!(
        consent.refuse(refused, "alpha-csirt").is_err(),
        "decided twice"
    );

    // Approved with another institution's key: refused, nothing released.
    let id = consent
        .request(
            "analyst-b",
            &scope(
                "2026-11-30",
                "2026-11-30",
                vec![
                    "file_sha256=5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
                        .parse::<Filter>()
                        .unwrap(),
                ],
            ),
            "phishing follow-up",
        )
        .unwrap();
    let beta = load_private_key(&key_file("beta.key")).unwrap();
    let err = consent.approve(id, "alpha-csirt", &beta).unwrap_err();
    assert!(err.to_string().contains("does not unwrap"), "{err}");
    assert_eq!(consent.get(id).unwrap().status, Status::Pending);

    // Approved with the institution's key: exactly the scope.
    let alpha = load_private_key(&key_file("alpha.key")).unwrap();
    assert_eq!(consent.approve(id, "alpha-csirt", &alpha).unwrap(), 1);
    let rows = consent.show(id, "analyst-b", &data).unwrap();
    assert!(!rows.is_empty());
    for row in &rows {
        assert_eq!(row["institution"], "alpha");
        assert_eq!(row["date"], "2026-11-30");
        assert!(
            row["file_sha256"]
                .as_str()
                .is_some_and(|h| h.starts_with("5f70bf"))
        );
    }
    // The file event of that day only, not the day's SMTP transaction nor
    // any other day's file: its name decrypted.
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0]["mail_from"].is_null());
    let names: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["file_name"].as_str())
        .collect();
    assert_eq!(names, [attachment("alpha", "2026-11-30")]);

    // Every step is in the log: who, what, when.
    let log: Vec<(i64, String, String)> = consent
        .history(None)
        .unwrap()
        .into_iter()
        .map(|e| (e.request, e.event, e.actor))
        .collect();
    let expected = [
        (refused, "requested", "analyst-a"),
        (refused, "denied", "analyst-a"),
        (refused, "refused", "alpha-csirt"),
        (refused, "denied", "analyst-a"),
        (id, "requested", "analyst-b"),
        (id, "approved", "alpha-csirt"),
        (id, "viewed", "analyst-b"),
    ];
    let expected: Vec<(i64, String, String)> = expected
        .iter()
        .map(|(r, e, a)| (*r, (*e).to_owned(), (*a).to_owned()))
        .collect();
    assert_eq!(log, expected);
    for entry in consent.history(None).unwrap() {
        for secret in secrets() {
            assert!(!entry.detail.contains(&secret), "{entry:?}");
        }
    }
}

/// The child of the crash test: a run over a FIFO that never ends, killed
/// by the parent mid-file. Does nothing unless the parent started it.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("KANSOKU_CRASH_CHILD") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let config = config(&dir);
    let engine = Engine::prepare(config).unwrap();
    let _ = engine.run(
        vec![InputPath::File(dir.join("input.fifo"))],
        Box::new(std::io::sink()),
        false,
    );
}

#[test]
fn a_writer_killed_mid_file_leaves_no_partial_file_and_the_next_run_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("input.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let data = dir.path().join("data");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "store::crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KANSOKU_CRASH_CHILD", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let eve = std::fs::read_to_string(eve(dir.path())).unwrap();
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    std::io::Write::write_all(&mut writer, eve.as_bytes()).unwrap();
    std::io::Write::flush(&mut writer).unwrap();
    // Wait for the writer to have files open (temporary, hidden), then
    // kill it without warning.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let temporary = |data: &Path| {
        data.exists()
            && files(data).iter().any(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with(".tmp"))
            })
    };
    while !temporary(&data) {
        assert!(
            std::time::Instant::now() < deadline,
            "the child never opened a file"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    drop(writer);

    // Files finished before the kill are whole (pyarrow reads them); the
    // file being written is not visible.
    assert!(
        temporary(&data),
        "the kill left nothing to clean up: test is void"
    );
    let visible = python(
        "import sys, glob, pyarrow.parquet as pq\n\
         paths = glob.glob(sys.argv[1] + '/*/*/*/*.parquet')\n\
         print(len(paths), sum(pq.read_metadata(p).num_rows for p in paths))\n",
        &[&data],
    );
    let (files_before, rows_before) = visible.trim().split_once(' ').unwrap();
    let rows_before: u64 = rows_before.parse().unwrap();
    assert!(
        rows_before < 48,
        "everything was committed before the kill: {visible}"
    );
    eprintln!("before the restart: {files_before} whole files, {rows_before} rows");

    // Restart: leftovers removed, the run completes, readers are happy.
    let (_, summary) = run(config(dir.path()), &[dir.path().join("eve.json")]);
    assert_eq!(summary.stored["flows"].rows, 24, "{summary}");
    assert!(!temporary(&data));
    let out = python(
        "import sys, pyarrow.dataset as ds\n\
         print(ds.dataset(sys.argv[1] + '/flows', format='parquet', partitioning='hive').count_rows())\n",
        &[&data],
    );
    let flows: u64 = out.trim().parse().unwrap();
    assert!(flows >= 24, "{out}");
}

#[test]
fn an_unwritable_data_directory_stops_the_run_with_a_clear_error_and_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = [eve(dir.path())];
    let config = config(dir.path());
    let data = config.storage.as_ref().unwrap().data_dir.clone();
    let engine = Engine::prepare(config).unwrap();
    // A file where the table's directory should be: every file of the
    // table fails to be created, as on a full or read-only disk.
    std::fs::write(data.join("flows"), b"not a directory").unwrap();
    let err = engine
        .run(
            inputs.iter().cloned().map(InputPath::File).collect(),
            Box::new(std::io::sink()),
            false,
        )
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("storage stopped"), "{message}");
    assert!(message.contains("flows"), "{message}");
    let partial: Vec<PathBuf> = files(&data)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(".parquet"))
        })
        .filter(|p| !p.starts_with(data.join("alerts")))
        .collect();
    assert_eq!(partial, Vec::<PathBuf>::new());
}

#[test]
fn a_run_applies_retention_and_keeps_the_registry_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = [eve(dir.path())];
    let config = config(dir.path());
    let data = config.storage.as_ref().unwrap().data_dir.clone();
    // Collected in July 2026: past retention (3 months from 1 August) on
    // any day this test runs. A partition of last week: kept.
    let expired = data.join("flows/institution=alpha/date=2026-07-15");
    let recent = data.join("alerts/institution=beta/date=2026-11-29");
    for partition in [&expired, &recent] {
        std::fs::create_dir_all(partition).unwrap();
        std::fs::write(partition.join("part-old.parquet"), b"PAR1").unwrap();
    }
    run(config, &inputs);
    assert!(!expired.exists(), "the expired partition is still there");
    assert!(recent.join("part-old.parquet").exists());
    assert!(data.join("keys.sqlite").exists());
    let log = std::fs::read_to_string(data.join("retention.log")).unwrap();
    assert!(
        log.contains("\"deleted\":\"flows/institution=alpha/date=2026-07-15\""),
        "{log}"
    );
}
