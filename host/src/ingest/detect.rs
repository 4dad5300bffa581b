//! Telling the input format from the first non-blank line.
//!
//! | the line | format |
//! |---|---|
//! | starts with `#separator` (or `#fields`) | Zeek TSV |
//! | a JSON object with a top-level `event_type` | Suricata EVE |
//! | a JSON object with `_path`, `uid`, `id.orig_h` or `ts` | Zeek JSON |
//! | a row naming `Src IP` and `Dst IP` (any case) | CSV |
//!
//! A JSON object with none of those keys falls back to the file name
//! (`conn.json` is Zeek, `eve.json` is EVE).

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::Format;
use super::zeek::LogHint;

/// The format of a stream whose first non-blank line is `line`, read from a
/// file called `name`; `None` when it cannot be told.
pub fn detect(line: &[u8], name: &str) -> Option<Format> {
    let line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
    let line = line.trim_ascii_start();
    if line.starts_with(b"#separator") || line.starts_with(b"#fields") {
        return Some(Format::ZeekTsv);
    }
    if line.starts_with(b"{") {
        return detect_json(line, name);
    }
    let lower = std::str::from_utf8(line).ok()?.to_ascii_lowercase();
    (lower.contains("src ip") && lower.contains("dst ip")).then_some(Format::Csv)
}

/// The top-level keys that tell EVE from Zeek; serde reads only these.
#[derive(Deserialize)]
struct Keys {
    event_type: Option<IgnoredAny>,
    #[serde(rename = "_path")]
    path: Option<IgnoredAny>,
    uid: Option<IgnoredAny>,
    #[serde(rename = "id.orig_h")]
    orig_h: Option<IgnoredAny>,
    ts: Option<IgnoredAny>,
}

fn detect_json(line: &[u8], name: &str) -> Option<Format> {
    let keys: Keys = serde_json::from_slice(line).ok()?;
    if keys.event_type.is_some() {
        return Some(Format::Eve);
    }
    if keys.path.is_some() || keys.uid.is_some() || keys.orig_h.is_some() || keys.ts.is_some() {
        return Some(Format::ZeekJson);
    }
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    match LogHint::from_file_name(base) {
        LogHint::Mapped(_) | LogHint::Ignored => Some(Format::ZeekJson),
        LogHint::Unknown if base.contains("eve") => Some(Format::Eve),
        LogHint::Unknown => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_is_recognised_by_its_first_line() {
        let cases: [(&[u8], &str, Option<Format>); 10] = [
            (b"#separator \\x09", "-", Some(Format::ZeekTsv)),
            (b"\t#separator \\x09", "conn.log", Some(Format::ZeekTsv)),
            (
                br#"{"timestamp":"2021-06-06T15:59:46+0200","flow_id":1,"event_type":"alert"}"#,
                "-",
                Some(Format::Eve),
            ),
            (
                br#"{"ts":22.3,"uid":"C6","id.orig_h":"fe80::1","event_type_x":1}"#,
                "-",
                Some(Format::ZeekJson),
            ),
            // A Zeek value that mentions event_type is not EVE.
            (
                br#"{"_path":"http","uri":"/?\"event_type\":1"}"#,
                "-",
                Some(Format::ZeekJson),
            ),
            (b"\xef\xbb\xbfDate,Src IP,Dst IP", "-", Some(Format::Csv)),
            (b"date, SRC IP, dst ip, protocol", "-", Some(Format::Csv)),
            (b"{}", "eve.json", Some(Format::Eve)),
            (b"{}", "x509.log", Some(Format::ZeekJson)),
            (b"hello, world", "-", None),
        ];
        for (line, name, want) in cases {
            assert_eq!(
                detect(line, name),
                want,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        assert_eq!(detect(b"{not json", "eve.json"), None);
    }
}
