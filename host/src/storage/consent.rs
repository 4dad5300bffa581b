//! Decryption by consent (R5).
//!
//! ```text
//! request (who, what, why) ──→ institution decides ──refuse──→ nothing is ever decrypted
//!                                   │ approve: unwraps the KEKs of the scope's files with its
//!                                   ▼          private key, locally; hands over only those KEKs
//!                               show: the scope's rows, decrypted; each viewing logged
//! ```
//!
//! Requests, decisions, released keys and the log are kept beside the keys
//! in the key registry. The private key never leaves the `approve` command
//! and is never stored. Released KEKs are kept for [`RELEASE_DAYS`] and
//! then erased: a later viewing needs a new request. `show` returns only the
//! files of the request's institution, table and dates, and only their rows
//! matching its filter.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampMicrosecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::civil::Date;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::encryption::decrypt::{FileDecryptionProperties, KeyRetriever};
use rsa::RsaPrivateKey;
use rusqlite::params;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::Table;
use super::keys::{Kek, KeyError, KeyMaterial, KeyRegistry};

/// Days released keys are kept after an approval.
pub const RELEASE_DAYS: i64 = 7;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS decrypt_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    requester TEXT NOT NULL,
    institution TEXT NOT NULL,
    tbl TEXT NOT NULL,
    date_from TEXT NOT NULL,
    date_to TEXT NOT NULL,
    filter TEXT NOT NULL,
    reason TEXT NOT NULL,
    created TEXT NOT NULL,
    status TEXT NOT NULL,
    decided TEXT,
    decided_by TEXT,
    expires TEXT
);
CREATE TABLE IF NOT EXISTS decrypt_keys (
    request_id INTEGER NOT NULL,
    kek_id TEXT NOT NULL,
    kek BLOB NOT NULL,
    PRIMARY KEY (request_id, kek_id)
);
CREATE TABLE IF NOT EXISTS decrypt_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id INTEGER NOT NULL,
    event TEXT NOT NULL,
    actor TEXT NOT NULL,
    at TEXT NOT NULL,
    detail TEXT NOT NULL
);";

/// Why a consent step was refused or failed. Messages never hold key
/// material or decrypted values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsentError {
    /// The registry failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// No such request.
    #[error("no decryption request {0}")]
    NoRequest(i64),
    /// The request is not in a state that allows the step.
    #[error("decryption request {id} is {status}: {why}")]
    State {
        /// The request.
        id: i64,
        /// Its status.
        status: Status,
        /// What that means for the step.
        why: &'static str,
    },
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The private key is unusable or not the institution's.
    #[error("{0}")]
    PrivateKey(String),
    /// A file of the scope could not be read or decrypted.
    #[error("{path}: {reason}")]
    Read {
        /// The file, relative to the data directory.
        path: String,
        /// What failed.
        reason: String,
    },
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Waiting for the institution.
    Pending,
    /// The institution agreed and released the scope's keys.
    Approved,
    /// The institution refused.
    Refused,
    /// Approved, but the released keys have been erased.
    Expired,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Refused => "refused",
            Status::Expired => "expired",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "approved" => Status::Approved,
            "refused" => Status::Refused,
            "expired" => Status::Expired,
            _ => Status::Pending,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One equality condition on a column's displayed value (`column=value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The column.
    pub column: String,
    /// The value, as `show` prints it.
    pub value: String,
}

impl std::str::FromStr for Filter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (column, value) = s
            .split_once('=')
            .ok_or_else(|| format!("filter {s:?}: expected COLUMN=VALUE"))?;
        let column = column.trim();
        if column.is_empty() {
            return Err(format!("filter {s:?}: no column name"));
        }
        Ok(Self {
            column: column.to_owned(),
            value: value.to_owned(),
        })
    }
}

impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.column, self.value)
    }
}

/// What a requester asks to see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Institution whose data it is.
    pub institution: String,
    /// The table.
    pub table: Table,
    /// First date, inclusive.
    pub from: Date,
    /// Last date, inclusive.
    pub to: Date,
    /// Conditions every shown row meets.
    pub filters: Vec<Filter>,
}

/// A recorded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its id.
    pub id: i64,
    /// Who asked.
    pub requester: String,
    /// What.
    pub scope: Scope,
    /// Why.
    pub reason: String,
    /// When (RFC 3339).
    pub created: String,
    /// Where it stands.
    pub status: Status,
    /// When it was decided, and by whom.
    pub decided: Option<(String, String)>,
}

/// One logged step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogEntry {
    /// The request.
    pub request: i64,
    /// `requested`, `refused`, `approved`, `viewed`, `denied`, `expired`.
    pub event: String,
    /// Who.
    pub actor: String,
    /// When (RFC 3339).
    pub at: String,
    /// What, without any decrypted value.
    pub detail: String,
}

/// The consent records, in the key registry.
#[derive(Debug)]
pub struct Consent<'r> {
    registry: &'r KeyRegistry,
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

impl<'r> Consent<'r> {
    /// The records in `registry`, created if needed.
    ///
    /// # Errors
    ///
    /// When the registry cannot be written.
    pub fn open(registry: &'r KeyRegistry) -> Result<Self, ConsentError> {
        registry
            .db()
            .execute_batch(SCHEMA)
            .map_err(|e| registry.err(e))?;
        let consent = Self { registry };
        consent.expire()?;
        Ok(consent)
    }

    fn db(&self) -> &rusqlite::Connection {
        self.registry.db()
    }

    fn err(&self, e: rusqlite::Error) -> ConsentError {
        ConsentError::Key(self.registry.err(e))
    }

    fn log(
        &self,
        request: i64,
        event: &str,
        actor: &str,
        detail: &str,
    ) -> Result<(), ConsentError> {
        self.db()
            .execute(
                "INSERT INTO decrypt_log (request_id, event, actor, at, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![request, event, actor, now(), detail],
            )
            .map_err(|e| self.err(e))?;
        tracing::info!(request, event, actor, detail, "decryption request");
        Ok(())
    }

    /// Records a request; its id.
    ///
    /// # Errors
    ///
    /// When the scope is malformed or the registry cannot be written.
    pub fn request(
        &self,
        requester: &str,
        scope: &Scope,
        reason: &str,
    ) -> Result<i64, ConsentError> {
        if scope.from > scope.to {
            return Err(ConsentError::Invalid(format!(
                "--from {} is after --to {}",
                scope.from, scope.to
            )));
        }
        if reason.trim().is_empty() {
            return Err(ConsentError::Invalid(
                "a request needs a reason: the institution decides on it".into(),
            ));
        }
        let schema = scope.table.schema();
        for filter in &scope.filters {
            if schema.field_with_name(&filter.column).is_err() {
                return Err(ConsentError::Invalid(format!(
                    "filter {filter}: table {} has no column {:?}",
                    scope.table, filter.column
                )));
            }
        }
        let filters = serde_json::to_string(
            &scope
                .filters
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default();
        self.db()
            .execute(
                "INSERT INTO decrypt_requests (requester, institution, tbl, date_from, date_to,
                     filter, reason, created, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending')",
                params![
                    requester,
                    scope.institution,
                    scope.table.name(),
                    scope.from.to_string(),
                    scope.to.to_string(),
                    filters,
                    reason,
                    now(),
                ],
            )
            .map_err(|e| self.err(e))?;
        let id = self.db().last_insert_rowid();
        let detail = format!(
            "institution={} table={} from={} to={} filter={} reason={reason:?}",
            scope.institution, scope.table, scope.from, scope.to, filters
        );
        self.log(id, "requested", requester, &detail)?;
        Ok(id)
    }

    /// The request `id`.
    ///
    /// # Errors
    ///
    /// When there is none.
    pub fn get(&self, id: i64) -> Result<Request, ConsentError> {
        self.list()?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or(ConsentError::NoRequest(id))
    }

    /// Every request, oldest first.
    ///
    /// # Errors
    ///
    /// When the registry cannot be read.
    pub fn list(&self) -> Result<Vec<Request>, ConsentError> {
        let mut statement = self
            .db()
            .prepare(
                "SELECT id, requester, institution, tbl, date_from, date_to, filter, reason,
                        created, status, decided, decided_by
                 FROM decrypt_requests ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                    row.get::<_, String>(7)?,
                    row.get::<_, String>(8)?,
                    row.get::<_, String>(9)?,
                    row.get::<_, Option<String>>(10)?,
                    row.get::<_, Option<String>>(11)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut requests = Vec::new();
        for row in rows {
            let (
                id,
                requester,
                institution,
                table,
                from,
                to,
                filter,
                reason,
                created,
                status,
                decided,
                by,
            ) = row.map_err(|e| self.err(e))?;
            let corrupt = |what: &str| {
                ConsentError::Invalid(format!(
                    "decryption request {id}: stored {what} is unreadable"
                ))
            };
            let filters: Vec<String> =
                serde_json::from_str(&filter).map_err(|_| corrupt("filter"))?;
            requests.push(Request {
                id,
                requester,
                scope: Scope {
                    institution,
                    table: Table::from_name(&table).ok_or_else(|| corrupt("table"))?,
                    from: from.parse().map_err(|_| corrupt("date"))?,
                    to: to.parse().map_err(|_| corrupt("date"))?,
                    filters: filters
                        .iter()
                        .map(|f| f.parse())
                        .collect::<Result<_, _>>()
                        .map_err(|_| corrupt("filter"))?,
                },
                reason,
                created,
                status: Status::parse(&status),
                decided: decided.zip(by),
            });
        }
        Ok(requests)
    }

    fn pending(&self, id: i64) -> Result<Request, ConsentError> {
        let request = self.get(id)?;
        if request.status != Status::Pending {
            return Err(ConsentError::State {
                id,
                status: request.status,
                why: "it has been decided already",
            });
        }
        Ok(request)
    }

    fn decide(&self, id: i64, status: Status, actor: &str) -> Result<(), ConsentError> {
        let expires = (status == Status::Approved).then(|| {
            jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_hours(24 * RELEASE_DAYS))
                .unwrap_or(jiff::Timestamp::MAX)
                .to_string()
        });
        self.db()
            .execute(
                "UPDATE decrypt_requests SET status = ?2, decided = ?3, decided_by = ?4, expires = ?5
                 WHERE id = ?1",
                params![id, status.name(), now(), actor, expires],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The institution refuses request `id`: nothing of it will ever be
    /// decrypted.
    ///
    /// # Errors
    ///
    /// When the request does not exist or was decided already.
    pub fn refuse(&self, id: i64, actor: &str) -> Result<(), ConsentError> {
        self.pending(id)?;
        self.decide(id, Status::Refused, actor)?;
        self.log(id, "refused", actor, "")
    }

    /// The institution approves request `id`: the KEKs of the files in its
    /// scope are unwrapped with `private_key` and released to the service;
    /// how many.
    ///
    /// # Errors
    ///
    /// When the request does not exist or was decided already, or the key
    /// does not unwrap the institution's keys (then nothing is released).
    pub fn approve(
        &self,
        id: i64,
        actor: &str,
        private_key: &RsaPrivateKey,
    ) -> Result<usize, ConsentError> {
        let request = self.pending(id)?;
        let scope = &request.scope;
        let files = self.files(scope)?;
        let kek_ids: BTreeSet<&str> = files.iter().map(|f| f.kek_id.as_str()).collect();
        let mut released = Vec::with_capacity(kek_ids.len());
        for kek_id in kek_ids {
            let record = self
                .registry
                .by_id(kek_id)?
                .filter(|r| r.institution == scope.institution)
                .ok_or_else(|| {
                    ConsentError::Invalid(format!(
                        "KEK {kek_id} of a file in the scope is not a key of {} in the registry",
                        scope.institution
                    ))
                })?;
            let wrapped = STANDARD.decode(&record.wrapped_kek).map_err(|_| {
                ConsentError::Invalid(format!("KEK {kek_id}: the wrapped key is not base64"))
            })?;
            let kek = private_key
                .decrypt(rsa::Oaep::new::<rsa::sha2::Sha256>(), &wrapped)
                .map(Zeroizing::new)
                .map_err(|_| {
                    ConsentError::PrivateKey(format!(
                        "the private key does not unwrap the {} key of {}: \
                         is it the key of the certificate {}…?",
                        record.period,
                        scope.institution,
                        record.certificate_fingerprint.get(..16).unwrap_or_default()
                    ))
                })?;
            released.push((kek_id.to_owned(), kek));
        }
        let db = self.db();
        let tx = db.unchecked_transaction().map_err(|e| self.err(e))?;
        for (kek_id, kek) in &released {
            tx.execute(
                "INSERT OR REPLACE INTO decrypt_keys (request_id, kek_id, kek) VALUES (?1, ?2, ?3)",
                params![id, kek_id, kek.as_slice()],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        self.decide(id, Status::Approved, actor)?;
        self.log(
            id,
            "approved",
            actor,
            &format!("{} keys released for {} files", released.len(), files.len()),
        )?;
        Ok(released.len())
    }

    /// Erases the released keys of approvals older than [`RELEASE_DAYS`].
    fn expire(&self) -> Result<(), ConsentError> {
        let due: Vec<i64> = {
            let mut statement = self
                .db()
                .prepare(
                    "SELECT id FROM decrypt_requests WHERE status = 'approved' AND expires <= ?1",
                )
                .map_err(|e| self.err(e))?;
            let ids = statement
                .query_map([now()], |row| row.get(0))
                .map_err(|e| self.err(e))?;
            ids.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        };
        for id in due {
            self.db()
                .execute("DELETE FROM decrypt_keys WHERE request_id = ?1", [id])
                .map_err(|e| self.err(e))?;
            self.db()
                .execute(
                    "UPDATE decrypt_requests SET status = 'expired' WHERE id = ?1",
                    [id],
                )
                .map_err(|e| self.err(e))?;
            self.log(id, "expired", "kansoku", "released keys erased")?;
        }
        Ok(())
    }

    /// The decrypted rows of approved request `id`, as JSON objects; the
    /// viewing is logged (and so is a refused attempt).
    ///
    /// # Errors
    ///
    /// When the request is not approved, or a file of its scope cannot be
    /// read or decrypted.
    pub fn show(
        &self,
        id: i64,
        actor: &str,
        data_dir: &Path,
    ) -> Result<Vec<Map<String, Value>>, ConsentError> {
        let request = self.get(id)?;
        if request.status != Status::Approved {
            self.log(
                id,
                "denied",
                actor,
                &format!("request is {}", request.status),
            )?;
            return Err(ConsentError::State {
                id,
                status: request.status,
                why: "nothing is decrypted without the institution's approval",
            });
        }
        let keks = self.released(id)?;
        let scope = &request.scope;
        let files = self.files(scope)?;
        let retriever = Arc::new(Released { keks });
        let mut rows = Vec::new();
        let mut read = 0;
        for file in &files {
            let path = data_dir.join(&file.path);
            if !path.exists() {
                // Deleted by retention since it was written.
                continue;
            }
            read += 1;
            for batch in read_file(&path, &file.path, retriever.clone())? {
                for row in 0..batch.num_rows() {
                    let mut object = Map::new();
                    object.insert(
                        "institution".into(),
                        Value::String(file.institution.clone()),
                    );
                    object.insert("date".into(), Value::String(file.date.clone()));
                    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                        object.insert(field.name().clone(), cell(column.as_ref(), row));
                    }
                    if scope.filters.iter().all(|f| matches(&object, f)) {
                        rows.push(object);
                    }
                }
            }
        }
        self.log(
            id,
            "viewed",
            actor,
            &format!("{} rows from {read} files", rows.len()),
        )?;
        Ok(rows)
    }

    /// The files a scope covers, as recorded when they were written.
    fn files(&self, scope: &Scope) -> Result<Vec<super::keys::FileRecord>, ConsentError> {
        Ok(self.registry.files(
            &scope.institution,
            scope.table.name(),
            &scope.from.to_string(),
            &scope.to.to_string(),
        )?)
    }

    fn released(&self, id: i64) -> Result<Vec<Kek>, ConsentError> {
        let mut statement = self
            .db()
            .prepare("SELECT kek_id, kek FROM decrypt_keys WHERE request_id = ?1")
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map([id], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    Zeroizing::new(row.get::<_, Vec<u8>>(1)?),
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut keks = Vec::new();
        for row in rows {
            let (kek_id, bytes) = row.map_err(|e| self.err(e))?;
            let id_bytes = STANDARD.decode(&kek_id).ok();
            let (Some(id_bytes), Ok(key)) = (
                id_bytes.and_then(|b| <[u8; 16]>::try_from(b).ok()),
                <[u8; 16]>::try_from(bytes.as_slice()),
            ) else {
                return Err(ConsentError::Invalid(format!(
                    "released key {kek_id} of request {id} is malformed"
                )));
            };
            keks.push(Kek::from_parts(id_bytes, Zeroizing::new(key)));
        }
        Ok(keks)
    }

    /// The log, of one request or all.
    ///
    /// # Errors
    ///
    /// When the registry cannot be read.
    pub fn history(&self, id: Option<i64>) -> Result<Vec<LogEntry>, ConsentError> {
        let mut statement = self
            .db()
            .prepare(
                "SELECT request_id, event, actor, at, detail FROM decrypt_log
                 WHERE ?1 IS NULL OR request_id = ?1 ORDER BY seq",
            )
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map([id], |row| {
                Ok(LogEntry {
                    request: row.get(0)?,
                    event: row.get(1)?,
                    actor: row.get(2)?,
                    at: row.get(3)?,
                    detail: row.get(4)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

/// Hands the reader the data keys wrapped under the released KEKs, and
/// nothing else.
struct Released {
    keks: Vec<Kek>,
}

impl KeyRetriever for Released {
    fn retrieve_key(&self, key_metadata: &[u8]) -> parquet::errors::Result<Vec<u8>> {
        let general = |e: KeyError| parquet::errors::ParquetError::General(e.to_string());
        let material = KeyMaterial::parse(key_metadata).map_err(general)?;
        let kek = self
            .keks
            .iter()
            .find(|k| k.id() == material.kek_id)
            .ok_or_else(|| {
                parquet::errors::ParquetError::General(format!(
                    "KEK {} was not released for this request",
                    material.kek_id
                ))
            })?;
        // The reader takes a plain Vec; it lives as long as the reader.
        Ok(material.unwrap_dek(kek).map_err(general)?.to_vec())
    }
}

fn read_file(
    path: &Path,
    relative: &str,
    retriever: Arc<Released>,
) -> Result<Vec<RecordBatch>, ConsentError> {
    let fail = |reason: String| ConsentError::Read {
        path: relative.to_owned(),
        reason,
    };
    let file = File::open(path).map_err(|e| fail(e.to_string()))?;
    // The expected AAD prefix: a file moved from elsewhere does not verify.
    let decryption = FileDecryptionProperties::with_key_retriever(retriever)
        .with_aad_prefix(relative.as_bytes().to_vec())
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let options = ArrowReaderOptions::new().with_file_decryption_properties(decryption);
    let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
        .and_then(|b| b.build())
        .map_err(|e| fail(e.to_string()))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))
}

/// One value as JSON: numbers as numbers, times as RFC 3339, text as text.
fn cell(column: &dyn Array, row: usize) -> Value {
    if column.is_null(row) {
        return Value::Null;
    }
    match column.data_type() {
        DataType::Utf8 => Value::String(column.as_string::<i32>().value(row).to_owned()),
        DataType::UInt8 => column.as_primitive::<UInt8Type>().value(row).into(),
        DataType::UInt16 => column.as_primitive::<UInt16Type>().value(row).into(),
        DataType::UInt32 => column.as_primitive::<UInt32Type>().value(row).into(),
        DataType::UInt64 => column.as_primitive::<UInt64Type>().value(row).into(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let micros = column.as_primitive::<TimestampMicrosecondType>().value(row);
            jiff::Timestamp::from_microsecond(micros)
                .map_or(Value::from(micros), |t| Value::String(t.to_string()))
        }
        other => Value::String(format!("<{other}>")),
    }
}

fn matches(row: &Map<String, Value>, filter: &Filter) -> bool {
    match row.get(&filter.column) {
        Some(Value::String(s)) => *s == filter.value,
        Some(Value::Null) | None => false,
        Some(other) => {
            // Numbers compare as `show` prints them.
            let shown = other.to_string();
            shown == filter.value
        }
    }
}

/// Loads an institution's private key (PKCS#8 or PKCS#1 PEM).
///
/// # Errors
///
/// When the file cannot be read or is not an RSA private key; the error
/// never quotes the file.
pub fn load_private_key(path: &Path) -> Result<RsaPrivateKey, ConsentError> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let pem = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        ConsentError::PrivateKey(format!(
            "{}: cannot read the private key: {e}",
            path.display()
        ))
    })?);
    RsaPrivateKey::from_pkcs8_pem(&pem)
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(&pem))
        .map_err(|_| {
            ConsentError::PrivateKey(format!(
                "{}: not an RSA private key in PEM (PKCS#8 or PKCS#1)",
                path.display()
            ))
        })
}
