//! Hot swap of the stateful built-ins through the component boundary: the
//! running instance's `snapshot` is handed to a fresh instance's `restore`
//! (what the engine does when an operator swaps a plugin or its rules), and
//! an attack or beacon split across the swap is still found whole.
//!
//! The plugins' own tests check the same natively; these check that the
//! state survives the trip through the real Wasm components built into the
//! engine, with their embedded default rulesets.

use std::sync::Arc;

use kansoku::batch::FlowBatch;
use kansoku::contract::{Finding, Ruleset, Subject};
use kansoku::flow::{FlowRecord, Kind, TextField};
use kansoku::plugins::{Instance, LoadedPlugin, PluginSpec, builtin};
use kansoku::scope::Direction;

use crate::{ip, placed, runtime};

const T0: i64 = 1_700_000_000_000_000;
const SECOND: i64 = 1_000_000;

/// A built-in with its embedded rulesets, the named values replaced.
fn builtin_with(name: &str, changes: &[(&str, &str)]) -> Arc<LoadedPlugin> {
    let builtin = builtin(name).unwrap_or_else(|| panic!("{name} is built in"));
    let mut spec = PluginSpec::builtin(builtin);
    for (from, to) in changes {
        let ruleset = spec
            .rulesets
            .iter_mut()
            .find(|r| String::from_utf8_lossy(&r.content).contains(from))
            .unwrap_or_else(|| panic!("no default ruleset of {name} holds {from}"));
        let text = String::from_utf8_lossy(&ruleset.content).replace(from, to);
        *ruleset = Ruleset {
            name: ruleset.name.clone(),
            content: text.into_bytes(),
        };
    }
    LoadedPlugin::load(runtime(), spec).unwrap_or_else(|e| panic!("{name} loads: {e}"))
}

fn process(plugin: &LoadedPlugin, instance: &mut Instance, batch: &FlowBatch) -> Vec<Finding> {
    let mut scratch = Vec::new();
    let view = batch.view(0..batch.len(), &plugin.fields, &mut scratch);
    instance.process(view).expect("process succeeds")
}

/// Runs `first` through one instance and `second` through its replacement,
/// which takes over the first one's snapshot; returns the findings of both
/// halves and of a tick at `tick_at`.
fn swapped(
    plugin: &LoadedPlugin,
    first: &FlowBatch,
    second: &FlowBatch,
    tick_at: i64,
) -> Vec<Finding> {
    let mut old = plugin.instantiate().expect("instantiates");
    let mut findings = process(plugin, &mut old, first);
    let state = old.snapshot().expect("snapshot");
    drop(old);

    let mut new = plugin.instantiate().expect("instantiates");
    new.restore(&state).expect("restore");
    findings.extend(process(plugin, &mut new, second));
    findings.extend(new.tick(tick_at).expect("tick"));
    findings
}

/// Runs both halves through one instance that is never swapped, but starts
/// from nothing at the second: what a swap without state would see.
fn unswapped_second_half(plugin: &LoadedPlugin, second: &FlowBatch, tick_at: i64) -> Vec<Finding> {
    let mut fresh = plugin.instantiate().expect("instantiates");
    let mut findings = process(plugin, &mut fresh, second);
    findings.extend(fresh.tick(tick_at).expect("tick"));
    findings
}

fn evidence<'a>(finding: &'a Finding, key: &str) -> Option<&'a str> {
    finding
        .evidence
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// HTTPS connections of one beacon, every 30 minutes, same sizes.
fn beacon(connections: std::ops::Range<i64>) -> FlowBatch {
    let mut batch = FlowBatch::with_capacity(30);
    for i in connections {
        let mut record =
            FlowRecord::new(T0 + i * 1800 * SECOND, ip("10.1.2.3"), ip("198.51.100.7"));
        record.kind = Kind::Connection;
        record.proto = 6;
        record.src_port = 40_000 + i as u16;
        record.dst_port = 443;
        record.duration = 250_000;
        record.src_bytes = 900;
        record.dst_bytes = 4000;
        record.src_pkts = 8;
        record.dst_pkts = 7;
        record.text.set(TextField::Service, "ssl");
        record.text.set(TextField::TlsSni, "c2.example.net");
        batch.push(&record, &placed(Direction::Outbound, i as u64));
    }
    batch
}

#[test]
fn ml_score_a_beacon_needing_20_connections_is_found_across_a_swap_halfway() {
    let plugin = builtin_with(
        "ml-score",
        &[("min_connections = 4", "min_connections = 20")],
    );
    let end = T0 + 29 * 1800 * SECOND;
    let after = end + 3600 * SECOND;
    let (first, second) = (beacon(0..15), beacon(15..30));

    let findings = swapped(&plugin, &first, &second, after);
    let beacons: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.rule_id.starts_with("beacon-"))
        .collect();
    assert_eq!(beacons.len(), 1, "{findings:#?}");
    let found = beacons[0];
    assert_eq!(found.rule_id, "beacon-sni");
    assert_eq!(evidence(found, "fqdn"), Some("c2.example.net"));
    assert_eq!(evidence(found, "count"), Some("30"));
    let Subject::Entity(entity) = &found.subject else {
        panic!("a beacon is about a pair, not a row: {found:?}")
    };
    assert_eq!(entity.flows, 30);
    assert_eq!(entity.first_seen, T0);

    // The second half alone is too few connections: the beacon above was
    // found because the state came across.
    let alone = unswapped_second_half(&plugin, &second, after);
    assert!(
        alone.iter().all(|f| !f.rule_id.starts_with("beacon-")),
        "{alone:#?}"
    );
}
