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
);";

impl KeyRegistry {
    /// Opens (creating if needed) the registry at `path`.
    pub fn open(path: &Path) -> Result<Self, KeyError> {
        let err = |source| KeyError::Registry {
            path: path.to_owned(),
            source,
        };
        let db = Connection::open(path).map_err(err)?;
        db.execute_batch(SCHEMA).map_err(err)?;
        Ok(Self {
            path: path.to_owned(),
            db,
        })
    }

    fn err(&self, source: rusqlite::Error) -> KeyError {
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

    /// The key with this id.
    pub fn by_id(&self, kek_id: &str) -> Result<Option<KeyRecord>, KeyError> {
        Ok(self.list(None)?.into_iter().find(|r| r.kek_id == kek_id))
    }
}
