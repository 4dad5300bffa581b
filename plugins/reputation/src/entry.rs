//! What an indicator means: its category, confidence, source list and the
//! time it is valid for.

use kansoku_plugin::{Severity, Timestamp};

/// Category of an indicator. The known ones decide severity; anything else
/// a feed says is kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Category {
    C2,
    Malware,
    Phishing,
    Spam,
    /// Netblocks hijacked or run by criminals (Spamhaus DROP).
    Hijacked,
    Compromised,
    Tor,
    Proxy,
    Scanner,
    Honeypot,
    Darknet,
    /// A sinkhole: whoever contacts it runs the malware it caught.
    Sinkhole,
    Suspicious,
    Other(Box<str>),
}

impl Category {
    pub fn parse(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "c2" | "c&c" | "cnc" | "botnet_cc" | "command-and-control" => Self::C2,
            "malware" | "malicious-activity" | "malware_download" | "payload_delivery" => {
                Self::Malware
            }
            "phishing" => Self::Phishing,
            "spam" => Self::Spam,
            "hijacked" | "drop" => Self::Hijacked,
            "compromised" => Self::Compromised,
            "tor" => Self::Tor,
            "proxy" | "anonymization" | "vpn" => Self::Proxy,
            "scanner" | "scanning" => Self::Scanner,
            "honeypot" => Self::Honeypot,
            "darknet" => Self::Darknet,
            "sinkhole" => Self::Sinkhole,
            "suspicious" | "anomalous-activity" | "unknown" => Self::Suspicious,
            other => Self::Other(other.into()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::C2 => "c2",
            Self::Malware => "malware",
            Self::Phishing => "phishing",
            Self::Spam => "spam",
            Self::Hijacked => "hijacked",
            Self::Compromised => "compromised",
            Self::Tor => "tor",
            Self::Proxy => "proxy",
            Self::Scanner => "scanner",
            Self::Honeypot => "honeypot",
            Self::Darknet => "darknet",
            Self::Sinkhole => "sinkhole",
            Self::Suspicious => "suspicious",
            Self::Other(name) => name,
        }
    }

    /// Background noise of the Internet: seen, recorded, never urgent.
    pub fn is_noise(&self) -> bool {
        matches!(self, Self::Scanner | Self::Honeypot | Self::Darknet)
    }

    pub fn severity(&self) -> Severity {
        match self {
            Self::Sinkhole | Self::C2 | Self::Malware => Severity::High,
            Self::Phishing | Self::Hijacked | Self::Compromised => Severity::Medium,
            Self::Scanner | Self::Honeypot | Self::Darknet => Severity::Info,
            Self::Spam | Self::Tor | Self::Proxy | Self::Suspicious | Self::Other(_) => {
                Severity::Low
            }
        }
    }
}

/// One indicator's meaning. Indicators with the same value in several
/// lists are chained through `next`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Index of its list.
    pub list: u16,
    /// Index into the detector's category table.
    pub category: u16,
    pub confidence: u8,
    /// Valid from `from` to `until` (inclusive), data time in µs.
    pub from: Timestamp,
    pub until: Timestamp,
    /// A label from the feed (malware family, SBL id, indicator name), an
    /// index into the detector's label table.
    pub label: Option<u32>,
    /// Index of the other indicators the same flow must also show (a STIX
    /// pattern with `AND`), or [`END`].
    pub and: u32,
    /// A `*.domain` entry: the names under the domain, not the domain.
    pub below_only: bool,
    pub next: u32,
}

/// No further entry in a chain.
pub const END: u32 = u32::MAX;

impl Entry {
    pub fn valid_at(&self, ts: Timestamp) -> bool {
        self.from <= ts && ts <= self.until
    }
}

/// Severity one step lower, for an indicator that only knocked on the door.
pub fn lower(severity: Severity) -> Severity {
    match severity {
        Severity::Critical => Severity::High,
        Severity::High => Severity::Medium,
        Severity::Medium => Severity::Low,
        Severity::Low | Severity::Info => Severity::Info,
    }
}
