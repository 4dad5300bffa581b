//! Country lookup in a MaxMind DB, and a per-worker cache in front of it.

use std::borrow::Cow;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use maxminddb::{LookupResult, PathElement, Reader, WithinOptions};

use super::EnrichError;

/// Where the location's country is (GeoIP2 / GeoLite2 schema).
const COUNTRY: &[PathElement<'static>] =
    &[PathElement::Key("country"), PathElement::Key("iso_code")];

/// Where the country the network is registered to is: the fallback when a
/// record has no location country (some anycast, satellite and cloud
/// networks).
const REGISTERED: &[PathElement<'static>] = &[
    PathElement::Key("registered_country"),
    PathElement::Key("iso_code"),
];

/// How many networks are sampled for `country.iso_code` when the
/// `database_type` does not say Country or City.
const SAMPLE_NETWORKS: usize = 1024;

/// Prefix lengths up to which a database answer covers a whole cache block.
const V4_BLOCK: u8 = 24;
const V6_BLOCK: u8 = 64;

/// An opened country database. Read-only: share it between workers in an
/// `Arc` and give each worker its own [`CountryCache`].
#[derive(Debug)]
pub struct CountryDb {
    reader: Reader<Cow<'static, [u8]>>,
    origin: PathBuf,
}

impl CountryDb {
    /// Opens a MaxMind DB file and checks that it holds countries.
    ///
    /// # Errors
    ///
    /// [`EnrichError::Read`] when the file cannot be read,
    /// [`EnrichError::Format`] when it is not a MaxMind DB,
    /// [`EnrichError::NotCountry`] when it has no country data.
    pub fn open(path: &Path) -> Result<Self, EnrichError> {
        let bytes = std::fs::read(path).map_err(|source| EnrichError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(bytes, path)
    }

    /// Opens a database already in memory: a `Vec<u8>`, or an embedded
    /// `&'static [u8]` (no copy). `origin` names it in errors.
    ///
    /// # Errors
    ///
    /// As [`CountryDb::open`], except for [`EnrichError::Read`].
    pub fn from_bytes(
        bytes: impl Into<Cow<'static, [u8]>>,
        origin: impl Into<PathBuf>,
    ) -> Result<Self, EnrichError> {
        let origin = origin.into();
        let reader = Reader::from_source(bytes.into()).map_err(|e| EnrichError::Format {
            path: origin.clone(),
            reason: e.to_string(),
        })?;
        let db = Self { reader, origin };
        if !db.has_countries() {
            return Err(EnrichError::NotCountry {
                path: db.origin,
                database_type: db.reader.metadata().database_type.clone(),
            });
        }
        Ok(db)
    }

    /// Whether the database type says Country or City, or else whether a
    /// sample of its records carries a country code.
    fn has_countries(&self) -> bool {
        let kind = self.reader.metadata().database_type.to_ascii_lowercase();
        if kind.contains("country") || kind.contains("city") {
            return true;
        }
        let Ok(networks) = self.reader.networks(WithinOptions::default()) else {
            return false;
        };
        networks
            .take(SAMPLE_NETWORKS)
            .map_while(Result::ok)
            .any(|result| country_of(&result).is_some())
    }

    /// The file the database was read from (or the name it was given).
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// The `database_type` of its metadata, e.g. `GeoLite2-Country`.
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// When the database was built, in seconds since the Unix epoch.
    pub fn build_epoch(&self) -> u64 {
        self.reader.metadata().build_epoch
    }

    /// The country of `ip`: upper-case ISO 3166-1 alpha-2, the location's
    /// country or else the registered country. `None` when the address is
    /// not in the database, its record has no country, or the code is not
    /// two letters. IPv4-mapped IPv6 addresses are looked up as IPv4.
    pub fn lookup(&self, ip: IpAddr) -> Option<[u8; 2]> {
        let result = self.reader.lookup(ip.to_canonical()).ok()?;
        country_of(&result)
    }

    /// [`CountryDb::lookup`], and whether the answer holds for the whole
    /// cache block of `ip` (the database's network is at least as wide).
    fn lookup_block(&self, ip: IpAddr) -> (Option<[u8; 2]>, bool) {
        let Ok(result) = self.reader.lookup(ip) else {
            return (None, false);
        };
        let whole = match (ip, result.network()) {
            (IpAddr::V4(_), Ok(net)) => !net.is_ipv4() || net.prefix() <= V4_BLOCK,
            (IpAddr::V6(_), Ok(net)) => net.prefix() <= V6_BLOCK,
            (_, Err(_)) => false,
        };
        (country_of(&result), whole)
    }
}

fn country_of<S: AsRef<[u8]>>(result: &LookupResult<'_, S>) -> Option<[u8; 2]> {
    iso_code(result, COUNTRY).or_else(|| iso_code(result, REGISTERED))
}

fn iso_code<S: AsRef<[u8]>>(
    result: &LookupResult<'_, S>,
    path: &[PathElement<'_>],
) -> Option<[u8; 2]> {
    let code: &str = result.decode_path(path).ok().flatten()?;
    match *code.as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
        }
        _ => None,
    }
}

/// Block key of a canonical address: IPv4 (mapped into IPv6) to its /24,
/// IPv6 to its /64. Never [`EMPTY`]: the low bits are cleared.
fn block_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()) & !0xff,
        IpAddr::V6(v6) => u128::from(v6) & !u128::from(u64::MAX),
    }
}

const EMPTY: u128 = u128::MAX;

/// No country, in [`Slot::code`].
const NONE: u16 = 0;

#[derive(Debug, Clone, Copy)]
struct Slot {
    block: u128,
    /// The country as big-endian `u16`, or [`NONE`].
    code: u16,
    /// The database splits this block into narrower networks: ask it for
    /// every address.
    split: bool,
}

const EMPTY_SLOT: Slot = Slot {
    block: EMPTY,
    code: NONE,
    split: false,
};

/// A worker's cache in front of a shared [`CountryDb`]: direct-mapped, one
/// slot per /24 (IPv4) or /64 (IPv6) block, the newest block wins a slot.
/// A block the database splits into narrower networks is remembered as
/// such and its addresses are always looked up, so the cache never changes
/// an answer.
pub struct CountryCache {
    db: Arc<CountryDb>,
    slots: Box<[Slot]>,
    mask: usize,
    hits: u64,
    misses: u64,
}

impl CountryCache {
    /// Slots of [`CountryCache::new`] (32 bytes each).
    pub const DEFAULT_SLOTS: usize = 4096;

    /// A cache of [`CountryCache::DEFAULT_SLOTS`] slots.
    pub fn new(db: Arc<CountryDb>) -> Self {
        Self::with_slots(db, Self::DEFAULT_SLOTS)
    }

    /// A cache of `slots` slots, rounded up to a power of two (at most 2²⁰).
    pub fn with_slots(db: Arc<CountryDb>, slots: usize) -> Self {
        let slots = slots.clamp(1, 1 << 20).next_power_of_two();
        Self {
            db,
            slots: vec![EMPTY_SLOT; slots].into_boxed_slice(),
            mask: slots - 1,
            hits: 0,
            misses: 0,
        }
    }

    /// The country of `ip`, as [`CountryDb::lookup`].
    #[inline]
    pub fn lookup(&mut self, ip: IpAddr) -> Option<[u8; 2]> {
        let ip = ip.to_canonical();
        let block = block_key(ip);
        let index = slot_index(block) & self.mask;
        let slot = self.slots[index];
        if slot.block == block && !slot.split {
            self.hits += 1;
            return (slot.code != NONE).then(|| slot.code.to_be_bytes());
        }
        self.misses += 1;
        if slot.block == block {
            return self.db.lookup(ip);
        }
        let (country, whole) = self.db.lookup_block(ip);
        self.slots[index] = Slot {
            block,
            code: country.map_or(NONE, u16::from_be_bytes),
            split: !whole,
        };
        country
    }

    /// The countries of a flow's source and destination.
    #[inline]
    pub fn lookup_pair(&mut self, src: IpAddr, dst: IpAddr) -> (Option<[u8; 2]>, Option<[u8; 2]>) {
        (self.lookup(src), self.lookup(dst))
    }

    /// The database behind the cache.
    pub fn db(&self) -> &Arc<CountryDb> {
        &self.db
    }

    /// Lookups answered from the cache.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Lookups that went to the database.
    pub fn misses(&self) -> u64 {
        self.misses
    }
}

impl std::fmt::Debug for CountryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountryCache")
            .field("db", &self.db.origin)
            .field("slots", &self.slots.len())
            .field("hits", &self.hits)
            .field("misses", &self.misses)
            .finish_non_exhaustive()
    }
}

#[inline]
fn slot_index(block: u128) -> usize {
    // Fold the two halves (IPv4 blocks vary in the low one, IPv6 blocks in
    // the high one), then Fibonacci-hash; the top bits are the best mixed.
    let folded = (block as u64) ^ ((block >> 64) as u64);
    (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/mmdb")
            .join(name)
    }

    fn db() -> CountryDb {
        CountryDb::open(&fixture("test-country.mmdb")).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn code(s: &str) -> Option<[u8; 2]> {
        Some(s.as_bytes().try_into().unwrap())
    }

    /// Every address the fixture script (make_test_mmdb.py) defines an
    /// answer for, and some it does not.
    const CASES: &[(&str, Option<&str>)] = &[
        ("192.0.2.1", Some("JP")),
        ("192.0.2.255", Some("JP")),
        ("198.51.100.77", Some("US")),
        ("2001:db8:1::5", Some("JP")),
        ("2001:db8:1:ffff::1", Some("JP")),
        ("2001:db8:2::1", Some("NL")),
        ("::ffff:192.0.2.1", Some("JP")),
        ("::ffff:198.51.100.1", Some("US")),
        // Location country wins over registered country.
        ("203.0.113.5", Some("DE")),
        // Only a registered country.
        ("203.0.113.200", Some("FR")),
        // Misses: not in the database, no country, malformed code.
        ("10.0.0.1", None),
        ("8.8.8.8", None),
        ("192.0.3.1", None),
        ("2001:db8:ffff::1", None),
        ("::1", None),
        ("198.18.0.1", None),
        ("198.19.255.1", None),
        ("2001:db8:bad::1", None),
    ];

    #[test]
    fn ipv4_and_ipv6_addresses_get_their_country_or_none() {
        let db = db();
        assert_eq!(db.database_type(), "GeoLite2-Country");
        assert_eq!(db.build_epoch(), 1_735_689_600);
        for &(addr, expected) in CASES {
            assert_eq!(db.lookup(ip(addr)), expected.and_then(code), "{addr}");
        }
    }

    #[test]
    fn the_cache_gives_the_same_answers_and_hits_hot_blocks() {
        let mut cache = CountryCache::with_slots(Arc::new(db()), 64);
        for round in 0..3 {
            for &(addr, expected) in CASES {
                assert_eq!(
                    cache.lookup(ip(addr)),
                    expected.and_then(code),
                    "{addr} round {round}"
                );
            }
        }
        assert!(cache.hits() > 0);
        // Another address in a cached, unsplit block is a hit.
        assert_eq!(cache.lookup(ip("192.0.2.1")), code("JP"));
        let (hits, misses) = (cache.hits(), cache.misses());
        assert_eq!(cache.lookup(ip("192.0.2.42")), code("JP"));
        assert_eq!((cache.hits(), cache.misses()), (hits + 1, misses));
        assert_eq!(
            cache.lookup_pair(ip("198.51.100.1"), ip("10.0.0.9")),
            (code("US"), None)
        );
    }

    #[test]
    fn a_split_block_is_never_answered_for_the_wrong_half() {
        // 203.0.113.0/24 is two /25s with different answers; alternate.
        let mut cache = CountryCache::with_slots(Arc::new(db()), 1);
        for _ in 0..3 {
            assert_eq!(cache.lookup(ip("203.0.113.1")), code("DE"));
            assert_eq!(cache.lookup(ip("203.0.113.129")), code("FR"));
        }
        // One slot, shared by colliding blocks: evictions do not confuse it.
        for _ in 0..3 {
            assert_eq!(cache.lookup(ip("192.0.2.7")), code("JP"));
            assert_eq!(cache.lookup(ip("2001:db8:2::7")), code("NL"));
            assert_eq!(cache.lookup(ip("10.1.2.3")), None);
        }
    }

    #[test]
    fn embedded_bytes_open_without_a_file() {
        let bytes = std::fs::read(fixture("test-country.mmdb")).unwrap();
        let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        let db = CountryDb::from_bytes(leaked, "embedded:test").unwrap();
        assert_eq!(db.origin(), Path::new("embedded:test"));
        assert_eq!(db.lookup(ip("2001:db8:1::1")), code("JP"));
    }

    #[test]
    fn the_demo_database_opens() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/geo/demo-country.mmdb");
        let db = CountryDb::open(&path).unwrap();
        assert_eq!(db.lookup(ip("193.46.255.92")), code("DE"));
        assert_eq!(db.lookup(ip("192.168.1.129")), code("JP"));
        assert_eq!(db.lookup(ip("2001:718:2:1663::1")), code("JP"));
        assert_eq!(db.lookup(ip("8.8.8.8")), None);
    }

    #[test]
    fn a_missing_file_is_a_read_error_naming_it() {
        let path = fixture("no-such.mmdb");
        let err = CountryDb::open(&path).unwrap_err();
        assert!(matches!(err, EnrichError::Read { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("no-such.mmdb"), "{message}");
    }

    #[test]
    fn garbage_and_truncated_files_are_format_errors_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.mmdb");
        std::fs::write(&garbage, b"this is not a MaxMind DB\n".repeat(100)).unwrap();
        let err = CountryDb::open(&garbage).unwrap_err();
        assert!(matches!(err, EnrichError::Format { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("garbage.mmdb"), "{message}");

        let bytes = std::fs::read(fixture("test-country.mmdb")).unwrap();
        let truncated = dir.path().join("truncated.mmdb");
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        let err = CountryDb::open(&truncated).unwrap_err();
        assert!(matches!(err, EnrichError::Format { .. }), "{err:?}");
        assert!(err.to_string().contains("truncated.mmdb"), "{err}");

        let empty = dir.path().join("empty.mmdb");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(
            CountryDb::open(&empty),
            Err(EnrichError::Format { .. })
        ));
    }

    #[test]
    fn a_database_without_countries_is_refused() {
        let err = CountryDb::open(&fixture("test-asn.mmdb")).unwrap_err();
        assert!(
            matches!(&err, EnrichError::NotCountry { database_type, .. } if database_type == "GeoLite2-ASN"),
            "{err:?}"
        );
        assert!(err.to_string().contains("test-asn.mmdb"), "{err}");
    }

    #[test]
    fn an_unfamiliar_type_with_country_records_is_accepted() {
        let mut bytes = std::fs::read(fixture("test-country.mmdb")).unwrap();
        // Rename the type in the metadata (same length, so nothing moves).
        let old = b"GeoLite2-Country";
        let new = b"Acme-GeoLocation";
        let at = bytes
            .windows(old.len())
            .rposition(|w| w == old)
            .expect("database_type in the metadata");
        bytes[at..at + old.len()].copy_from_slice(new);
        let db = CountryDb::from_bytes(bytes, "renamed").unwrap();
        assert_eq!(db.database_type(), "Acme-GeoLocation");
        assert_eq!(db.lookup(ip("198.51.100.1")), code("US"));
    }
}
