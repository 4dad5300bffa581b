//! The sticky buffers flow metadata carries, and the names rules give them.

use kansoku_plugin::TextField;

/// A buffer a rule can inspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Buffer {
    DnsQuery,
    TlsSni,
    TlsSubject,
    TlsIssuer,
    HttpHost,
    HttpUri,
    HttpUserAgent,
    HttpMethod,
    /// The response status, as text (from the log's numeric status).
    HttpStatCode,
    Ja3Hash,
    Ja3sHash,
}

impl Buffer {
    pub const ALL: [Buffer; 11] = [
        Buffer::DnsQuery,
        Buffer::TlsSni,
        Buffer::TlsSubject,
        Buffer::TlsIssuer,
        Buffer::HttpHost,
        Buffer::HttpUri,
        Buffer::HttpUserAgent,
        Buffer::HttpMethod,
        Buffer::HttpStatCode,
        Buffer::Ja3Hash,
        Buffer::Ja3sHash,
    ];

    /// The text field that carries it; the status code is a number column.
    pub const fn field(self) -> Option<TextField> {
        Some(match self {
            Buffer::DnsQuery => TextField::DnsQuery,
            Buffer::TlsSni => TextField::TlsSni,
            Buffer::TlsSubject => TextField::TlsSubject,
            Buffer::TlsIssuer => TextField::TlsIssuer,
            Buffer::HttpHost => TextField::HttpHost,
            Buffer::HttpUri => TextField::HttpUri,
            Buffer::HttpUserAgent => TextField::HttpUserAgent,
            Buffer::HttpMethod => TextField::HttpMethod,
            Buffer::Ja3Hash => TextField::Ja3,
            Buffer::Ja3sHash => TextField::Ja3s,
            Buffer::HttpStatCode => return None,
        })
    }

    /// The length of every value of the buffer, when there is one: JA3 and
    /// JA3S are MD5 digests in hex, so a content that long is the whole
    /// value and is looked up as such (a log carrying something else in
    /// these fields does not hold a JA3 hash).
    pub const fn fixed_len(self) -> Option<usize> {
        match self {
            Buffer::Ja3Hash | Buffer::Ja3sHash => Some(32),
            _ => None,
        }
    }

    /// Suricata's name for it, used in findings.
    pub fn name(self) -> &'static str {
        match self {
            Buffer::DnsQuery => "dns.query",
            Buffer::TlsSni => "tls.sni",
            Buffer::TlsSubject => "tls.cert_subject",
            Buffer::TlsIssuer => "tls.cert_issuer",
            Buffer::HttpHost => "http.host",
            Buffer::HttpUri => "http.uri",
            Buffer::HttpUserAgent => "http.user_agent",
            Buffer::HttpMethod => "http.method",
            Buffer::HttpStatCode => "http.stat_code",
            Buffer::Ja3Hash => "ja3.hash",
            Buffer::Ja3sHash => "ja3s.hash",
        }
    }

    /// The application protocol of the records that carry it.
    pub fn protocol(self) -> &'static str {
        match self {
            Buffer::DnsQuery => "dns",
            Buffer::TlsSni
            | Buffer::TlsSubject
            | Buffer::TlsIssuer
            | Buffer::Ja3Hash
            | Buffer::Ja3sHash => "tls",
            Buffer::HttpHost
            | Buffer::HttpUri
            | Buffer::HttpUserAgent
            | Buffer::HttpMethod
            | Buffer::HttpStatCode => "http",
        }
    }

    /// Whether the client sends it; the others come from the server.
    pub fn to_server(self) -> bool {
        !matches!(
            self,
            Buffer::Ja3sHash | Buffer::TlsSubject | Buffer::TlsIssuer | Buffer::HttpStatCode
        )
    }

    /// A sticky-buffer keyword, dotted or legacy.
    pub fn sticky(keyword: &str) -> Option<Buffer> {
        Some(match keyword {
            "dns.query" | "dns_query" => Buffer::DnsQuery,
            "tls.sni" | "tls_sni" => Buffer::TlsSni,
            "tls.cert_subject" | "tls_cert_subject" => Buffer::TlsSubject,
            "tls.cert_issuer" | "tls_cert_issuer" => Buffer::TlsIssuer,
            "http.host" => Buffer::HttpHost,
            "http.uri" => Buffer::HttpUri,
            "http.user_agent" => Buffer::HttpUserAgent,
            "http.method" => Buffer::HttpMethod,
            "http.stat_code" => Buffer::HttpStatCode,
            "ja3.hash" | "ja3_hash" => Buffer::Ja3Hash,
            "ja3s.hash" | "ja3s_hash" => Buffer::Ja3sHash,
            _ => return None,
        })
    }

    /// A legacy content modifier (`content:"x"; http_uri;`).
    pub fn modifier(keyword: &str) -> Option<Buffer> {
        Some(match keyword {
            "http_uri" => Buffer::HttpUri,
            "http_host" => Buffer::HttpHost,
            "http_user_agent" => Buffer::HttpUserAgent,
            "http_method" => Buffer::HttpMethod,
            "http_stat_code" => Buffer::HttpStatCode,
            _ => return None,
        })
    }

    /// A `pcre` flag naming a buffer.
    pub fn pcre_flag(flag: char) -> Option<Buffer> {
        Some(match flag {
            'U' => Buffer::HttpUri,
            'W' => Buffer::HttpHost,
            'V' => Buffer::HttpUserAgent,
            'M' => Buffer::HttpMethod,
            'S' => Buffer::HttpStatCode,
            _ => return None,
        })
    }
}

/// Buffers and modifiers that inspect payload: a rule using one is skipped.
pub fn is_payload(keyword: &str) -> bool {
    matches!(
        keyword,
        "pkt_data"
            | "file_data"
            | "file.data"
            | "base64_data"
            | "http.request_body"
            | "http_client_body"
            | "http.response_body"
            | "http_server_body"
            | "rawbytes"
            | "byte_test"
            | "byte_jump"
            | "byte_extract"
            | "byte_math"
            | "dsize"
            | "asn1"
            | "entropy"
            | "luajit"
            | "lua"
    )
}

/// Pcre flags that name a buffer kansoku does not have (headers, bodies,
/// cookies, raw forms).
pub fn is_unavailable_pcre_flag(flag: char) -> bool {
    matches!(flag, 'H' | 'D' | 'C' | 'P' | 'Q' | 'Y' | 'I' | 'B' | 'O')
}
