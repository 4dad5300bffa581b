//! Ingest: bytes of flow logs in, [`FlowRecord`]s out.
//!
//! ```text
//! files / stdin ─→ SourceReader ─→ LineSplitter ─→ LineParser ─→ FlowRecord
//!                  (thread; gzip,   (lines, cap on   (Zeek TSV/JSON,
//!                   progress bar)    line length)      EVE, CSV)
//! ```
//!
//! - [`SourceReader`] reads the inputs on one thread and sends chunks of
//!   bytes, decompressed when gzip, through a bounded channel.
//! - [`LineSplitter`] cuts the chunks into numbered lines. A line longer
//!   than the cap is skipped without being buffered and reported as
//!   [`LineItem::TooLong`].
//! - [`LineParser`] turns one line into a [`Parsed::Record`] or a
//!   [`Parsed::Skip`], or fails with a [`LineError`]. It borrows text from
//!   the line, so a record lives only as long as its chunk.
//!
//! Formats ([`Format`]): Zeek TSV and JSON logs (conn, dns, ssl, http, smtp,
//! files), Suricata EVE JSON (flow, dns, tls, http, smtp, fileinfo, alert),
//! and CSV flow exports; [`Format::Auto`] tells them apart by the first
//! non-blank line ([`detect`]).
//!
//! What is dropped, and counted by the caller under a `reason` label:
//! - skipped lines ([`SkipReason::as_str`]): blank lines, headers, comments,
//!   lines of Zeek logs and EVE event types that kansoku does not map;
//! - bad lines ([`LineError::reason`]): each names the field and the
//!   reason, never the value, and parsing goes on with the next line.
//!
//! **R3, no payload:** EVE `payload`, `payload_printable`, `packet` and
//! every other content field are dropped at parse time: the parser's serde
//! structs have no field for them, so they are skipped while parsing and
//! never stored. Zeek content fields (the smtp `subject`…) are likewise
//! never mapped, and error messages never quote input.

mod csv;
mod detect;
mod error;
mod eve;
mod lines;
mod source;
mod time;
mod zeek;

#[cfg(test)]
mod fixtures;

use std::fmt;
use std::str::FromStr;

pub use detect::detect;
pub use error::{LineError, LineErrorKind};
pub use lines::{LineItem, LineSplitter};
pub use source::{CHANNEL_CAPACITY, DEFAULT_CHUNK_BYTES, InputPath, SourceEvent, SourceReader};

use crate::flow::FlowRecord;

/// The default cap on a line's length: longer lines are skipped and
/// counted. EVE events with large HTTP headers stay well under it.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// An input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Detected from the first non-blank line of each input.
    #[default]
    Auto,
    /// Zeek's tab-separated logs with `#` headers.
    ZeekTsv,
    /// Zeek's JSON logs, one object per line.
    ZeekJson,
    /// Suricata EVE JSON.
    Eve,
    /// CSV flow exports with a header row.
    Csv,
}

impl Format {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [Format; 5] = [
        Format::Auto,
        Format::ZeekTsv,
        Format::ZeekJson,
        Format::Eve,
        Format::Csv,
    ];

    /// The name used on the command line and in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::ZeekTsv => "zeek",
            Self::ZeekJson => "zeek-json",
            Self::Eve => "eve",
            Self::Csv => "csv",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not one of [`Format::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format `{0}`: expected one of auto, zeek, zeek-json, eve, csv")]
pub struct ParseFormatError(String);

impl FromStr for Format {
    type Err = ParseFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "zeek-tsv" => Ok(Self::ZeekTsv),
            _ => Self::ALL
                .into_iter()
                .find(|f| f.name() == s)
                .ok_or_else(|| ParseFormatError(s.to_owned())),
        }
    }
}

/// What one line parsed into.
#[allow(
    clippy::large_enum_variant,
    reason = "one per line, consumed at once; boxing would allocate per line"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A record.
    Record(FlowRecord<'a>),
    /// A line that holds no record, and why.
    Skip(SkipReason),
}

/// Why a line holds no record. Not an error; counted by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SkipReason {
    /// Empty or whitespace only.
    Blank,
    /// A Zeek `#` header, or a CSV header row.
    Header,
    /// A `#` line that is not a known Zeek header.
    Comment,
    /// A line of a Zeek log kansoku does not map (weird, x509, notice…).
    IgnoredLogType,
    /// An EVE event type kansoku does not map (anomaly, stats, netflow…).
    IgnoredEventType,
}

impl SkipReason {
    /// The snake_case label used as the `reason` of a skip counter.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Blank => "blank",
            Self::Header => "header",
            Self::Comment => "comment",
            Self::IgnoredLogType => "ignored_log_type",
            Self::IgnoredEventType => "ignored_event_type",
        }
    }
}

/// Parses the lines of one input, in order. It keeps the state a format
/// needs across lines (the Zeek header, the CSV columns, the detected
/// format), so each input needs its own parser. A clone carries that
/// state: the lines after a [`LineParser::changes_state`] line can be parsed
/// on another thread by a clone taken once that line was parsed.
#[derive(Debug, Clone)]
pub struct LineParser {
    /// The input's name, a hint for detection and Zeek log types.
    name: String,
    started: bool,
    inner: Inner,
}

#[derive(Debug, Clone)]
enum Inner {
    Undetected,
    ZeekTsv(zeek::TsvParser),
    ZeekJson(zeek::JsonParser),
    Eve(eve::EveParser),
    Csv(csv::CsvParser),
}

impl Inner {
    fn new(format: Format, name: &str) -> Self {
        let hint = || zeek::LogHint::from_file_name(name);
        match format {
            Format::Auto => Self::Undetected,
            Format::ZeekTsv => Self::ZeekTsv(zeek::TsvParser::new(hint())),
            Format::ZeekJson => Self::ZeekJson(zeek::JsonParser::new(hint())),
            Format::Eve => Self::Eve(eve::EveParser),
            Format::Csv => Self::Csv(csv::CsvParser::default()),
        }
    }
}

impl LineParser {
    /// A parser for one input. `name` is its file name or path (or
    /// `<stdin>`): Zeek logs without a `_path` take their log type from it
    /// (`conn.log`, `dns.json.gz`, `ssl.00:00:00-01:00:00.log.gz`).
    pub fn new(format: Format, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            started: false,
            inner: Inner::new(format, name),
        }
    }

    /// The format: as given, or as detected; [`Format::Auto`] until then.
    pub fn format(&self) -> Format {
        match self.inner {
            Inner::Undetected => Format::Auto,
            Inner::ZeekTsv(_) => Format::ZeekTsv,
            Inner::ZeekJson(_) => Format::ZeekJson,
            Inner::Eve(_) => Format::Eve,
            Inner::Csv(_) => Format::Csv,
        }
    }

    /// Whether parsing `line` may change how the lines after it are parsed:
    /// any line until the format is known, Zeek `#` headers, CSV header
    /// rows. Every other line leaves the parser as it was.
    pub fn changes_state(&self, line: &[u8]) -> bool {
        if !self.started {
            return true;
        }
        match &self.inner {
            Inner::Undetected => true,
            Inner::ZeekTsv(_) => zeek::TsvParser::is_header(line),
            Inner::Csv(parser) => parser.may_change_state(line),
            Inner::ZeekJson(_) | Inner::Eve(_) => false,
        }
    }

    /// Parses the next line (without its line terminator).
    #[inline]
    pub fn parse<'a>(&mut self, line: &'a [u8]) -> Result<Parsed<'a>, LineError> {
        let line = if self.started {
            line
        } else {
            self.started = true;
            line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line)
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(Parsed::Skip(SkipReason::Blank));
        }
        if let Inner::Undetected = self.inner {
            let format = detect(line, &self.name).ok_or_else(LineError::unknown_format)?;
            tracing::debug!(input = %self.name, %format, "detected input format");
            self.inner = Inner::new(format, &self.name);
        }
        let comment = line.first() == Some(&b'#');
        match &mut self.inner {
            Inner::ZeekTsv(parser) => parser.parse(line),
            _ if comment => Ok(Parsed::Skip(SkipReason::Comment)),
            Inner::ZeekJson(parser) => parser.parse(line),
            Inner::Eve(parser) => parser.parse(line),
            Inner::Csv(parser) => parser.parse(line),
            Inner::Undetected => Err(LineError::unknown_format()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Kind;
    use fixtures::{Summary, parse_fixture, parse_text};

    #[test]
    fn format_names_round_trip() {
        for format in Format::ALL {
            assert_eq!(format.to_string().parse::<Format>(), Ok(format));
        }
        assert_eq!("zeek-tsv".parse::<Format>(), Ok(Format::ZeekTsv));
        assert_eq!(
            "netflow".parse::<Format>().map_err(|e| e.to_string()),
            Err("unknown format `netflow`: expected one of auto, zeek, zeek-json, eve, csv".into())
        );
        assert_eq!(SkipReason::IgnoredEventType.as_str(), "ignored_event_type");
    }

    #[test]
    fn auto_detects_each_format_and_reports_it() {
        for (file, format) in [
            ("zeek/rita-proxy/conn.log", Format::ZeekTsv),
            ("zeek/slips-test10/conn.log", Format::ZeekTsv),
            ("zeek/slips-test9/conn.log", Format::ZeekJson),
            ("zeek/brimdata/dns.json.gz", Format::ZeekJson),
            ("eve/test6-head1500.json.gz", Format::Eve),
            ("csv/eve-flows.csv", Format::Csv),
        ] {
            let summary = parse_fixture(Format::Auto, file);
            assert_eq!(summary.format, format, "{file}");
        }
    }

    #[test]
    fn undetectable_lines_are_errors_until_a_line_can_be_told() {
        let summary = parse_text(Format::Auto, "-", "\n  \nhello\n#separator \\x09\n");
        assert_eq!(summary.error_lines(), vec![(3, "unknown_format")]);
        assert_eq!(summary.skips("blank"), 2);
        assert_eq!(summary.format, Format::ZeekTsv);
    }

    #[test]
    fn only_lines_that_change_the_parser_state_are_flagged() {
        let mut zeek = LineParser::new(Format::Auto, "conn.log");
        assert!(zeek.changes_state(b"#separator \\x09"));
        let _ = zeek.parse(b"#separator \\x09");
        assert!(zeek.changes_state(b"#fields\tts"));
        assert!(zeek.changes_state(b" #close\t2024"));
        assert!(!zeek.changes_state(b"1331901000.0\tCx\t10.0.0.1"));

        let mut csv = LineParser::new(Format::Csv, "flows.csv");
        assert!(csv.changes_state(b"Date,Src IP,Dst IP"));
        let _ = csv.parse(b"Date,Src IP,Dst IP,Src Port,Dst Port,Protocol");
        assert!(!csv.changes_state(b"2024-01-01 00:00:00,192.0.2.1,198.51.100.1,1,2,TCP"));
        assert!(csv.changes_state(b"date,srcip,dstip"));

        let mut eve = LineParser::new(Format::Auto, "eve.json");
        let _ = eve.parse(br#"{"event_type":"flow"}"#);
        assert!(!eve.changes_state(b"#comment"));
    }

    #[test]
    fn brimdata_dns_tsv_and_json_give_identical_records() {
        let tsv = parse_fixture(Format::Auto, "zeek/brimdata/dns.log.gz");
        let json = parse_fixture(Format::Auto, "zeek/brimdata/dns.json.gz");
        assert_eq!(tsv.errors, vec![]);
        assert_eq!(json.errors, vec![]);
        assert_eq!(tsv.count(Kind::Dns), 3000);
        assert_eq!(json.count(Kind::Dns), 3000);
        for (i, (t, j)) in tsv.records.iter().zip(&json.records).enumerate() {
            assert_eq!(t, j, "record {i}");
        }
        assert!(tsv.records.iter().any(|r| r.dns_rcode.is_none()));
        assert!(
            tsv.records
                .iter()
                .any(|r| r.text.get(crate::flow::TextField::DnsAnswers).is_some())
        );
    }

    #[test]
    fn gzip_fixtures_stream_through_the_reader_thread() {
        let inputs = ["zeek/brimdata/dns.log.gz", "eve/test6-head1500.json.gz"]
            .map(|f| InputPath::File(fixtures::path(f)));
        let (rx, handle) = SourceReader::spawn(inputs.to_vec(), false);
        let mut parser = LineParser::new(Format::Auto, "");
        let mut splitter = LineSplitter::new(DEFAULT_MAX_LINE_BYTES);
        let (mut records, mut errors) = ([0usize; 2], 0);
        let mut take = |input: usize, parser: &mut LineParser, item: LineItem<'_>| match item {
            LineItem::Line { bytes, .. } => match parser.parse(bytes) {
                Ok(Parsed::Record(_)) => records[input] += 1,
                Ok(Parsed::Skip(_)) => {}
                Err(_) => errors += 1,
            },
            LineItem::TooLong { .. } => errors += 1,
        };
        for event in rx {
            match event {
                SourceEvent::Start { name, .. } => {
                    parser = LineParser::new(Format::Auto, &name);
                    splitter = LineSplitter::new(DEFAULT_MAX_LINE_BYTES);
                }
                SourceEvent::Chunk { input, data } => {
                    splitter.push(&data, |item| take(input, &mut parser, item));
                }
                SourceEvent::End { input } => {
                    splitter.finish(|item| take(input, &mut parser, item));
                }
                SourceEvent::Failed { error, .. } => panic!("{error}"),
            }
        }
        handle.join().expect("reader thread");
        assert_eq!(errors, 0);
        assert_eq!(records, [3000, 1497]);
    }

    /// Parse rates, single-threaded, input in memory:
    /// `cargo test --release -- --ignored --nocapture parse_rates`.
    #[test]
    #[ignore = "benchmark; run in release mode"]
    fn parse_rates() {
        fn rate(format: Format, name: &str, header: &str, body: &str, target_lines: usize) {
            // KANSOKU_BENCH=zeek (a format name) measures that format only.
            if let Ok(only) = std::env::var("KANSOKU_BENCH")
                && only != format.name()
            {
                return;
            }
            let copies = target_lines / body.lines().count().max(1);
            let mut input = String::with_capacity(header.len() + body.len() * copies);
            input.push_str(header);
            (0..copies).for_each(|_| input.push_str(body));
            let lines = input.lines().count();
            let mut best = f64::MAX;
            for _ in 0..3 {
                let start = std::time::Instant::now();
                let mut parser = LineParser::new(format, name);
                let mut splitter = LineSplitter::new(DEFAULT_MAX_LINE_BYTES);
                let (mut records, mut errors) = (0usize, 0usize);
                let mut take = |item: LineItem<'_>| {
                    if let LineItem::Line { bytes, .. } = item {
                        match parser.parse(bytes) {
                            Ok(Parsed::Record(r)) => {
                                std::hint::black_box(&r);
                                records += 1;
                            }
                            Ok(Parsed::Skip(_)) => {}
                            Err(_) => errors += 1,
                        }
                    }
                };
                for chunk in input.as_bytes().chunks(DEFAULT_CHUNK_BYTES) {
                    splitter.push(chunk, &mut take);
                }
                splitter.finish(&mut take);
                assert_eq!(errors, 0);
                assert!(records > 0);
                best = best.min(start.elapsed().as_secs_f64());
            }
            println!(
                "{format:>9} {name:<12} {lines:>9} lines, {:>6.1} MB: {:>5.2} M lines/s, {:>6.0} MB/s",
                input.len() as f64 / 1e6,
                lines as f64 / best / 1e6,
                input.len() as f64 / best / 1e6
            );
        }
        let split = |text: &str| -> (String, String) {
            let (header, body): (Vec<&str>, Vec<&str>) = text
                .lines()
                .filter(|l| !l.starts_with("#close"))
                .partition(|l| l.trim_start().starts_with('#'));
            (header.join("\n") + "\n", body.join("\n") + "\n")
        };
        let tsv = String::from_utf8(fixtures::read("zeek/rita-proxy/conn.log")).expect("utf8");
        let (header, body) = split(&tsv);
        rate(Format::ZeekTsv, "conn.log", &header, &body, 2_000_000);
        let dns = String::from_utf8(fixtures::read("zeek/brimdata/dns.log.gz")).expect("utf8");
        let (header, body) = split(&dns);
        rate(Format::ZeekTsv, "dns.log", &header, &body, 1_000_000);
        let json = String::from_utf8(fixtures::read("zeek/slips-test9/conn.log")).expect("utf8");
        rate(Format::ZeekJson, "conn.log", "", &json, 1_000_000);
        let eve = String::from_utf8(fixtures::read("eve/test6-head1500.json.gz")).expect("utf8");
        rate(Format::Eve, "eve.json", "", &eve, 300_000);
        let csv = String::from_utf8(fixtures::read("csv/eve-flows.csv")).expect("utf8");
        let (header, body) = csv.split_once('\n').expect("header");
        rate(
            Format::Csv,
            "flows.csv",
            &format!("{header}\n"),
            body,
            1_000_000,
        );
    }

    #[test]
    fn huge_lines_in_the_middle_of_a_file_are_skipped_and_the_rest_parses() {
        let text =
            std::fs::read_to_string(fixtures::path("zeek/rita-proxy/conn.log")).expect("fixture");
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let huge = format!("{}\t{}", lines[20], "A".repeat(3 * DEFAULT_CHUNK_BYTES));
        lines.insert(20, huge.clone());
        lines.insert(40, huge);
        let input = lines.join("\r\n") + "\r\n";
        for chunk in [1_000, 4_096, DEFAULT_CHUNK_BYTES] {
            let summary =
                Summary::parse_with_cap(Format::Auto, "conn.log", input.as_bytes(), chunk, 4_096);
            assert_eq!(summary.records.len(), 463, "chunk {chunk}");
            assert_eq!(
                summary.error_lines(),
                vec![(21, "line_too_long"), (41, "line_too_long")]
            );
        }
    }
}
