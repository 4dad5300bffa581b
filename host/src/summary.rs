//! What a run did, for the operator: flows read, kept and dropped by
//! reason, bad lines with their place, and each plugin's findings and
//! failures.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// Bad lines quoted in a summary; the rest are counted.
pub const MAX_QUOTED_ERRORS: usize = 10;

/// One input of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InputSummary {
    /// Path, or `<stdin>`.
    pub name: String,
    /// Detected or named format.
    pub format: String,
    /// Lines read.
    pub lines: u64,
    /// Flow records parsed.
    pub records: u64,
    /// Lines skipped as not flows (headers, other log types), by reason.
    pub skipped: BTreeMap<&'static str, u64>,
    /// Malformed lines, by reason.
    pub bad_lines: BTreeMap<&'static str, u64>,
    /// Why the input could not be read to its end.
    pub failed: Option<String>,
}

impl InputSummary {
    /// Malformed lines of every reason.
    pub fn bad_line_count(&self) -> u64 {
        self.bad_lines.values().sum()
    }
}

/// One plugin of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PluginSummary {
    /// Instance name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Flows it examined.
    pub flows: u64,
    /// Flows it did not examine (resting, quarantined, poison).
    pub skipped_flows: u64,
    /// Findings accepted.
    pub findings: u64,
    /// Findings rejected, by reason.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Traps, by kind.
    pub traps: BTreeMap<&'static str, u64>,
    /// Instances replaced.
    pub restarts: u64,
    /// Flows isolated as the cause of a trap.
    pub poison_flows: u64,
    /// Times quarantined.
    pub quarantines: u64,
    /// Time spent in the plugin.
    #[serde(with = "humantime_serde")]
    pub busy: Duration,
}

impl PluginSummary {
    /// Traps of every kind.
    pub fn trap_count(&self) -> u64 {
        self.traps.values().sum()
    }
}

/// A run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Inputs, in order.
    pub inputs: Vec<InputSummary>,
    /// Flow records parsed.
    pub flows_read: u64,
    /// Flows in scope, sent to the plugins.
    pub flows_kept: u64,
    /// Flows dropped by scope (R1), by reason.
    pub dropped: BTreeMap<&'static str, u64>,
    /// The first malformed lines, as `input:line: reason`.
    pub first_errors: Vec<String>,
    /// Batches sent to the plugins.
    pub batches: u64,
    /// Plugins, in order.
    pub plugins: Vec<PluginSummary>,
    /// Alerts written, by plugin (engine alerts under `engine`).
    pub alerts: BTreeMap<String, u64>,
    /// Rows and files stored, by table; empty when storage is off.
    pub stored: BTreeMap<&'static str, crate::storage::StoredCounts>,
    /// Wall-clock time of the run.
    #[serde(with = "humantime_serde")]
    pub elapsed: Duration,
}

impl Summary {
    /// Malformed lines of every input.
    pub fn bad_lines(&self) -> u64 {
        self.inputs.iter().map(InputSummary::bad_line_count).sum()
    }

    /// Alerts of every plugin.
    pub fn alert_count(&self) -> u64 {
        self.alerts.values().sum()
    }

    /// Flows read per second of wall-clock time.
    pub fn flows_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.flows_read as f64 / secs
        } else {
            0.0
        }
    }
}

fn reasons(map: &BTreeMap<&'static str, u64>) -> String {
    if map.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!(" ({})", parts.join(", "))
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dropped: u64 = self.dropped.values().sum();
        writeln!(
            f,
            "kansoku: {} flows read in {:.2?} ({:.0} flows/s)",
            self.flows_read,
            self.elapsed,
            self.flows_per_sec()
        )?;
        writeln!(f, "  kept      {:>12}", self.flows_kept)?;
        writeln!(f, "  dropped   {:>12}{}", dropped, reasons(&self.dropped))?;
        writeln!(f, "  bad lines {:>12}", self.bad_lines())?;
        for input in &self.inputs {
            write!(
                f,
                "  input {} [{}]: {} lines, {} flows",
                input.name, input.format, input.lines, input.records
            )?;
            if input.bad_line_count() > 0 {
                write!(
                    f,
                    ", {} bad{}",
                    input.bad_line_count(),
                    reasons(&input.bad_lines)
                )?;
            }
            if let Some(failed) = &input.failed {
                write!(f, ", FAILED: {failed}")?;
            }
            writeln!(f)?;
        }
        for error in &self.first_errors {
            writeln!(f, "    {error}")?;
        }
        if self.bad_lines() > self.first_errors.len() as u64 {
            writeln!(
                f,
                "    … {} more bad lines (counted above)",
                self.bad_lines() - self.first_errors.len() as u64
            )?;
        }
        writeln!(
            f,
            "  {:<16} {:>10} {:>9} {:>7} {:>6} {:>8} {:>7} {:>9}",
            "plugin", "flows", "findings", "alerts", "traps", "rejected", "skipped", "time"
        )?;
        for p in &self.plugins {
            let rejected: u64 = p.rejected.values().sum();
            writeln!(
                f,
                "  {:<16} {:>10} {:>9} {:>7} {:>6} {:>8} {:>7} {:>9.2?}{}",
                p.name,
                p.flows,
                p.findings,
                self.alerts.get(&p.name).copied().unwrap_or(0),
                p.trap_count(),
                rejected,
                p.skipped_flows,
                p.busy,
                if p.quarantines > 0 {
                    format!("  quarantined {}x", p.quarantines)
                } else {
                    String::new()
                }
            )?;
        }
        if let Some(engine) = self.alerts.get("engine") {
            writeln!(f, "  engine alerts: {engine}")?;
        }
        for (table, counts) in &self.stored {
            writeln!(
                f,
                "  stored {table}: {} rows in {} files",
                counts.rows, counts.files
            )?;
        }
        write!(f, "  alerts written: {}", self.alert_count())
    }
}
