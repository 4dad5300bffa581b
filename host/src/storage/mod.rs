//! Storage of detection data (R3–R6): Parquet partitions whose sensitive
//! columns only the owning institution can decrypt.
//!
//! - [`keys`]: the institutions' period keys (R4): generated per
//!   institution and period, wrapped under the institution's certificate,
//!   recorded in the key registry, held in memory only while their period
//!   lasts.
//! - [`parquet`]: one file, its sensitive columns encrypted for the
//!   owning institution (Parquet Modular Encryption, PKMT1 key material).
//! - [`retention`]: date partitions deleted once past their retention (R6).

pub mod keys;
pub mod parquet;
pub mod retention;
