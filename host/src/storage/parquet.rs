//! One Parquet file with Parquet Modular Encryption, readable by pyarrow,
//! parquet-java and Spark with the owning institution's private key.
//!
//! - Plaintext footer: everything but the encrypted columns reads without
//!   any key (DuckDB, pyarrow, Polars).
//! - Fresh 32-byte data keys (AES-256-GCM) for the footer's signature and
//!   for each encrypted column, described by PKMT1 key material under the
//!   institution's period key ([`KeyMaterial`]).
//! - The AAD prefix is the file's path relative to the data directory,
//!   stored in the file: a file moved or renamed no longer verifies as the
//!   original.
//! - Statistics and bloom filters are off for encrypted columns: arrow-rs
//!   writes bloom filters unencrypted, and min/max statistics would show
//!   values.

use std::io::Write;

use aes_gcm::aead::OsRng;
use aes_gcm::aead::rand_core::RngCore;
use arrow_array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::encryption::encrypt::FileEncryptionProperties;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use zeroize::Zeroizing;

use super::keys::{KeyError, KeyMaterial, PeriodKey};

/// Bytes of a data key: AES-256.
const DEK_BYTES: usize = 32;

/// Why a file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ParquetError {
    /// Keys could not be made or wrapped.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The Parquet writer failed.
    #[error("{path}: {source}")]
    Write {
        /// The file, relative to the data directory.
        path: String,
        /// The error.
        source: parquet::errors::ParquetError,
    },
}

/// How the files of one institution and key period are written.
#[derive(Debug, Clone)]
pub struct FileSpec<'a> {
    /// Path relative to the data directory (the AAD prefix).
    pub relative_path: &'a str,
    /// The owning institution.
    pub institution: &'a str,
    /// Its key for the file's period.
    pub key: &'a PeriodKey,
    /// Columns only the institution may read.
    pub encrypted: &'a [&'a str],
}

fn fresh_dek() -> Zeroizing<[u8; DEK_BYTES]> {
    let mut dek = Zeroizing::new([0; DEK_BYTES]);
    OsRng.fill_bytes(dek.as_mut());
    dek
}

/// Writer properties for one file: zstd, fresh data keys, encrypted
/// columns without statistics or bloom filters.
pub fn writer_properties(spec: &FileSpec<'_>) -> Result<WriterProperties, ParquetError> {
    let fail = |source| ParquetError::Write {
        path: spec.relative_path.to_owned(),
        source,
    };
    let footer_dek = fresh_dek();
    let footer = KeyMaterial::footer(spec.key, spec.institution, footer_dek.as_ref())?;
    let mut encryption = FileEncryptionProperties::builder(footer_dek.to_vec())
        .with_footer_key_metadata(footer.to_json())
        .with_plaintext_footer(true)
        .with_aad_prefix(spec.relative_path.as_bytes().to_vec())
        .with_aad_prefix_storage(true);
    let mut properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_bloom_filter_enabled(false);
    for &column in spec.encrypted {
        let dek = fresh_dek();
        let material = KeyMaterial::column(spec.key, dek.as_ref())?;
        encryption =
            encryption.with_column_key_and_metadata(column, dek.to_vec(), material.to_json());
        let path = ColumnPath::from(column);
        properties = properties
            .set_column_statistics_enabled(path.clone(), EnabledStatistics::None)
            .set_column_bloom_filter_enabled(path, false);
    }
    let encryption = encryption.build().map_err(fail)?;
    Ok(properties
        .with_file_encryption_properties(encryption)
        .build())
}

/// Writes `batches` as one Parquet file to `out`.
pub fn write<W: Write + Send>(
    out: W,
    spec: &FileSpec<'_>,
    batches: &[RecordBatch],
) -> Result<W, ParquetError> {
    let fail = |source| ParquetError::Write {
        path: spec.relative_path.to_owned(),
        source,
    };
    let Some(first) = batches.first() else {
        return Err(fail(parquet::errors::ParquetError::General(
            "no rows to write".into(),
        )));
    };
    let properties = writer_properties(spec)?;
    let mut writer = ArrowWriter::try_new(out, first.schema(), Some(properties)).map_err(fail)?;
    for batch in batches {
        writer.write(batch).map_err(fail)?;
    }
    writer.into_inner().map_err(fail)
}
