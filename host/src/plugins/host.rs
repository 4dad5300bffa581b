//! What a plugin instance sees of the host: a WASI sandbox with nothing in
//! it, and a log.
//!
//! The Rust standard library on `wasm32-wasip2` imports WASI interfaces, so
//! the host links them, but the context is built empty: no preopened
//! directories, no environment, no arguments, no sockets or name lookups, an
//! empty stdin. What the plugin writes to stdout and stderr, and what it
//! sends through the `log` import, goes to the engine's log under the
//! plugin's name, line by line, with a budget per call so a chatty plugin
//! cannot flood the log.

use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::limits::Limiter;
use crate::contract::Level;

/// Longest log line kept from a plugin, in bytes; the rest is cut.
const MAX_LINE: usize = 2048;

/// Store data of one plugin instance.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) log: Arc<PluginLog>,
}

impl std::fmt::Debug for HostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostState")
            .field("plugin", &self.log.plugin)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl HostState {
    /// An empty sandbox for `plugin`.
    pub fn new(log: Arc<PluginLog>, limiter: Limiter) -> Self {
        let wasi = WasiCtxBuilder::new()
            .stdout(LogStream {
                log: log.clone(),
                stream: Stream::Stdout,
            })
            .stderr(LogStream {
                log: log.clone(),
                stream: Stream::Stderr,
            })
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter,
            log,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl crate::contract::kansoku::detector::log::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        self.log.line(level, message.as_bytes(), "log");
    }
}

/// Lines a plugin wrote during one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogCounts {
    /// Lines that went to the engine's log.
    pub lines: u64,
    /// Lines dropped because the call's budget was spent.
    pub suppressed: u64,
}

/// Which output stream of a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// What a line on the stream is logged as: Rust's panic messages and
    /// `eprintln!` go to stderr, so it is worth a warning.
    fn level(self) -> Level {
        match self {
            Stream::Stdout => Level::Info,
            Stream::Stderr => Level::Warn,
        }
    }
}

/// The log of one plugin: where its lines go, and how many it may still
/// write during the current call.
#[derive(Debug)]
pub struct PluginLog {
    plugin: Arc<str>,
    budget_per_call: u32,
    budget: AtomicU32,
    lines: AtomicU32,
    suppressed: AtomicU32,
    /// Unterminated line of stdout and of stderr. Kept apart because
    /// `eprintln!` is unbuffered and writes a line in several pieces, which
    /// a stdout line in between must not join.
    partial: Mutex<[Vec<u8>; 2]>,
}

impl PluginLog {
    /// A log for `plugin` that accepts `budget_per_call` lines per call.
    pub fn new(plugin: Arc<str>, budget_per_call: u32) -> Self {
        Self {
            plugin,
            budget_per_call,
            budget: AtomicU32::new(budget_per_call),
            lines: AtomicU32::new(0),
            suppressed: AtomicU32::new(0),
            partial: Mutex::new([Vec::new(), Vec::new()]),
        }
    }

    /// Starts a call: refills the budget.
    pub fn begin_call(&self) {
        self.budget.store(self.budget_per_call, Ordering::Relaxed);
    }

    /// Ends a call: flushes unterminated stdout/stderr lines, reports what
    /// the budget suppressed, and returns the call's counts.
    pub fn end_call(&self) -> LogCounts {
        let rests =
            std::mem::take(&mut *self.partial.lock().unwrap_or_else(PoisonError::into_inner));
        for (stream, rest) in [Stream::Stdout, Stream::Stderr].into_iter().zip(rests) {
            if !rest.is_empty() {
                // The tail of a line is a line like any other: it takes
                // budget.
                self.line(stream.level(), &rest, stream.name());
            }
        }
        let lines = self.lines.swap(0, Ordering::Relaxed);
        let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
        if suppressed > 0 {
            tracing::warn!(
                plugin = %self.plugin,
                suppressed,
                "plugin wrote more log lines than its per-call budget"
            );
        }
        LogCounts {
            lines: u64::from(lines),
            suppressed: u64::from(suppressed),
        }
    }

    fn line(&self, level: Level, line: &[u8], stream: &'static str) {
        let granted = self
            .budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
            .is_ok();
        if granted {
            self.lines.fetch_add(1, Ordering::Relaxed);
            self.emit(level, line, stream);
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn emit(&self, level: Level, line: &[u8], stream: &'static str) {
        let cut = &line[..line.len().min(MAX_LINE)];
        let text = String::from_utf8_lossy(cut);
        let text = text.trim_end();
        let plugin = &*self.plugin;
        match level {
            Level::Error => tracing::error!(target: "kansoku::plugin", plugin, stream, "{text}"),
            Level::Warn => tracing::warn!(target: "kansoku::plugin", plugin, stream, "{text}"),
            Level::Info => tracing::info!(target: "kansoku::plugin", plugin, stream, "{text}"),
            Level::Debug => tracing::debug!(target: "kansoku::plugin", plugin, stream, "{text}"),
            Level::Trace => tracing::trace!(target: "kansoku::plugin", plugin, stream, "{text}"),
        }
    }

    /// Splits what a plugin wrote to stdout or stderr into lines.
    fn write(&self, bytes: &[u8], stream: Stream) {
        let mut partials = self.partial.lock().unwrap_or_else(PoisonError::into_inner);
        let partial = &mut partials[stream as usize];
        partial.extend_from_slice(bytes);
        while let Some(end) = memchr::memchr(b'\n', partial) {
            let line: Vec<u8> = partial.drain(..=end).collect();
            self.line(stream.level(), &line, stream.name());
        }
        // A line that never ends is cut rather than buffered without bound.
        if partial.len() > MAX_LINE {
            let line = std::mem::take(partial);
            self.line(stream.level(), &line, stream.name());
        }
    }
}

/// stdout or stderr of a plugin.
#[derive(Clone)]
struct LogStream {
    log: Arc<PluginLog>,
    stream: Stream,
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.log.write(&bytes, self.stream);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl AsyncWrite for LogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.log.write(buf, self.stream);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdout_and_stderr_lines_do_not_mix() {
        let log = PluginLog::new("test".into(), 10);
        log.begin_call();
        // `eprintln!` writes its pieces one by one; a stdout line lands in
        // between.
        log.write(b"panicked at ", Stream::Stderr);
        log.write(b"a whole stdout line\n", Stream::Stdout);
        {
            let partial = log.partial.lock().unwrap();
            assert_eq!(partial[Stream::Stderr as usize], b"panicked at ");
            assert!(partial[Stream::Stdout as usize].is_empty());
        }
        log.write(b"src/lib.rs:1\n", Stream::Stderr);
        log.write(b"no newline", Stream::Stdout);
        assert_eq!(
            log.end_call(),
            LogCounts {
                lines: 3,
                suppressed: 0
            }
        );
    }

    #[test]
    fn the_budget_holds_per_call() {
        let log = PluginLog::new("test".into(), 2);
        log.begin_call();
        log.write(b"1\n2\n3\n", Stream::Stdout);
        log.write(b"4", Stream::Stderr);
        assert_eq!(
            log.end_call(),
            LogCounts {
                lines: 2,
                suppressed: 2
            }
        );
        log.begin_call();
        log.write(b"5\n", Stream::Stdout);
        assert_eq!(log.end_call().lines, 1);
    }
}
