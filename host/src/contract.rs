//! Host-side bindings of the detector contract (`wit/detector.wit`).
//!
//! `bindgen!` generates the owned types and the calls for everything but
//! `process`. A flow batch is passed to every plugin, so its lowering goes
//! through [`BatchView`], a borrowed mirror of `flow-batch` that the
//! component model copies straight out of the host's columns: no clone of
//! the batch per plugin.

use wasmtime::component::{ComponentType, Lower};

use crate::flow::TextField as HostTextField;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "detector",
});

pub use self::exports::kansoku::detector::plugin::Guest;
pub use self::kansoku::detector::log::Level;
pub use self::kansoku::detector::types::{
    Address, ConfigError, Description, Entity, Finding, LoadReport, Ruleset, Severity, SkippedRule,
    Subject, TextField,
};

/// Version of the contract this host implements.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Name of the interface every plugin exports, without version.
pub const PLUGIN_INTERFACE: &str = "kansoku:detector/plugin";

/// `flow-batch`, borrowing the host's columns.
#[derive(ComponentType, Lower, Clone, Copy, Debug)]
#[component(record)]
pub struct BatchView<'a> {
    pub rows: u32,
    pub ts: &'a [i64],
    pub duration: &'a [u64],
    #[component(name = "src-addr")]
    pub src_addr: &'a [u8],
    #[component(name = "dst-addr")]
    pub dst_addr: &'a [u8],
    #[component(name = "src-port")]
    pub src_port: &'a [u16],
    #[component(name = "dst-port")]
    pub dst_port: &'a [u16],
    pub proto: &'a [u8],
    pub kind: &'a [u8],
    pub direction: &'a [u8],
    pub institution: &'a [u16],
    #[component(name = "src-bytes")]
    pub src_bytes: &'a [u64],
    #[component(name = "dst-bytes")]
    pub dst_bytes: &'a [u64],
    #[component(name = "src-pkts")]
    pub src_pkts: &'a [u32],
    #[component(name = "dst-pkts")]
    pub dst_pkts: &'a [u32],
    #[component(name = "conn-state")]
    pub conn_state: &'a [u8],
    #[component(name = "src-country")]
    pub src_country: &'a [u16],
    #[component(name = "dst-country")]
    pub dst_country: &'a [u16],
    #[component(name = "dns-qtype")]
    pub dns_qtype: &'a [u16],
    #[component(name = "dns-rcode")]
    pub dns_rcode: &'a [u16],
    #[component(name = "http-status")]
    pub http_status: &'a [u16],
    pub text: &'a [TextColumnView<'a>],
}

/// `text-column`, borrowing the host's arena.
#[derive(ComponentType, Lower, Clone, Copy, Debug)]
#[component(record)]
pub struct TextColumnView<'a> {
    pub field: TextField,
    pub offsets: &'a [u32],
    pub bytes: &'a [u8],
}

impl From<HostTextField> for TextField {
    fn from(field: HostTextField) -> Self {
        match field {
            HostTextField::Service => TextField::Service,
            HostTextField::DnsQuery => TextField::DnsQuery,
            HostTextField::DnsAnswers => TextField::DnsAnswers,
            HostTextField::TlsSni => TextField::TlsSni,
            HostTextField::TlsVersion => TextField::TlsVersion,
            HostTextField::TlsSubject => TextField::TlsSubject,
            HostTextField::TlsIssuer => TextField::TlsIssuer,
            HostTextField::Ja3 => TextField::Ja3,
            HostTextField::Ja3s => TextField::Ja3s,
            HostTextField::HttpHost => TextField::HttpHost,
            HostTextField::HttpUri => TextField::HttpUri,
            HostTextField::HttpUserAgent => TextField::HttpUserAgent,
            HostTextField::HttpMethod => TextField::HttpMethod,
            HostTextField::FileMd5 => TextField::FileMd5,
            HostTextField::FileSha1 => TextField::FileSha1,
            HostTextField::FileSha256 => TextField::FileSha256,
            HostTextField::AlertSignature => TextField::AlertSignature,
            HostTextField::MailFrom => TextField::MailFrom,
            HostTextField::MailTo => TextField::MailTo,
            HostTextField::FileName => TextField::FileName,
            HostTextField::DetectedSubstring => TextField::DetectedSubstring,
        }
    }
}

impl From<TextField> for HostTextField {
    fn from(field: TextField) -> Self {
        // The contract enum and the host enum list the same fields in the
        // same order (checked by a test), so the discriminant maps directly.
        HostTextField::ALL[field as usize]
    }
}

impl Address {
    /// The address as 16 bytes, IPv4 mapped.
    pub fn octets(&self) -> [u8; 16] {
        ((u128::from(self.hi) << 64) | u128::from(self.lo)).to_be_bytes()
    }

    /// The address as an `IpAddr` (IPv4 when mapped).
    pub fn ip(&self) -> std::net::IpAddr {
        std::net::Ipv6Addr::from(self.octets()).to_canonical()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_contract_text_fields_agree() {
        for field in HostTextField::ALL {
            let contract = TextField::from(field);
            assert_eq!(contract as usize, field as usize, "{field}");
            assert_eq!(HostTextField::from(contract), field);
        }
    }

    #[test]
    fn addresses_convert_both_ways() {
        let v4: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        let mapped = match v4 {
            std::net::IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(a) => a.octets(),
        };
        let bits = u128::from_be_bytes(mapped);
        let address = Address {
            hi: (bits >> 64) as u64,
            lo: bits as u64,
        };
        assert_eq!(address.ip(), v4);
        assert_eq!(address.octets(), mapped);
    }
}
