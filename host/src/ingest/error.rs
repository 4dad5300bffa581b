//! Per-line parse errors.
//!
//! A [`LineError`] names the field and the reason, never the field's value or
//! any other part of the line: values may be payload-like (a URI, a mail
//! address), and R3 forbids payload in logs and error messages. Every message
//! is therefore assembled from static text and numbers only.

use std::borrow::Cow;
use std::fmt;

/// Why a line was rejected. The snake_case [`as_str`](Self::as_str) label is
/// the `reason` used when counting dropped lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LineErrorKind {
    /// A field that must hold an IP address does not.
    BadAddress,
    /// A count, port or duration is not a (non-negative) number in range.
    BadNumber,
    /// A timestamp is neither epoch seconds nor an ISO-8601 date-time.
    BadTimestamp,
    /// A field has a value outside its domain (a country code of three
    /// letters, a JSON array where a string belongs).
    BadValue,
    /// A Zeek TSV or CSV line has more or fewer columns than its header.
    WrongFieldCount,
    /// A JSON line is not a well-formed JSON object of the expected shape.
    InvalidJson,
    /// A field used by kansoku, or a JSON line, is not valid UTF-8.
    InvalidUtf8,
    /// A field every record needs (time, addresses) is absent or unset.
    MissingField,
    /// A Zeek TSV data line came before any `#fields` header, or a CSV line
    /// before the header row.
    NoHeader,
    /// A line exceeded the configured maximum length and was skipped.
    LineTooLong,
    /// Auto-detection could not tell which format a line is in.
    UnknownFormat,
    /// A CSV line has broken quoting.
    MalformedCsv,
}

impl LineErrorKind {
    /// The snake_case label used as the `reason` of a drop counter.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadAddress => "bad_address",
            Self::BadNumber => "bad_number",
            Self::BadTimestamp => "bad_timestamp",
            Self::BadValue => "bad_value",
            Self::WrongFieldCount => "wrong_field_count",
            Self::InvalidJson => "invalid_json",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::MissingField => "missing_field",
            Self::NoHeader => "no_header",
            Self::LineTooLong => "line_too_long",
            Self::UnknownFormat => "unknown_format",
            Self::MalformedCsv => "malformed_csv",
        }
    }
}

/// A line that could not be parsed: the field (when one is to blame) and the
/// reason, e.g. `field id.orig_h: not an IP address`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LineError {
    kind: LineErrorKind,
    field: Option<&'static str>,
    message: Cow<'static, str>,
}

impl LineError {
    /// Only this module and the parsers build errors, from static text and
    /// numbers, so no input can leak into a message.
    pub(crate) fn new(
        kind: LineErrorKind,
        field: Option<&'static str>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            kind,
            field,
            message: message.into(),
        }
    }

    /// The error for a [`LineItem::TooLong`](super::LineItem::TooLong) line.
    pub fn too_long(len: u64, max_line_bytes: usize) -> Self {
        Self::new(
            LineErrorKind::LineTooLong,
            None,
            format!("line of {len} bytes exceeds the limit of {max_line_bytes} bytes"),
        )
    }

    pub(crate) fn bad_address(field: &'static str) -> Self {
        Self::new(LineErrorKind::BadAddress, Some(field), "not an IP address")
    }

    pub(crate) fn bad_number(field: &'static str, what: &'static str) -> Self {
        Self::new(LineErrorKind::BadNumber, Some(field), what)
    }

    pub(crate) fn bad_timestamp(field: &'static str) -> Self {
        Self::new(LineErrorKind::BadTimestamp, Some(field), "not a timestamp")
    }

    pub(crate) fn bad_value(field: &'static str, what: &'static str) -> Self {
        Self::new(LineErrorKind::BadValue, Some(field), what)
    }

    pub(crate) fn missing(field: &'static str) -> Self {
        Self::new(LineErrorKind::MissingField, Some(field), "missing or unset")
    }

    pub(crate) fn invalid_utf8(field: Option<&'static str>) -> Self {
        Self::new(LineErrorKind::InvalidUtf8, field, "invalid UTF-8")
    }

    pub(crate) fn wrong_field_count(expected: usize, found: usize) -> Self {
        Self::new(
            LineErrorKind::WrongFieldCount,
            None,
            format!("expected {expected} fields, found {found}"),
        )
    }

    pub(crate) fn unknown_format() -> Self {
        Self::new(
            LineErrorKind::UnknownFormat,
            None,
            "cannot tell the format: expected Zeek TSV or JSON, Suricata EVE JSON, \
             or CSV with Src IP and Dst IP columns",
        )
    }

    /// Turns a serde_json error into a line error without its value.
    ///
    /// serde_json's data errors quote the offending value (`invalid type:
    /// string "…", expected u16`), so only the parts that come from the
    /// expected type, or from field names of our own structs, are kept.
    /// Syntax errors are fixed strings and are kept as they are.
    pub(crate) fn from_json(
        error: &serde_json::Error,
        field: Option<&'static str>,
        data_kind: LineErrorKind,
    ) -> Self {
        use serde_json::error::Category;
        let text = error.to_string();
        let text = text.rsplit_once(" at line ").map_or(&*text, |(m, _)| m);
        let column = error.column();
        let (kind, what) = match error.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                let what = if text.contains(['"', '`', '\'']) {
                    "syntax error"
                } else {
                    text
                };
                (LineErrorKind::InvalidJson, what.to_owned())
            }
            // Field names come from our own serde structs.
            Category::Data if text.starts_with("missing field `") => {
                (LineErrorKind::MissingField, text.to_owned())
            }
            Category::Data if text.starts_with("duplicate field `") => {
                (LineErrorKind::InvalidJson, text.to_owned())
            }
            Category::Data => {
                let what = match text.rsplit_once(", expected ") {
                    Some((_, expected)) => format!("expected {expected}"),
                    None => "invalid value".to_owned(),
                };
                (data_kind, what)
            }
        };
        // Column 0: serde_json had not consumed anything yet.
        let at = if column > 0 {
            format!(" at column {column}")
        } else {
            String::new()
        };
        let message = if kind == LineErrorKind::InvalidJson {
            format!("invalid JSON: {what}{at}")
        } else {
            format!("{what}{at}")
        };
        Self::new(kind, field, message)
    }

    /// What went wrong.
    pub fn kind(&self) -> LineErrorKind {
        self.kind
    }

    /// The field to blame, by its name in the input format (`id.orig_h`,
    /// `src_ip`, `Src Port`), when there is one.
    pub fn field(&self) -> Option<&'static str> {
        self.field
    }

    /// The snake_case label used as the `reason` of a drop counter.
    pub fn reason(&self) -> &'static str {
        self.kind.as_str()
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(field) => write!(f, "field {field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_field_and_the_reason() {
        let e = LineError::bad_address("id.orig_h");
        assert_eq!(e.to_string(), "field id.orig_h: not an IP address");
        assert_eq!(e.reason(), "bad_address");
        assert_eq!(e.field(), Some("id.orig_h"));
        assert_eq!(
            LineError::too_long(2_000_000, 1 << 20).to_string(),
            "line of 2000000 bytes exceeds the limit of 1048576 bytes"
        );
    }

    #[test]
    fn json_data_errors_keep_the_expected_type_but_not_the_value() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code, reason = "only deserialised")]
        struct Port {
            port: u16,
        }
        let err = serde_json::from_str::<Port>(r#"{"port":"SECRET-VALUE, expected x"}"#)
            .expect_err("a string is not a port");
        let e = LineError::from_json(&err, Some("port"), LineErrorKind::BadNumber);
        let shown = e.to_string();
        assert!(!shown.contains("SECRET"), "{shown}");
        assert_eq!(shown, "field port: expected u16 at column 34");
        assert_eq!(e.reason(), "bad_number");

        let err = serde_json::from_str::<Port>(r#"{"other":1}"#).expect_err("no port");
        let e = LineError::from_json(&err, None, LineErrorKind::InvalidJson);
        assert_eq!(e.to_string(), "missing field `port` at column 11");
        assert_eq!(e.reason(), "missing_field");

        let err = serde_json::from_str::<Port>(r#"{"port":1"#).expect_err("truncated");
        let e = LineError::from_json(&err, None, LineErrorKind::InvalidJson);
        assert_eq!(e.reason(), "invalid_json");
        assert_eq!(
            e.to_string(),
            "invalid JSON: EOF while parsing an object at column 9"
        );
    }
}
