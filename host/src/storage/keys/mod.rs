//! Period keys (R4).
//!
//! Each institution gets a fresh 16-byte key encryption key (KEK) per
//! period (an ISO week by default). The KEK wraps the data keys of the
//! institution's Parquet files (AES-GCM, the PKMT1 double wrapping that
//! pyarrow and parquet-java read), and is itself wrapped with RSA-OAEP-SHA256
//! under the public key of the institution's registered certificate. Only
//! the wrapped KEK is recorded ([`KeyRegistry`]); the plaintext lives in
//! memory ([`KeyRing`]) until the next period's key replaces it, and is
//! zeroed when dropped. After a rollover the service cannot decrypt the old
//! period; the institution, with its private key, can.
//!
//! ```text
//! certificate (RSA ≥ 2048) ──wraps──→ KEK (per institution, period) ──wraps──→ DEKs (per file)
//! ```

mod certificate;
mod kek;
mod material;
mod period;
mod registry;
mod ring;

pub use certificate::InstitutionCertificate;
pub use kek::Kek;
pub use material::{KMS_INSTANCE_URL, KeyMaterial};
pub use period::{Period, PeriodLength};
pub use registry::{FileRecord, KeyRecord, KeyRegistry};
pub use ring::{KeyRing, PeriodKey};

use std::path::PathBuf;

/// Why a key could not be loaded, made, recorded or used. Messages name the
/// file or institution; they never hold key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A certificate file could not be read.
    #[error("{path}: cannot read the certificate: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A certificate is not PEM X.509, or its key cannot be used.
    #[error("{path}: {reason}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An institution has no certificate registered.
    #[error("institution {0} has no certificate registered: its data cannot be encrypted")]
    NoCertificate(String),
    /// The key registry failed.
    #[error("key registry {path}: {source}")]
    Registry {
        /// The registry's file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// A wrapping or unwrapping step failed.
    #[error("{0}")]
    Crypto(String),
    /// A period length out of range.
    #[error("key period of {0} days: must be 1 to 366")]
    PeriodLength(u32),
}
