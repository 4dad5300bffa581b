//! Zeek's TSV logs: `#` header lines, then one record per line.
//!
//! The header sets the separator (`#separator \x09`, any single byte), the
//! set separator, the spellings of empty and unset fields, the log (`#path`)
//! and the columns (`#fields`). Columns are matched by name once per header,
//! so their order does not matter and unknown columns cost nothing. A data
//! line borrows its values; only a value with a `\xHH` escape is copied.
//! Several logs concatenated into one stream are fine: each `#separator`
//! starts a new header.

use std::borrow::Cow;

use memchr::memchr;

use super::{Builder, Field, ListMode, LogHint, LogType, Markers, Value, field};
use crate::ingest::error::{LineError, LineErrorKind};
use crate::ingest::{Parsed, SkipReason};

/// Parses one Zeek TSV stream.
#[derive(Debug, Clone)]
pub(crate) struct TsvParser {
    /// From the file name, for logs without `#path`.
    hint: LogHint,
    separator: u8,
    set_separator: String,
    empty_field: String,
    unset_field: String,
    path: Option<LogHint>,
    layout: Option<Layout>,
    /// End offsets of the fields of the current line; reused across lines.
    ends: Vec<usize>,
}

/// The columns of the current log, resolved from `#fields`.
#[derive(Debug, Clone)]
struct Layout {
    /// `None` when the log is not one kansoku maps.
    log: Option<LogType>,
    columns: usize,
    /// The columns kansoku uses, in column order.
    used: Vec<(usize, Field)>,
}

impl TsvParser {
    pub(crate) fn new(hint: LogHint) -> Self {
        Self {
            hint,
            separator: b'\t',
            set_separator: ",".into(),
            empty_field: "(empty)".into(),
            unset_field: "-".into(),
            path: None,
            layout: None,
            ends: Vec::new(),
        }
    }

    /// Whether `line` is a `#` header line, the only kind that changes the
    /// parser's state.
    pub(crate) fn is_header(line: &[u8]) -> bool {
        line.iter().find(|&&c| c != b' ' && c != b'\t') == Some(&b'#')
    }

    #[inline]
    pub(crate) fn parse<'a>(&mut self, line: &'a [u8]) -> Result<Parsed<'a>, LineError> {
        // Some logs in the wild carry whitespace before the first `#`.
        let start = line
            .iter()
            .position(|&c| c != b' ' && c != b'\t')
            .unwrap_or(line.len());
        match line.get(start..) {
            Some(header @ [b'#', ..]) => self.header(header),
            _ => self.data(line),
        }
    }

    fn header<'a>(&mut self, line: &[u8]) -> Result<Parsed<'a>, LineError> {
        if let Some(value) = line.strip_prefix(b"#separator ") {
            let separator = match unescape_bytes(value).as_slice() {
                [byte] => *byte,
                _ => {
                    return Err(LineError::bad_value(
                        "#separator",
                        "not a single-byte separator",
                    ));
                }
            };
            // A new header: the defaults apply until it says otherwise.
            *self = Self::new(self.hint);
            self.separator = separator;
            return Ok(Parsed::Skip(SkipReason::Header));
        }
        let mut parts = line.split(|&c| c == self.separator);
        let name = parts.next().unwrap_or_default();
        let value = line.get(name.len() + 1..).unwrap_or_default();
        let unescaped = || String::from_utf8_lossy(&unescape_bytes(value)).into_owned();
        match name {
            b"#set_separator" => self.set_separator = unescaped(),
            b"#empty_field" => self.empty_field = unescaped(),
            b"#unset_field" => self.unset_field = unescaped(),
            b"#path" => self.path = Some(LogHint::from_path(utf8(value, "#path")?)),
            b"#fields" => {
                let names = parts
                    .map(|name| utf8(name, "#fields"))
                    .collect::<Result<Vec<_>, _>>()?;
                self.layout = Some(self.layout(&names));
            }
            b"#types" | b"#open" | b"#close" => {}
            _ => return Ok(Parsed::Skip(SkipReason::Comment)),
        }
        Ok(Parsed::Skip(SkipReason::Header))
    }

    fn layout(&self, names: &[&str]) -> Layout {
        let log = match self.path.unwrap_or(self.hint) {
            LogHint::Mapped(log) => Some(log),
            LogHint::Ignored => None,
            LogHint::Unknown => {
                let mut markers = Markers::default();
                names.iter().for_each(|name| markers.see(name));
                markers.best()
            }
        };
        let used = names
            .iter()
            .enumerate()
            .filter_map(|(i, name)| Some((i, field(log?, name)?)))
            .collect();
        Layout {
            log,
            columns: names.len(),
            used,
        }
    }

    #[inline]
    fn data<'a>(&mut self, line: &'a [u8]) -> Result<Parsed<'a>, LineError> {
        let Some(layout) = &self.layout else {
            return Err(LineError::new(
                LineErrorKind::NoHeader,
                None,
                "data line before the #fields header",
            ));
        };
        let Some(log) = layout.log else {
            return Ok(Parsed::Skip(SkipReason::IgnoredLogType));
        };
        self.ends.clear();
        find_all(line, self.separator, &mut self.ends);
        self.ends.push(line.len());
        if self.ends.len() != layout.columns {
            return Err(LineError::wrong_field_count(
                layout.columns,
                self.ends.len(),
            ));
        }
        // One check of the whole line is much cheaper than one per field.
        // Only when it fails are the used fields checked one by one, so that
        // bad bytes in a column kansoku ignores do not reject the line.
        let whole = std::str::from_utf8(line).ok();
        let mut builder = Builder::new(log);
        for &(column, field) in &layout.used {
            let start = match column.checked_sub(1) {
                Some(previous) => self.ends.get(previous).map_or(0, |end| end + 1),
                None => 0,
            };
            let end = self.ends.get(column).copied().unwrap_or(line.len());
            let raw = line.get(start..end).unwrap_or_default();
            if raw == self.unset_field.as_bytes() {
                continue;
            }
            // Slicing at an ASCII separator keeps UTF-8 boundaries.
            let text = match whole.and_then(|w| w.get(start..end)) {
                Some(text) => text,
                None => utf8(raw, field.name)?,
            };
            let value = if raw == self.empty_field.as_bytes() {
                if !field.slot.is_text() {
                    continue;
                }
                Cow::Borrowed("")
            } else {
                match field.slot.list_mode() {
                    None if field.slot.is_text() => unescape(text),
                    None => Cow::Borrowed(text),
                    Some(ListMode::First) => {
                        let first = text.split(self.set_separator.as_str()).next();
                        unescape(first.unwrap_or_default())
                    }
                    Some(ListMode::Join) => self.join(text),
                }
            };
            builder.set(field, Value::Str(value))?;
        }
        builder.finish().map(Parsed::Record)
    }

    /// A set joined with `,`, borrowed when Zeek's set separator is `,`.
    fn join<'a>(&self, set: &'a str) -> Cow<'a, str> {
        if self.set_separator == "," {
            return unescape(set);
        }
        let mut joined = String::with_capacity(set.len());
        for (i, element) in set.split(self.set_separator.as_str()).enumerate() {
            if i > 0 {
                joined.push(',');
            }
            joined.push_str(&unescape(element));
        }
        Cow::Owned(joined)
    }
}

/// Pushes the offset of every `separator` byte in `line`. Zeek fields are
/// short, so this tests eight bytes at a time rather than restarting a
/// `memchr` search at every field.
fn find_all(line: &[u8], separator: u8, out: &mut Vec<usize>) {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let pattern = u64::from_le_bytes([separator; 8]);
    let mut words = line.chunks_exact(8);
    let mut base = 0;
    for word in &mut words {
        let Ok(word) = <[u8; 8]>::try_from(word) else {
            break;
        };
        let t = u64::from_le_bytes(word) ^ pattern;
        // The high bit of each byte of t that is zero, exactly: the
        // additions cannot carry from one byte into the next.
        let mut hits = !(((t & LOW7) + LOW7) | t | LOW7);
        while hits != 0 {
            out.push(base + (hits.trailing_zeros() / 8) as usize);
            hits &= hits - 1;
        }
        base += 8;
    }
    let rest = words.remainder();
    out.extend(
        (0..rest.len())
            .filter(|&i| rest.get(i) == Some(&separator))
            .map(|i| base + i),
    );
}

/// Decodes Zeek's `\xHH` escapes. If the decoded bytes are not UTF-8 (Zeek
/// escapes raw non-UTF-8 bytes this way) the escaped text is kept as it is,
/// which is also how Zeek's JSON writer spells such bytes.
fn unescape(s: &str) -> Cow<'_, str> {
    if memchr(b'\\', s.as_bytes()).is_none() {
        return Cow::Borrowed(s);
    }
    match String::from_utf8(unescape_bytes(s.as_bytes())) {
        Ok(decoded) => Cow::Owned(decoded),
        Err(_) => Cow::Borrowed(s),
    }
}

fn unescape_bytes(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rest.len());
    while let Some((&c, tail)) = rest.split_first() {
        if c == b'\\'
            && let [b'x', high, low, more @ ..] = tail
            && let (Some(high), Some(low)) = (hex(*high), hex(*low))
        {
            out.push(high << 4 | low);
            rest = more;
            continue;
        }
        out.push(c);
        rest = tail;
    }
    out
}

fn utf8<'a>(bytes: &'a [u8], field: &'static str) -> Result<&'a str, LineError> {
    std::str::from_utf8(bytes).map_err(|_| LineError::invalid_utf8(Some(field)))
}

fn hex(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{ConnState, Kind, TextField};
    use crate::ingest::Format;
    use crate::ingest::fixtures::{Summary, parse_fixture, parse_text};

    const CONN_HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n\
        #unset_field\t-\n#path\tconn\n#open\t2023-01-05-18-51-06\n\
        #fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\t\
        orig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\t\
        orig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n\
        #types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\t\
        string\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n";

    const CONN_LINE: &str = "1672843056.913119\tCXHB1X22027MRWU6D\t10.136.0.18\t55548\t\
        10.136.0.16\t3128\ttcp\thttp,ssl\t0.084044\t1030\t20275\tSF\tT\tT\t0\tShADadFf\t18\t\
        1974\t14\t21011\t-";

    #[test]
    fn a_conn_line_maps_every_field() {
        let summary = parse_text(
            Format::ZeekTsv,
            "conn.log",
            &format!("{CONN_HEADER}{CONN_LINE}\n"),
        );
        assert_eq!(summary.errors, vec![]);
        let [r] = summary.records.as_slice() else {
            panic!("one record expected: {summary:?}");
        };
        assert_eq!(r.ts, 1_672_843_056_913_119);
        assert_eq!(r.duration, 84_044);
        assert_eq!(r.src.to_string(), "10.136.0.18");
        assert_eq!((r.src_port, r.dst_port, r.proto), (55548, 3128, 6));
        assert_eq!(
            (r.src_bytes, r.dst_bytes, r.src_pkts, r.dst_pkts),
            (1030, 20275, 18, 14)
        );
        assert_eq!(r.conn_state, ConnState::SF);
        assert_eq!(r.kind, Kind::Connection);
        assert_eq!(r.text.get(TextField::Service), Some("http,ssl"));
        assert_eq!(r.flow_id, super::super::uid_hash("CXHB1X22027MRWU6D"));
        assert_eq!(summary.skips("header"), 8);
    }

    #[test]
    fn columns_are_matched_by_name_and_custom_separators_are_honoured() {
        let text = "#separator \\x7c\n#set_separator|;\n#empty_field|EMPTY\n#unset_field|NONE\n\
            #path|dns\n#fields|extra|query|answers|id.resp_h|id.orig_h|ts|rcode|qtype\n\
            x|www.example.org|a.example;192.0.2.1|192.0.2.53|10.0.0.1|1.5|NONE|1\n\
            x|caf\\xc3\\xa9\\x7c.example|EMPTY|192.0.2.53|10.0.0.1|2|3|28\n";
        let summary = parse_text(Format::ZeekTsv, "-", text);
        assert_eq!(summary.errors, vec![]);
        let [a, b] = summary.records.as_slice() else {
            panic!("two records expected: {summary:?}");
        };
        assert_eq!(a.text.get(TextField::DnsQuery), Some("www.example.org"));
        assert_eq!(
            a.text.get(TextField::DnsAnswers),
            Some("a.example,192.0.2.1")
        );
        assert_eq!((a.dns_qtype, a.dns_rcode, a.ts), (1, None, 1_500_000));
        assert_eq!(b.text.get(TextField::DnsQuery), Some("café|.example"));
        assert_eq!(b.text.get(TextField::DnsAnswers), None);
        assert_eq!((b.dns_qtype, b.dns_rcode), (28, Some(3)));
    }

    #[test]
    fn separators_are_found_eight_bytes_at_a_time_like_a_plain_scan() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..200 {
            let line: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    [b'\t', b'a', 0x09 ^ 0x80, 0x00, 0xff, 0x08][(seed % 6) as usize]
                })
                .collect();
            let mut found = Vec::new();
            find_all(&line, b'\t', &mut found);
            let expected: Vec<usize> = (0..len).filter(|&i| line[i] == b'\t').collect();
            assert_eq!(found, expected, "{line:?}");
        }
    }

    #[test]
    fn escapes_that_do_not_decode_to_utf8_are_kept_as_written() {
        assert_eq!(unescape("a\\xffb"), "a\\xffb");
        assert_eq!(unescape("a\\x41\\x5cz"), "aA\\z");
        assert_eq!(unescape("trailing\\x4"), "trailing\\x4");
        assert!(matches!(unescape("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn malformed_lines_are_counted_with_their_line_numbers_and_the_rest_parses() {
        let good = CONN_LINE;
        let truncated = &CONN_LINE[..60];
        let extra = format!("{CONN_LINE}\textra");
        let bad_addr = CONN_LINE.replace("10.136.0.18", "10.136.0.999");
        let bad_port = CONN_LINE.replace("55548", "65536");
        let bad_bytes = CONN_LINE.replace("\t1030\t", "\t-5\t");
        let bad_ts = CONN_LINE.replace("1672843056.913119", "16728430x6.913119");
        let unset_ts = CONN_LINE.replace("1672843056.913119", "-");
        let text = format!(
            "{good}\n{CONN_HEADER}{good}\n{truncated}\n{extra}\n{bad_addr}\n{bad_port}\n\
             {bad_bytes}\n{bad_ts}\n{unset_ts}\n{good}\n"
        );
        let summary = parse_text(Format::ZeekTsv, "conn.log", &text);
        assert_eq!(summary.records.len(), 2);
        assert_eq!(
            summary.error_lines(),
            vec![
                (1, "no_header"),
                (11, "wrong_field_count"),
                (12, "wrong_field_count"),
                (13, "bad_address"),
                (14, "bad_number"),
                (15, "bad_number"),
                (16, "bad_timestamp"),
                (17, "missing_field"),
            ]
        );
        assert_eq!(
            summary.errors[0].1.to_string(),
            "data line before the #fields header"
        );
        assert_eq!(
            summary.errors[1].1.to_string(),
            "expected 21 fields, found 5"
        );
        assert_eq!(
            summary.errors[3].1.to_string(),
            "field id.orig_h: not an IP address"
        );
        assert_eq!(
            summary.errors[4].1.to_string(),
            "field id.orig_p: not a port number"
        );
        assert_eq!(
            summary.errors[5].1.to_string(),
            "field orig_bytes: not a count"
        );
        assert_eq!(
            summary.errors[7].1.to_string(),
            "field ts: missing or unset"
        );
    }

    #[test]
    fn invalid_utf8_in_a_used_field_is_an_error_but_not_in_an_unused_one() {
        let mut text = CONN_HEADER.as_bytes().to_vec();
        text.extend_from_slice(&CONN_LINE.replace("http,ssl", "ht\u{1}tp").into_bytes());
        text.push(b'\n');
        let bad_service = CONN_LINE.replace("http,ssl", "ht\u{fffd}tp").into_bytes();
        text.extend(
            bad_service
                .iter()
                .map(|&c| if c == 0xef { 0xff } else { c }),
        );
        text.push(b'\n');
        let bad_history = CONN_LINE.replace("ShADadFf", "Sh\u{fffd}").into_bytes();
        text.extend(
            bad_history
                .iter()
                .map(|&c| if c == 0xef { 0xff } else { c }),
        );
        text.push(b'\n');
        let summary = Summary::parse(Format::ZeekTsv, "conn.log", &text, 7);
        assert_eq!(summary.records.len(), 2);
        assert_eq!(summary.error_lines(), vec![(10, "invalid_utf8")]);
        assert_eq!(
            summary.errors[0].1.to_string(),
            "field service: invalid UTF-8"
        );
    }

    #[test]
    fn other_logs_are_skipped_and_counted() {
        let summary = parse_fixture(Format::Auto, "zeek/slips-test10/weird.log");
        assert_eq!(summary.errors, vec![]);
        assert_eq!(summary.records.len(), 0);
        assert_eq!(summary.skips("ignored_log_type"), 2);
    }

    #[test]
    fn rita_proxy_logs_parse_without_errors() {
        for (file, kind, count) in [
            ("zeek/rita-proxy/conn.log", Kind::Connection, 463),
            ("zeek/rita-proxy/dns.log", Kind::Dns, 300),
            ("zeek/rita-proxy/http.log", Kind::Http, 200),
            ("zeek/rita-proxy/ssl.log", Kind::Tls, 200),
            ("zeek/rita-proxy/files.log", Kind::File, 194),
        ] {
            let summary = parse_fixture(Format::Auto, file);
            assert_eq!(summary.errors, vec![], "{file}");
            assert_eq!(summary.count(kind), count, "{file}");
            assert_eq!(summary.records.len(), count, "{file}");
        }
    }

    #[test]
    fn slips_test10_logs_parse_without_errors() {
        for (file, kind, count) in [
            ("zeek/slips-test10/conn.log", Kind::Connection, 141),
            ("zeek/slips-test10/dns.log", Kind::Dns, 93),
            ("zeek/slips-test10/ssl.log", Kind::Tls, 13),
            ("zeek/slips-test10/files.log", Kind::File, 6),
        ] {
            let summary = parse_fixture(Format::Auto, file);
            assert_eq!(summary.errors, vec![], "{file}");
            assert_eq!(summary.count(kind), count, "{file}");
            assert_eq!(summary.records.len(), count, "{file}");
        }
    }

    #[test]
    fn real_fields_land_where_expected() {
        let ssl = parse_fixture(Format::ZeekTsv, "zeek/rita-proxy/ssl.log");
        let first = &ssl.records[0];
        assert_eq!(first.text.get(TextField::TlsSni), Some("www.google.com"));
        assert_eq!(first.text.get(TextField::TlsVersion), Some("TLSv13"));
        assert_eq!(
            first.text.get(TextField::Ja3),
            Some("456523fc94726331a4d5a2e1d40b2cd7")
        );
        assert_eq!(
            first.text.get(TextField::Ja3s),
            Some("907bf3ecef1c987c889946b737b43de8")
        );

        let http = parse_fixture(Format::ZeekTsv, "zeek/rita-proxy/http.log");
        let first = &http.records[0];
        assert_eq!(first.text.get(TextField::HttpMethod), Some("CONNECT"));
        assert_eq!(first.text.get(TextField::HttpHost), Some("www.google.com"));
        assert_eq!(
            first.text.get(TextField::HttpUri),
            Some("www.google.com:443")
        );
        assert_eq!(
            first.text.get(TextField::HttpUserAgent),
            Some("Modzilla/-2.0 (Atari 7800)")
        );
        assert_eq!((first.http_status, first.proto), (200, 6));

        let files = parse_fixture(Format::ZeekTsv, "zeek/slips-test10/files.log");
        let first = &files.records[0];
        assert_eq!(first.src.to_string(), "147.32.83.156");
        assert_eq!(first.dst.to_string(), "3.232.121.231");
        assert_eq!(
            first.text.get(TextField::FileMd5),
            Some("aeeb74a57c1f9df4cfc4536d26a38b8c")
        );
        assert_eq!(first.flow_id, super::super::uid_hash("CYetmM3b29tLNkUk42"));

        let conn = parse_fixture(Format::ZeekTsv, "zeek/slips-test10/conn.log");
        assert_eq!(
            conn.records[0].src.to_string(),
            "2001:718:2:1663:dc58:6d9:ef13:51a5"
        );
    }
}
