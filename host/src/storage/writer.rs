//! Writing the tables: one open file per institution and date, rolled on
//! size, age, date and key period.
//!
//! ```text
//! rows ──→ TableWriter ──(institution, day)──→ open file: Arrow builders → ArrowWriter → AtomicFile
//!                                                 │ close: footer, fsync, rename, record in the registry
//!                                                 ▼
//!            <data>/<table>/institution=<id>/date=<YYYY-MM-DD>/part-<run>-<n>.parquet
//! ```
//!
//! A file never spans two dates or two key periods: the key ring decides
//! the key of each (institution, day), and a file whose key is no longer
//! the one handed out is closed before the next row goes in.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jiff::civil::Date;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::{EnabledStatistics, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;

use super::atomic::{AtomicFile, remove_leftovers};
use super::keys::{FileRecord, InstitutionCertificate, KeyError, KeyRegistry, KeyRing};
use super::parquet::{FileSpec, writer_properties};
use super::retention::{self, RetentionPolicy};
use super::table::{ENCRYPTED, FlowRows, Rows, day_of, epoch_day};
use crate::batch::FlowBatch;
use crate::config::StorageConfig;
use crate::scope::Institutions;

/// Rows gathered in memory before they are encoded into the file.
const CHUNK_ROWS: usize = 16 * 1024;

/// When files are closed, and how large their row groups are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    /// Rows per row group (128Ki–1Mi).
    pub row_group_rows: usize,
    /// A file is closed once it holds this many rows…
    pub max_file_rows: u64,
    /// …or this many bytes…
    pub max_file_bytes: u64,
    /// …or has been open this long, so a slow stream still becomes
    /// readable.
    pub max_age: Duration,
}

impl Default for FileLimits {
    fn default() -> Self {
        Self {
            row_group_rows: 256 * 1024,
            max_file_rows: 8 * 1024 * 1024,
            max_file_bytes: 512 * 1024 * 1024,
            max_age: Duration::from_secs(15 * 60),
        }
    }
}

/// Why the tables could not be written. Writing stops at the first one;
/// files not yet committed are removed, committed ones stay whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// A key could not be made, recorded or used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A file or directory could not be written (no space, no permission).
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The Parquet writer failed.
    #[error("{path}: {source}")]
    Parquet {
        /// The file, relative to the data directory.
        path: String,
        /// The error.
        source: parquet::errors::ParquetError,
    },
    /// Rows could not be assembled.
    #[error("{table}: {source}")]
    Arrow {
        /// The table.
        table: &'static str,
        /// The error.
        source: arrow_schema::ArrowError,
    },
    /// The storage configuration cannot work with these institutions.
    #[error("{0}")]
    Setup(String),
}

impl From<super::parquet::ParquetError> for StorageError {
    fn from(e: super::parquet::ParquetError) -> Self {
        match e {
            super::parquet::ParquetError::Key(e) => Self::Key(e),
            super::parquet::ParquetError::Write { path, source } => Self::Parquet { path, source },
        }
    }
}

/// Columns whose values rarely repeat: a dictionary only costs time before
/// the writer falls back to plain encoding.
const NO_DICTIONARY: [&str; 7] = [
    "ts",
    "duration_us",
    "src_bytes",
    "dst_bytes",
    "flow_id",
    "src_port",
    "evidence",
];

/// The layout settings of every table file, encrypted or not: row group
/// size, chunk-level statistics (page-level ones cost a third of the write
/// time for little pruning on flows), no dictionary where values rarely
/// repeat.
pub fn layout(
    mut builder: WriterPropertiesBuilder,
    limits: &FileLimits,
) -> WriterPropertiesBuilder {
    builder = builder
        .set_max_row_group_row_count(Some(limits.row_group_rows))
        .set_statistics_enabled(EnabledStatistics::Chunk);
    for column in NO_DICTIONARY {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(column), false);
    }
    builder
}

/// What was stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoredCounts {
    /// Rows written to committed files.
    pub rows: u64,
    /// Files committed.
    pub files: u64,
}

/// The data directory, the keys and the settings shared by the writers of
/// one run.
#[derive(Debug)]
pub struct Store {
    data_dir: PathBuf,
    institutions: Vec<String>,
    ring: Mutex<KeyRing>,
    limits: FileLimits,
    retention: RetentionPolicy,
    run_id: String,
    sequence: AtomicU64,
    /// Partitions this run has written to: retention leaves them to a
    /// later pass.
    touched: Mutex<HashSet<PathBuf>>,
}

impl Store {
    /// Opens the data directory and key registry, removes what an
    /// interrupted run left, and loads every institution's certificate.
    ///
    /// # Errors
    ///
    /// When the directory or registry is unusable, or an institution has
    /// no usable certificate (its data could not be encrypted).
    pub fn open(
        config: &StorageConfig,
        institutions: &Institutions,
        limits: FileLimits,
    ) -> Result<Self, StorageError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StorageError::Io { path, source }
        };
        std::fs::create_dir_all(&config.data_dir).map_err(io(&config.data_dir))?;
        let removed = remove_leftovers(&config.data_dir).map_err(io(&config.data_dir))?;
        if removed > 0 {
            tracing::warn!(
                files = removed,
                data_dir = %config.data_dir.display(),
                "removed partial files of an interrupted run"
            );
        }
        let now = jiff::Timestamp::now();
        let mut certificates = HashMap::new();
        for institution in institutions.iter() {
            let Some(path) = &institution.certificate else {
                return Err(StorageError::Setup(format!(
                    "institution {} has no certificate registered: its data could not be \
                     encrypted; add `certificate = \"….pem\"` to its entry in the institutions file",
                    institution.id
                )));
            };
            let certificate = InstitutionCertificate::load(path, now)?;
            certificates.insert(institution.id.clone(), certificate);
        }
        let registry = KeyRegistry::open(&config.key_registry)?;
        let retention = RetentionPolicy::new(config.retention_months, institutions);
        Ok(Self {
            data_dir: config.data_dir.clone(),
            institutions: institutions.iter().map(|i| i.id.clone()).collect(),
            ring: Mutex::new(KeyRing::new(registry, config.key_period, certificates)),
            limits,
            retention,
            run_id: format!(
                "{}-{}",
                jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ"),
                std::process::id()
            ),
            sequence: AtomicU64::new(0),
            touched: Mutex::new(HashSet::new()),
        })
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A writer of one table.
    pub fn writer<R: Rows>(&self) -> TableWriter<'_, R> {
        TableWriter {
            store: self,
            open: HashMap::new(),
            counts: StoredCounts::default(),
        }
    }

    /// Deletes the partitions past retention on `today`, except those this
    /// run writes to. Failures are logged: retention is retried at the next
    /// pass and must not stop detection.
    pub fn apply_retention(&self, today: Date) {
        let touched = self.touched.lock().map(|t| t.clone()).unwrap_or_default();
        match retention::apply_except(&self.data_dir, &self.retention, today, false, &touched) {
            Ok(report) if !report.expired.is_empty() => tracing::info!(
                deleted = report.expired.len(),
                kept = report.kept,
                "retention pass"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "retention pass failed; retried at the next"),
        }
    }

    /// Whether the process holds the plaintext of this KEK (it must not,
    /// once its period is over).
    pub fn holds_key(&self, kek_id: &str) -> bool {
        self.ring.lock().is_ok_and(|ring| ring.holds(kek_id))
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, KeyRing> {
        // A panic while the ring was held leaves it consistent: every
        // mutation is a single insert or remove.
        self.ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One file being written.
struct OpenFile<R> {
    writer: ArrowWriter<AtomicFile>,
    rows: R,
    written: u64,
    opened: Instant,
    kek_id: String,
    relative: String,
    date: Date,
}

impl<R> std::fmt::Debug for OpenFile<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenFile")
            .field("relative", &self.relative)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

/// The writer of one table: its open files, by institution and day.
#[derive(Debug)]
pub struct TableWriter<'s, R: Rows> {
    store: &'s Store,
    open: HashMap<(u16, Date), OpenFile<R>>,
    counts: StoredCounts,
}

impl<R: Rows> TableWriter<'_, R> {
    /// Appends rows of `institution` (its index) on `day` through `fill`,
    /// opening the file, or rolling it when the key period has moved on.
    ///
    /// # Errors
    ///
    /// When a key or file cannot be made or written.
    pub fn append(
        &mut self,
        institution: u16,
        day: Date,
        fill: impl FnOnce(&mut R),
    ) -> Result<(), StorageError> {
        let id = self
            .store
            .institutions
            .get(usize::from(institution))
            .ok_or_else(|| StorageError::Setup(format!("no institution #{institution}")))?
            .clone();
        let slot = (institution, day);
        {
            let mut ring = self.store.ring();
            let key = ring.key_for(&id, day, jiff::Timestamp::now())?;
            let kek_id = key.kek.id();
            if self.open.get(&slot).is_some_and(|f| f.kek_id != kek_id) {
                drop(ring);
                self.close(slot)?;
                ring = self.store.ring();
            }
            if !self.open.contains_key(&slot) {
                let key = ring.key_for(&id, day, jiff::Timestamp::now())?;
                let file = self.create(&id, day, key)?;
                self.open.insert(slot, file);
            }
        }
        let Some(file) = self.open.get_mut(&slot) else {
            return Ok(());
        };
        fill(&mut file.rows);
        if file.rows.len() >= CHUNK_ROWS {
            Self::encode(file)?;
            let limits = self.store.limits;
            let size = file.writer.bytes_written() + file.writer.in_progress_size();
            if file.written >= limits.max_file_rows || size as u64 >= limits.max_file_bytes {
                self.close(slot)?;
            }
        }
        Ok(())
    }

    fn create(
        &self,
        institution: &str,
        day: Date,
        key: &super::keys::PeriodKey,
    ) -> Result<OpenFile<R>, StorageError> {
        let sequence = self.store.sequence.fetch_add(1, Ordering::Relaxed);
        let partition = format!("{}/institution={institution}/date={day}", R::TABLE.name());
        let relative = format!(
            "{partition}/part-{}-{sequence:05}.parquet",
            self.store.run_id
        );
        let path = self.store.data_dir.join(&relative);
        let file = AtomicFile::create(&path).map_err(|source| StorageError::Io {
            path: path.clone(),
            source,
        })?;
        if let Ok(mut touched) = self.store.touched.lock() {
            touched.insert(self.store.data_dir.join(&partition));
        }
        let properties = writer_properties(&FileSpec {
            relative_path: &relative,
            institution,
            key,
            encrypted: &ENCRYPTED,
        })?;
        let properties = layout(properties.into_builder(), &self.store.limits).build();
        let writer =
            ArrowWriter::try_new(file, R::TABLE.schema(), Some(properties)).map_err(|source| {
                StorageError::Parquet {
                    path: relative.clone(),
                    source,
                }
            })?;
        tracing::debug!(file = %relative, kek_id = %key.kek.id(), "file opened");
        Ok(OpenFile {
            writer,
            rows: R::default(),
            written: 0,
            opened: Instant::now(),
            kek_id: key.kek.id(),
            relative,
            date: day,
        })
    }

    /// Encodes the gathered rows into the file.
    fn encode(file: &mut OpenFile<R>) -> Result<(), StorageError> {
        if file.rows.is_empty() {
            return Ok(());
        }
        let batch = file.rows.finish().map_err(|source| StorageError::Arrow {
            table: R::TABLE.name(),
            source,
        })?;
        file.written += batch.num_rows() as u64;
        file.writer
            .write(&batch)
            .map_err(|source| StorageError::Parquet {
                path: file.relative.clone(),
                source,
            })
    }

    /// Finishes, syncs and renames one file into place, and records it.
    fn close(&mut self, slot: (u16, Date)) -> Result<(), StorageError> {
        let Some(mut file) = self.open.remove(&slot) else {
            return Ok(());
        };
        Self::encode(&mut file)?;
        let relative = file.relative.clone();
        let parquet = |source| StorageError::Parquet {
            path: relative.clone(),
            source,
        };
        let atomic = file.writer.into_inner().map_err(parquet)?;
        let path = atomic.commit().map_err(|source| StorageError::Io {
            path: self.store.data_dir.join(&relative),
            source,
        })?;
        let institution = self
            .store
            .institutions
            .get(usize::from(slot.0))
            .cloned()
            .unwrap_or_default();
        self.store.ring().registry().record_file(&FileRecord {
            path: relative.clone(),
            table: R::TABLE.name().to_owned(),
            institution,
            date: file.date.to_string(),
            kek_id: file.kek_id.clone(),
            rows: file.written,
            created: jiff::Timestamp::now().to_string(),
        })?;
        self.counts.rows += file.written;
        self.counts.files += 1;
        tracing::debug!(file = %path.display(), rows = file.written, "file committed");
        Ok(())
    }

    /// Closes the files of days before `day` (data time has moved past
    /// them) and those open longer than the age limit.
    ///
    /// # Errors
    ///
    /// When a file cannot be finished.
    pub fn roll(&mut self, day: Option<Date>) -> Result<(), StorageError> {
        let max_age = self.store.limits.max_age;
        let due: Vec<_> = self
            .open
            .iter()
            .filter(|(slot, file)| {
                day.is_some_and(|day| slot.1 < day) || file.opened.elapsed() >= max_age
            })
            .map(|(slot, _)| *slot)
            .collect();
        for slot in due {
            self.close(slot)?;
        }
        Ok(())
    }

    /// Closes every file; what was stored.
    ///
    /// # Errors
    ///
    /// When a file cannot be finished; the others are abandoned (their
    /// temporary files removed).
    pub fn finish(mut self) -> Result<StoredCounts, StorageError> {
        let slots: Vec<_> = self.open.keys().copied().collect();
        for slot in slots {
            self.close(slot)?;
        }
        Ok(self.counts)
    }

    /// What was stored so far.
    pub fn counts(&self) -> StoredCounts {
        self.counts
    }
}

/// A share of the institutions, so several writers can encode files in
/// parallel: the institutions whose index is `index` modulo `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This share.
    pub index: usize,
    /// How many shares.
    pub count: usize,
}

impl Shard {
    /// Every institution.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// How many shares a run writes with: one per core, up to four.
    pub fn per_core() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    }

    fn holds(self, institution: u16) -> bool {
        usize::from(institution) % self.count.max(1) == self.index
    }
}

impl TableWriter<'_, FlowRows> {
    /// Appends the flows of `batch` whose institution is in `shard` to
    /// their institution's and day's file.
    ///
    /// # Errors
    ///
    /// When a key or file cannot be made or written.
    pub fn append_batch(&mut self, batch: &FlowBatch, shard: Shard) -> Result<(), StorageError> {
        // Rows of one batch mostly share an institution and day: group
        // them, in row order, so each file gets its rows in one call.
        let mut groups: Vec<((u16, i32), Vec<usize>)> = Vec::new();
        for row in 0..batch.len() {
            if !shard.holds(batch.institution[row]) {
                continue;
            }
            let key = (batch.institution[row], epoch_day(batch.ts[row]));
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, rows)) => rows.push(row),
                None => groups.push((key, vec![row])),
            }
        }
        for ((institution, _), rows) in groups {
            let Some(&first) = rows.first() else { continue };
            self.append(institution, day_of(batch.ts[first]), |out| {
                out.append_rows(batch, &rows);
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Placement;
    use crate::flow::FlowRecord;
    use crate::scope::Direction;

    fn store(dir: &Path, limits: FileLimits) -> Store {
        let cert = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/keys/alpha.pem");
        let institutions = Institutions::parse(
            &format!(
                "[[institution]]\nid = \"alpha\"\nname = \"A\"\nprefixes = [\"10.1.0.0/16\"]\n\
                 contact = \"a@alpha.example\"\ncertificate = \"{}\"\n",
                cert.display()
            ),
            "test",
        )
        .unwrap();
        let config = StorageConfig {
            data_dir: dir.join("data"),
            key_registry: dir.join("data/keys.sqlite"),
            key_period: super::super::keys::PeriodLength::WEEK,
            retention_months: 3,
        };
        Store::open(&config, &institutions, limits).unwrap()
    }

    /// `rows` flows of 2026-12-04, one per millisecond.
    fn batch(rows: usize) -> FlowBatch {
        let mut batch = FlowBatch::with_capacity(rows);
        let placement = Placement {
            institution: 0,
            peer_institution: None,
            direction: Direction::Outbound,
            src_country: None,
            dst_country: None,
            input: 0,
            line: 0,
        };
        for i in 0..rows {
            let ts = 1_796_342_400_000_000 + i as i64 * 1000;
            let record = FlowRecord::new(
                ts,
                "10.1.0.1".parse().unwrap(),
                "192.0.2.1".parse().unwrap(),
            );
            batch.push(&record, &placement);
        }
        batch
    }

    fn parquet_files(dir: &Path) -> usize {
        super::super::retention::partitions(&dir.join("data"))
            .unwrap()
            .iter()
            .flat_map(|p| std::fs::read_dir(&p.path).unwrap())
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "parquet")
            })
            .count()
    }

    #[test]
    fn files_close_at_their_row_limit() {
        let dir = tempfile::tempdir().unwrap();
        let limits = FileLimits {
            max_file_rows: CHUNK_ROWS as u64,
            ..FileLimits::default()
        };
        let store = store(dir.path(), limits);
        let mut writer = store.writer::<FlowRows>();
        for _ in 0..3 {
            writer.append_batch(&batch(CHUNK_ROWS), Shard::ALL).unwrap();
        }
        writer.append_batch(&batch(10), Shard::ALL).unwrap();
        // Three full files are committed as they fill; the rest waits.
        assert_eq!(writer.counts().files, 3);
        assert_eq!(parquet_files(dir.path()), 3);
        let counts = writer.finish().unwrap();
        assert_eq!((counts.files, counts.rows), (4, 3 * CHUNK_ROWS as u64 + 10));
    }

    #[test]
    fn files_close_when_they_age_and_when_their_day_is_over() {
        let dir = tempfile::tempdir().unwrap();
        let limits = FileLimits {
            max_age: Duration::ZERO,
            ..FileLimits::default()
        };
        let store = store(dir.path(), limits);
        let mut writer = store.writer::<FlowRows>();
        writer.append_batch(&batch(10), Shard::ALL).unwrap();
        writer.roll(None).unwrap();
        assert_eq!(writer.counts().files, 1, "an aged file is closed");

        let store = store_again(dir.path());
        let mut writer = store.writer::<FlowRows>();
        writer.append_batch(&batch(10), Shard::ALL).unwrap();
        writer.roll(Some(jiff::civil::date(2026, 12, 4))).unwrap();
        assert_eq!(writer.counts().files, 0, "the day is not over");
        writer.roll(Some(jiff::civil::date(2026, 12, 5))).unwrap();
        assert_eq!(writer.counts().files, 1, "the next day's data closes it");
        // Another shard's rows are not this writer's.
        let mut other = store.writer::<FlowRows>();
        other
            .append_batch(&batch(10), Shard { index: 1, count: 2 })
            .unwrap();
        assert_eq!(other.finish().unwrap().rows, 0);
    }

    fn store_again(dir: &Path) -> Store {
        store(dir, FileLimits::default())
    }
}
