//! Enrichment: what the host adds to a scoped record before batching.
//!
//! In: a record's two addresses. Out: their countries, ISO 3166-1 alpha-2
//! ("peer country", viewable by operators under R3), which go into the
//! batch's `src-country` / `dst-country` columns. A country the input
//! already carried (a CSV export's `Src Country`) wins over a lookup.
//!
//! Countries come from a MaxMind DB (`.mmdb`) country or city database:
//! GeoLite2 / GeoIP2 Country or City, or anything with the same schema
//! (DB-IP lite, …). [`CountryDb`] is the opened database, read-only and
//! shared by every worker (`Arc`); each worker wraps it in a
//! [`CountryCache`], a direct-mapped cache per /24 (IPv4) or /64 (IPv6)
//! block, so the hot addresses of a flow stream skip the tree walk and the
//! record decoding.
//!
//! Nothing here needs the network: the database is a file the operator
//! provides (or the demo's embedded synthetic one).

mod country;

use std::path::PathBuf;

pub use country::{CountryCache, CountryDb};

/// Why a country database cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrichError {
    /// The file could not be read.
    #[error("cannot read country database {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The bytes are not a valid MaxMind DB.
    #[error("country database {path} is not a valid MaxMind DB: {reason}")]
    Format {
        /// The file (or the name an embedded database was given).
        path: PathBuf,
        /// What the reader found wrong.
        reason: String,
    },
    /// A valid MaxMind DB without country data (an ASN or ISP database, say).
    #[error(
        "{path} is a {database_type:?} database without country data \
         (expected a Country or City database with `country.iso_code`)"
    )]
    NotCountry {
        /// The file.
        path: PathBuf,
        /// The `database_type` of its metadata.
        database_type: String,
    },
}
