//! The parse threads: a [`Unit`] of consecutive lines in, a scoped,
//! enriched [`FlowBatch`] and the unit's counts out.
//!
//! A unit carries the parser state its first line is parsed in, so units of
//! one input can be parsed on any thread in any order; the ingest stage puts
//! the results back in order by [`Unit::seq`].

use std::collections::BTreeMap;

use crossbeam_channel::{Receiver, Sender};
use memchr::memchr;

use crate::batch::{FlowBatch, Placement};
use crate::enrich::CountryCache;
use crate::flow::FlowRecord;
use crate::ingest::{LineError, LineParser, Parsed};
use crate::scope::Scope;

/// Work for a parse thread.
#[derive(Debug)]
pub(super) struct Unit {
    /// Position in the run: results are delivered in this order.
    pub(super) seq: u64,
    /// Index of the input in the run's summary.
    pub(super) slot: usize,
    /// Index of the input in the run's inputs.
    pub(super) input: usize,
    pub(super) body: Body,
}

#[derive(Debug)]
pub(super) enum Body {
    /// `count` consecutive lines, each followed by `\n`, numbered from
    /// `first`, and the parser as it was before the first of them.
    Lines {
        first: u64,
        count: usize,
        bytes: Vec<u8>,
        parser: Box<LineParser>,
    },
    /// A line over the cap, already skipped.
    TooLong { number: u64, error: LineError },
}

/// What a unit gave.
#[derive(Debug, Default)]
pub(super) struct Output {
    pub(super) seq: u64,
    pub(super) slot: usize,
    /// Flows kept, in line order.
    pub(super) batch: FlowBatch,
    /// Records parsed.
    pub(super) records: u64,
    /// Records dropped by scope, by reason.
    pub(super) dropped: BTreeMap<&'static str, u64>,
    /// Lines without a record, by reason.
    pub(super) skipped: BTreeMap<&'static str, u64>,
    /// The unit's line buffer, emptied, for the ingest stage to fill again:
    /// a fresh one per unit is a fresh megabyte of pages to fault in.
    pub(super) spare: Vec<u8>,
    /// Bad lines with their numbers, in order.
    pub(super) bad_lines: Vec<(u64, LineError)>,
}

/// Parses units until their channel closes or the ingest stage is gone.
pub(super) fn run(
    scope: &Scope,
    mut countries: Option<CountryCache>,
    units: &Receiver<Unit>,
    outputs: &Sender<Output>,
) {
    for unit in units {
        let output = parse(unit, scope, countries.as_mut());
        if outputs.send(output).is_err() {
            return;
        }
    }
}

fn parse(unit: Unit, scope: &Scope, mut countries: Option<&mut CountryCache>) -> Output {
    let mut output = Output {
        seq: unit.seq,
        slot: unit.slot,
        ..Output::default()
    };
    let (first, count, bytes, mut parser) = match unit.body {
        Body::Lines {
            first,
            count,
            bytes,
            parser,
        } => (first, count, bytes, parser),
        Body::TooLong { number, error } => {
            output.bad_lines.push((number, error));
            return output;
        }
    };
    output.batch = FlowBatch::with_capacity(count);
    let input = u16::try_from(unit.input).unwrap_or(u16::MAX);
    let mut rest = bytes.as_slice();
    let mut number = first;
    while !rest.is_empty() {
        let end = memchr(b'\n', rest).unwrap_or(rest.len());
        let (line, tail) = rest.split_at(end);
        rest = tail.get(1..).unwrap_or_default();
        match parser.parse(line) {
            Ok(Parsed::Record(record)) => {
                output.records += 1;
                keep(
                    &mut output,
                    &record,
                    scope,
                    countries.as_deref_mut(),
                    input,
                    number,
                );
            }
            Ok(Parsed::Skip(reason)) => *output.skipped.entry(reason.as_str()).or_insert(0) += 1,
            Err(error) => output.bad_lines.push((number, error)),
        }
        number += 1;
    }
    let mut spare = bytes;
    spare.clear();
    output.spare = spare;
    output
}

/// Scopes and enriches one record and adds it to the batch, or counts why
/// it was dropped.
fn keep(
    output: &mut Output,
    record: &FlowRecord<'_>,
    scope: &Scope,
    countries: Option<&mut CountryCache>,
    input: u16,
    line: u64,
) {
    let attribution = match scope.classify(record.src, record.dst) {
        Ok(attribution) => attribution,
        Err(reason) => {
            *output.dropped.entry(reason.label()).or_insert(0) += 1;
            return;
        }
    };
    // A country the input carried (CSV exports) wins over a lookup.
    let (src_country, dst_country) = match countries {
        Some(cache) => (
            record.src_country.or_else(|| cache.lookup(record.src)),
            record.dst_country.or_else(|| cache.lookup(record.dst)),
        ),
        None => (record.src_country, record.dst_country),
    };
    let placement = Placement {
        institution: attribution.institution,
        peer_institution: attribution.peer,
        direction: attribution.direction,
        src_country,
        dst_country,
        input,
        line,
    };
    output.batch.push(record, &placement);
}
