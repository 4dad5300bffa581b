//! Joining TLS and HTTP records to their connection records.
//!
//! Zeek writes `ssl.log` and `http.log` rows separately from the `conn.log`
//! row of the same connection, and the batch carries no uid, so the rows
//! are matched on source and destination address and port. Either side may
//! come first: Zeek logs the connection when it ends, a replay sorted by
//! time sees it first. Whichever comes first waits here, for `join_secs`
//! of data time at most.

use foldhash::HashMap;
use smallvec::SmallVec;

use super::pairs::{Sample, Service};

/// A name a connection was seen with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameRef {
    /// Hash of the name: with the source, the key of its name pair.
    pub hash: u64,
    /// Whether the name came from an HTTP `CONNECT` (a proxy).
    pub proxy: bool,
}

/// The connection side of a join.
#[derive(Debug, Clone, Copy)]
pub struct ConnPart {
    /// The connection.
    pub sample: Sample,
    /// Institution of the source.
    pub institution: u16,
    /// Port, protocol and service.
    pub service: Service,
    /// Slot and generation of the connection's address pair, if held.
    pub ip: Option<(u32, u32)>,
}

/// One connection waiting for its other half.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Data time of the newest row of this entry, seconds.
    pub seen: u32,
    /// Names seen so far (TLS and HTTP: at most two distinct).
    pub names: SmallVec<[NameRef; 2]>,
    /// The connection, once its record arrived.
    pub conn: Option<ConnPart>,
}

/// Rows waiting for their other half, by a hash of the address and port
/// quadruple.
#[derive(Debug, Default)]
pub struct Joins {
    /// The waiting rows.
    pub map: HashMap<u64, Pending>,
}

impl Joins {
    /// Drops entries not touched since `cutoff`: a TLS record of a
    /// connection the sensor never logged, a connection without a name, or
    /// the second record of a connection already joined.
    pub fn expire(&mut self, cutoff: u32) {
        self.map.retain(|_, p| p.seen >= cutoff);
    }
}

/// The join key of a row.
pub fn key(src: &[u8; 16], sport: u16, dst: &[u8; 16], dport: u16) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = foldhash::fast::FixedState::with_seed(0x6b61_6e73_6f6b_7531).build_hasher();
    h.write(src);
    h.write(dst);
    h.write_u32(u32::from(sport) << 16 | u32::from(dport));
    h.finish()
}

/// The hash of a server name (ASCII case folded, trailing dot dropped;
/// names are at most 253 bytes, longer input is hashed on its first 255).
pub fn name_hash(name: &[u8]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let name = name.strip_suffix(b".").unwrap_or(name);
    let n = name.len().min(255);
    let mut h = foldhash::fast::FixedState::with_seed(0x6e61_6d65_6861_7368).build_hasher();
    if name[..n].iter().any(u8::is_ascii_uppercase) {
        let mut folded = [0u8; 255];
        for (out, b) in folded.iter_mut().zip(&name[..n]) {
            *out = b.to_ascii_lowercase();
        }
        h.write(&folded[..n]);
    } else {
        h.write(&name[..n]);
    }
    h.write_usize(name.len());
    h.finish()
}

/// The name as stored for display: case folded, trailing dot dropped.
pub fn display_name(name: &[u8]) -> Box<str> {
    let name = name.strip_suffix(b".").unwrap_or(name);
    String::from_utf8_lossy(name)
        .to_ascii_lowercase()
        .into_boxed_str()
}
