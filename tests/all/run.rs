//! Whole runs through [`Engine::run`]: real inputs, real plugins, alerts
//! read back as JSON.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kansoku::config::{Config, InstitutionsSource};
use kansoku::contract::Ruleset;
use kansoku::ingest::InputPath;
use kansoku::pipeline::Engine;
use kansoku::plugins::{PluginSpec, builtin};
use kansoku::summary::Summary;
use serde_json::Value;

pub(crate) fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

pub(crate) fn test_plugin(name: &str) -> PathBuf {
    Path::new(env!("KANSOKU_TEST_PLUGINS")).join(format!("{name}.wasm"))
}

pub(crate) fn chaos(directives: &str) -> PluginSpec {
    let mut spec = PluginSpec::file("chaos", test_plugin("chaos"));
    spec.rulesets = vec![Ruleset {
        name: "chaos.rules".into(),
        content: directives.as_bytes().to_vec(),
    }];
    spec
}

/// A `Write` the test can read after the run.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Run {
    summary: Summary,
    bytes: Vec<u8>,
    alerts: Vec<Value>,
}

fn run(dir: &Path, institutions: &str, plugins: Vec<PluginSpec>, inputs: Vec<PathBuf>) -> Run {
    run_with(dir, institutions, plugins, inputs, |_| {})
}

fn run_with(
    dir: &Path,
    institutions: &str,
    plugins: Vec<PluginSpec>,
    inputs: Vec<PathBuf>,
    tweak: impl FnOnce(&mut Config),
) -> Run {
    let path = dir.join("institutions.toml");
    std::fs::write(&path, institutions).unwrap();
    let mut config = Config {
        institutions: InstitutionsSource::File(path),
        plugins,
        ..Config::default()
    };
    config.failure.backoff = Duration::ZERO;
    config.failure.quarantine_after = 2;
    config.ingest.batch_rows = 32;
    tweak(&mut config);
    let engine = Engine::prepare(config).unwrap();
    let out = Shared::default();
    let summary = engine
        .run(
            inputs.into_iter().map(InputPath::File).collect(),
            Box::new(out.clone()),
            false,
        )
        .unwrap();
    let bytes = out.0.lock().unwrap().clone();
    let alerts = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("every alert line is JSON"))
        .collect();
    Run {
        summary,
        bytes,
        alerts,
    }
}

const HONEYPOT: &str = r#"
[[institution]]
id = "strato"
name = "Stratosphere Honeypot University"
prefixes = ["192.168.1.0/24"]
contact = "soc@strato.example"
"#;

const PAYLOAD_TEXT: &str = "GET /kansoku-secret-payload-5e1f HTTP/1.1";

/// A real EVE alert event of the fixture, with the payload fields Suricata
/// adds under `payload: yes`, `payload-printable: yes` and `packet: yes`.
fn eve_with_payload(dir: &Path) -> PathBuf {
    let text = {
        let mut gz = flate2::read::GzDecoder::new(
            std::fs::File::open(fixture("eve/test6-head1500.json.gz")).unwrap(),
        );
        let mut s = String::new();
        std::io::Read::read_to_string(&mut gz, &mut s).unwrap();
        s
    };
    let mut out = String::new();
    for line in text.lines() {
        let mut event: Value = serde_json::from_str(line).unwrap();
        if event["event_type"] == "alert" {
            event["payload"] = Value::String(base64_encode(PAYLOAD_TEXT.as_bytes()));
            event["payload_printable"] = Value::String(PAYLOAD_TEXT.into());
            event["packet"] =
                Value::String(base64_encode(format!("\0\u{1}{PAYLOAD_TEXT}").as_bytes()));
            event["alert"]["rule"] = Value::String(format!(
                "alert http any any -> any any (content:\"{PAYLOAD_TEXT}\";)"
            ));
        }
        out.push_str(&serde_json::to_string(&event).unwrap());
        out.push('\n');
    }
    let path = dir.join("eve-payload.json");
    std::fs::write(&path, out).unwrap();
    path
}

/// Standard base64 (RFC 4648), as Suricata writes `payload`.
fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn eve_payload_never_reaches_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = eve_with_payload(dir.path());
    let raw = std::fs::read_to_string(&input).unwrap();
    assert!(
        raw.contains(PAYLOAD_TEXT),
        "the input must carry the payload"
    );

    // `echo` turns every flow into an alert citing what the plugin saw.
    let run = run(dir.path(), HONEYPOT, vec![chaos("echo")], vec![input]);
    assert!(run.summary.flows_kept > 500, "{}", run.summary);
    assert!(run.alerts.len() as u64 >= run.summary.flows_kept);
    let summary_json = serde_json::to_vec(&run.summary).unwrap();
    let summary_text = run.summary.to_string();
    let needles = [
        PAYLOAD_TEXT.to_owned(),
        base64_encode(PAYLOAD_TEXT.as_bytes()),
        "kansoku-secret-payload".to_owned(),
    ];
    for needle in &needles {
        for (what, bytes) in [
            ("alerts", &run.bytes),
            ("summary json", &summary_json),
            ("summary", &summary_text.as_bytes().to_vec()),
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "payload text found in {what}"
            );
        }
    }
}

#[test]
fn alerts_read_as_eve_alerts_with_kansoku_fields() {
    let dir = tempfile::tempdir().unwrap();
    let run = run(
        dir.path(),
        HONEYPOT,
        vec![chaos("echo")],
        vec![fixture("eve/test6-head1500.json.gz")],
    );
    let dns = run
        .alerts
        .iter()
        .find(|a| a["dns"]["query"][0]["rrname"].is_string())
        .expect("a DNS flow was echoed");
    assert_eq!(dns["event_type"], "alert");
    assert_eq!(dns["alert"]["action"], "allowed");
    assert!(dns["alert"]["signature_id"].is_u64());
    assert!(dns["timestamp"].as_str().unwrap().ends_with("+0000"));
    assert_eq!(dns["institution"]["id"], "strato");
    assert!(["inbound", "outbound", "internal"].contains(&dns["direction"].as_str().unwrap()));
    assert_eq!(dns["kansoku"]["plugin"], "chaos");
    assert!(dns["kansoku"]["urgency"].is_null());
    assert_eq!(
        dns["kansoku"]["source"]["input"],
        fixture("eve/test6-head1500.json.gz").display().to_string()
    );
    assert!(dns["kansoku"]["source"]["line"].as_u64().unwrap() >= 1);
}

/// Flows from one outside host to many ports of one inside host, no
/// answers, as Zeek writes them.
fn scan_log(dir: &Path, name: &str) -> PathBuf {
    let mut log = String::from(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n\
         #fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n\
         #types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n",
    );
    for port in 1..=200u32 {
        log.push_str(&format!(
            "{}.000000\tC{port}\t203.0.113.9\t40000\t192.168.1.10\t{port}\ttcp\t-\t-\t-\t-\tS0\tF\tT\t0\tS\t1\t44\t0\t0\t-\n",
            1_700_000_000 + port
        ));
    }
    // Out of scope: neither end registered.
    log.push_str("1700000300.000000\tCx\t198.51.100.1\t1\t198.51.100.2\t2\ttcp\t-\t-\t-\t-\tSF\tF\tF\t0\tS\t1\t44\t1\t44\t-\n");
    let path = dir.join(name);
    std::fs::write(&path, log).unwrap();
    path
}

#[test]
fn a_quarantined_plugin_fails_open_and_the_others_still_see_every_flow() {
    let dir = tempfile::tempdir().unwrap();
    let scans = scan_log(dir.path(), "conn.log");
    let portscan = PluginSpec::builtin(builtin("portscan").unwrap());
    let run = run(
        dir.path(),
        HONEYPOT,
        vec![chaos("trap-on-data"), portscan],
        vec![scans],
    );

    let s = &run.summary;
    assert_eq!(s.flows_read, 201);
    assert_eq!(s.flows_kept, 200);
    assert_eq!(s.dropped.get("out_of_scope"), Some(&1));
    let chaos = &s.plugins[0];
    let portscan = &s.plugins[1];
    assert!(chaos.quarantines >= 1, "{s}");
    assert!(chaos.trap_count() >= 2, "{s}");
    assert_eq!(chaos.flows, 0);
    assert_eq!(portscan.flows, 200, "{s}");
    assert_eq!(portscan.trap_count(), 0);

    let quarantined: Vec<&Value> = run
        .alerts
        .iter()
        .filter(|a| a["kansoku"]["rule_id"] == "plugin-quarantined")
        .collect();
    assert_eq!(quarantined.len(), 1, "one engine alert per quarantine");
    assert_eq!(quarantined[0]["kansoku"]["plugin"], "engine");
    assert_eq!(quarantined[0]["kansoku"]["evidence"]["plugin"], "chaos");

    let scans: Vec<&Value> = run
        .alerts
        .iter()
        .filter(|a| a["kansoku"]["plugin"] == "portscan")
        .collect();
    assert!(!scans.is_empty(), "portscan still found the scan");
    assert_eq!(scans[0]["src_ip"], "203.0.113.9");
    assert_eq!(scans[0]["institution"]["id"], "strato");
}

#[test]
fn bad_lines_are_counted_with_their_place_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let good = scan_log(dir.path(), "conn.log");
    let mut text = std::fs::read_to_string(&good).unwrap();
    // Line 9: truncated; line 10: a bad address; then invalid UTF-8.
    let lines: Vec<&str> = text.lines().collect();
    let truncated = &lines[8][..20];
    let bad_addr = lines[9].replace("203.0.113.9", "203.0.113.999");
    let mut broken = lines[..8].join("\n");
    broken.push('\n');
    broken.push_str(truncated);
    broken.push('\n');
    broken.push_str(&bad_addr);
    broken.push('\n');
    let mut bytes = broken.into_bytes();
    bytes.extend_from_slice(b"1700000999.0\tCz\t203.0.113.9\t1\t192.168.1.10\t9\ttcp\t\xff\xfe\t-\t-\t-\tS0\tF\tT\t0\tS\t1\t44\t0\t0\t-\n");
    text = lines[10..].join("\n");
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(b'\n');
    let path = dir.path().join("broken-conn.log");
    std::fs::write(&path, &bytes).unwrap();

    let run = run(
        dir.path(),
        HONEYPOT,
        vec![PluginSpec::builtin(builtin("portscan").unwrap())],
        vec![path.clone(), dir.path().join("missing.log"), good],
    );
    let s = &run.summary;
    assert_eq!(s.inputs.len(), 3);
    let broken = &s.inputs[0];
    assert_eq!(broken.bad_lines.get("wrong_field_count"), Some(&1), "{s}");
    assert_eq!(broken.bad_lines.get("bad_address"), Some(&1), "{s}");
    assert_eq!(broken.bad_line_count(), 3, "{s}");
    assert!(
        s.first_errors[0].starts_with(&format!("{}:9: ", path.display())),
        "{:?}",
        s.first_errors
    );
    assert!(
        s.inputs[1]
            .failed
            .as_deref()
            .unwrap()
            .contains("cannot open")
    );
    assert_eq!(s.inputs[2].bad_line_count(), 0);
    assert_eq!(s.inputs[2].records, 201);
    // Two lines were spoilt, one was added.
    assert_eq!(broken.records, 201 - 2);
}

const EVERYONE: &str = r#"
[[institution]]
id = "everyone"
name = "The Whole Internet"
prefixes = ["0.0.0.0/0", "::/0"]
contact = "soc@everyone.example"
"#;

/// Several Zeek logs in one stream, each with its own header block, and a
/// bad line in the middle of the second: the parse threads must pick up
/// every header change and every line number.
fn concatenated_zeek(dir: &Path) -> PathBuf {
    let mut bytes = Vec::new();
    for log in ["conn", "dns", "ssl", "http", "files"] {
        let text = std::fs::read(fixture(&format!("zeek/rita-proxy/{log}.log"))).unwrap();
        bytes.extend_from_slice(&text);
        if log == "dns" {
            bytes.extend_from_slice(b"1331901000.0\tCbad\tnot-an-address\n");
        }
    }
    let path = dir.join("rita-proxy-all.log");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn parse_threads_change_nothing_a_run_reports_nor_its_order() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = vec![
        concatenated_zeek(dir.path()),
        fixture("eve/test6-head1500.json.gz"),
        fixture("csv/eve-flows.csv"),
        fixture("zeek/slips-test9/dns.log"),
    ];
    let once = |threads: usize, rows: usize| {
        run_with(
            dir.path(),
            EVERYONE,
            vec![chaos("echo")],
            inputs.clone(),
            |config| {
                config.ingest.parse_threads = threads;
                config.ingest.batch_rows = rows;
            },
        )
    };
    let serial = once(1, 4096);
    let s = &serial.summary;
    assert!(s.flows_kept > 3_000, "{s}");
    assert_eq!(s.inputs[0].bad_line_count(), 1, "{s}");
    assert!(
        s.inputs[0].skipped.get("header").is_some_and(|&n| n >= 40),
        "{s}"
    );
    let echoes = serial
        .alerts
        .iter()
        .filter(|a| a["kansoku"]["rule_id"] == "echo")
        .count();
    assert_eq!(echoes as u64, s.flows_kept, "one echo per flow");

    // Batches are cut where units are, whatever the number of threads, so
    // the same batch size must give the same bytes; ticks (which chaos
    // answers) fall at batch edges, so other sizes give other ticks.
    for rows in [4096, 7, 100] {
        let one = once(1, rows);
        for threads in [2, 4] {
            let parallel = once(threads, rows);
            let p = &parallel.summary;
            assert_eq!(p.flows_read, s.flows_read, "{threads} threads");
            assert_eq!(p.flows_kept, s.flows_kept, "{threads} threads");
            assert_eq!(p.dropped, s.dropped, "{threads} threads");
            assert_eq!(p.first_errors, s.first_errors, "{threads} threads");
            for (a, b) in p.inputs.iter().zip(&s.inputs) {
                assert_eq!(
                    (
                        &a.name,
                        &a.format,
                        a.lines,
                        a.records,
                        &a.skipped,
                        &a.bad_lines
                    ),
                    (
                        &b.name,
                        &b.format,
                        b.lines,
                        b.records,
                        &b.skipped,
                        &b.bad_lines
                    ),
                );
            }
            if let Some((a, b)) = parallel
                .alerts
                .iter()
                .zip(&one.alerts)
                .find(|(a, b)| a != b)
            {
                panic!("{threads} threads, {rows} rows:\n{a}\n{b}");
            }
            assert!(
                parallel.bytes == one.bytes,
                "{threads} threads, {rows} rows: alerts differ"
            );
        }
    }
}

#[test]
fn a_slow_stream_reaches_the_plugins_before_its_batch_fills() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("conn.log");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let institutions = dir.path().join("institutions.toml");
    std::fs::write(&institutions, HONEYPOT).unwrap();
    let mut config = Config {
        institutions: InstitutionsSource::File(institutions),
        plugins: vec![chaos("echo")],
        ..Config::default()
    };
    config.ingest.flush_interval = Duration::from_millis(50);
    let engine = Engine::prepare(config).unwrap();
    let log = std::fs::read_to_string(scan_log(dir.path(), "scan.log")).unwrap();
    let (header, body): (Vec<&str>, Vec<&str>) = log.lines().partition(|l| l.starts_with('#'));
    let out = Shared::default();

    std::thread::scope(|s| {
        let run = s.spawn(|| {
            engine.run(
                vec![InputPath::File(fifo.clone())],
                Box::new(out.clone()),
                false,
            )
        });
        let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        writeln!(writer, "{}\n{}", header.join("\n"), body[0]).unwrap();
        writer.flush().unwrap();
        // One flow, far from a full batch, with the input still open.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while out.0.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let early = out.0.lock().unwrap().clone();
        writeln!(writer, "{}", body[1]).unwrap();
        drop(writer);
        let summary = run.join().unwrap().unwrap();
        assert!(
            String::from_utf8_lossy(&early).contains("\"rule_id\":\"echo\""),
            "the first flow was not flushed while the input stayed open"
        );
        assert_eq!(summary.flows_kept, 2);
    });
}

/// Runs a Python script of `scripts/model` with the workspace's venv,
/// returning its standard output.
fn model_script(args: &[&std::ffi::OsStr]) -> String {
    let output = crate::venv_python().args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The EVE flow events of `path` in order of flow start, written to `dir`.
///
/// Suricata logs a flow when it ends, so a long flow comes after shorter
/// ones that started later. The plugin drops a source's window once data
/// time is a window past it (at `tick`); the training script keeps every
/// window. In start order both count the same flows.
fn sorted_by_start(path: &Path, dir: &Path) -> PathBuf {
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()),
        &mut text,
    )
    .unwrap();
    let mut lines: Vec<(String, &str)> = text
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap();
            let start = event["flow"]["start"].as_str().unwrap().to_owned();
            // One sensor, one UTC offset: the strings sort as the times.
            assert!(start.ends_with("+0200"), "{start}");
            (start, line)
        })
        .collect();
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    let sorted = dir.join("flows-by-start.json");
    let body: Vec<&str> = lines.iter().map(|(_, line)| *line).collect();
    std::fs::write(&sorted, body.join("\n") + "\n").unwrap();
    sorted
}

#[test]
fn the_builtin_model_scores_flows_in_wasm_as_onnxruntime_does() {
    // The shipped model inside the built-in Wasm plugin (tract with Wasm
    // SIMD kernels), fed by the host's EVE ingest, against onnxruntime on
    // the features the training script computes from the same lines.
    let dir = tempfile::tempdir().unwrap();
    let eve = sorted_by_start(&fixture("onnx/test6-flows.json.gz"), dir.path());
    let mut spec = PluginSpec::builtin(builtin("ml-score").unwrap());
    let model = spec
        .rulesets
        .iter_mut()
        .find(|r| r.name == "model.toml")
        .expect("ml-score ships model.toml");
    let text = String::from_utf8(model.content.clone())
        .unwrap()
        .lines()
        .map(|line| match line.split(" = ").next() {
            Some("threshold") => "threshold = 0.0".to_owned(),
            Some("findings_per_source") => "findings_per_source = 1000000".to_owned(),
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    model.content = text.clone().into_bytes();
    let spec_path = dir.path().join("model.toml");
    std::fs::write(&spec_path, &text).unwrap();

    let run = run(dir.path(), HONEYPOT, vec![spec], vec![eve.clone()]);
    let mut scores = std::collections::BTreeMap::new();
    for alert in run
        .alerts
        .iter()
        .filter(|a| a["kansoku"]["rule_id"] == "model-flows")
    {
        let line = alert["kansoku"]["source"]["line"].as_u64().unwrap();
        let score: f64 = alert["kansoku"]["evidence"]["score"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(scores.insert(line, score).is_none(), "line {line} twice");
    }

    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/model");
    let features = model_script(&[
        scripts.join("features.py").as_os_str(),
        "--eve".as_ref(),
        eve.as_os_str(),
        "--spec".as_ref(),
        spec_path.as_os_str(),
    ]);
    let csv = dir.path().join("features.csv");
    std::fs::write(&csv, features).unwrap();
    let reference: Vec<f64> = model_script(&[
        scripts.join("score.py").as_os_str(),
        "--spec".as_ref(),
        spec_path.as_os_str(),
        "--model".as_ref(),
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("rulesets/ml-score/flows.onnx")
            .as_os_str(),
        csv.as_os_str(),
    ])
    .lines()
    .map(|l| l.parse().unwrap())
    .collect();

    assert!(reference.len() >= 3000, "{} flows", reference.len());
    assert_eq!(scores.len(), reference.len(), "every flow scored once");
    for (i, expected) in reference.iter().enumerate() {
        let line = i as u64 + 1;
        let score = scores[&line];
        // The evidence carries six decimals.
        assert!(
            (score - expected).abs() <= 1e-4,
            "line {line}: plugin {score} onnxruntime {expected}"
        );
    }
}
