//! Test helpers: run whole inputs through [`LineSplitter`] and
//! [`LineParser`] and summarise what came out.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use flate2::read::MultiGzDecoder;

use super::{
    DEFAULT_MAX_LINE_BYTES, Format, LineError, LineItem, LineParser, LineSplitter, Parsed,
};
use crate::flow::{FlowRecord, Kind, TextField};

/// The path of a file under `tests/fixtures/`.
pub(crate) fn path(relative: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures")).join(relative)
}

/// The bytes of a fixture, gunzipped when it is gzip.
pub(crate) fn read(relative: &str) -> Vec<u8> {
    let raw = std::fs::read(path(relative)).expect("fixture exists");
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .expect("fixture is valid gzip");
        out
    } else {
        raw
    }
}

/// Everything one input parsed into.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    pub(crate) records: Vec<FlowRecord<'static>>,
    pub(crate) errors: Vec<(u64, LineError)>,
    pub(crate) skipped: BTreeMap<&'static str, usize>,
    pub(crate) format: Format,
}

impl Summary {
    /// Parses `input` as it would arrive in chunks of `chunk` bytes.
    pub(crate) fn parse(format: Format, name: &str, input: &[u8], chunk: usize) -> Self {
        Self::parse_with_cap(format, name, input, chunk, DEFAULT_MAX_LINE_BYTES)
    }

    pub(crate) fn parse_with_cap(
        format: Format,
        name: &str,
        input: &[u8],
        chunk: usize,
        max_line_bytes: usize,
    ) -> Self {
        let mut parser = LineParser::new(format, name);
        let mut splitter = LineSplitter::new(max_line_bytes);
        let mut summary = Summary::default();
        let mut take = |item: LineItem<'_>| match item {
            LineItem::Line { number, bytes } => match parser.parse(bytes) {
                Ok(Parsed::Record(record)) => summary.records.push(owned(record)),
                Ok(Parsed::Skip(reason)) => {
                    *summary.skipped.entry(reason.as_str()).or_default() += 1
                }
                Err(error) => summary.errors.push((number, error)),
            },
            LineItem::TooLong { number, len } => summary
                .errors
                .push((number, LineError::too_long(len, max_line_bytes))),
        };
        for piece in input.chunks(chunk.max(1)) {
            splitter.push(piece, &mut take);
        }
        splitter.finish(&mut take);
        summary.format = parser.format();
        summary
    }

    pub(crate) fn count(&self, kind: Kind) -> usize {
        self.records.iter().filter(|r| r.kind == kind).count()
    }

    pub(crate) fn skips(&self, reason: &str) -> usize {
        self.skipped.get(reason).copied().unwrap_or(0)
    }

    pub(crate) fn error_lines(&self) -> Vec<(u64, &'static str)> {
        self.errors.iter().map(|(n, e)| (*n, e.reason())).collect()
    }
}

/// Parses a fixture, named by its path so Zeek log hints apply.
pub(crate) fn parse_fixture(format: Format, relative: &str) -> Summary {
    Summary::parse(format, relative, &read(relative), 64 * 1024 + 7)
}

pub(crate) fn parse_text(format: Format, name: &str, text: &str) -> Summary {
    Summary::parse(format, name, text.as_bytes(), 1 << 16)
}

/// A record that owns its text, to outlive the chunk it was parsed from.
pub(crate) fn owned(record: FlowRecord<'_>) -> FlowRecord<'static> {
    let mut text = crate::flow::TextValues::default();
    for field in TextField::ALL {
        if let Some(value) = record.text.get(field) {
            text.set(field, value.to_owned());
        }
    }
    FlowRecord {
        ts: record.ts,
        duration: record.duration,
        src: record.src,
        dst: record.dst,
        src_port: record.src_port,
        dst_port: record.dst_port,
        proto: record.proto,
        kind: record.kind,
        src_bytes: record.src_bytes,
        dst_bytes: record.dst_bytes,
        src_pkts: record.src_pkts,
        dst_pkts: record.dst_pkts,
        conn_state: record.conn_state,
        src_country: record.src_country,
        dst_country: record.dst_country,
        dns_qtype: record.dns_qtype,
        dns_rcode: record.dns_rcode,
        http_status: record.http_status,
        flow_id: record.flow_id,
        text,
    }
}
