//! What an IoC is, read from its text: an address, a network, a domain
//! (exact or with its subdomains), a URL or a file hash. Lists rarely say
//! which, so the type is told from the value itself.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// One indicator value, normalised so the same thing written two ways is
/// one key: domains lower case without the trailing dot, addresses as
/// IPv4-mapped `u128`, hashes lower-case hex, URLs per [`normalise_url`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Indicator {
    Address(u128),
    /// Inclusive range of a CIDR, and the CIDR as written for evidence.
    Network(u128, u128, IpNet),
    Domain(Box<str>),
    /// The domain and every name under it (`.example.com`), or only the
    /// names under it (`*.example.com`).
    Suffix {
        domain: Box<str>,
        apex: bool,
    },
    Url(Box<str>),
    Hash(HashKind, Box<str>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashKind {
    Md5,
    Sha1,
    Sha256,
}

impl HashKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
        }
    }

    fn from_len(len: usize) -> Option<Self> {
        match len {
            32 => Some(Self::Md5),
            40 => Some(Self::Sha1),
            64 => Some(Self::Sha256),
            _ => None,
        }
    }
}

impl Indicator {
    /// The type named in evidence.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Address(_) => "ip",
            Self::Network(..) => "cidr",
            Self::Domain(_) => "domain",
            Self::Suffix { .. } => "domain-suffix",
            Self::Url(_) => "url",
            Self::Hash(..) => "hash",
        }
    }

    /// Reads a value of any type, told from its form.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty value".into());
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Self::Address(to_u128(ip)));
        }
        if text.contains('/') && !text.contains("://") {
            return Self::network(text);
        }
        if text.contains("://") {
            return Self::url(text);
        }
        if let Some(kind) = HashKind::from_len(text.len())
            && text.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Self::hash(kind, text);
        }
        Self::domain(text)
    }

    pub fn address(text: &str) -> Result<Self, String> {
        let ip: IpAddr = text
            .trim()
            .parse()
            .map_err(|_| format!("`{}` is not an IP address", shown(text)))?;
        Ok(Self::Address(to_u128(ip)))
    }

    /// A CIDR; one with host bits set (`10.1.2.3/8`) means its network, as
    /// routers read it. `/32` and `/128` are addresses.
    pub fn network(text: &str) -> Result<Self, String> {
        let net: IpNet = text
            .trim()
            .parse()
            .map_err(|_| format!("`{}` is not a CIDR", shown(text)))?;
        let net = net.trunc();
        if net.prefix_len() == net.max_prefix_len() {
            return Ok(Self::Address(to_u128(net.addr())));
        }
        Ok(Self::Network(
            to_u128(net.network()),
            to_u128(net.broadcast()),
            net,
        ))
    }

    /// A domain: `example.com`, `.example.com` (with subdomains) or
    /// `*.example.com` (subdomains only).
    pub fn domain(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (name, suffix) = if let Some(rest) = text.strip_prefix("*.") {
            (rest, Some(false))
        } else if let Some(rest) = text.strip_prefix('.') {
            (rest, Some(true))
        } else {
            (text, None)
        };
        let name = normalise_domain(name)
            .ok_or_else(|| format!("`{}` is not a domain name", shown(text)))?;
        Ok(match suffix {
            None => Self::Domain(name),
            Some(apex) => Self::Suffix { domain: name, apex },
        })
    }

    pub fn url(text: &str) -> Result<Self, String> {
        normalise_url(text)
            .map(Self::Url)
            .ok_or_else(|| format!("`{}` is not a URL with a host", shown(text)))
    }

    pub fn hash(kind: HashKind, text: &str) -> Result<Self, String> {
        let text = text.trim();
        if HashKind::from_len(text.len()) != Some(kind)
            || !text.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(format!(
                "`{}` is not a {} hash ({} hex digits)",
                shown(text),
                kind.name(),
                match kind {
                    HashKind::Md5 => 32,
                    HashKind::Sha1 => 40,
                    HashKind::Sha256 => 64,
                }
            ));
        }
        Ok(Self::Hash(kind, text.to_ascii_lowercase().into()))
    }
}

impl fmt::Display for Indicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(a) => write!(f, "{}", from_u128(*a)),
            Self::Network(_, _, net) => write!(f, "{net}"),
            Self::Domain(d) | Self::Url(d) | Self::Hash(_, d) => f.write_str(d),
            Self::Suffix { domain, apex: true } => write!(f, ".{domain}"),
            Self::Suffix {
                domain,
                apex: false,
            } => write!(f, "*.{domain}"),
        }
    }
}

/// IPv4 addresses as IPv4-mapped IPv6, the form flows carry.
pub fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

pub fn from_u128(a: u128) -> IpAddr {
    std::net::Ipv6Addr::from(a).to_canonical()
}

/// Lower case, no trailing dot, labels of letters, digits, `-` and `_`
/// (seen in real names), at least two labels, none empty or over 63.
pub fn normalise_domain(name: &str) -> Option<Box<str>> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 || !name.contains('.') {
        return None;
    }
    let ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    ok.then(|| name.to_ascii_lowercase().into())
}

/// A URL as a key, the same for the IoC and for what an HTTP log shows
/// (`Host` plus request target): no scheme (the log does not say which),
/// host lower case without a default port, no fragment, an empty path as
/// `/`, and percent-escapes of unreserved characters decoded (RFC 3986
/// §6.2.2) with the others in upper case.
pub fn normalise_url(text: &str) -> Option<Box<str>> {
    let text = text.trim();
    let rest = match text.find("://") {
        Some(at) => &text[at + 3..],
        None => text,
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let path_at = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(path_at);
    // Credentials never go into a key or an alert.
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let authority = authority.to_ascii_lowercase();
    let host = authority
        .strip_suffix(":80")
        .or_else(|| authority.strip_suffix(":443"))
        .unwrap_or(&authority);
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    let mut url = String::with_capacity(host.len() + target.len() + 1);
    url.push_str(host);
    if !target.starts_with('/') {
        url.push('/');
    }
    let bytes = target.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && let (Some(h), Some(l)) = (bytes.get(i + 1), bytes.get(i + 2))
            && let (Some(h), Some(l)) = (hex(*h), hex(*l))
        {
            let decoded = h << 4 | l;
            if decoded.is_ascii_alphanumeric() || b"-._~".contains(&decoded) {
                url.push(char::from(decoded));
            } else {
                url.push('%');
                url.push(char::from(bytes[i + 1].to_ascii_uppercase()));
                url.push(char::from(bytes[i + 2].to_ascii_uppercase()));
            }
            i += 3;
            continue;
        }
        // `target` is a str and only ASCII is handled byte-wise.
        let c = target[i..].chars().next().unwrap_or_default();
        url.push(c);
        i += c.len_utf8().max(1);
    }
    Some(url.into())
}

fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

/// A value shortened for an error message: lists are operator input and a
/// line can be anything.
pub fn shown(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= 80 {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(77).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_is_told_from_the_value() {
        let kinds = |t: &str| Indicator::parse(t).map(|i| (i.kind(), i.to_string()));
        assert_eq!(kinds("192.0.2.1"), Ok(("ip", "192.0.2.1".into())));
        assert_eq!(kinds("2001:db8::1"), Ok(("ip", "2001:db8::1".into())));
        assert_eq!(kinds("192.0.2.0/24"), Ok(("cidr", "192.0.2.0/24".into())));
        assert_eq!(kinds("192.0.2.7/24"), Ok(("cidr", "192.0.2.0/24".into())));
        assert_eq!(kinds("192.0.2.7/32"), Ok(("ip", "192.0.2.7".into())));
        assert_eq!(kinds("2001:db8::/32"), Ok(("cidr", "2001:db8::/32".into())));
        assert_eq!(
            kinds("Evil.Example.COM."),
            Ok(("domain", "evil.example.com".into()))
        );
        assert_eq!(
            kinds(".example.com"),
            Ok(("domain-suffix", ".example.com".into()))
        );
        assert_eq!(
            kinds("*.example.com"),
            Ok(("domain-suffix", "*.example.com".into()))
        );
        assert_eq!(
            kinds("HTTP://X4Z9ARB.cn:80/4712/"),
            Ok(("url", "x4z9arb.cn/4712/".into()))
        );
        assert_eq!(
            kinds("D41D8CD98F00B204E9800998ECF8427E"),
            Ok(("hash", "d41d8cd98f00b204e9800998ecf8427e".into()))
        );
        assert!(kinds("not a value").is_err());
        assert!(kinds("localhost").is_err());
        assert!(kinds("10.0.0.0/33").is_err());
        assert!(kinds("").is_err());
    }

    #[test]
    fn urls_written_differently_are_one_key() {
        let n = |u: &str| normalise_url(u).map(String::from);
        let key = Some("example.com/a/b?x=1".to_owned());
        assert_eq!(n("http://example.com/a/b?x=1#frag"), key);
        assert_eq!(n("https://user:pw@EXAMPLE.com:443/a/b?x=1"), key);
        assert_eq!(n("example.com/%61/b?x=1"), key);
        assert_eq!(n("http://example.com"), Some("example.com/".into()));
        assert_eq!(n("http://example.com?q"), Some("example.com/?q".into()));
        assert_eq!(
            n("http://example.com/%2f%zz"),
            Some("example.com/%2F%zz".into())
        );
        assert_eq!(
            n("http://example.com:8080/"),
            Some("example.com:8080/".into())
        );
        assert_eq!(n("http:///path"), None);
    }
}
