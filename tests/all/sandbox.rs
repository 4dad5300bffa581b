//! The plugin sandbox against real components: the hostile `chaos` plugin
//! (`tests/plugins/chaos`, driven by the directives in its ruleset), the
//! `noop` plugin and the built-in `portscan`.
//!
//! Every test goes through the path the engine uses: `LoadedPlugin::load`
//! (compile, contract check, describe, configure, self-test), then a
//! `PluginWorker` processing `FlowBatch`es.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use kansoku::batch::FlowBatch;
use kansoku::contract::{Ruleset, Subject};
use kansoku::flow::{ConnState, FlowRecord, Kind, TextField};
use kansoku::plugins::{
    Detection, EngineEvent, FailurePolicy, LoadedPlugin, PluginError, PluginLimits, PluginSpec,
    PluginWorker, Rejection, TrapKind, Verdict, builtin,
};
use kansoku::scope::Direction;

use crate::{ip, placed, runtime};

/// Longest any single test step may take before it counts as hung: far
/// above what the steps need (well under a second each), so only a sandbox
/// that fails to stop a plugin trips it.
const HANG: Duration = Duration::from_secs(60);

fn test_plugin(name: &str) -> PathBuf {
    PathBuf::from(env!("KANSOKU_TEST_PLUGINS")).join(format!("{name}.wasm"))
}

fn ruleset(directives: &str) -> Vec<Ruleset> {
    vec![Ruleset {
        name: "chaos.rules".into(),
        content: directives.as_bytes().to_vec(),
    }]
}

/// Limits with a short deadline, so a runaway plugin costs the suite little.
fn short_limits() -> PluginLimits {
    PluginLimits {
        deadline: Duration::from_millis(100),
        configure_deadline: Duration::from_millis(500),
        ..PluginLimits::default()
    }
}

fn chaos_spec(directives: &str) -> PluginSpec {
    let mut spec = PluginSpec::file("chaos", test_plugin("chaos"));
    spec.rulesets = ruleset(directives);
    spec.limits = short_limits();
    spec
}

fn load(spec: PluginSpec) -> Arc<LoadedPlugin> {
    let name = spec.name.clone();
    LoadedPlugin::load(runtime(), spec).unwrap_or_else(|e| panic!("{name} loads: {e}"))
}

/// Chaos, loaded (and self-tested) with a harmless ruleset, whose live
/// instances then run `directives`.
///
/// The self-test sends an empty batch, so a plugin that loops, hoards
/// memory or panics on *every* call never gets past loading (see
/// `a_plugin_that_fails_every_call_fails_its_self_test`). Real plugins fail
/// on particular data, which a self-test cannot foresee; swapping the
/// ruleset between the self-test and the worker stands in for that data.
fn chaos_turning(directives: &str, limits: PluginLimits) -> Arc<LoadedPlugin> {
    let mut spec = chaos_spec("");
    spec.limits = limits;
    let mut plugin = load(spec);
    Arc::get_mut(&mut plugin)
        .expect("a freshly loaded plugin has one owner")
        .rulesets = ruleset(directives);
    plugin
}

/// Fails fast, and never idles, after a failure; the tests that need
/// resting or quarantine say so.
fn eager() -> FailurePolicy {
    FailurePolicy {
        backoff: Duration::ZERO,
        quarantine_after: 1000,
        ..FailurePolicy::default()
    }
}

fn worker(plugin: Arc<LoadedPlugin>) -> PluginWorker {
    PluginWorker::new(plugin, eager(), 1)
}

/// Runs `f` on another thread and fails the test if it has not returned
/// within [`HANG`], so a sandbox that cannot stop a plugin fails the test
/// instead of hanging the suite.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(HANG) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what} did not return within {HANG:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}

/// A TCP connection from 203.0.113.9 to 192.0.2.5 on `dst_port`.
fn connection(row: usize, dst_port: u16) -> FlowRecord<'static> {
    let mut record = FlowRecord::new(
        1_700_000_000_000_000 + row as i64 * 1_000_000,
        ip("203.0.113.9"),
        ip("192.0.2.5"),
    );
    record.src_port = 40_000 + row as u16;
    record.dst_port = dst_port;
    record.proto = 6;
    record.kind = Kind::Connection;
    record
}

/// One connection per port in `ports`, in order.
fn batch_to(ports: &[u16]) -> FlowBatch {
    let mut batch = FlowBatch::with_capacity(ports.len());
    for (row, port) in ports.iter().enumerate() {
        batch.push(
            &connection(row, *port),
            &placed(Direction::Inbound, row as u64),
        );
    }
    batch
}

/// A counter of `PluginStats`.
fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// A flag of `PluginStats`.
fn flag(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Relaxed)
}

fn evidence<'a>(detection: &'a Detection, key: &str) -> Option<&'a str> {
    detection
        .finding
        .evidence
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Rows of the batch the `echo` directive reported, in order.
fn echoed_rows(verdict: &Verdict) -> Vec<usize> {
    let mut rows: Vec<usize> = verdict
        .detections
        .iter()
        .filter(|d| d.finding.rule_id == "echo")
        .filter_map(|d| d.row)
        .collect();
    rows.sort_unstable();
    rows
}

// (a) deadline

#[test]
fn an_endless_loop_is_stopped_at_its_deadline_and_the_engine_goes_on() {
    let plugin = chaos_turning("loop", short_limits());
    let mut looping = worker(plugin);
    let batch = batch_to(&[80]);

    let (verdict, elapsed, looping) = within("a looping plugin", move || {
        let started = Instant::now();
        let verdict = looping.process(&batch);
        (verdict, started.elapsed(), looping)
    });

    let stats = looping.stats();
    // The call and its one retry both ran into the deadline; after that the
    // single row is isolated as the flow the plugin cannot get past.
    assert_eq!(stats.traps(TrapKind::Timeout), 2, "{stats:?}");
    assert_eq!(stats.total_traps(), 2, "no other kind of trap: {stats:?}");
    assert_eq!(get(&stats.restarts), 2);
    assert_eq!(
        verdict.events,
        [EngineEvent::PoisonFlow {
            row: 0,
            trap: TrapKind::Timeout
        }]
    );
    assert!(verdict.detections.is_empty());
    // Two deadlines of 100 ms, plus instantiation: well under the hang
    // bound, and not stopped early either.
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");

    // The runtime, its epoch ticker and the pool are fine afterwards: a
    // well-behaved plugin on the same runtime processes the same batch.
    let mut echo = worker(load(chaos_spec("echo")));
    let verdict = echo.process(&batch_to(&[80, 443]));
    assert_eq!(echoed_rows(&verdict), [0, 1]);
}

#[test]
fn a_plugin_that_fails_every_call_fails_its_self_test() {
    for (directive, kind) in [
        ("loop", "timeout"),
        ("trap", "panic"),
        ("alloc", "memory_limit"),
    ] {
        let mut spec = chaos_spec(directive);
        if directive != "loop" {
            // Only the loop is meant to meet the deadline: on a loaded
            // machine growing memory to the cap can take longer than the
            // short deadline, which would report a timeout instead.
            spec.limits.deadline = Duration::from_secs(10);
        }
        let error = within("loading a hostile plugin", move || {
            LoadedPlugin::load(runtime(), spec).expect_err("the self-test fails")
        });
        assert!(
            matches!(error, PluginError::SelfTest { .. }),
            "{directive}: {error}"
        );
        let message = error.to_string();
        assert!(
            message.contains("process of an empty batch") && message.contains(kind),
            "{directive}: {message}"
        );
    }
}

// (b) memory cap

#[test]
fn unbounded_allocation_hits_the_memory_cap() {
    let cap = 16 << 20;
    let limits = PluginLimits {
        memory: cap,
        ..short_limits()
    };
    let mut hoarder = worker(chaos_turning("alloc", limits));
    let (verdict, hoarder) = within("a hoarding plugin", move || {
        let verdict = hoarder.process(&batch_to(&[80]));
        (verdict, hoarder)
    });

    let stats = hoarder.stats();
    assert_eq!(stats.traps(TrapKind::MemoryLimit), 2, "{stats:?}");
    assert_eq!(stats.total_traps(), 2, "{stats:?}");
    assert_eq!(
        verdict.events,
        [EngineEvent::PoisonFlow {
            row: 0,
            trap: TrapKind::MemoryLimit
        }]
    );
    let peak = get(&stats.memory_peak);
    assert!(peak <= cap, "peak {peak} above the cap {cap}");
    assert!(
        peak > cap / 2,
        "the plugin grew towards the cap: peak {peak}"
    );
}

#[test]
fn a_memory_cap_above_the_runtime_maximum_is_refused() {
    let mut spec = chaos_spec("");
    spec.limits.memory = runtime().max_memory() + 1;
    let error = LoadedPlugin::load(runtime(), spec).expect_err("refused");
    assert!(matches!(error, PluginError::Limits { .. }), "{error}");
}

// (c) trap, re-instantiate, retry

#[test]
fn a_trapping_instance_is_replaced_and_the_batch_retried_once() {
    // Each instance panics on its third call; a fresh instance starts
    // counting again, so the retry succeeds.
    let mut worker = worker(chaos_turning("trap-every 3\necho", short_limits()));
    let ports = [22, 80, 443, 8080];
    for n in 1..=4 {
        let verdict = worker.process(&batch_to(&ports));
        assert_eq!(echoed_rows(&verdict), [0, 1, 2, 3], "batch {n}");
        assert!(verdict.events.is_empty(), "batch {n}: {:?}", verdict.events);
    }
    let stats = worker.stats();
    assert_eq!(stats.traps(TrapKind::Panic), 1, "{stats:?}");
    assert_eq!(stats.total_traps(), 1);
    assert_eq!(get(&stats.restarts), 1);
    assert_eq!(get(&stats.recovered), 1);
    assert_eq!(get(&stats.failed_batches), 0);
    assert_eq!(get(&stats.calls), 5, "four batches and one retry");
    assert_eq!(get(&stats.flows), 16);
    assert_eq!(get(&stats.findings), 16);
    assert_eq!(get(&stats.poison_flows), 0);
    // The guest's panic message went to stderr, which is the plugin's log.
    assert!(get(&stats.log_lines) >= 1, "{stats:?}");
}

#[test]
fn a_plugin_that_cannot_be_instantiated_does_not_blame_the_flows() {
    // Every new instance refuses its configuration, so no instance can be
    // made to run the batch in: the flows are not at fault and must not be
    // reported as poison.
    let mut worker = worker(chaos_turning("refuse", short_limits()));
    let verdict = worker.process(&batch_to(&[22, 80, 443, 8080]));
    assert!(verdict.detections.is_empty());
    assert!(verdict.events.is_empty(), "{:?}", verdict.events);
    let stats = worker.stats();
    assert_eq!(
        stats.traps(TrapKind::Instantiate),
        1,
        "no retries of a refusal: {stats:?}"
    );
    assert_eq!(get(&stats.calls), 0);
    assert_eq!(get(&stats.poison_flows), 0);
    assert_eq!(get(&stats.skipped_flows), 4);
    assert_eq!(get(&stats.failed_batches), 1);
}

// (d) poison flow isolation

#[test]
fn a_poison_flow_is_isolated_and_the_other_rows_are_still_examined() {
    let mut worker = worker(chaos_turning("trap-on-port 666\necho", short_limits()));
    let ports = [22, 80, 443, 53, 25, 666, 8080, 993];
    let batch = batch_to(&ports);
    let verdict = worker.process(&batch);

    assert_eq!(
        verdict.events,
        [EngineEvent::PoisonFlow {
            row: 5,
            trap: TrapKind::Panic
        }]
    );
    // The poison row names the flow: the engine can find it in the batch.
    assert_eq!(batch.dst_port[5], 666);
    assert_eq!(batch.line[5], 5);
    assert_eq!(echoed_rows(&verdict), [0, 1, 2, 3, 4, 6, 7]);
    for detection in &verdict.detections {
        let row = detection.row.expect("echo findings are about rows");
        assert_eq!(
            evidence(detection, "dst_port"),
            Some(ports[row].to_string().as_str()),
            "rows are mapped back to the whole batch"
        );
    }
    let stats = worker.stats();
    assert_eq!(get(&stats.poison_flows), 1);
    assert_eq!(get(&stats.flows), 7);
    assert_eq!(get(&stats.skipped_flows), 0);
    assert_eq!(get(&stats.failed_batches), 1);

    // A batch without the poison flow goes through whole.
    let verdict = worker.process(&batch_to(&[22, 80]));
    assert_eq!(echoed_rows(&verdict), [0, 1]);
    assert!(verdict.events.is_empty());
}

#[test]
fn isolation_stops_when_its_trap_budget_runs_out() {
    let policy = FailurePolicy {
        isolation_traps: 2,
        ..eager()
    };
    let mut worker = PluginWorker::new(
        chaos_turning("trap-on-port 666\necho", short_limits()),
        policy,
        1,
    );
    // Poison everywhere: two probes cannot isolate them all.
    let verdict = worker.process(&batch_to(&[666; 16]));
    let stats = worker.stats();
    assert!(verdict.detections.is_empty());
    assert_eq!(stats.total_traps(), 4, "two attempts and two probes");
    assert_eq!(
        get(&stats.skipped_flows) + get(&stats.poison_flows) + get(&stats.flows),
        16,
        "every flow is accounted for: {stats:?}"
    );
    assert!(get(&stats.skipped_flows) > 0);
}

// (e) quarantine

#[test]
fn a_plugin_that_keeps_failing_is_quarantined_fail_open() {
    let policy = FailurePolicy {
        backoff: Duration::ZERO,
        quarantine_after: 3,
        quarantine: Duration::from_millis(500),
        ..FailurePolicy::default()
    };
    let mut worker = PluginWorker::new(chaos_turning("trap", short_limits()), policy, 1);

    for n in 1..=2 {
        let verdict = worker.process(&batch_to(&[80]));
        assert!(
            !verdict
                .events
                .iter()
                .any(|e| matches!(e, EngineEvent::Quarantined { .. })),
            "batch {n}: {:?}",
            verdict.events
        );
    }
    let verdict = worker.process(&batch_to(&[80]));
    let quarantine = verdict
        .events
        .iter()
        .find_map(|e| match e {
            EngineEvent::Quarantined {
                failures,
                duration,
                last_trap,
            } => Some((*failures, *duration, last_trap.clone())),
            _ => None,
        })
        .expect("the third failed batch quarantines the plugin");
    assert_eq!(quarantine.0, 3);
    assert_eq!(quarantine.1, Duration::from_millis(500));
    assert!(quarantine.2.starts_with("panic"), "{}", quarantine.2);
    let stats = worker.stats().clone();
    assert!(flag(&stats.quarantined));
    assert_eq!(get(&stats.quarantines), 1);
    assert_eq!(get(&stats.failed_batches), 3);

    // Quarantined: batches pass without this plugin's verdict, counted, and
    // without calling it.
    let calls = get(&stats.calls);
    let verdict = worker.process(&batch_to(&[80, 443, 22]));
    assert!(verdict.detections.is_empty() && verdict.events.is_empty());
    assert_eq!(get(&stats.skipped_flows), 3);
    assert_eq!(
        get(&stats.calls),
        calls,
        "a quarantined plugin is not called"
    );
}

#[test]
fn after_a_failed_batch_the_plugin_rests_fail_open() {
    let policy = FailurePolicy {
        backoff: Duration::from_secs(3600),
        ..FailurePolicy::default()
    };
    let mut worker = PluginWorker::new(load(chaos_spec("trap-on-port 666\necho")), policy, 1);
    let verdict = worker.process(&batch_to(&[80, 666]));
    assert_eq!(echoed_rows(&verdict), [0]);
    let calls = get(&worker.stats().calls);

    // Resting: the next batch passes without this plugin, counted.
    let verdict = worker.process(&batch_to(&[22, 443, 993]));
    assert!(verdict.detections.is_empty() && verdict.events.is_empty());
    let stats = worker.stats();
    assert_eq!(get(&stats.calls), calls, "a resting plugin is not called");
    assert_eq!(get(&stats.skipped_flows), 3);
    assert!(!flag(&stats.quarantined), "resting is not quarantine");
}

#[test]
fn a_quarantined_plugin_that_recovers_is_released() {
    let policy = FailurePolicy {
        backoff: Duration::ZERO,
        quarantine_after: 2,
        quarantine: Duration::from_millis(300),
        ..FailurePolicy::default()
    };
    // Fails on port 666 only, so it can recover on clean data.
    let mut worker = PluginWorker::new(load(chaos_spec("trap-on-port 666\necho")), policy, 1);
    worker.process(&batch_to(&[666]));
    let verdict = worker.process(&batch_to(&[666]));
    assert!(
        verdict
            .events
            .iter()
            .any(|e| matches!(e, EngineEvent::Quarantined { failures: 2, .. })),
        "{:?}",
        verdict.events
    );
    std::thread::sleep(Duration::from_millis(400));
    let verdict = worker.process(&batch_to(&[80]));
    assert_eq!(verdict.events, [EngineEvent::Released]);
    assert_eq!(echoed_rows(&verdict), [0]);
    assert!(!flag(&worker.stats().quarantined));
}

// (f) sensitive fields (R3)

fn mail_batch() -> FlowBatch {
    let mut batch = FlowBatch::with_capacity(2);
    for row in 0..2 {
        let mut record = connection(row, 25);
        record.kind = Kind::Smtp;
        record.text.set(TextField::DnsQuery, "mx.example.org");
        record.text.set(TextField::MailFrom, "alice@example.org");
        batch.push(&record, &placed(Direction::Inbound, row as u64));
    }
    batch
}

#[test]
fn r3_an_ungranted_sensitive_field_never_reaches_the_plugin() {
    let plugin = load(chaos_spec("echo"));
    assert_eq!(plugin.fields, [TextField::DnsQuery]);
    assert_eq!(plugin.denied, [TextField::MailFrom]);
    let verdict = worker(plugin).process(&mail_batch());
    assert_eq!(echoed_rows(&verdict), [0, 1]);
    for detection in &verdict.detections {
        assert_eq!(evidence(detection, "dns_query"), Some("mx.example.org"));
        assert_eq!(evidence(detection, "mail_from"), Some("<none>"));
    }
}

#[test]
fn r3_a_granted_sensitive_field_reaches_the_plugin() {
    let mut spec = chaos_spec("echo");
    spec.grants = BTreeSet::from([TextField::MailFrom]);
    let plugin = load(spec);
    assert_eq!(plugin.fields, [TextField::DnsQuery, TextField::MailFrom]);
    assert!(plugin.denied.is_empty());
    let verdict = worker(plugin).process(&mail_batch());
    assert_eq!(echoed_rows(&verdict), [0, 1]);
    for detection in &verdict.detections {
        assert_eq!(evidence(detection, "mail_from"), Some("alice@example.org"));
    }
}

// (g) result validation

#[test]
fn a_finding_about_a_row_outside_the_batch_is_rejected() {
    let mut worker = worker(load(chaos_spec("bad-row")));
    let verdict = worker.process(&batch_to(&[22, 80, 443]));
    let rules: Vec<&str> = verdict
        .detections
        .iter()
        .map(|d| d.finding.rule_id.as_str())
        .collect();
    assert_eq!(rules, ["good-row"]);
    assert_eq!(verdict.detections[0].row, Some(0));
    let stats = worker.stats();
    assert_eq!(stats.rejected(Rejection::Row), 1);
    assert_eq!(get(&stats.findings), 1);
}

#[test]
fn an_oversized_result_is_rejected_whole_and_a_small_one_accepted() {
    // One row allows max(1 × 4, 64) = 64 findings.
    let mut flood = worker(load(chaos_spec("oversized 100")));
    let verdict = flood.process(&batch_to(&[80]));
    assert!(verdict.detections.is_empty());
    assert_eq!(flood.stats().rejected(Rejection::OversizedResult), 100);

    let mut fine = worker(load(chaos_spec("oversized 10")));
    let verdict = fine.process(&batch_to(&[80]));
    assert_eq!(verdict.detections.len(), 10);
    assert_eq!(fine.stats().rejected(Rejection::OversizedResult), 0);
}

#[test]
fn a_finding_about_an_unknown_institution_is_rejected() {
    // `echo` answers `tick` with a finding about institution 0.
    let plugin = load(chaos_spec("echo"));
    let mut none_registered = PluginWorker::new(plugin.clone(), eager(), 0);
    assert!(
        none_registered
            .tick(1_700_000_000_000_000)
            .detections
            .is_empty()
    );
    assert_eq!(none_registered.stats().rejected(Rejection::Institution), 1);

    let mut one_registered = PluginWorker::new(plugin, eager(), 1);
    let verdict = one_registered.tick(1_700_000_000_000_000);
    assert_eq!(verdict.detections.len(), 1);
    assert!(verdict.detections[0].entity.is_some());
}

// (h) plugin output

#[test]
fn plugin_output_goes_to_the_engine_log() {
    let mut spec = chaos_spec("print");
    spec.log_budget = 1;
    let mut printer = worker(load(spec));
    printer.process(&batch_to(&[80]));
    let stats = printer.stats();
    // One stdout and one stderr line per call, a budget of one line per
    // call: one logged, one suppressed.
    assert_eq!(get(&stats.log_lines), 1, "{stats:?}");
    assert_eq!(get(&stats.log_suppressed), 1, "{stats:?}");
}

/// Env var that makes [`child_plugin_prints`] do its work.
const CHILD: &str = "KANSOKU_SANDBOX_CHILD";
const CHILD_DONE: &str = "kansoku-sandbox-child-done";

#[test]
fn plugin_output_never_reaches_the_process_stdout() {
    // Plugin output would bypass the test harness's capture (it is not
    // `print!`), so look at what a child process really writes.
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let output = std::process::Command::new(exe)
        .args([
            "sandbox::child_plugin_prints",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(CHILD_DONE), "the child ran: {stdout}");
    for leaked in ["chaos: stdout line", "chaos: stderr line"] {
        assert!(!stdout.contains(leaked), "{leaked} on stdout: {stdout}");
        assert!(!stderr.contains(leaked), "{leaked} on stderr: {stderr}");
    }
}

#[test]
#[ignore = "run in a child process by plugin_output_never_reaches_the_process_stdout"]
fn child_plugin_prints() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let mut printer = worker(load(chaos_spec("print")));
    for _ in 0..3 {
        printer.process(&batch_to(&[80]));
    }
    // Whether the lines were captured is `plugin_output_goes_to_the_engine_log`'s
    // business; here only what reaches the real stdout and stderr counts.
    println!("{CHILD_DONE}");
}

// (i) what is not a plugin

fn load_bytes(bytes: &[u8]) -> PluginError {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("plugin.wasm");
    std::fs::write(&path, bytes).expect("the file is written");
    LoadedPlugin::load(runtime(), PluginSpec::file("bogus", path)).expect_err("not a plugin")
}

#[test]
fn garbage_is_not_a_plugin() {
    let error = load_bytes(b"#!/bin/sh\necho definitely not wasm\n");
    assert!(matches!(error, PluginError::Compile { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.starts_with("plugin bogus: "), "{message}");
    assert!(message.contains("not a WebAssembly"), "{message}");
}

#[test]
fn a_core_module_is_not_a_component() {
    // The smallest valid core module: magic and version 1.
    let error = load_bytes(b"\0asm\x01\0\0\0");
    assert!(matches!(error, PluginError::Compile { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("core WebAssembly module"), "{message}");
    assert!(message.contains("wasm32-wasip2"), "{message}");
}

#[test]
fn a_component_that_is_not_a_detector_is_refused() {
    // The smallest valid component: magic, version 0xd, layer 1. It exports
    // nothing.
    let error = load_bytes(b"\0asm\x0d\0\x01\0");
    assert!(
        matches!(error, PluginError::NotADetector { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("kansoku:detector/plugin"), "{message}");
    assert!(message.contains("it exports: nothing"), "{message}");
}

#[test]
fn a_truncated_component_is_refused() {
    let chaos = std::fs::read(test_plugin("chaos")).expect("chaos is built");
    let error = load_bytes(&chaos[..chaos.len() / 2]);
    assert!(matches!(error, PluginError::Compile { .. }), "{error:?}");
}

#[test]
fn a_missing_file_is_a_read_error() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("absent.wasm");
    let error = LoadedPlugin::load(runtime(), PluginSpec::file("absent", path.clone()))
        .expect_err("nothing to load");
    assert!(matches!(error, PluginError::Read { .. }), "{error:?}");
    assert!(error.to_string().contains(&path.display().to_string()));
}

#[test]
fn a_refused_ruleset_is_a_config_error() {
    let error = LoadedPlugin::load(runtime(), chaos_spec("echo\nrefuse")).expect_err("refused");
    match error {
        PluginError::Config {
            plugin,
            location,
            message,
        } => {
            assert_eq!(plugin, "chaos");
            assert_eq!(location, "chaos.rules:2");
            assert_eq!(message, "refused as asked");
        }
        other => panic!("{other:?}"),
    }
}

// (j) the built-in portscan

fn scan_batch(conn_state: ConnState) -> FlowBatch {
    let mut batch = FlowBatch::with_capacity(40);
    for (row, port) in (1..=40).enumerate() {
        let mut record = connection(row, port);
        record.conn_state = conn_state;
        batch.push(&record, &placed(Direction::Inbound, row as u64));
    }
    batch
}

#[test]
fn portscan_finds_a_vertical_scan() {
    let portscan = builtin("portscan").expect("portscan is built in");
    let plugin = load(PluginSpec::builtin(portscan));
    assert_eq!(plugin.description.name, "portscan");
    let mut worker = PluginWorker::new(plugin, eager(), 1);

    let verdict = worker.process(&scan_batch(ConnState::S0));
    assert_eq!(verdict.detections.len(), 1, "{:?}", verdict.detections);
    let detection = &verdict.detections[0];
    assert_eq!(detection.finding.rule_id, "vertical-scan");
    assert_eq!(detection.finding.category, "attempted-recon");
    assert!(matches!(detection.finding.subject, Subject::Entity(_)));
    let entity = detection.entity.expect("a scan is about an entity");
    assert_eq!(entity.institution, 0);
    assert_eq!(entity.src.ip(), ip("203.0.113.9"));
    assert_eq!(entity.dst.map(|d| d.ip()), Some(ip("192.0.2.5")));
    assert_eq!(entity.proto, 6);
    // The default threshold is 25 distinct ports.
    assert_eq!(evidence(detection, "distinct_ports"), Some("25"));

    // The same connections, answered, are no scan.
    let mut worker = PluginWorker::new(load(PluginSpec::builtin(portscan)), eager(), 1);
    assert!(
        worker
            .process(&scan_batch(ConnState::SF))
            .detections
            .is_empty()
    );
}
