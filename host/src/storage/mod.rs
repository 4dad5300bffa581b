//! Storage of detection data (R3–R6): Parquet partitions whose sensitive
//! columns only the owning institution can decrypt.
//!
//! - [`table`]: the `flows` and `alerts` tables, their columns and which
//!   are encrypted.
//! - [`writer`]: a run's writers, one open file per institution and day,
//!   rolled on size, age, date and key period.
//! - [`parquet`]: one file, its sensitive columns encrypted for the
//!   owning institution (Parquet Modular Encryption, PKMT1 key material).
//! - [`atomic`]: files that appear whole or not at all.
//! - [`keys`]: the institutions' period keys (R4): generated per
//!   institution and period, wrapped under the institution's certificate,
//!   recorded in the key registry, held in memory only while their period
//!   lasts.
//! - [`consent`]: decryption by consent (R5): requests, the institution's
//!   decision, the released keys of an approved scope, and the log.
//! - [`retention`]: date partitions deleted once past their retention (R6).

pub mod atomic;
pub mod consent;
pub mod keys;
pub mod parquet;
pub mod retention;
pub mod table;
pub mod writer;

pub use table::Table;
pub use writer::{FileLimits, Shard, StorageError, Store, StoredCounts, TableWriter};
