//! Zeek's JSON logs: one object per line, with dotted keys (`id.orig_h`).
//!
//! The log is named by `_path` when the line has one, else by the file name,
//! else inferred from the fields the line has (one extra pass over such
//! lines). `ts` may be epoch seconds or an ISO-8601 string. Keys are looked up
//! in the shared mapping as they stream by, so values kansoku does not use
//! are skipped without being stored.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{Builder, Field, ListMode, LogHint, LogType, Markers, Value, field, marker};
use crate::ingest::error::{LineError, LineErrorKind};
use crate::ingest::{Parsed, SkipReason};

/// Parses one stream of Zeek JSON lines.
#[derive(Debug, Clone)]
pub(crate) struct JsonParser {
    /// From the file name.
    hint: LogHint,
}

/// How one pass over a line ended.
#[allow(
    clippy::large_enum_variant,
    reason = "returned once per line, by value, never stored"
)]
enum Outcome<'a> {
    Record(Result<crate::flow::FlowRecord<'a>, LineError>),
    /// `_path` names a different log than the pass assumed.
    Path(LogHint),
    /// The pass did not know the log: what the keys suggest.
    Probed(Markers),
}

impl JsonParser {
    pub(crate) fn new(hint: LogHint) -> Self {
        Self { hint }
    }

    pub(crate) fn parse<'a>(&mut self, line: &'a [u8]) -> Result<Parsed<'a>, LineError> {
        let text = std::str::from_utf8(line).map_err(|_| LineError::invalid_utf8(None))?;
        let mut log = match self.hint {
            LogHint::Mapped(log) => Some(log),
            LogHint::Ignored | LogHint::Unknown => None,
        };
        // A second pass is needed only when the first one assumed the wrong
        // log or did not know it; it always knows.
        for _ in 0..2 {
            log = match pass(text, log)? {
                Outcome::Record(record) => return record.map(Parsed::Record),
                Outcome::Path(LogHint::Mapped(log)) => Some(log),
                Outcome::Path(_) => break,
                Outcome::Probed(markers) => match (self.hint, markers.best()) {
                    (LogHint::Unknown, Some(log)) => Some(log),
                    _ => break,
                },
            };
        }
        Ok(Parsed::Skip(SkipReason::IgnoredLogType))
    }
}

/// Why a pass stopped before the end of the line.
enum Stop {
    Error(LineError),
    Path(LogHint),
}

struct State<'a> {
    builder: Option<Builder<'a>>,
    markers: Markers,
    /// Whether any key other than `_path` was read.
    seen_keys: bool,
    /// The field being read, for error messages.
    current: Option<&'static str>,
    stop: Option<Stop>,
}

fn pass(text: &str, log: Option<LogType>) -> Result<Outcome<'_>, LineError> {
    let mut state = State {
        builder: log.map(Builder::new),
        markers: Markers::default(),
        seen_keys: false,
        current: None,
        stop: None,
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let result = de
        .deserialize_map(LineVisitor { state: &mut state })
        .and_then(|()| de.end());
    match (state.stop, result) {
        (Some(Stop::Error(error)), _) => Err(error),
        (Some(Stop::Path(hint)), _) => Ok(Outcome::Path(hint)),
        (None, Err(error)) => Err(LineError::from_json(
            &error,
            state.current,
            LineErrorKind::InvalidJson,
        )),
        (None, Ok(())) => Ok(match state.builder {
            Some(builder) => Outcome::Record(builder.finish()),
            None => Outcome::Probed(state.markers),
        }),
    }
}

struct LineVisitor<'s, 'a> {
    state: &'s mut State<'a>,
}

impl<'a> Visitor<'a> for LineVisitor<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Zeek log object")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<(), A::Error> {
        let state = self.state;
        loop {
            state.current = None;
            let log = state.builder.as_ref().map(|b| b.log);
            let Some(key) = map.next_key_seed(KeySeed { log })? else {
                return Ok(());
            };
            match key {
                Key::Path => {
                    let Some(Value::Str(path)) = map.next_value_seed(ValueSeed { mode: None })?
                    else {
                        continue;
                    };
                    let hint = LogHint::from_path(&path);
                    match (log, hint) {
                        (Some(log), LogHint::Mapped(named)) if log == named => {}
                        // `_path` first: the pass can build from the start.
                        (None, LogHint::Mapped(named)) if !state.seen_keys => {
                            state.builder = Some(Builder::new(named));
                        }
                        _ => return stop(state, Stop::Path(hint)),
                    }
                }
                Key::Mapped(field) => {
                    state.seen_keys = true;
                    state.current = Some(field.name);
                    let mode = field.slot.list_mode();
                    let value = map.next_value_seed(ValueSeed { mode })?;
                    if let (Some(value), Some(builder)) = (value, &mut state.builder)
                        && let Err(error) = builder.set(field, value)
                    {
                        return stop(state, Stop::Error(error));
                    }
                }
                Key::Other(hint) => {
                    state.seen_keys = true;
                    if let Some(log) = hint {
                        state.markers.add(log);
                    }
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
    }
}

/// Ends a pass early; the caller looks at `state.stop`, not at the error.
fn stop<E: de::Error>(state: &mut State<'_>, why: Stop) -> Result<(), E> {
    state.stop = Some(why);
    Err(E::custom("stopped"))
}

enum Key {
    Path,
    Mapped(Field),
    /// A key the pass does not use, and the log it suggests.
    Other(Option<LogType>),
}

struct KeySeed {
    log: Option<LogType>,
}

impl<'a> DeserializeSeed<'a> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'a>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
        Ok(match self.log {
            _ if name == "_path" => Key::Path,
            Some(log) => field(log, name).map_or(Key::Other(None), Key::Mapped),
            None => Key::Other(marker(name)),
        })
    }
}

/// Reads any JSON value as a [`Value`]; `None` for `null`. Arrays are joined
/// or reduced to their first element as the slot wants; a value of the wrong
/// shape becomes [`Value::Invalid`] so the error can name the field.
struct ValueSeed {
    mode: Option<ListMode>,
}

impl<'a> DeserializeSeed<'a> for ValueSeed {
    type Value = Option<Value<'a>>;

    fn deserialize<D: Deserializer<'a>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for ValueSeed {
    type Value = Option<Value<'a>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'a str) -> Result<Self::Value, E> {
        Ok(Some(Value::Str(Cow::Borrowed(v))))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Value::Str(Cow::Owned(v.to_owned()))))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Value::Str(Cow::Owned(v))))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Value::UInt(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(u64::try_from(v).map_or(Value::Int(v), Value::UInt)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(Value::Float(v)))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(Value::Bool(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Some(Value::Invalid("an object, not a value")))
    }

    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let Some(mode) = self.mode else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(Some(Value::Invalid("an array, not a single value")));
        };
        let mut joined: Option<Cow<'a, str>> = None;
        while let Some(element) = seq.next_element_seed(ValueSeed { mode: None })? {
            let Some(Value::Str(element)) = element else {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                return Ok(Some(Value::Invalid("not an array of strings")));
            };
            joined = Some(match joined {
                None => element,
                Some(first) if mode == ListMode::First => first,
                Some(so_far) => {
                    let mut s = so_far.into_owned();
                    s.push(',');
                    s.push_str(&element);
                    Cow::Owned(s)
                }
            });
        }
        // An empty set is an empty (absent) value, as in TSV's `(empty)`.
        Ok(Some(Value::Str(joined.unwrap_or_default())))
    }
}

#[cfg(test)]
mod tests {
    use crate::flow::{Kind, TextField};
    use crate::ingest::Format;
    use crate::ingest::fixtures::{parse_fixture, parse_text};

    #[test]
    fn slips_test9_logs_parse_without_errors() {
        for (file, kind, count) in [
            ("zeek/slips-test9/conn.log", Kind::Connection, 200),
            ("zeek/slips-test9/dns.log", Kind::Dns, 200),
            ("zeek/slips-test9/http.log", Kind::Http, 100),
            ("zeek/slips-test9/ssl.log", Kind::Tls, 100),
            ("zeek/slips-test9/smtp.log", Kind::Smtp, 5),
            ("zeek/slips-test9/files.log", Kind::File, 200),
        ] {
            let summary = parse_fixture(Format::Auto, file);
            assert_eq!(summary.errors, vec![], "{file}");
            assert_eq!(summary.count(kind), count, "{file}");
            assert_eq!(summary.records.len(), count, "{file}");
        }
        let notice = parse_fixture(Format::Auto, "zeek/slips-test9/notice.log");
        assert_eq!(notice.errors, vec![]);
        assert_eq!(notice.records.len(), 0);
        assert_eq!(notice.skips("ignored_log_type"), 18);
    }

    #[test]
    fn sensitive_smtp_fields_are_mapped_and_the_subject_is_not() {
        let smtp = parse_fixture(Format::ZeekJson, "zeek/slips-test9/smtp.log");
        let first = &smtp.records[0];
        assert_eq!(
            first.text.get(TextField::MailFrom),
            Some("aon.913289727@aon.at")
        );
        assert_eq!(
            first.text.get(TextField::MailTo),
            Some("JohnDoe1236677@gmail.com")
        );
        assert_eq!(first.proto, 6);
        let shown = format!("{smtp:?}");
        assert!(!shown.contains("=?UTF-8?B?"), "the mail subject leaked");
    }

    #[test]
    fn json_numbers_and_sets_map_like_tsv_values() {
        let conn = parse_fixture(Format::ZeekJson, "zeek/slips-test9/conn.log");
        let first = &conn.records[0];
        assert_eq!(first.ts, 22_335_172);
        assert_eq!(first.duration, 96_282);
        assert_eq!(
            (first.src_port, first.dst_port, first.proto),
            (61099, 5355, 17)
        );

        let files = parse_fixture(Format::ZeekJson, "zeek/slips-test9/files.log");
        let first = &files.records[0];
        assert_eq!(first.src.to_string(), "10.0.2.15");
        assert_eq!(first.dst.to_string(), "147.32.80.7");
        assert_eq!(
            first.text.get(TextField::FileSha1),
            Some("8800350f53cb7bfc883962e965461d94ab5d2616")
        );
    }

    #[test]
    fn the_log_comes_from_path_then_file_name_then_fields() {
        let dns = r#"{"ts":1.5,"uid":"C1","id.orig_h":"10.0.0.1","id.orig_p":5353,"id.resp_h":"10.0.0.2","id.resp_p":53,"query":"example.org","qtype":1,"rcode":0,"answers":["a","b\u00e9"]}"#;
        let with_path = format!(r#"{{"_path":"dns",{}"#, &dns[1..]);
        let path_last = format!(r#"{},"_path":"dns"}}"#, &dns[..dns.len() - 1]);
        let weird = r#"{"ts":1.5,"uid":"C1","id.orig_h":"10.0.0.1","name":"bad_TCP_checksum"}"#;
        let weird_path = r#"{"ts":1.5,"uid":"C1","id.orig_h":"10.0.0.1","_path":"weird"}"#;
        let all = [dns, &with_path, &path_last, weird, weird_path];
        let cases: [(&str, &[&str], &[Kind], usize); 4] = [
            // Unknown name: `_path`, or else the fields, decide.
            ("-", &all, &[Kind::Dns, Kind::Dns, Kind::Dns], 2),
            // A skipped log by name: only `_path` can say otherwise.
            ("x509.log", &all, &[Kind::Dns, Kind::Dns], 3),
            // A mapped log by name: it applies to lines without `_path`.
            (
                "conn.log",
                &all[..3],
                &[Kind::Connection, Kind::Dns, Kind::Dns],
                0,
            ),
            (
                "dns.log",
                &[dns, &with_path, &path_last, weird_path],
                &[Kind::Dns; 3],
                1,
            ),
        ];
        for (name, lines, kinds, skipped) in cases {
            let summary = parse_text(Format::ZeekJson, name, &(lines.join("\n") + "\n"));
            assert_eq!(summary.errors, vec![], "{name}");
            let got: Vec<Kind> = summary.records.iter().map(|r| r.kind).collect();
            assert_eq!(got, kinds, "{name}");
            assert_eq!(summary.skips("ignored_log_type"), skipped, "{name}");
            let dns = summary.records.last().expect("a dns record");
            assert_eq!(dns.text.get(TextField::DnsAnswers), Some("a,bé"));
            assert_eq!(dns.dns_rcode, Some(0));
        }
    }

    #[test]
    fn json_errors_name_the_field_and_keep_the_rest_of_the_file() {
        let good = r#"{"ts":1.5,"uid":"C1","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":80,"proto":"tcp","conn_state":"S0"}"#;
        let lines = [
            good.to_owned(),
            good.replace(r#""id.orig_p":1"#, r#""id.orig_p":"SECRET-port""#),
            good.replace(r#""id.orig_p":1"#, r#""id.orig_p":70000"#),
            good.replace(r#""10.0.0.2""#, r#""SECRET-host""#),
            good.replace(r#""ts":1.5"#, r#""ts":"SECRET-time""#),
            good.replace(r#""ts":1.5,"#, ""),
            good.replace(r#""conn_state":"S0""#, r#""conn_state":["S0"]"#),
            good[..70].to_owned(),
            format!("{good} trailing"),
            "[1,2,3]".to_owned(),
            good.to_owned(),
        ];
        let summary = parse_text(Format::ZeekJson, "conn.log", &(lines.join("\n") + "\n"));
        assert_eq!(summary.records.len(), 2);
        assert_eq!(
            summary.error_lines(),
            vec![
                (2, "bad_number"),
                (3, "bad_number"),
                (4, "bad_address"),
                (5, "bad_timestamp"),
                (6, "missing_field"),
                (7, "bad_value"),
                (8, "invalid_json"),
                (9, "invalid_json"),
                (10, "invalid_json"),
            ]
        );
        let shown: Vec<String> = summary.errors.iter().map(|(_, e)| e.to_string()).collect();
        assert_eq!(shown[0], "field id.orig_p: not a port number");
        assert_eq!(shown[2], "field id.resp_h: not an IP address");
        assert_eq!(shown[5], "field conn_state: an array, not a single value");
        assert_eq!(
            shown[6],
            "field id.resp_h: invalid JSON: EOF while parsing a value at column 70"
        );
        assert_eq!(shown[7], "invalid JSON: trailing characters at column 130");
        assert_eq!(shown[8], "invalid JSON: expected a Zeek log object");
        for s in &shown {
            assert!(!s.contains("SECRET"), "{s}");
        }
    }
}
