//! The key registry: which period keys exist, wrapped, for whom.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::{KeyError, Period};

/// One period key as recorded: never the plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Institution id.
    pub institution: String,
    /// The period, as displayed (`2026-W49`).
    pub period: String,
    /// First day of the period.
    pub period_start: String,
    /// Length of the period in days.
    pub period_days: u16,
    /// 1 for the first key of the period; a restart mid-period makes the
    /// next (the previous plaintext is gone with the process).
    pub version: u32,
    /// KEK id, base64 (PKMT1 `keyEncryptionKeyID`).
    pub kek_id: String,
    /// SHA-256 of the certificate the KEK is wrapped under.
    pub certificate_fingerprint: String,
    /// The KEK wrapped with RSA-OAEP-SHA256, base64 (PKMT1 `wrappedKEK`).
    pub wrapped_kek: String,
    /// When the key was made (RFC 3339).
    pub created: String,
}

/// The registry, an SQLite database.
#[derive(Debug)]
pub struct KeyRegistry {
    path: PathBuf,
    db: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS period_keys (
    institution TEXT NOT NULL,
    period TEXT NOT NULL,
    period_start TEXT NOT NULL,
    period_days INTEGER NOT NULL,
    version INTEGER NOT NULL,
    kek_id TEXT NOT NULL UNIQUE,
    certificate_fingerprint TEXT NOT NULL,
    wrapped_kek TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (institution, period_start, period_days, version)
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    tbl TEXT NOT NULL,
    institution TEXT NOT NULL,
    date TEXT NOT NULL,
    kek_id TEXT NOT NULL,
    rows INTEGER NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS files_scope ON files (institution, tbl, date);";

/// A written Parquet file, as recorded: which KEK its data keys are
/// wrapped under, so a decryption request finds exactly the keys of its
/// scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// Path relative to the data directory.
    pub path: String,
    /// `flows` or `alerts`.
    pub table: String,
    /// Owning institution.
    pub institution: String,
    /// Date partition (`YYYY-MM-DD`).
    pub date: String,
    /// KEK id of its data keys.
    pub kek_id: String,
    /// Rows in the file.
    pub rows: u64,
    /// When it was committed (RFC 3339).
    pub created: String,
}

impl KeyRegistry {
    /// Opens (creating if needed) the registry at `path`.
    pub fn open(path: &Path) -> Result<Self, KeyError> {
        let err = |source| KeyError::Registry {
            path: path.to_owned(),
            source,
        };
        let db = Connection::open(path).map_err(err)?;
        // A running engine and the `keys`/`decrypt` commands share the
        // file: wait for each other's writes instead of failing.
        db.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        db.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        db.execute_batch(SCHEMA).map_err(err)?;
        Ok(Self {
            path: path.to_owned(),
            db,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for the other records kept beside the keys
    /// (decryption requests).
    pub(crate) fn db(&self) -> &Connection {
        &self.db
    }

    pub(crate) fn err(&self, source: rusqlite::Error) -> KeyError {
        KeyError::Registry {
            path: self.path.clone(),
            source,
        }
    }

    /// The highest version recorded for an institution's period.
    pub fn last_version(&self, institution: &str, period: &Period) -> Result<u32, KeyError> {
        self.db
            .query_row(
                "SELECT MAX(version) FROM period_keys
                 WHERE institution = ?1 AND period_start = ?2 AND period_days = ?3",
                params![institution, period.start.to_string(), period.days],
                |row| row.get::<_, Option<u32>>(0),
            )
            .optional()
            .map(|v| v.flatten().unwrap_or(0))
            .map_err(|e| self.err(e))
    }

    /// Records a new key.
    pub fn insert(&self, record: &KeyRecord) -> Result<(), KeyError> {
        self.db
            .execute(
                "INSERT INTO period_keys (institution, period, period_start, period_days,
                     version, kek_id, certificate_fingerprint, wrapped_kek, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    record.institution,
                    record.period,
                    record.period_start,
                    record.period_days,
                    record.version,
                    record.kek_id,
                    record.certificate_fingerprint,
                    record.wrapped_kek,
                    record.created,
                ],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Every key, by institution, then period, then version; of one
    /// institution when given.
    pub fn list(&self, institution: Option<&str>) -> Result<Vec<KeyRecord>, KeyError> {
        let mut statement = self
            .db
            .prepare(
                "SELECT institution, period, period_start, period_days, version, kek_id,
                        certificate_fingerprint, wrapped_kek, created
                 FROM period_keys WHERE ?1 IS NULL OR institution = ?1
                 ORDER BY institution, period_start, version",
            )
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map(params![institution], |row| {
                Ok(KeyRecord {
                    institution: row.get(0)?,
                    period: row.get(1)?,
                    period_start: row.get(2)?,
                    period_days: row.get(3)?,
                    version: row.get(4)?,
                    kek_id: row.get(5)?,
                    certificate_fingerprint: row.get(6)?,
                    wrapped_kek: row.get(7)?,
                    created: row.get(8)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Records a committed file.
    pub fn record_file(&self, file: &FileRecord) -> Result<(), KeyError> {
        self.db
            .execute(
                "INSERT OR REPLACE INTO files (path, tbl, institution, date, kek_id, rows, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    file.path,
                    file.table,
                    file.institution,
                    file.date,
                    file.kek_id,
                    i64::try_from(file.rows).unwrap_or(i64::MAX),
                    file.created,
                ],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// The files of an institution's table with dates in `from..=to`
    /// (`YYYY-MM-DD`), by date and path.
    pub fn files(
        &self,
        institution: &str,
        table: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<FileRecord>, KeyError> {
        let mut statement = self
            .db
            .prepare(
                "SELECT path, tbl, institution, date, kek_id, rows, created FROM files
                 WHERE institution = ?1 AND tbl = ?2 AND date >= ?3 AND date <= ?4
                 ORDER BY date, path",
            )
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map(params![institution, table, from, to], |row| {
                Ok(FileRecord {
                    path: row.get(0)?,
                    table: row.get(1)?,
                    institution: row.get(2)?,
                    date: row.get(3)?,
                    kek_id: row.get(4)?,
                    rows: u64::try_from(row.get::<_, i64>(5)?).unwrap_or_default(),
                    created: row.get(6)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The key with this id.
    pub fn by_id(&self, kek_id: &str) -> Result<Option<KeyRecord>, KeyError> {
        Ok(self.list(None)?.into_iter().find(|r| r.kek_id == kek_id))
    }
}
