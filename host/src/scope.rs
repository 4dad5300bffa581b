//! Scope (R1, R2): which flows kansoku may look at, and whose they are.
//!
//! In: a parsed record's two addresses. Out: the institution it belongs to
//! and its direction, or a drop reason. Only traffic with at least one end in
//! a registered prefix of a participating institution is monitored;
//! everything else is dropped here and counted (`out_of_scope`). An operator
//! may also exclude prefixes temporarily, for example under overload; flows
//! whose registered ends all fall in an excluded prefix are dropped and
//! counted (`excluded`).
//!
//! Institutions are registered in a TOML file (R2): id, name, prefixes,
//! contact mail address and the certificate of their portal operators. A
//! prefix belongs to at most one institution.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

/// Direction of a flow, seen from its institution. Codes are the contract's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Direction {
    /// Not known.
    #[default]
    Unknown = 0,
    /// Destination registered, source outside.
    Inbound = 1,
    /// Source registered, destination outside.
    Outbound = 2,
    /// Both ends registered.
    Internal = 3,
}

impl Direction {
    /// The direction for a contract code.
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => Self::Inbound,
            2 => Self::Outbound,
            3 => Self::Internal,
            _ => Self::Unknown,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
            Self::Internal => "internal",
        }
    }
}

/// One participating institution, as registered.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Institution {
    /// Short stable identifier (`[a-z0-9-]+`), used in paths and alerts.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Registered network prefixes, IPv4 and IPv6.
    pub prefixes: Vec<IpNet>,
    /// Contact mail address for notifications.
    pub contact: String,
    /// PEM certificate of the institution's portal operators; its public key
    /// wraps the institution's data keys. Relative paths are relative to the
    /// institutions file.
    #[serde(default)]
    pub certificate: Option<PathBuf>,
    /// Months detection data is kept (R6); the service default applies when
    /// absent.
    #[serde(default)]
    pub retention_months: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InstitutionsFile {
    #[serde(default, rename = "institution")]
    institutions: Vec<Institution>,
}

/// Why the institutions file or the scope is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// The file could not be read.
    #[error("cannot read institutions file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown fields.
    #[error("{path}:{line}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// Line of the problem.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A registration is incomplete or inconsistent.
    #[error("{origin}: institution {id:?}: {message}")]
    Invalid {
        /// The file.
        origin: String,
        /// The institution.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// There are more institutions than the contract can index.
    #[error("{origin}: at most {max} institutions are supported")]
    TooMany {
        /// The file.
        origin: String,
        /// The limit.
        max: usize,
    },
}

/// The registered institutions, in file order (their index is the
/// contract's `institution` column).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Institutions {
    list: Vec<Institution>,
}

impl Institutions {
    /// Reads and validates an institutions file.
    ///
    /// # Errors
    ///
    /// When the file cannot be read, is not valid, or registers something
    /// inconsistent ([`ScopeError`]).
    pub fn load(path: &Path) -> Result<Self, ScopeError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScopeError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut institutions = Self::parse(&text, &path.display().to_string())?;
        let base = path.parent().unwrap_or(Path::new("."));
        for institution in &mut institutions.list {
            if let Some(cert) = &mut institution.certificate
                && cert.is_relative()
            {
                *cert = base.join(&*cert);
            }
        }
        Ok(institutions)
    }

    /// Parses the text of an institutions file; `origin` names it in errors.
    ///
    /// # Errors
    ///
    /// As [`Institutions::load`].
    pub fn parse(text: &str, origin: &str) -> Result<Self, ScopeError> {
        let file: InstitutionsFile = toml::from_str(text).map_err(|e| ScopeError::Syntax {
            path: origin.to_owned(),
            line: e.span().map_or(1, |s| {
                text[..s.start.min(text.len())].matches('\n').count() + 1
            }),
            message: e.message().to_owned(),
        })?;
        let institutions = Self {
            list: file.institutions,
        };
        institutions.validate(origin)?;
        Ok(institutions)
    }

    fn validate(&self, origin: &str) -> Result<(), ScopeError> {
        let invalid = |id: &str, message: String| ScopeError::Invalid {
            origin: origin.to_owned(),
            id: id.to_owned(),
            message,
        };
        if self.list.len() >= usize::from(crate::batch::NO_INSTITUTION) {
            return Err(ScopeError::TooMany {
                origin: origin.to_owned(),
                max: usize::from(crate::batch::NO_INSTITUTION) - 1,
            });
        }
        for (i, inst) in self.list.iter().enumerate() {
            let id = inst.id.as_str();
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(invalid(
                    id,
                    "id must be lower-case letters, digits and '-'".into(),
                ));
            }
            if self.list[..i].iter().any(|other| other.id == inst.id) {
                return Err(invalid(id, "registered twice".into()));
            }
            if inst.prefixes.is_empty() {
                return Err(invalid(id, "no prefixes registered".into()));
            }
            if !looks_like_mail(&inst.contact) {
                return Err(invalid(
                    id,
                    format!("contact {:?} is not a mail address", inst.contact),
                ));
            }
            for other in &self.list[..i] {
                for mine in &inst.prefixes {
                    if let Some(theirs) = other
                        .prefixes
                        .iter()
                        .find(|p| p.contains(&mine.network()) || mine.contains(&p.network()))
                    {
                        return Err(invalid(
                            id,
                            format!("prefix {mine} overlaps {theirs} of {:?}", other.id),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Institutions in index order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Institution> {
        self.list.iter()
    }

    /// The institution at `index`.
    pub fn get(&self, index: u16) -> Option<&Institution> {
        self.list.get(usize::from(index))
    }

    /// Number of institutions.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether none are registered.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

fn looks_like_mail(address: &str) -> bool {
    match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !address.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// Why a flow was not monitored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Neither end is in a registered prefix.
    OutOfScope,
    /// The registered ends are all in prefixes the operator excluded.
    Excluded,
}

impl DropReason {
    /// Label for counters.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::OutOfScope => "out_of_scope",
            DropReason::Excluded => "excluded",
        }
    }
}

/// Whose a kept flow is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribution {
    /// The institution (the source's when both ends are registered).
    pub institution: u16,
    /// The destination's institution when it differs.
    pub peer: Option<u16>,
    /// Direction seen from `institution`.
    pub direction: Direction,
}

/// Prefix lookup: sorted, non-overlapping address ranges (IPv4 mapped into
/// IPv6) with their institution, searched by bisection.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    ranges: Vec<(u128, u128, u16)>,
    excluded: Vec<(u128, u128, u16)>,
}

fn range(net: &IpNet) -> (u128, u128) {
    match net {
        IpNet::V4(v4) => {
            let start = v4.network().to_ipv6_mapped();
            let end = v4.broadcast().to_ipv6_mapped();
            (u128::from(start), u128::from(end))
        }
        IpNet::V6(v6) => (u128::from(v6.network()), u128::from(v6.broadcast())),
    }
}

fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn lookup(ranges: &[(u128, u128, u16)], ip: IpAddr) -> Option<u16> {
    let k = key(ip);
    let i = ranges.partition_point(|(start, _, _)| *start <= k);
    let (start, end, inst) = *ranges.get(i.checked_sub(1)?)?;
    (start <= k && k <= end).then_some(inst)
}

fn sorted_ranges(nets: impl Iterator<Item = (IpNet, u16)>) -> Vec<(u128, u128, u16)> {
    let mut ranges: Vec<(u128, u128, u16)> = nets
        .map(|(net, inst)| {
            let (start, end) = range(&net.trunc());
            (start, end, inst)
        })
        .collect();
    ranges.sort_unstable();
    // Prefixes of one institution may nest (validation rejects overlaps
    // across institutions): keep the outer range.
    let mut merged: Vec<(u128, u128, u16)> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.0 <= last.1 => last.1 = last.1.max(r.1),
            _ => merged.push(r),
        }
    }
    merged
}

impl Scope {
    /// The scope of `institutions`, minus the `excluded` prefixes.
    pub fn new(institutions: &Institutions, excluded: &[IpNet]) -> Self {
        let ranges = sorted_ranges(institutions.iter().enumerate().flat_map(|(i, inst)| {
            let index = u16::try_from(i).unwrap_or(u16::MAX);
            inst.prefixes.iter().map(move |p| (*p, index))
        }));
        let excluded = sorted_ranges(excluded.iter().map(|p| (*p, 0)));
        Self { ranges, excluded }
    }

    /// The institution owning `ip`, if any.
    pub fn owner(&self, ip: IpAddr) -> Option<u16> {
        lookup(&self.ranges, ip)
    }

    /// Attributes a flow, or says why it is dropped.
    ///
    /// # Errors
    ///
    /// The [`DropReason`] when the flow is not monitored.
    pub fn classify(&self, src: IpAddr, dst: IpAddr) -> Result<Attribution, DropReason> {
        let excluded = |ip| lookup(&self.excluded, ip).is_some();
        let src_owner = self.owner(src).filter(|_| !excluded(src));
        let dst_owner = self.owner(dst).filter(|_| !excluded(dst));
        match (src_owner, dst_owner) {
            (Some(s), Some(d)) => Ok(Attribution {
                institution: s,
                peer: (s != d).then_some(d),
                direction: Direction::Internal,
            }),
            (Some(s), None) => Ok(Attribution {
                institution: s,
                peer: None,
                direction: Direction::Outbound,
            }),
            (None, Some(d)) => Ok(Attribution {
                institution: d,
                peer: None,
                direction: Direction::Inbound,
            }),
            (None, None) if self.owner(src).is_some() || self.owner(dst).is_some() => {
                Err(DropReason::Excluded)
            }
            (None, None) => Err(DropReason::OutOfScope),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[institution]]
id = "alpha-u"
name = "Alpha University"
prefixes = ["192.0.2.0/24", "2001:db8:a::/48"]
contact = "csirt@alpha.example.ac.jp"

[[institution]]
id = "beta-u"
name = "Beta University"
prefixes = ["198.51.100.0/25"]
contact = "soc@beta.example.ac.jp"
certificate = "certs/beta.pem"
"#;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn r1_flows_touching_no_registered_prefix_are_dropped() {
        let scope = Scope::new(&Institutions::parse(FILE, "t").unwrap(), &[]);
        assert_eq!(
            scope.classify(ip("203.0.113.1"), ip("8.8.8.8")),
            Err(DropReason::OutOfScope)
        );
        assert_eq!(
            scope.classify(ip("198.51.100.200"), ip("8.8.8.8")),
            Err(DropReason::OutOfScope),
            "just outside beta's /25"
        );
    }

    #[test]
    fn r1_kept_flows_carry_institution_and_direction() {
        let scope = Scope::new(&Institutions::parse(FILE, "t").unwrap(), &[]);
        let out = scope.classify(ip("192.0.2.10"), ip("8.8.8.8")).unwrap();
        assert_eq!((out.institution, out.direction), (0, Direction::Outbound));
        let inbound = scope
            .classify(ip("2001:db8::1"), ip("2001:db8:a::9"))
            .unwrap();
        assert_eq!(
            (inbound.institution, inbound.direction),
            (0, Direction::Inbound)
        );
        let cross = scope.classify(ip("198.51.100.1"), ip("192.0.2.1")).unwrap();
        assert_eq!(
            (cross.institution, cross.peer, cross.direction),
            (1, Some(0), Direction::Internal)
        );
        let own = scope.classify(ip("192.0.2.1"), ip("192.0.2.2")).unwrap();
        assert_eq!((own.peer, own.direction), (None, Direction::Internal));
    }

    #[test]
    fn r1_excluded_prefixes_are_dropped_as_excluded() {
        let excluded = ["192.0.2.128/25".parse().unwrap()];
        let scope = Scope::new(&Institutions::parse(FILE, "t").unwrap(), &excluded);
        assert_eq!(
            scope.classify(ip("192.0.2.200"), ip("8.8.8.8")),
            Err(DropReason::Excluded)
        );
        assert!(scope.classify(ip("192.0.2.20"), ip("8.8.8.8")).is_ok());
        // One registered end excluded, the other not: kept for the other.
        let kept = scope
            .classify(ip("192.0.2.200"), ip("198.51.100.1"))
            .unwrap();
        assert_eq!((kept.institution, kept.direction), (1, Direction::Inbound));
    }

    #[test]
    fn r2_registrations_are_validated() {
        let cases = [
            (
                "[[institution]]\nid=\"A\"\nname=\"x\"\nprefixes=[\"10.0.0.0/8\"]\ncontact=\"a@b.c\"\n",
                "id must be",
            ),
            (
                "[[institution]]\nid=\"a\"\nname=\"x\"\nprefixes=[]\ncontact=\"a@b.c\"\n",
                "no prefixes",
            ),
            (
                "[[institution]]\nid=\"a\"\nname=\"x\"\nprefixes=[\"10.0.0.0/8\"]\ncontact=\"nobody\"\n",
                "not a mail address",
            ),
            (
                "[[institution]]\nid=\"a\"\nname=\"x\"\nprefixes=[\"10.0.0.0/8\"]\ncontact=\"a@b.c\"\n\
                 [[institution]]\nid=\"b\"\nname=\"y\"\nprefixes=[\"10.1.0.0/16\"]\ncontact=\"a@b.c\"\n",
                "overlaps 10.0.0.0/8",
            ),
            (
                "[[institution]]\nid=\"a\"\nname=\"x\"\nprefixes=[\"10.0.0.0/33\"]\ncontact=\"a@b.c\"\n",
                "t:4:",
            ),
            (
                "[[institution]]\nid=\"a\"\nname=\"x\"\nprefixes=[\"10.0.0.0/8\"]\ncontact=\"a@b.c\"\ncolour=1\n",
                "unknown field",
            ),
        ];
        for (text, expected) in cases {
            let err = Institutions::parse(text, "t").unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn certificate_paths_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("institutions.toml");
        std::fs::write(&path, FILE).unwrap();
        let institutions = Institutions::load(&path).unwrap();
        assert_eq!(
            institutions.get(1).unwrap().certificate.as_deref(),
            Some(dir.path().join("certs/beta.pem").as_path())
        );
    }
}
