//! The model slot, driven through the `Detector` trait on the real flows of
//! a Suricata EVE file: the shipped model against onnxruntime, hot swaps,
//! bad models, windows across snapshot/restore, the per-source limit.
//!
//! The onnxruntime comparison runs `scripts/model/score.py` and
//! `features.py` with the workspace's `.venv` (`make venv`).

#![allow(clippy::unwrap_used, reason = "test helpers panic to fail the test")]

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use kansoku_plugin::testing::BatchBuilder;
use kansoku_plugin::{Batch, Detector, Finding, Ruleset, Subject, TextField};
use ml_score::MlScore;
use ml_score::features::{Extractor, Feature, Windows};

const ROWS_PER_BATCH: usize = 1000;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(workspace().join(path)).unwrap()
}

fn shipped_spec() -> String {
    String::from_utf8(read("rulesets/ml-score/model.toml")).unwrap()
}

fn ruleset(name: &str, content: impl Into<Vec<u8>>) -> Ruleset {
    Ruleset {
        name: name.to_owned(),
        content: content.into(),
    }
}

/// The shipped spec with some settings replaced (`key = value` lines).
fn spec_with(changes: &[(&str, &str)]) -> String {
    let mut text = shipped_spec();
    for (key, value) in changes {
        let start = text
            .find(&format!("\n{key} = "))
            .unwrap_or_else(|| panic!("{key} not in the shipped spec"));
        let end = start + 1 + text[start + 1..].find('\n').unwrap();
        text.replace_range(start + 1..end, &format!("{key} = {value}"));
    }
    text
}

/// Every flow reported, whatever its score.
fn report_all() -> String {
    spec_with(&[("threshold", "0.0"), ("findings_per_source", "1000000")])
}

fn configured(spec: &str, model: &str) -> MlScore {
    let mut plugin = MlScore::default();
    plugin.configure(rulesets(spec, model)).unwrap();
    plugin
}

fn rulesets(spec: &str, model: &str) -> Vec<Ruleset> {
    vec![
        ruleset("model.toml", spec),
        ruleset("flows.onnx", read("rulesets/ml-score/flows.onnx")),
        ruleset("flows-forest.onnx", read(model)),
    ]
}

const SHIPPED: &str = "rulesets/ml-score/flows.onnx";
const FOREST: &str = "tests/fixtures/onnx/flows-forest.onnx";
const EVE: &str = "tests/fixtures/onnx/test6-flows.json.gz";

/// The flow events of the fixture, as the host maps EVE flows
/// (host/src/ingest/eve.rs), in batches of `ROWS_PER_BATCH`.
fn eve_batches() -> Vec<Batch> {
    eve_lines()
        .chunks(ROWS_PER_BATCH)
        .map(|chunk| {
            let mut builder = BatchBuilder::new();
            for line in chunk {
                eve_flow(&mut builder, &serde_json::from_str(line).unwrap());
            }
            builder.build()
        })
        .collect()
}

/// The lines of the fixture.
fn eve_lines() -> Vec<String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(&read(EVE)[..])
        .read_to_string(&mut text)
        .unwrap();
    text.lines().map(str::to_owned).collect()
}

fn eve_flow(builder: &mut BatchBuilder, e: &serde_json::Value) {
    let ip = |k: &str| e[k].as_str().unwrap().parse::<IpAddr>().unwrap();
    let port = |k: &str| e[k].as_u64().unwrap_or(0) as u16;
    let flow = &e["flow"];
    let ts = micros(flow["start"].as_str().unwrap());
    let proto = match e["proto"].as_str().unwrap() {
        "TCP" => 6,
        "UDP" => 17,
        "ICMP" => 1,
        other => panic!("protocol {other}"),
    };
    let count = |k: &str| flow[k].as_u64().unwrap_or(0);
    builder
        .flow(
            ip("src_ip"),
            port("src_port"),
            ip("dest_ip"),
            port("dest_port"),
        )
        .ts(ts)
        .proto(proto)
        .bytes(count("bytes_toserver"), count("bytes_toclient"))
        .pkts(count("pkts_toserver") as u32, count("pkts_toclient") as u32);
    if let Some(end) = flow["end"].as_str() {
        builder.duration(u64::try_from(micros(end) - ts).unwrap_or(0));
    }
    let tcp = &e["tcp"];
    if proto == 6 && tcp.is_object() {
        let flags = |k: &str| tcp[k].as_str().and_then(|f| u8::from_str_radix(f, 16).ok());
        if let (Some(orig), Some(resp)) = (flags("tcp_flags_ts"), flags("tcp_flags_tc")) {
            builder.conn_state(conn_state(orig, resp));
        }
    }
    if let Some(app) = e["app_proto"].as_str().filter(|a| *a != "failed") {
        builder.text(TextField::Service, app);
    }
}

/// The host's heuristic from TCP flags to a Zeek state, as contract codes.
fn conn_state(orig: u8, resp: u8) -> u8 {
    const FIN: u8 = 0x01;
    const SYN: u8 = 0x02;
    const RST: u8 = 0x04;
    const ACK: u8 = 0x10;
    let (s0, s1, sf, rej, s2, s3, rsto, rstr, rstos0, rstrh, sh, shr, oth) =
        (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13);
    let syn_ack = resp & SYN != 0 && resp & ACK != 0;
    match (orig & SYN != 0, syn_ack) {
        (true, true) if orig & RST != 0 => rsto,
        (true, true) if resp & RST != 0 => rstr,
        (true, true) => match (orig & FIN != 0, resp & FIN != 0) {
            (true, true) => sf,
            (true, false) => s2,
            (false, true) => s3,
            (false, false) => s1,
        },
        (true, false) if resp == 0 && orig & RST != 0 => rstos0,
        (true, false) if resp == 0 && orig & FIN != 0 => sh,
        (true, false) if resp == 0 => s0,
        (true, false) if resp & RST != 0 => rej,
        (false, true) if resp & RST != 0 => rstrh,
        (false, true) if resp & FIN != 0 => shr,
        _ => oth,
    }
}

/// `2021-06-06T17:34:31.140759+0200` in microseconds since the epoch.
fn micros(s: &str) -> i64 {
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19);
    let fraction = &s[20..26];
    let offset = &s[26..];
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let offset_secs = sign
        * (offset[1..3].parse::<i64>().unwrap() * 3600 + offset[3..5].parse::<i64>().unwrap() * 60);
    (secs - offset_secs) * 1_000_000 + fraction.parse::<i64>().unwrap()
}

/// Scores by global row, read from the `score` evidence of findings.
fn scores(findings_per_batch: &[Vec<Finding>]) -> HashMap<usize, f64> {
    let mut scores = HashMap::new();
    for (b, findings) in findings_per_batch.iter().enumerate() {
        for f in findings {
            let Subject::Row(row) = f.subject else {
                panic!("a model finding about an entity")
            };
            let score = f
                .evidence
                .iter()
                .find(|(k, _)| k == "score")
                .unwrap()
                .1
                .parse()
                .unwrap();
            let previous = scores.insert(b * ROWS_PER_BATCH + row as usize, score);
            assert!(previous.is_none(), "row reported twice");
        }
    }
    scores
}

fn run(plugin: &mut MlScore, batches: &[Batch]) -> Vec<Vec<Finding>> {
    batches.iter().map(|b| plugin.process(b)).collect()
}

fn total(batches: &[Batch]) -> usize {
    batches.iter().map(Batch::len).sum()
}

fn python() -> PathBuf {
    let python = workspace().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make venv` (scripts/model/requirements.txt)",
        python.display()
    );
    python
}

fn run_python(args: &[&Path]) -> String {
    let output = Command::new(python()).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn spec_features(spec: &str) -> Vec<Feature> {
    #[derive(serde::Deserialize)]
    struct File {
        model: ml_score::model::Spec,
    }
    toml::from_str::<File>(spec).unwrap().model.features
}

#[test]
fn the_shipped_model_scores_every_flow_as_onnxruntime_does() {
    let batches = eve_batches();
    let flows = total(&batches);
    assert!(flows >= 3000, "{flows} flows");
    let spec = report_all();
    let mut plugin = configured(&spec, FOREST);
    let plugin_scores = scores(&run(&mut plugin, &batches));
    assert_eq!(plugin_scores.len(), flows, "every flow scored once");

    // The same features, computed by the catalogue, for onnxruntime.
    let features = spec_features(&spec);
    let extractor = Extractor::new(features.clone());
    let mut windows = Windows::new(300_000_000, 200_000);
    let mut matrix = Vec::new();
    for batch in &batches {
        extractor.extract(batch, &mut windows, &mut Vec::new(), &mut matrix);
    }
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("features.csv");
    let mut text = features
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    for row in matrix.chunks(features.len()) {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:?}")).collect();
        text += &(cells.join(",") + "\n");
    }
    std::fs::write(&csv, text).unwrap();
    let spec_path = dir.path().join("model.toml");
    std::fs::write(&spec_path, &spec).unwrap();

    let scripts = workspace().join("scripts/model");
    let reference = run_python(&[
        &scripts.join("score.py"),
        Path::new("--spec"),
        &spec_path,
        Path::new("--model"),
        &workspace().join(SHIPPED),
        &csv,
    ]);
    let reference: Vec<f64> = reference.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(reference.len(), flows);
    let mut worst = 0.0f64;
    for (row, expected) in reference.iter().enumerate() {
        let diff = (plugin_scores[&row] - expected).abs();
        worst = worst.max(diff);
        assert!(
            diff <= 1e-4,
            "row {row}: plugin {} onnxruntime {expected}",
            plugin_scores[&row]
        );
    }
    eprintln!("{flows} flows, largest |tract - onnxruntime| = {worst:e}");
    let distinct: HashSet<u64> = reference.iter().map(|s| (s * 1e6) as u64).collect();
    assert!(distinct.len() > 50, "scores vary with the flows");

    // features.py, used for training, computes the same features from the
    // same EVE lines.
    let python_csv = run_python(&[
        &scripts.join("features.py"),
        Path::new("--eve"),
        &workspace().join(EVE),
        Path::new("--spec"),
        &spec_path,
    ]);
    let mut lines = python_csv.lines();
    let header = lines.next().unwrap();
    assert_eq!(header, text_header(&features));
    let mut rows = 0;
    for (i, line) in lines.enumerate() {
        for (j, cell) in line.split(',').enumerate() {
            let python: f32 = cell.parse().unwrap();
            let rust = matrix[i * features.len() + j];
            assert_eq!(python, rust, "row {i}, {}", features[j].name());
        }
        rows += 1;
    }
    assert_eq!(rows, flows);
}

fn text_header(features: &[Feature]) -> String {
    features
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn a_hot_swap_to_a_second_model_changes_scores_and_loses_no_flow() {
    let batches = eve_batches();
    let (first, second) = batches.split_at(batches.len() / 2);
    let mlp_spec = report_all();
    let forest_spec = mlp_spec
        .replace("file = \"flows.onnx\"", "file = \"flows-forest.onnx\"")
        .replace("name = \"flows-mlp\"", "name = \"flows-forest\"");
    assert_ne!(mlp_spec, forest_spec);

    let mut reference = configured(&mlp_spec, FOREST);
    let mlp_scores = scores(&run(&mut reference, &batches));

    // The host's way: a new instance, configured, takes over the snapshot.
    let mut old = configured(&mlp_spec, FOREST);
    let mut findings = run(&mut old, first);
    let mut new = configured(&forest_spec, FOREST);
    new.restore(&old.snapshot()).unwrap();
    findings.extend(run(&mut new, second));
    let swapped = scores(&findings);
    assert_eq!(swapped.len(), total(&batches), "no flow lost");
    let first_rows = total(first);
    let changed = (first_rows..total(&batches))
        .filter(|r| (swapped[r] - mlp_scores[r]).abs() > 1e-3)
        .count();
    assert!(changed > total(second) / 2, "{changed} scores changed");
    assert!((0..first_rows).all(|r| swapped[&r] == mlp_scores[&r]));
    let model_named = findings[batches.len() - 1].iter().all(|f| {
        f.evidence
            .contains(&("model".into(), "flows-forest".into()))
    });
    assert!(model_named);

    // Reconfiguring the same instance swaps the model too.
    let mut same = configured(&mlp_spec, FOREST);
    let mut findings = run(&mut same, first);
    same.configure(rulesets(&forest_spec, FOREST)).unwrap();
    findings.extend(run(&mut same, second));
    assert_eq!(scores(&findings), swapped);
}

#[test]
fn bad_models_and_specs_are_refused_and_the_previous_model_keeps_running() {
    let batches = eve_batches();
    let spec = report_all();
    let mut plugin = configured(&spec, FOREST);
    let before = scores(&run(&mut plugin, &batches[..1]));

    let model = read(SHIPPED);
    let mut flipped = model.clone();
    for b in flipped.iter_mut().skip(40).step_by(7) {
        *b ^= 0x5a;
    }
    let narrow = spec
        .replace("    \"log_duration\",\n", "")
        .replace("baseline = [0.0004", "# baseline = [0.0004");
    let cases: Vec<(&str, Vec<Ruleset>, &str, &str)> = vec![
        (
            "truncated model",
            vec![
                ruleset("model.toml", spec.as_str()),
                ruleset("flows.onnx", &model[..model.len() / 2]),
            ],
            "flows.onnx",
            "not a readable ONNX model",
        ),
        (
            "empty model",
            vec![
                ruleset("model.toml", spec.as_str()),
                ruleset("flows.onnx", Vec::new()),
            ],
            "flows.onnx",
            "ONNX",
        ),
        (
            "bytes flipped",
            vec![
                ruleset("model.toml", spec.as_str()),
                ruleset("flows.onnx", flipped),
            ],
            "flows.onnx",
            "model",
        ),
        (
            "not ONNX at all",
            vec![
                ruleset("model.toml", spec.as_str()),
                ruleset("flows.onnx", &b"[model]\nname = 1\n"[..]),
            ],
            "flows.onnx",
            "not a readable ONNX model",
        ),
        (
            "one feature fewer than the model takes",
            rulesets(&narrow, FOREST),
            "flows.onnx",
            "takes 23 features per row, the spec lists 22",
        ),
        (
            "unknown feature",
            rulesets(
                &spec.replace("\"log_duration\"", "\"log_durations\""),
                FOREST,
            ),
            "model.toml:",
            "unknown variant `log_durations`",
        ),
        (
            "missing model file",
            vec![ruleset("model.toml", spec.as_str())],
            "model.toml",
            "model file \"flows.onnx\" is not among the rulesets",
        ),
        (
            "no such output",
            rulesets(&spec_with(&[("output", "\"label\"")]), FOREST),
            "flows.onnx",
            "no output \"label\"",
        ),
        (
            "output column out of range",
            rulesets(&spec_with(&[("column", "2")]), FOREST),
            "flows.onnx",
            "expected [rows] or [rows, k] with k > column 2",
        ),
        (
            "baseline of the wrong length",
            rulesets(&spec_with(&[("baseline", "[0.0]")]), FOREST),
            "model.toml",
            "baseline has 1 values for 23 features",
        ),
    ];
    for (case, rulesets, location, message) in cases {
        let error = plugin.configure(rulesets).unwrap_err();
        assert!(
            error.location.starts_with(location) && error.message.contains(message),
            "{case}: {error:?}"
        );
        assert_eq!(
            scores(&run(&mut plugin, &batches[..1])).len(),
            before.len(),
            "{case}"
        );
    }
    // Same model, same windows so far: only the window counts moved on.
    let after = scores(&run(&mut plugin, &batches[..1]));
    assert_eq!(after.len(), before.len());
}

#[test]
fn windows_survive_snapshot_and_restore() {
    let batches = eve_batches();
    let spec = report_all();
    let mut straight = configured(&spec, FOREST);
    let expected = scores(&run(&mut straight, &batches));

    let (first, second) = batches.split_at(batches.len() / 2);
    let mut old = configured(&spec, FOREST);
    let mut findings = run(&mut old, first);
    let snapshot = old.snapshot();
    let mut new = configured(&spec, FOREST);
    new.restore(&snapshot).unwrap();
    findings.extend(run(&mut new, second));
    assert_eq!(scores(&findings), expected);

    // Without the windows the second half scores differently: the test
    // above would notice lost windows.
    let mut lost = configured(&spec, FOREST);
    let mut findings = run(&mut lost, first);
    let mut fresh = configured(&spec, FOREST);
    findings.extend(run(&mut fresh, second));
    assert_ne!(scores(&findings), expected);
}

#[test]
fn each_source_gets_at_most_its_limit_of_findings_per_window() {
    let batches = eve_batches();
    // One window over the whole capture: one finding per source.
    let spec = spec_with(&[("threshold", "0.0"), ("window_secs", "1000000000")]);
    let mut plugin = configured(&spec, FOREST);
    let findings = run(&mut plugin, &batches);
    let mut sources = HashSet::new();
    for batch in &batches {
        for flow in batch.iter() {
            sources.insert(flow.src());
        }
    }
    let reported: Vec<IpAddr> = findings
        .iter()
        .zip(&batches)
        .flat_map(|(f, b)| {
            f.iter().map(|f| match f.subject {
                Subject::Row(row) => b.get(row as usize).unwrap().src(),
                Subject::Entity(_) => panic!("entity"),
            })
        })
        .collect();
    let distinct: HashSet<IpAddr> = reported.iter().copied().collect();
    assert_eq!(reported.len(), distinct.len(), "a source reported twice");
    assert_eq!(distinct, sources);
    assert!(reported.len() < total(&batches) / 2);

    // The evidence names the model and the features that matter.
    let finding = &findings[0][0];
    let evidence: HashMap<&str, &str> = finding
        .evidence
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(evidence["model"], "flows-mlp");
    assert_eq!(finding.rule_id, "model-flows");
    assert!(evidence.contains_key("model_version"));
    let names: Vec<&str> = Feature::ALL.iter().map(|f| f.name()).collect();
    assert!(
        evidence["top_features"]
            .split(", ")
            .all(|t| names.contains(&t.split('=').next().unwrap())),
        "{}",
        evidence["top_features"]
    );
}

#[test]
fn the_shipped_threshold_reports_only_high_scores() {
    let batches = eve_batches();
    let mut plugin = configured(&shipped_spec(), FOREST);
    let reported = scores(&run(&mut plugin, &batches));
    let spec: toml::Table = toml::from_str(&shipped_spec()).unwrap();
    let threshold = spec["model"]["threshold"].as_float().unwrap();
    assert!(reported.values().all(|s| *s >= threshold));
    let mut all = configured(&report_all(), FOREST);
    let everything = scores(&run(&mut all, &batches));
    let high = everything.values().filter(|s| **s >= threshold).count();
    assert!(reported.len() <= high);
}

#[test]
fn only_connections_are_scored_and_findings_name_their_own_rows() {
    let events: Vec<serde_json::Value> = eve_lines()
        .iter()
        .take(ROWS_PER_BATCH)
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut builder = BatchBuilder::new();
    for e in &events {
        eve_flow(&mut builder, e);
    }
    let connections = builder.build();
    let alone = scores(&[configured(&report_all(), FOREST).process(&connections)]);
    assert_eq!(alone.len(), events.len());

    // The same connections, each followed by a DNS record of its source:
    // the records are not scored, and each finding names its connection.
    let mut builder = BatchBuilder::new();
    for (e, flow) in events.iter().zip(connections.iter()) {
        eve_flow(&mut builder, e);
        builder
            .flow(flow.src(), 53_000, flow.dst(), 53)
            .ts(micros(e["flow"]["start"].as_str().unwrap()))
            .proto(17)
            .dns("www.example.com", 1, Some(0));
    }
    let mixed = builder.build();
    let findings = configured(&report_all(), FOREST).process(&mixed);
    let mixed_scores = scores(&[findings]);
    assert_eq!(mixed_scores.len(), events.len());
    for (row, score) in mixed_scores {
        assert_eq!(row % 2, 0, "a DNS record was scored");
        assert_eq!(score, alone[&(row / 2)]);
    }
}
