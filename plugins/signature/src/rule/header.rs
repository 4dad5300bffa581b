//! A rule header's address and port lists: `[10.0.0.0/8,!10.1.0.0/16]`,
//! `$HOME_NET`, `![80,443]`, `1024:`, with variables expanded.
//!
//! `$HOME_NET` is not a list of prefixes here: each flow carries its
//! direction as seen from its institution, which says whether each end is
//! in that institution's registered prefixes. `$EXTERNAL_NET` is its
//! negation, as in the default `suricata.yaml`.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// An address or port list: Suricata's semantics, where a list matches
/// when any positive entry matches (or there are none) and no negated one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec<A> {
    Any,
    Atom(A),
    Not(Box<Spec<A>>),
    List(Vec<Spec<A>>),
}

impl<A> Spec<A> {
    pub fn matches(&self, atom: &impl Fn(&A) -> bool) -> bool {
        match self {
            Spec::Any => true,
            Spec::Atom(a) => atom(a),
            Spec::Not(inner) => !inner.matches(atom),
            Spec::List(items) => {
                let mut positives = items.iter().filter(|i| !matches!(i, Spec::Not(_)));
                let any_positive = items.iter().any(|i| !matches!(i, Spec::Not(_)));
                let included = !any_positive || positives.any(|i| i.matches(atom));
                included
                    && items
                        .iter()
                        .filter_map(|i| match i {
                            Spec::Not(inner) => Some(inner),
                            _ => None,
                        })
                        .all(|inner| !inner.matches(atom))
            }
        }
    }

    /// Every atom, negated or not.
    pub fn atoms(&self) -> Vec<&A> {
        match self {
            Spec::Any => Vec::new(),
            Spec::Atom(a) => vec![a],
            Spec::Not(inner) => inner.atoms(),
            Spec::List(items) => items.iter().flat_map(Spec::atoms).collect(),
        }
    }

    /// The atoms a match must hit when the spec is a plain positive list
    /// (the common `[a,b,c]` and single-address cases), for indexing.
    pub fn positive_atoms(&self) -> Option<Vec<&A>> {
        match self {
            Spec::Atom(a) => Some(vec![a]),
            Spec::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.extend(item.positive_atoms()?);
                }
                Some(out)
            }
            Spec::Any | Spec::Not(_) => None,
        }
    }
}

/// An address entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addr {
    /// The flow's own institution (`$HOME_NET`).
    Home,
    /// An inclusive range of IPv6 (IPv4-mapped) addresses.
    Range(u128, u128),
}

/// An inclusive port range.
pub type Ports = (u16, u16);

/// Named address and port groups, as under `vars:` in `suricata.yaml`.
#[derive(Debug, Clone)]
pub struct Vars {
    pub addresses: BTreeMap<String, String>,
    pub ports: BTreeMap<String, String>,
}

impl Default for Vars {
    /// The groups of Suricata's default `suricata.yaml`.
    fn default() -> Self {
        let home = [
            "HTTP_SERVERS",
            "SMTP_SERVERS",
            "SQL_SERVERS",
            "DNS_SERVERS",
            "TELNET_SERVERS",
            "AIM_SERVERS",
            "DC_SERVERS",
            "DNP3_SERVER",
            "DNP3_CLIENT",
            "MODBUS_CLIENT",
            "MODBUS_SERVER",
            "ENIP_CLIENT",
            "ENIP_SERVER",
        ];
        let mut addresses: BTreeMap<String, String> = home
            .iter()
            .map(|name| ((*name).to_owned(), "$HOME_NET".to_owned()))
            .collect();
        addresses.insert("HOME_NET".into(), "$HOME_NET".into());
        addresses.insert("EXTERNAL_NET".into(), "!$HOME_NET".into());
        let ports = [
            ("HTTP_PORTS", "80"),
            ("SHELLCODE_PORTS", "!80"),
            ("ORACLE_PORTS", "1521"),
            ("SSH_PORTS", "22"),
            ("DNP3_PORTS", "20000"),
            ("MODBUS_PORTS", "502"),
            ("FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"),
            ("FTP_PORTS", "21"),
            ("GENEVE_PORTS", "6081"),
            ("VXLAN_PORTS", "4789"),
            ("TEREDO_PORTS", "3544"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        Self { addresses, ports }
    }
}

/// Variables may refer to variables; this deep is a loop.
const MAX_DEPTH: usize = 16;

/// Parses an address list.
pub fn addresses(text: &str, vars: &Vars) -> Result<Spec<Addr>, String> {
    parse(text, 0, &|atom, depth| address_atom(atom, vars, depth))
}

/// Parses a port list.
pub fn ports(text: &str, vars: &Vars) -> Result<Spec<Ports>, String> {
    parse(text, 0, &|atom, depth| port_atom(atom, vars, depth))
}

type AtomParser<'a, A> = dyn Fn(&str, usize) -> Result<Spec<A>, String> + 'a;

fn parse<A>(text: &str, depth: usize, atom: &AtomParser<'_, A>) -> Result<Spec<A>, String> {
    if depth > MAX_DEPTH {
        return Err("variables nest too deep (a loop?)".into());
    }
    let text = text.trim();
    if text.is_empty() {
        return Err("empty address or port".into());
    }
    if text == "any" {
        return Ok(Spec::Any);
    }
    if let Some(rest) = text.strip_prefix('!') {
        return Ok(Spec::Not(Box::new(parse(rest, depth, atom)?)));
    }
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| format!("`{text}`: unbalanced brackets"))?;
        let items = split_top_level(inner)?
            .into_iter()
            .map(|item| parse(item, depth, atom))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Spec::List(items));
    }
    atom(text, depth)
}

/// Splits `a,[b,c],d` on the commas outside brackets.
fn split_top_level(text: &str) -> Result<Vec<&str>, String> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| "unbalanced brackets".to_owned())?
            }
            ',' if depth == 0 => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced brackets".into());
    }
    items.push(&text[start..]);
    Ok(items)
}

fn address_atom(text: &str, vars: &Vars, depth: usize) -> Result<Spec<Addr>, String> {
    if let Some(name) = text.strip_prefix('$') {
        if name == "HOME_NET" && vars.addresses.get(name).is_some_and(|v| v == "$HOME_NET") {
            return Ok(Spec::Atom(Addr::Home));
        }
        let value = vars
            .addresses
            .get(name)
            .ok_or_else(|| format!("undefined address variable ${name}"))?;
        return parse(value, depth + 1, &|atom, depth| {
            address_atom(atom, vars, depth)
        });
    }
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (text, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("`{text}` is not an address"))?;
    let (value, bits, offset) = match ip {
        IpAddr::V4(v4) => (u128::from(v4.to_ipv6_mapped()), 32u32, 96u32),
        IpAddr::V6(v6) => (u128::from(v6), 128, 0),
    };
    let prefix = match prefix {
        Some(p) => p
            .parse::<u32>()
            .ok()
            .filter(|p| *p <= bits)
            .ok_or_else(|| format!("`{text}`: bad prefix length"))?,
        None => bits,
    };
    let host_bits = bits - prefix;
    let mask = if host_bits == 0 {
        0
    } else {
        u128::MAX >> (128 - host_bits)
    };
    let _ = offset;
    Ok(Spec::Atom(Addr::Range(value & !mask, value | mask)))
}

fn port_atom(text: &str, vars: &Vars, depth: usize) -> Result<Spec<Ports>, String> {
    if let Some(name) = text.strip_prefix('$') {
        let value = vars
            .ports
            .get(name)
            .ok_or_else(|| format!("undefined port variable ${name}"))?;
        return parse(value, depth + 1, &|atom, depth| {
            port_atom(atom, vars, depth)
        });
    }
    let port = |s: &str, default: u16| -> Result<u16, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(default);
        }
        s.parse::<u16>()
            .map_err(|_| format!("`{text}` is not a port or port range"))
    };
    let range = match text.split_once(':') {
        Some((low, high)) => (port(low, 0)?, port(high, u16::MAX)?),
        None => {
            let p = port(text, 0)?;
            (p, p)
        }
    };
    if range.0 > range.1 {
        return Err(format!("`{text}`: empty port range"));
    }
    Ok(Spec::Atom(range))
}

/// Whether `ip` (as IPv6, IPv4-mapped) on a side that is or is not in the
/// flow's institution matches.
pub fn address_matches(spec: &Spec<Addr>, ip: u128, home: bool) -> bool {
    spec.matches(&|atom| match atom {
        Addr::Home => home,
        Addr::Range(low, high) => (*low..=*high).contains(&ip),
    })
}

/// Whether `port` matches.
pub fn port_matches(spec: &Spec<Ports>, port: u16) -> bool {
    spec.matches(&|(low, high)| (*low..=*high).contains(&port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> u128 {
        u128::from(s.parse::<std::net::Ipv4Addr>().unwrap().to_ipv6_mapped())
    }

    #[test]
    fn address_lists_with_cidrs_negations_and_home() {
        let vars = Vars::default();
        let spec = addresses("[10.0.0.0/8,!10.1.0.0/16]", &vars).unwrap();
        assert!(address_matches(&spec, v4("10.2.3.4"), false));
        assert!(!address_matches(&spec, v4("10.1.3.4"), false));
        assert!(!address_matches(&spec, v4("192.0.2.1"), false));

        let external = addresses("$EXTERNAL_NET", &vars).unwrap();
        assert!(address_matches(&external, v4("192.0.2.1"), false));
        assert!(!address_matches(&external, v4("192.0.2.1"), true));
        let home = addresses("$HOME_NET", &vars).unwrap();
        assert_eq!(home, Spec::Atom(Addr::Home));
        let dns = addresses("$DNS_SERVERS", &vars).unwrap();
        assert!(address_matches(&dns, 0, true));

        let only_not = addresses("![192.0.2.0/24,2001:db8::/32]", &vars).unwrap();
        assert!(!address_matches(&only_not, v4("192.0.2.9"), false));
        let v6: u128 = "2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().into();
        assert!(!address_matches(&only_not, v6, false));
        assert!(address_matches(&only_not, v4("198.51.100.1"), false));

        assert!(addresses("$NOPE", &vars).is_err());
        assert!(addresses("[1.2.3.4", &vars).is_err());
        assert!(addresses("1.2.3.4/33", &vars).is_err());
        assert!(addresses("example.org", &vars).is_err());
    }

    #[test]
    fn port_lists_ranges_and_variables() {
        let vars = Vars::default();
        let spec = ports("[1024:,!8080,53]", &vars).unwrap();
        assert!(port_matches(&spec, 53));
        assert!(port_matches(&spec, 40000));
        assert!(!port_matches(&spec, 8080));
        assert!(!port_matches(&spec, 80));
        let http = ports("$HTTP_PORTS", &vars).unwrap();
        assert!(port_matches(&http, 80));
        let files = ports("$FILE_DATA_PORTS", &vars).unwrap();
        assert!(port_matches(&files, 143) && port_matches(&files, 80));
        assert!(port_matches(&ports(":1023", &vars).unwrap(), 22));
        assert!(ports("70000", &vars).is_err());
        assert!(ports("9:1", &vars).is_err());
    }

    #[test]
    fn a_variable_loop_is_an_error_not_a_hang() {
        let mut vars = Vars::default();
        vars.ports.insert("A".into(), "$B".into());
        vars.ports.insert("B".into(), "[$A,1]".into());
        assert!(ports("$A", &vars).unwrap_err().contains("too deep"));
    }
}
