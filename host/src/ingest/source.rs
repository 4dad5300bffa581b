//! The reader thread: input files and stdin to chunks of bytes.
//!
//! One thread reads the inputs in order and sends their bytes, decompressed
//! when they are gzip, through a bounded channel, so reading and
//! decompression overlap with parsing while memory stays bounded (a few
//! chunks). Gzip is recognised by its magic bytes, not by the file name, and
//! multi-member files (`cat a.gz b.gz`) are read to the end.
//!
//! Every input yields exactly one [`SourceEvent::Start`], then chunks, then
//! exactly one of [`SourceEvent::End`] or [`SourceEvent::Failed`]; a failed
//! input (missing file, corrupt gzip) does not stop the next one.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};
use flate2::read::MultiGzDecoder;
use indicatif::{ProgressBar, ProgressStyle};

/// Bytes per chunk read from a regular file.
pub const DEFAULT_CHUNK_BYTES: usize = 256 * 1024;

/// Chunks in flight between the reader thread and the parser.
pub const CHANNEL_CAPACITY: usize = 8;

/// An input: a file, or stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputPath {
    /// Standard input, spelled `-` on the command line.
    Stdin,
    /// A file (or named pipe).
    File(PathBuf),
    /// Sample data compiled into the binary (`kansoku demo`).
    Bundled {
        /// Its name in reports, e.g. `data/conn.log.gz`.
        name: &'static str,
        /// Its bytes, gzip or plain.
        bytes: &'static [u8],
    },
}

impl From<&str> for InputPath {
    fn from(s: &str) -> Self {
        if s == "-" {
            Self::Stdin
        } else {
            Self::File(s.into())
        }
    }
}

impl std::str::FromStr for InputPath {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(s.into())
    }
}

impl fmt::Display for InputPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stdin => f.write_str("<stdin>"),
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Bundled { name, .. } => write!(f, "{name}"),
        }
    }
}

/// What the reader thread reports, per input (by its index in the list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEvent {
    /// An input begins; `name` is its path, or `<stdin>`.
    Start { input: usize, name: String },
    /// The next bytes of the input, decompressed.
    Chunk { input: usize, data: Vec<u8> },
    /// The input was read to its end.
    End { input: usize },
    /// The input could not be opened or read to its end.
    Failed { input: usize, error: String },
}

/// The reader thread's state.
#[derive(Debug)]
pub struct SourceReader {
    inputs: Vec<InputPath>,
    progress: bool,
    tx: Sender<SourceEvent>,
}

/// The receiver hung up: stop reading.
struct Disconnected;

impl SourceReader {
    /// Spawns one thread that reads `inputs` in order and sends their
    /// chunks through a bounded channel: [`DEFAULT_CHUNK_BYTES`] from a
    /// regular file, or whatever one `read` returns from stdin or a pipe so a
    /// slow stream is not held back.
    ///
    /// With `progress`, each regular file shows a progress bar on stderr
    /// (bytes of the file as stored, i.e. compressed bytes for gzip, with
    /// rate and ETA); indicatif hides it when stderr is not a terminal.
    ///
    /// The thread ends after the last input, or as soon as the receiver is
    /// dropped.
    pub fn spawn(
        inputs: Vec<InputPath>,
        progress: bool,
    ) -> (Receiver<SourceEvent>, JoinHandle<()>) {
        let (tx, rx) = bounded(CHANNEL_CAPACITY);
        let reader = Self {
            inputs,
            progress,
            tx,
        };
        // Only the OS refusing a thread can fail here, never an input.
        let handle = thread::Builder::new()
            .name("kansoku-source".into())
            .spawn(move || reader.run())
            .expect("the OS can start the source reader thread");
        (rx, handle)
    }

    fn run(self) {
        for (input, path) in self.inputs.iter().enumerate() {
            if self.read(input, path).is_err() {
                tracing::debug!("source receiver dropped; reader stops");
                return;
            }
        }
    }

    fn send(&self, event: SourceEvent) -> Result<(), Disconnected> {
        self.tx.send(event).map_err(|_| Disconnected)
    }

    fn read(&self, input: usize, path: &InputPath) -> Result<(), Disconnected> {
        self.send(SourceEvent::Start {
            input,
            name: path.to_string(),
        })?;
        let opened = match path {
            InputPath::Stdin => Ok(Opened {
                reader: Box::new(io::stdin()),
                regular: false,
                bar: None,
            }),
            InputPath::File(file) => self.open(file),
            InputPath::Bundled { bytes, .. } => Ok(Opened {
                reader: Box::new(*bytes),
                regular: true,
                bar: None,
            }),
        };
        let mut opened = match opened {
            Ok(opened) => opened,
            Err(error) => {
                tracing::warn!(input = %path, %error, "cannot open input");
                return self.send(SourceEvent::Failed {
                    input,
                    error: format!("cannot open: {error}"),
                });
            }
        };
        let result = self.pump(input, &mut opened);
        if let Some(bar) = &opened.bar {
            bar.finish();
        }
        match result {
            Ok(()) => self.send(SourceEvent::End { input }),
            Err(Pump::Disconnected) => Err(Disconnected),
            Err(Pump::Io(error)) => {
                tracing::warn!(input = %path, %error, "cannot read input");
                self.send(SourceEvent::Failed {
                    input,
                    error: format!("cannot read: {error}"),
                })
            }
        }
    }

    fn open(&self, path: &std::path::Path) -> io::Result<Opened> {
        let file = File::open(path)?;
        let metadata = file.metadata()?;
        let regular = metadata.is_file();
        let bar = (self.progress && regular).then(|| progress_bar(path, metadata.len()));
        let reader: Box<dyn Read + Send> = match &bar {
            Some(bar) => Box::new(bar.wrap_read(file)),
            None => Box::new(file),
        };
        Ok(Opened {
            reader,
            regular,
            bar,
        })
    }

    /// Sends the input's bytes, decompressing gzip.
    fn pump(&self, input: usize, opened: &mut Opened) -> Result<(), Pump> {
        let mut prefixed = Prefixed::new(&mut opened.reader)?;
        let mut reader: Box<dyn Read + '_> = if prefixed.is_gzip() {
            Box::new(MultiGzDecoder::new(prefixed))
        } else {
            Box::new(&mut prefixed)
        };
        loop {
            let mut data = vec![0; DEFAULT_CHUNK_BYTES];
            let len = if opened.regular {
                fill(&mut reader, &mut data)?
            } else {
                read_once(&mut reader, &mut data)?
            };
            if len == 0 {
                return Ok(());
            }
            data.truncate(len);
            self.send(SourceEvent::Chunk { input, data })
                .map_err(|Disconnected| Pump::Disconnected)?;
        }
    }
}

struct Opened {
    reader: Box<dyn Read + Send>,
    /// A regular file: chunks are filled; otherwise sent as they arrive.
    regular: bool,
    bar: Option<ProgressBar>,
}

enum Pump {
    Io(io::Error),
    Disconnected,
}

impl From<io::Error> for Pump {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

fn progress_bar(path: &std::path::Path, len: u64) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "{msg:20!} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let bar = ProgressBar::new(len).with_style(style).with_message(name);
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

/// Reads until `buf` is full or the input ends.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = 0;
    while len < buf.len() {
        match reader.read(buf.get_mut(len..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(len)
}

fn read_once(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            result => return result,
        }
    }
}

/// A reader whose first two bytes were read ahead to look for the gzip
/// magic, and are handed out again, together with the next read, so that
/// a pipe's first chunk is not just those two bytes.
struct Prefixed<R> {
    prefix: [u8; 2],
    prefix_len: usize,
    pos: usize,
    inner: R,
}

impl<R: Read> Prefixed<R> {
    fn new(mut inner: R) -> io::Result<Self> {
        let mut prefix = [0; 2];
        let mut prefix_len = 0;
        while prefix_len < prefix.len() {
            match inner.read(prefix.get_mut(prefix_len..).unwrap_or_default()) {
                Ok(0) => break,
                Ok(n) => prefix_len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Self {
            prefix,
            prefix_len,
            pos: 0,
            inner,
        })
    }

    fn is_gzip(&self) -> bool {
        self.prefix_len == 2 && self.prefix == [0x1f, 0x8b]
    }
}

impl<R: Read> Read for Prefixed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let pending = self
            .prefix
            .get(self.pos..self.prefix_len)
            .unwrap_or_default();
        if pending.is_empty() {
            return self.inner.read(buf);
        }
        let n = pending.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), pending.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos += n;
        match buf.get_mut(n..) {
            Some(rest) if !rest.is_empty() => match self.inner.read(rest) {
                Ok(more) => Ok(n + more),
                // The prefix bytes were delivered; the error comes back on
                // the next read.
                Err(_) => Ok(n),
            },
            _ => Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(data).expect("in-memory write");
        encoder.finish().expect("in-memory gzip")
    }

    /// Collects the events, joining the chunks of each input.
    fn run(inputs: Vec<InputPath>) -> (Vec<String>, Vec<Vec<u8>>, Vec<usize>) {
        let count = inputs.len();
        let (rx, handle) = SourceReader::spawn(inputs, false);
        let mut trace = Vec::new();
        let mut data = vec![Vec::new(); count];
        let mut chunk_sizes = Vec::new();
        for event in rx {
            match event {
                SourceEvent::Start { input, .. } => trace.push(format!("start {input}")),
                SourceEvent::Chunk { input, data: chunk } => {
                    if trace.last() != Some(&format!("chunk {input}")) {
                        trace.push(format!("chunk {input}"));
                    }
                    chunk_sizes.push(chunk.len());
                    data[input].extend_from_slice(&chunk);
                }
                SourceEvent::End { input } => trace.push(format!("end {input}")),
                SourceEvent::Failed { input, error } => {
                    assert!(error.starts_with("cannot open: "), "{error}");
                    trace.push(format!("failed {input}"));
                }
            }
        }
        handle.join().expect("reader thread");
        (trace, data, chunk_sizes)
    }

    #[test]
    fn gzip_and_plain_files_are_read_in_order_and_a_missing_file_fails_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let text: Vec<u8> = (0..40_000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        // Two gzip members, as `cat a.gz b.gz` makes; named without `.gz`.
        let (a, b) = text.split_at(123_457);
        let mut members = gzip(a);
        members.extend(gzip(b));
        let gz_path = dir.path().join("conn.log");
        std::fs::write(&gz_path, &members).expect("write gz");
        // Plain text named `.gz`: the content decides, not the name.
        let plain_path = dir.path().join("dns.log.gz");
        std::fs::write(&plain_path, &text).expect("write plain");
        let missing = dir.path().join("missing.log");

        let (trace, data, sizes) = run(vec![
            InputPath::File(gz_path),
            InputPath::File(missing),
            InputPath::File(plain_path),
        ]);
        assert_eq!(
            trace,
            [
                "start 0", "chunk 0", "end 0", "start 1", "failed 1", "start 2", "chunk 2", "end 2"
            ]
        );
        assert_eq!(data[0], text);
        assert!(data[1].is_empty());
        assert_eq!(data[2], text);
        // Regular files come in full chunks but for the last of each input.
        assert!(text.len() > DEFAULT_CHUNK_BYTES);
        assert_eq!(sizes[0], DEFAULT_CHUNK_BYTES);
        assert_eq!(sizes.iter().sum::<usize>(), 2 * text.len());
    }

    #[test]
    fn empty_and_tiny_files_are_read_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let empty = dir.path().join("empty");
        let tiny = dir.path().join("tiny");
        std::fs::write(&empty, b"").expect("write");
        std::fs::write(&tiny, b"x").expect("write");
        let (trace, data, _) = run(vec![InputPath::File(empty), InputPath::File(tiny)]);
        assert_eq!(trace, ["start 0", "end 0", "start 1", "chunk 1", "end 1"]);
        assert_eq!(data[1], b"x");
    }

    #[test]
    fn a_pipe_chunk_is_what_one_read_returns_including_the_peeked_bytes() {
        let mut reader = Prefixed::new(io::Cursor::new(b"abcdef".to_vec())).expect("peek");
        assert!(!reader.is_gzip());
        let mut buf = [0; 16];
        assert_eq!(reader.read(&mut buf).expect("read"), 6);
        assert_eq!(&buf[..6], b"abcdef");
        assert_eq!(reader.read(&mut buf).expect("read"), 0);
    }

    #[test]
    fn input_paths_parse_and_display() {
        assert_eq!(InputPath::from("-"), InputPath::Stdin);
        assert_eq!(InputPath::Stdin.to_string(), "<stdin>");
        assert_eq!(
            "a/conn.log".parse::<InputPath>(),
            Ok(InputPath::File("a/conn.log".into()))
        );
        assert_eq!(InputPath::from("a/conn.log").to_string(), "a/conn.log");
    }
}
