//! The ingest stage, on the caller's thread: inputs cut into [`Unit`]s of
//! whole lines, parsed on the parse threads, and their batches put back in
//! input order before they reach the plugins, with ticks on data time.
//!
//! ```text
//! source events ──→ cut (lines, parser state) ──units──→ parse threads
//!                                                             │ outputs, any order
//!         plugins ←──batches, ticks── deliver in order ←──────┘
//! ```
//!
//! A unit ends after [`IngestConfig::batch_rows`] lines, at the end of an
//! input, or when it has waited the flush interval. It starts from a copy
//! of the parser as the lines before it left it: the cutter keeps a parser
//! of its own and feeds it only the lines that change its state (Zeek
//! headers, the line the format is told by), so they are parsed twice, a
//! handful per input, and every other line once, on a parse thread.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, select};

use super::parse::{Body, Output, Unit};
use super::{END_OF_INPUT_HORIZON, Engine, LOGGED_ERRORS_PER_INPUT, TICK_EVERY, Work};
use crate::batch::FlowBatch;
use crate::config::IngestConfig;
use crate::flow::Micros;
use crate::ingest::{LineError, LineItem, LineParser, LineSplitter, SourceEvent};
use crate::summary::{InputSummary, MAX_QUOTED_ERRORS, Summary};

/// The ingest stage's state.
pub(super) struct Ingest<'e> {
    engine: &'e Engine,
    plugins: &'e [Sender<Work>],
    /// The storage threads, when storing.
    store: Vec<Sender<Work>>,
    units: Sender<Unit>,
    outputs: Receiver<Output>,
    /// Units sent and not yet back; bounded so memory is.
    in_flight: usize,
    max_in_flight: usize,
    next_seq: u64,
    /// The next unit to deliver, and those that came back before it.
    next_delivery: u64,
    waiting: BTreeMap<u64, Output>,
    /// Line buffers the parse threads are done with.
    spare: Vec<Vec<u8>>,
    summary: Summary,
    /// Newest flow time seen.
    watermark: Option<Micros>,
    next_tick: Micros,
    /// Every plugin thread is gone.
    stopped: bool,
}

/// The input being read.
struct Current {
    input: usize,
    slot: usize,
    /// Fed only the lines that change its state.
    parser: LineParser,
    splitter: LineSplitter,
    open: Option<Open>,
}

/// The unit being filled.
struct Open {
    first: u64,
    bytes: Vec<u8>,
    lines: usize,
    parser: LineParser,
    since: Instant,
}

impl<'e> Ingest<'e> {
    pub(super) fn new(
        engine: &'e Engine,
        plugins: &'e [Sender<Work>],
        store: Vec<Sender<Work>>,
        units: Sender<Unit>,
        outputs: Receiver<Output>,
        parse_threads: usize,
    ) -> Self {
        Self {
            engine,
            plugins,
            store,
            units,
            outputs,
            in_flight: 0,
            // Enough to keep every parse thread busy while the next units
            // are cut and earlier ones wait for a slow one.
            max_in_flight: 2 * parse_threads + 2,
            spare: Vec::new(),
            next_seq: 0,
            next_delivery: 0,
            waiting: BTreeMap::new(),
            summary: Summary::default(),
            watermark: None,
            next_tick: Micros::MIN,
            stopped: false,
        }
    }

    /// The run's counts; ends the parse threads.
    pub(super) fn finish(self) -> Summary {
        self.summary
    }

    fn config(&self) -> &'e IngestConfig {
        &self.engine.config.ingest
    }

    pub(super) fn run(&mut self, source: &Receiver<SourceEvent>) {
        let flush = self.config().flush_interval;
        let mut current: Option<Current> = None;
        while !self.stopped {
            let wait = current
                .as_ref()
                .and_then(|c| c.open.as_ref())
                .map_or(flush, |open| flush.saturating_sub(open.since.elapsed()));
            select! {
                recv(source) -> event => match event {
                    Ok(event) => self.event(&mut current, event),
                    Err(_) => break,
                },
                recv(self.outputs) -> output => {
                    if let Ok(output) = output {
                        self.returned(output);
                    }
                }
                default(wait) => {}
            }
            // A slow stream still reaches the plugins.
            if let Some(c) = current.as_mut()
                && c.open
                    .as_ref()
                    .is_some_and(|open| open.since.elapsed() >= flush)
            {
                self.cut(c);
            }
        }
        if let Some(c) = current.as_mut() {
            self.cut(c);
        }
        while self.in_flight > 0 && !self.stopped {
            match self.outputs.recv() {
                Ok(output) => self.returned(output),
                Err(_) => break,
            }
        }
        if let Some(watermark) = self.watermark {
            let horizon = i64::try_from(END_OF_INPUT_HORIZON.as_micros()).unwrap_or(i64::MAX);
            self.send(Work::Tick(watermark.saturating_add(horizon)));
        }
    }

    fn event(&mut self, current: &mut Option<Current>, event: SourceEvent) {
        match event {
            SourceEvent::Start { input, name } => {
                if let Some(c) = current.as_mut() {
                    self.cut(c);
                }
                let config = self.config();
                *current = Some(Current {
                    input,
                    slot: self.summary.inputs.len(),
                    parser: LineParser::new(config.format, &name),
                    splitter: LineSplitter::new(config.max_line_bytes),
                    open: None,
                });
                self.summary.inputs.push(InputSummary {
                    name,
                    ..InputSummary::default()
                });
            }
            SourceEvent::Chunk { input, data } => {
                if let Some(c) = current.as_mut().filter(|c| c.input == input) {
                    let mut splitter = std::mem::replace(&mut c.splitter, LineSplitter::new(0));
                    splitter.push(&data, |item| self.line(c, item));
                    c.splitter = splitter;
                }
            }
            SourceEvent::End { input } | SourceEvent::Failed { input, .. } => {
                if let Some(mut c) = current.take().filter(|c| c.input == input) {
                    let mut splitter = std::mem::replace(&mut c.splitter, LineSplitter::new(0));
                    splitter.finish(|item| self.line(&mut c, item));
                    self.cut(&mut c);
                    if let Some(summary) = self.summary.inputs.get_mut(c.slot) {
                        summary.lines = splitter.lines();
                        summary.format = c.parser.format().to_string();
                        if let SourceEvent::Failed { error, .. } = event {
                            tracing::error!(input = %summary.name, %error, "input abandoned");
                            summary.failed = Some(error);
                        }
                    }
                }
            }
        }
    }

    /// Adds a line to the open unit.
    fn line(&mut self, c: &mut Current, item: LineItem<'_>) {
        let (number, bytes) = match item {
            LineItem::Line { number, bytes } => (number, bytes),
            LineItem::TooLong { number, len } => {
                self.cut(c);
                let error = LineError::too_long(len, self.config().max_line_bytes);
                self.send_unit(c, Body::TooLong { number, error });
                return;
            }
        };
        let changes_state = c.parser.changes_state(bytes);
        let rows = self.config().batch_rows;
        let spare = &mut self.spare;
        let open = c.open.get_or_insert_with(|| Open {
            first: number,
            bytes: spare.pop().unwrap_or_else(|| {
                Vec::with_capacity(rows.saturating_mul(bytes.len() + 1).min(1 << 24))
            }),
            lines: 0,
            parser: c.parser.clone(),
            since: Instant::now(),
        });
        open.bytes.extend_from_slice(bytes);
        open.bytes.push(b'\n');
        open.lines += 1;
        let full = open.lines >= rows;
        if changes_state {
            // The unit's own copy replays the line where it lies; this one
            // keeps the state the next unit starts from.
            let _ = c.parser.parse(bytes);
        }
        if full {
            self.cut(c);
        }
    }

    /// Sends the open unit, if any.
    fn cut(&mut self, c: &mut Current) {
        if let Some(open) = c.open.take() {
            let body = Body::Lines {
                first: open.first,
                count: open.lines,
                bytes: open.bytes,
                parser: Box::new(open.parser),
            };
            self.send_unit(c, body);
        }
    }

    fn send_unit(&mut self, c: &Current, body: Body) {
        while self.in_flight >= self.max_in_flight && !self.stopped {
            match self.outputs.recv() {
                Ok(output) => self.returned(output),
                // Every parse thread is gone: nothing can be parsed.
                Err(_) => self.stopped = true,
            }
        }
        let unit = Unit {
            seq: self.next_seq,
            slot: c.slot,
            input: c.input,
            body,
        };
        if self.units.send(unit).is_err() {
            self.stopped = true;
            return;
        }
        self.next_seq += 1;
        self.in_flight += 1;
    }

    /// A unit came back: deliver it and any that waited for it.
    fn returned(&mut self, mut output: Output) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if output.spare.capacity() > 0 && self.spare.len() < self.max_in_flight {
            self.spare.push(std::mem::take(&mut output.spare));
        }
        self.waiting.insert(output.seq, output);
        while let Some(output) = self.waiting.remove(&self.next_delivery) {
            self.next_delivery += 1;
            self.deliver(output);
        }
    }

    fn deliver(&mut self, output: Output) {
        let Output {
            slot,
            batch,
            records,
            dropped,
            skipped,
            bad_lines,
            ..
        } = output;
        self.summary.flows_read += records;
        self.summary.flows_kept += batch.len() as u64;
        for (reason, n) in dropped {
            *self.summary.dropped.entry(reason).or_insert(0) += n;
        }
        if let Some(input) = self.summary.inputs.get_mut(slot) {
            input.records += records;
            for (reason, n) in skipped {
                *input.skipped.entry(reason).or_insert(0) += n;
            }
        }
        for (number, error) in &bad_lines {
            self.bad_line(slot, *number, error);
        }
        if !batch.is_empty() {
            self.dispatch(batch);
        }
    }

    fn bad_line(&mut self, slot: usize, number: u64, error: &LineError) {
        let Some(input) = self.summary.inputs.get_mut(slot) else {
            return;
        };
        *input.bad_lines.entry(error.reason()).or_insert(0) += 1;
        let count = input.bad_line_count();
        if count <= LOGGED_ERRORS_PER_INPUT {
            tracing::warn!(reason = error.reason(), "{}:{number}: {error}", input.name);
        } else if count == LOGGED_ERRORS_PER_INPUT + 1 {
            tracing::warn!(
                "{}: further bad lines are counted, not logged; see the summary",
                input.name
            );
        }
        if self.summary.first_errors.len() < MAX_QUOTED_ERRORS {
            let quoted = format!("{}:{number}: {error}", input.name);
            self.summary.first_errors.push(quoted);
        }
    }

    /// Sends a batch to every plugin, then a tick when data time has moved
    /// on far enough.
    fn dispatch(&mut self, batch: FlowBatch) {
        self.summary.batches += 1;
        let newest = batch.max_ts();
        self.send(Work::Batch(Arc::new(batch)));
        if let Some(newest) = newest {
            let watermark = self.watermark.map_or(newest, |w| w.max(newest));
            self.watermark = Some(watermark);
            if watermark >= self.next_tick {
                if self.next_tick != Micros::MIN {
                    self.send(Work::Tick(watermark));
                }
                let every = i64::try_from(TICK_EVERY.as_micros()).unwrap_or(i64::MAX);
                self.next_tick = watermark.saturating_add(every);
            }
        }
    }

    fn send(&mut self, work: Work) {
        let mut alive = 0;
        for tx in self.plugins {
            let work = match &work {
                Work::Batch(batch) => Work::Batch(batch.clone()),
                Work::Tick(now) => Work::Tick(*now),
            };
            if tx.send(work).is_ok() {
                alive += 1;
            }
        }
        let stored = self.store.iter().all(|tx| {
            let work = match &work {
                Work::Batch(batch) => Work::Batch(batch.clone()),
                Work::Tick(now) => Work::Tick(*now),
            };
            tx.send(work).is_ok()
        });
        if !stored {
            // Storage failed: it has reported why; a run configured to
            // store does not go on without it.
            self.stopped = true;
        }
        if alive == 0 {
            // The output failed and every plugin thread ended: stop reading.
            self.stopped = true;
        }
    }
}
