//! CSV flow exports with a header row.
//!
//! Columns are found by header name (trimmed, case and spaces ignored), so
//! their order does not matter and other columns are ignored:
//!
//! | header | record field | notes |
//! |---|---|---|
//! | `Date` | `ts` | RFC 3339, `YYYY-MM-DD HH:MM:SS[.ffffff]` (UTC), `YYYY/MM/DD HH:MM:SS` (UTC) or epoch seconds; required |
//! | `Src IP`, `Dst IP` | `src`, `dst` | required |
//! | `Src Port`, `Dst Port` | ports | empty or `-` is 0 |
//! | `Protocol` | `proto` | a name (`TCP`) or a number; unknown names are 0 |
//! | `Sent(byte)`, `Rec.(byte)` | `src_bytes`, `dst_bytes` | empty or `-` is 0 |
//! | `Src Country`, `Dst Country` | countries | two letters, upper-cased; empty or `-` is none |
//!
//! Fields may be quoted (`"…"`, with `""` for a quote). A quoted field cannot
//! span lines: input is parsed line by line. A repeated header row (files
//! concatenated) is skipped and re-read.

use memchr::memchr;

use super::error::{LineError, LineErrorKind};
use super::time;
use super::zeek::parse_u64;
use super::{Parsed, SkipReason};
use crate::flow::{FlowRecord, Kind, proto_number};

/// Parses one CSV stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct CsvParser {
    columns: Option<Columns>,
    /// Byte ranges of the fields of the current line; reused across lines.
    spans: Vec<(usize, usize)>,
}

#[derive(Debug, Clone, Default)]
struct Columns {
    count: usize,
    date: usize,
    src_ip: usize,
    dst_ip: usize,
    src_port: Option<usize>,
    dst_port: Option<usize>,
    protocol: Option<usize>,
    sent: Option<usize>,
    received: Option<usize>,
    src_country: Option<usize>,
    dst_country: Option<usize>,
}

impl CsvParser {
    /// Whether `line` may change the parser's state: every line until the
    /// header, then any line that could be another header (it names both
    /// address columns, so it says `ip` at least twice, in any case). A data
    /// line taken for one costs nothing but an earlier cut.
    pub(crate) fn may_change_state(&self, line: &[u8]) -> bool {
        self.columns.is_none()
            || line
                .windows(2)
                .filter(|w| w.eq_ignore_ascii_case(b"ip"))
                .nth(1)
                .is_some()
    }

    pub(crate) fn parse<'a>(&mut self, line: &'a [u8]) -> Result<Parsed<'a>, LineError> {
        let line = std::str::from_utf8(line).map_err(|_| LineError::invalid_utf8(None))?;
        split(line, &mut self.spans)?;
        let field = |i: usize| -> &str {
            self.spans
                .get(i)
                .and_then(|&(start, end)| line.get(start..end))
                .unwrap_or_default()
                .trim()
        };
        if is_header((0..self.spans.len()).map(field)) {
            self.columns = Some(Columns::from_header((0..self.spans.len()).map(field))?);
            return Ok(Parsed::Skip(SkipReason::Header));
        }
        let Some(columns) = &self.columns else {
            return Err(LineError::new(
                LineErrorKind::NoHeader,
                None,
                "data line before the CSV header",
            ));
        };
        if self.spans.len() != columns.count {
            return Err(LineError::wrong_field_count(
                columns.count,
                self.spans.len(),
            ));
        }
        let optional = |column: Option<usize>| column.map_or("", field);

        let date = required("Date", field(columns.date))?;
        let ts = time::parse_timestamp(date).ok_or_else(|| LineError::bad_timestamp("Date"))?;
        let src = address("Src IP", field(columns.src_ip))?;
        let dst = address("Dst IP", field(columns.dst_ip))?;
        let mut r = FlowRecord::new(ts, src, dst);
        r.kind = Kind::Connection;
        r.src_port = port("Src Port", optional(columns.src_port))?;
        r.dst_port = port("Dst Port", optional(columns.dst_port))?;
        r.proto = proto_number(optional(columns.protocol)).unwrap_or(0);
        r.src_bytes = count("Sent(byte)", optional(columns.sent))?;
        r.dst_bytes = count("Rec.(byte)", optional(columns.received))?;
        r.src_country = country("Src Country", optional(columns.src_country))?;
        r.dst_country = country("Dst Country", optional(columns.dst_country))?;
        Ok(Parsed::Record(r))
    }
}

/// A header name without case, spaces or tabs.
fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A header row names both addresses.
fn is_header<'a>(fields: impl Iterator<Item = &'a str>) -> bool {
    let (mut src, mut dst) = (false, false);
    for name in fields {
        src |= loose_eq(name, "srcip");
        dst |= loose_eq(name, "dstip");
    }
    src && dst
}

/// `name` equals `want` ignoring ASCII case and whitespace, without
/// allocating: this runs on every field of every line.
fn loose_eq(name: &str, want: &str) -> bool {
    let mut name = name.bytes().filter(|c| !c.is_ascii_whitespace());
    let mut want = want.bytes();
    loop {
        match (name.next(), want.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(&b) => {}
            _ => return false,
        }
    }
}

impl Columns {
    fn from_header<'a>(names: impl Iterator<Item = &'a str>) -> Result<Self, LineError> {
        let mut columns = Columns::default();
        let (mut date, mut src_ip, mut dst_ip) = (None, None, None);
        for (i, name) in names.enumerate() {
            columns.count += 1;
            let slot = match normalise(name).as_str() {
                "date" => &mut date,
                "srcip" => &mut src_ip,
                "dstip" => &mut dst_ip,
                "srcport" => &mut columns.src_port,
                "dstport" => &mut columns.dst_port,
                "protocol" => &mut columns.protocol,
                "sent(byte)" => &mut columns.sent,
                "rec.(byte)" => &mut columns.received,
                "srccountry" => &mut columns.src_country,
                "dstcountry" => &mut columns.dst_country,
                _ => continue,
            };
            slot.get_or_insert(i);
        }
        columns.date = date.ok_or_else(|| LineError::missing("Date"))?;
        columns.src_ip = src_ip.ok_or_else(|| LineError::missing("Src IP"))?;
        columns.dst_ip = dst_ip.ok_or_else(|| LineError::missing("Dst IP"))?;
        Ok(columns)
    }
}

/// Splits a line at commas outside quotes, into byte ranges of the field
/// contents (inside the quotes, for quoted fields).
fn split(line: &str, spans: &mut Vec<(usize, usize)>) -> Result<(), LineError> {
    let b = line.as_bytes();
    spans.clear();
    let mut pos = 0;
    loop {
        let rest = b.get(pos..).unwrap_or_default();
        let lead = rest
            .iter()
            .take_while(|&&c| c == b' ' || c == b'\t')
            .count();
        if rest.get(lead) != Some(&b'"') {
            match memchr(b',', rest) {
                Some(comma) => {
                    spans.push((pos, pos + comma));
                    pos += comma + 1;
                    continue;
                }
                None => {
                    spans.push((pos, b.len()));
                    return Ok(());
                }
            }
        }
        let start = pos + lead + 1;
        let mut search = start;
        let close = loop {
            let Some(quote) = b.get(search..).and_then(|s| memchr(b'"', s)) else {
                return Err(malformed("unterminated quoted field"));
            };
            let quote = search + quote;
            if b.get(quote + 1) == Some(&b'"') {
                search = quote + 2;
            } else {
                break quote;
            }
        };
        spans.push((start, close));
        let after = b.get(close + 1..).unwrap_or_default();
        let trail = after
            .iter()
            .take_while(|&&c| c == b' ' || c == b'\t')
            .count();
        match after.get(trail) {
            None => return Ok(()),
            Some(b',') => pos = close + 1 + trail + 1,
            Some(_) => return Err(malformed("text after a closing quote")),
        }
    }
}

fn malformed(what: &'static str) -> LineError {
    LineError::new(LineErrorKind::MalformedCsv, None, what)
}

fn required<'a>(field: &'static str, value: &'a str) -> Result<&'a str, LineError> {
    if value.is_empty() || value == "-" {
        Err(LineError::missing(field))
    } else {
        Ok(value)
    }
}

fn address(field: &'static str, value: &str) -> Result<std::net::IpAddr, LineError> {
    required(field, value)?
        .parse()
        .map_err(|_| LineError::bad_address(field))
}

fn is_unset(value: &str) -> bool {
    value.is_empty() || value == "-"
}

fn port(field: &'static str, value: &str) -> Result<u16, LineError> {
    if is_unset(value) {
        return Ok(0);
    }
    parse_u64(value)
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| LineError::bad_number(field, "not a port number"))
}

fn count(field: &'static str, value: &str) -> Result<u64, LineError> {
    if is_unset(value) {
        return Ok(0);
    }
    parse_u64(value).ok_or_else(|| LineError::bad_number(field, "not a count"))
}

fn country(field: &'static str, value: &str) -> Result<Option<[u8; 2]>, LineError> {
    match value.as_bytes() {
        [] | [b'-'] => Ok(None),
        &[a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            Ok(Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
        }
        _ => Err(LineError::bad_value(field, "not a two-letter country code")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Format;
    use crate::ingest::fixtures::{Summary, parse_fixture, parse_text};

    const HEADER: &str = "Date, Src IP, Dst IP, Src Port, Dst Port, Protocol, Sent(byte), Rec.(byte), Src Country, Dst Country";

    #[test]
    fn the_csv_sample_matches_the_eve_flows_it_was_derived_from() {
        let csv = parse_fixture(Format::Auto, "csv/eve-flows.csv");
        assert_eq!(csv.errors, vec![]);
        let eve = parse_fixture(Format::Eve, "eve/test6-head1500.json.gz");
        let flows: Vec<_> = eve
            .records
            .iter()
            .filter(|r| r.kind == Kind::Connection)
            .collect();
        assert_eq!(csv.records.len(), flows.len());
        assert_eq!(csv.records.len(), 155);
        for (i, (c, e)) in csv.records.iter().zip(&flows).enumerate() {
            // Every fourth row uses the date format without fraction.
            let ts = if i % 4 == 2 {
                e.ts - e.ts.rem_euclid(1_000_000)
            } else {
                e.ts
            };
            assert_eq!(c.ts, ts, "row {i}");
            assert_eq!(
                (c.src, c.dst, c.src_port, c.dst_port),
                (e.src, e.dst, e.src_port, e.dst_port)
            );
            assert_eq!(
                (c.proto, c.src_bytes, c.dst_bytes),
                (e.proto, e.src_bytes, e.dst_bytes)
            );
            let private = |ip: &std::net::IpAddr| match ip {
                std::net::IpAddr::V4(v4) => v4.is_private(),
                std::net::IpAddr::V6(_) => false,
            };
            let expected = |ip| (!private(ip)).then_some(*b"ZZ");
            assert_eq!(
                (c.src_country, c.dst_country),
                (expected(&e.src), expected(&e.dst))
            );
        }
    }

    #[test]
    fn header_names_are_matched_loosely_and_in_any_order() {
        let text = "\u{feff}dst ip,SRC IP,extra,date,PROTOCOL,src country\n\
                    192.0.2.1,10.0.0.1,x,2021-06-06 13:57:37.5,udp,jp\n\
                    \"192.0.2.2\" , \"10.0.0.2\",\"a,\"\"b\"\"\",1622987857,47,\n";
        let summary = parse_text(Format::Auto, "flows.csv", text);
        assert_eq!(summary.errors, vec![]);
        let [a, b] = summary.records.as_slice() else {
            panic!("two records expected: {summary:?}");
        };
        assert_eq!(
            (a.src.to_string(), a.dst.to_string()),
            ("10.0.0.1".into(), "192.0.2.1".into())
        );
        assert_eq!(
            (a.ts, a.proto, a.src_country, a.dst_country),
            (1_622_987_857_500_000, 17, Some(*b"JP"), None)
        );
        assert_eq!(
            (b.ts, b.proto, b.src.to_string()),
            (1_622_987_857_000_000, 47, "10.0.0.2".into())
        );
    }

    #[test]
    fn malformed_csv_lines_are_counted_with_their_line_numbers() {
        let good = "2021-06-06T13:57:37Z, 10.0.0.1, 192.0.2.1, 1234, 443, TCP, 100, 200, -, US";
        let lines = [
            good.to_owned(),
            HEADER.to_owned(),
            good.to_owned(),
            good.replace(", US", ""),
            good.replace("192.0.2.1", "SECRET.0.2.1"),
            good.replace("1234", "SECRET"),
            good.replace(" 200,", " -2,"),
            good.replace("US", "USA"),
            good.replace("2021-06-06T13:57:37Z", "SECRET-DATE"),
            good.replace(" 10.0.0.1", " \"10.0.0.1"),
            good.replace(" 10.0.0.1", " \"10.0.0.1\"x"),
            good.replace(" 10.0.0.1", " -"),
            good.to_owned(),
        ];
        let mut bytes = (lines.join("\n") + "\n").into_bytes();
        bytes.extend_from_slice(
            b"2021-06-06T13:57:37Z,10.0.0.1,192.0.2.1,1,2,TCP,1,2,\xff\xfe,US\n",
        );
        let summary = Summary::parse(Format::Csv, "flows.csv", &bytes, 5);
        assert_eq!(summary.records.len(), 2);
        assert_eq!(
            summary.error_lines(),
            vec![
                (1, "no_header"),
                (4, "wrong_field_count"),
                (5, "bad_address"),
                (6, "bad_number"),
                (7, "bad_number"),
                (8, "bad_value"),
                (9, "bad_timestamp"),
                (10, "malformed_csv"),
                (11, "malformed_csv"),
                (12, "missing_field"),
                (14, "invalid_utf8"),
            ]
        );
        let shown: Vec<String> = summary.errors.iter().map(|(_, e)| e.to_string()).collect();
        assert_eq!(shown[2], "field Dst IP: not an IP address");
        assert_eq!(shown[3], "field Src Port: not a port number");
        assert_eq!(shown[5], "field Dst Country: not a two-letter country code");
        assert_eq!(shown[7], "unterminated quoted field");
        for s in &shown {
            assert!(!s.contains("SECRET"), "{s}");
        }
    }

    #[test]
    fn a_header_without_the_address_columns_is_not_a_header() {
        let summary = parse_text(Format::Csv, "x.csv", "Date,Src IP,Port\n");
        assert_eq!(summary.error_lines(), vec![(1, "no_header")]);
        let summary = parse_text(Format::Csv, "x.csv", "Src IP,Dst IP,Port\n");
        assert_eq!(summary.error_lines(), vec![(1, "missing_field")]);
        assert_eq!(
            summary.errors[0].1.to_string(),
            "field Date: missing or unset"
        );
    }
}
