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
                stream: "stdout",
            })
            .stderr(LogStream {
                log: log.clone(),
                stream: "stderr",
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

/// The log of one plugin: where its lines go, and how many it may still
/// write during the current call.
#[derive(Debug)]
pub struct PluginLog {
    plugin: Arc<str>,
    budget_per_call: u32,
    budget: AtomicU32,
    suppressed: AtomicU32,
    partial: Mutex<Vec<u8>>,
}

impl PluginLog {
    /// A log for `plugin` that accepts `budget_per_call` lines per call.
    pub fn new(plugin: Arc<str>, budget_per_call: u32) -> Self {
        Self {
            plugin,
            budget_per_call,
            budget: AtomicU32::new(budget_per_call),
            suppressed: AtomicU32::new(0),
            partial: Mutex::new(Vec::new()),
        }
    }

    /// Starts a call: refills the budget.
    pub fn begin_call(&self) {
        self.budget.store(self.budget_per_call, Ordering::Relaxed);
    }

    /// Ends a call: flushes an unterminated stdout/stderr line and reports
    /// what the budget suppressed.
    pub fn end_call(&self) {
        let rest = std::mem::take(&mut *self.partial.lock().unwrap_or_else(PoisonError::into_inner));
        if !rest.is_empty() {
            self.emit(Level::Info, &rest, "stdout");
        }
        let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
        if suppressed > 0 {
            tracing::warn!(
                plugin = %self.plugin,
                suppressed,
                "plugin wrote more log lines than its per-call budget"
            );
        }
    }

    fn line(&self, level: Level, line: &[u8], stream: &'static str) {
        let granted = self
            .budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
            .is_ok();
        if granted {
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

    /// Splits what a plugin wrote to stdout/stderr into lines.
    fn write(&self, bytes: &[u8], stream: &'static str) {
        let level = if stream == "stderr" { Level::Warn } else { Level::Info };
        let mut partial = self.partial.lock().unwrap_or_else(PoisonError::into_inner);
        partial.extend_from_slice(bytes);
        while let Some(end) = memchr::memchr(b'\n', &partial) {
            let line: Vec<u8> = partial.drain(..=end).collect();
            self.line(level, &line, stream);
        }
        // A line that never ends is cut rather than buffered without bound.
        if partial.len() > MAX_LINE {
            let line = std::mem::take(&mut *partial);
            self.line(level, &line, stream);
        }
    }
}

/// stdout or stderr of a plugin.
#[derive(Clone)]
struct LogStream {
    log: Arc<PluginLog>,
    stream: &'static str,
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
