//! Retention (R6): detection data is deleted by whole date partitions once
//! it is past the first day of the month after collection plus the
//! institution's retention period (three months by default).
//!
//! Only the tables' `institution=…/date=…` directories are touched; the key
//! registry, audit and retention logs are exempt. Each deletion is logged
//! to `<data>/retention.log` (JSON lines) and through `tracing`.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::ToSpan;
use jiff::civil::Date;

/// The tables holding detection data.
pub const TABLES: [&str; 2] = ["flows", "alerts"];

/// Months kept when neither the institution nor the configuration says.
pub const DEFAULT_RETENTION_MONTHS: u32 = 3;

/// File (under the data directory) where deletions are recorded.
pub const RETENTION_LOG: &str = "retention.log";

/// How long each institution's data is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Months for institutions without their own setting.
    pub default_months: u32,
    /// Per-institution months (`retention_months` in the institutions file).
    pub months: HashMap<String, u32>,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            default_months: DEFAULT_RETENTION_MONTHS,
            months: HashMap::new(),
        }
    }
}

impl RetentionPolicy {
    /// `default_months`, overridden by each institution's
    /// `retention_months`.
    pub fn new(default_months: u32, institutions: &crate::scope::Institutions) -> Self {
        Self {
            default_months,
            months: institutions
                .iter()
                .filter_map(|i| Some((i.id.clone(), i.retention_months?)))
                .collect(),
        }
    }

    /// The first day data of `collected` no longer exists for `institution`.
    pub fn deletion_date(&self, institution: &str, collected: Date) -> Date {
        let months = self
            .months
            .get(institution)
            .copied()
            .unwrap_or(self.default_months);
        let first_of_next = collected
            .first_of_month()
            .checked_add(1.month())
            .unwrap_or(Date::MAX);
        first_of_next
            .checked_add(i64::from(months).months())
            .unwrap_or(Date::MAX)
    }
}

/// One date partition of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// `flows` or `alerts`.
    pub table: &'static str,
    /// Institution id.
    pub institution: String,
    /// Collection date.
    pub date: Date,
    /// The directory.
    pub path: PathBuf,
}

/// Why retention could not run.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// A directory could not be read or removed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RetentionError + '_ {
    move |source| RetentionError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Every date partition under `data_dir`, in path order. Entries that are
/// not `institution=<id>/date=<YYYY-MM-DD>` directories are left alone.
pub fn partitions(data_dir: &Path) -> Result<Vec<Partition>, RetentionError> {
    let mut found = Vec::new();
    for table in TABLES {
        let table_dir = data_dir.join(table);
        for institution_dir in subdirectories(&table_dir)? {
            let Some(institution) = value_of(&institution_dir, "institution") else {
                continue;
            };
            for date_dir in subdirectories(&institution_dir)? {
                let Some(date) = value_of(&date_dir, "date").and_then(|d| d.parse().ok()) else {
                    continue;
                };
                found.push(Partition {
                    table,
                    institution: institution.clone(),
                    date,
                    path: date_dir,
                });
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

fn subdirectories(dir: &Path) -> Result<Vec<PathBuf>, RetentionError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        if entry.file_type().map_err(io(&entry.path()))?.is_dir() {
            dirs.push(entry.path());
        }
    }
    Ok(dirs)
}

fn value_of(dir: &Path, key: &str) -> Option<String> {
    let name = dir.file_name()?.to_str()?;
    let value = name.strip_prefix(key)?.strip_prefix('=')?;
    (!value.is_empty()).then(|| value.to_owned())
}

/// What one retention pass did (or, dry, would do).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RetentionReport {
    /// Partitions past their deletion date, with that date.
    pub expired: Vec<(Partition, Date)>,
    /// Partitions kept.
    pub kept: usize,
}

/// Deletes the partitions under `data_dir` past their deletion date on
/// `today` (lists them only when `dry_run`), recording each deletion.
pub fn apply(
    data_dir: &Path,
    policy: &RetentionPolicy,
    today: Date,
    dry_run: bool,
) -> Result<RetentionReport, RetentionError> {
    apply_except(data_dir, policy, today, dry_run, &HashSet::new())
}

/// As [`apply`], leaving alone the partitions in `busy` (those a running
/// writer has files open in: they go at a later pass).
pub fn apply_except(
    data_dir: &Path,
    policy: &RetentionPolicy,
    today: Date,
    dry_run: bool,
    busy: &HashSet<PathBuf>,
) -> Result<RetentionReport, RetentionError> {
    let mut report = RetentionReport::default();
    for partition in partitions(data_dir)? {
        if busy.contains(&partition.path) {
            report.kept += 1;
            continue;
        }
        let deletion = policy.deletion_date(&partition.institution, partition.date);
        if today >= deletion {
            report.expired.push((partition, deletion));
        } else {
            report.kept += 1;
        }
    }
    if dry_run || report.expired.is_empty() {
        return Ok(report);
    }
    let log_path = data_dir.join(RETENTION_LOG);
    let mut log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(io(&log_path))?;
    for (partition, deletion) in &report.expired {
        fs::remove_dir_all(&partition.path).map_err(io(&partition.path))?;
        let line = serde_json::json!({
            "deleted": partition.path.strip_prefix(data_dir).unwrap_or(&partition.path),
            "table": partition.table,
            "institution": partition.institution,
            "date": partition.date.to_string(),
            "deletion_date": deletion.to_string(),
            "run_date": today.to_string(),
            "at": jiff::Timestamp::now().to_string(),
        });
        writeln!(log, "{line}").map_err(io(&log_path))?;
        tracing::info!(
            table = partition.table,
            institution = %partition.institution,
            date = %partition.date,
            "retention: partition deleted"
        );
    }
    log.sync_all().map_err(io(&log_path))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    #[test]
    fn data_goes_on_the_first_of_the_month_after_collection_plus_the_period() {
        let mut policy = RetentionPolicy::default();
        policy.months.insert("long".into(), 6);
        assert_eq!(
            policy.deletion_date("any", date(2026, 1, 15)),
            date(2026, 5, 1)
        );
        assert_eq!(
            policy.deletion_date("any", date(2026, 1, 31)),
            date(2026, 5, 1)
        );
        assert_eq!(
            policy.deletion_date("any", date(2026, 11, 1)),
            date(2027, 3, 1)
        );
        assert_eq!(
            policy.deletion_date("long", date(2026, 1, 15)),
            date(2026, 8, 1)
        );
    }

    fn make(data: &Path, table: &str, institution: &str, day: &str) -> PathBuf {
        let dir = data
            .join(table)
            .join(format!("institution={institution}"))
            .join(format!("date={day}"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("part-0.parquet"), b"x").unwrap();
        dir
    }

    #[test]
    fn expired_partitions_go_and_the_rest_stays() {
        let data = tempfile::tempdir().unwrap();
        let data = data.path();
        let old = make(data, "flows", "alpha", "2026-01-31");
        let old_alerts = make(data, "alerts", "alpha", "2026-01-02");
        let recent = make(data, "flows", "alpha", "2026-02-01");
        let long = make(data, "flows", "long", "2026-01-31");
        let stranger = data.join("flows/institution=alpha/notes");
        fs::create_dir_all(&stranger).unwrap();
        fs::write(data.join("keys.sqlite"), b"registry").unwrap();
        fs::write(data.join("audit.log"), b"audit\n").unwrap();
        let mut policy = RetentionPolicy::default();
        policy.months.insert("long".into(), 6);
        let today = date(2026, 5, 1);

        let dry = apply(data, &policy, today, true).unwrap();
        assert_eq!(dry.expired.len(), 2);
        assert!(old.exists() && old_alerts.exists());

        let done = apply(data, &policy, today, false).unwrap();
        assert_eq!(done.expired.len(), 2);
        assert_eq!(done.kept, 2);
        assert!(!old.exists() && !old_alerts.exists());
        assert!(recent.exists() && long.exists() && stranger.exists());
        assert!(data.join("keys.sqlite").exists());
        assert_eq!(fs::read(data.join("audit.log")).unwrap(), b"audit\n");
        let log = fs::read_to_string(data.join(RETENTION_LOG)).unwrap();
        assert_eq!(log.lines().count(), 2);
        assert!(
            log.contains("\"deleted\":\"flows/institution=alpha/date=2026-01-31\""),
            "{log}"
        );

        // The next day nothing more is due; the log stays.
        let again = apply(data, &policy, date(2026, 5, 2), false).unwrap();
        assert!(again.expired.is_empty());
        assert_eq!(fs::read_to_string(data.join(RETENTION_LOG)).unwrap(), log);
        // Once `recent` is due, it goes too.
        let june = apply(data, &policy, date(2026, 6, 1), false).unwrap();
        assert_eq!(june.expired.len(), 1);
        assert!(!recent.exists());
    }

    #[test]
    fn a_missing_data_directory_is_nothing_to_do() {
        let data = tempfile::tempdir().unwrap();
        let report = apply(
            &data.path().join("absent"),
            &RetentionPolicy::default(),
            date(2030, 1, 1),
            false,
        )
        .unwrap();
        assert!(report.expired.is_empty());
    }
}
