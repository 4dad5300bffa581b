//! Splitting a byte stream into lines.
//!
//! Bytes arrive in chunks of any size; lines come out numbered from 1, without
//! their `\n` or `\r\n`. A line that lies inside one chunk is handed out
//! borrowed from it; only a line spanning chunks is copied, into one buffer
//! that is reused. A line longer than the cap is never buffered past the cap:
//! it is skipped and reported once, as [`LineItem::TooLong`], so a hostile or
//! corrupt input cannot make the reader grow without bound.

use memchr::memchr;

/// One line of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineItem<'a> {
    /// A line, without its line terminator.
    Line {
        /// 1-based line number.
        number: u64,
        /// The line's bytes.
        bytes: &'a [u8],
    },
    /// A line over the cap; its bytes were skipped.
    TooLong {
        /// 1-based line number.
        number: u64,
        /// Length of the line without its terminator.
        len: u64,
    },
}

/// Splits chunks of a byte stream into lines.
#[derive(Debug)]
pub struct LineSplitter {
    max_line_bytes: usize,
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// Set while skipping a line over the cap: its length so far.
    skipped: Option<u64>,
    /// Whether the last skipped byte was `\r` (not counted if `\n` follows).
    skipped_cr: bool,
    number: u64,
}

impl LineSplitter {
    /// A splitter that reports lines longer than `max_line_bytes` (without
    /// terminator) as [`LineItem::TooLong`].
    pub fn new(max_line_bytes: usize) -> Self {
        Self {
            max_line_bytes,
            partial: Vec::new(),
            skipped: None,
            skipped_cr: false,
            number: 0,
        }
    }

    /// Feeds the next chunk; calls `f` for every line it completes.
    pub fn push(&mut self, chunk: &[u8], mut f: impl FnMut(LineItem<'_>)) {
        let mut rest = chunk;
        while let Some(end) = memchr(b'\n', rest) {
            let (head, tail) = rest.split_at(end);
            self.complete(head, &mut f);
            rest = tail.get(1..).unwrap_or_default();
        }
        self.carry(rest);
    }

    /// Ends the stream: a last line without a trailing newline is handed out.
    pub fn finish(&mut self, mut f: impl FnMut(LineItem<'_>)) {
        if !self.partial.is_empty() || self.skipped.is_some() {
            self.complete(&[], &mut f);
        }
    }

    /// The number of lines handed out so far.
    pub fn lines(&self) -> u64 {
        self.number
    }

    /// Completes the current line with `head`, the bytes up to its `\n`.
    fn complete(&mut self, head: &[u8], f: &mut impl FnMut(LineItem<'_>)) {
        self.number += 1;
        let number = self.number;
        if let Some(len) = self.skipped.take() {
            let len = len + head.len() as u64;
            let cr = match head.last() {
                Some(&c) => c == b'\r',
                None => self.skipped_cr,
            };
            f(LineItem::TooLong {
                number,
                len: len - u64::from(cr),
            });
            return;
        }
        let total = self.partial.len() + head.len();
        if !self.partial.is_empty() && total > self.max_line_bytes.saturating_add(1) {
            let cr = head.last().or(self.partial.last()) == Some(&b'\r');
            f(LineItem::TooLong {
                number,
                len: (total - usize::from(cr)) as u64,
            });
            self.partial.clear();
            return;
        }
        let line = if self.partial.is_empty() {
            strip_cr(head)
        } else {
            self.partial.extend_from_slice(head);
            strip_cr(&self.partial)
        };
        if line.len() > self.max_line_bytes {
            f(LineItem::TooLong {
                number,
                len: line.len() as u64,
            });
        } else {
            f(LineItem::Line {
                number,
                bytes: line,
            });
        }
        self.partial.clear();
    }

    /// Keeps the start of an unfinished line, up to the cap.
    fn carry(&mut self, rest: &[u8]) {
        if rest.is_empty() {
            return;
        }
        if let Some(len) = &mut self.skipped {
            *len += rest.len() as u64;
            self.skipped_cr = rest.last() == Some(&b'\r');
            return;
        }
        // One byte of slack for the `\r` of a `\r\n` split across chunks.
        if self.partial.len() + rest.len() > self.max_line_bytes.saturating_add(1) {
            self.skipped = Some((self.partial.len() + rest.len()) as u64);
            self.skipped_cr = rest.last() == Some(&b'\r');
            self.partial = Vec::new();
        } else {
            self.partial.extend_from_slice(rest);
        }
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Item {
        Line(u64, Vec<u8>),
        TooLong(u64, u64),
    }

    fn split(chunks: &[&[u8]], max: usize) -> Vec<Item> {
        let mut splitter = LineSplitter::new(max);
        let mut items = Vec::new();
        let mut collect = |item: LineItem<'_>| {
            items.push(match item {
                LineItem::Line { number, bytes } => Item::Line(number, bytes.to_vec()),
                LineItem::TooLong { number, len } => Item::TooLong(number, len),
            })
        };
        for chunk in chunks {
            splitter.push(chunk, &mut collect);
        }
        splitter.finish(&mut collect);
        items
    }

    fn line(n: u64, s: &str) -> Item {
        Item::Line(n, s.as_bytes().to_vec())
    }

    #[test]
    fn lf_and_crlf_lines_are_numbered_from_one() {
        let items = split(&[b"a\nbb\r\n\nccc"], 100);
        assert_eq!(
            items,
            vec![line(1, "a"), line(2, "bb"), line(3, ""), line(4, "ccc")]
        );
        assert_eq!(split(&[b"a\n"], 100), vec![line(1, "a")]);
        assert_eq!(split(&[b""], 100), vec![]);
    }

    #[test]
    fn a_line_split_across_many_one_byte_chunks_is_reassembled() {
        let input = b"first line\r\nsecond\nthird";
        let chunks: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(
            split(&chunks, 100),
            vec![line(1, "first line"), line(2, "second"), line(3, "third")]
        );
    }

    #[test]
    fn a_line_over_the_cap_is_reported_once_and_the_next_lines_follow() {
        let long = "x".repeat(50);
        let input = format!("ok\n{long}\r\nafter\n{long}");
        assert_eq!(
            split(&[input.as_bytes()], 10),
            vec![
                line(1, "ok"),
                Item::TooLong(2, 50),
                line(3, "after"),
                Item::TooLong(4, 50)
            ]
        );
    }

    #[test]
    fn a_long_line_spanning_chunks_is_never_buffered_past_the_cap() {
        let long = "y".repeat(1000);
        let input = format!("a\n{long}\r\nb\n");
        for size in [1, 3, 7, 64, 999] {
            let chunks: Vec<&[u8]> = input.as_bytes().chunks(size).collect();
            let mut splitter = LineSplitter::new(10);
            let mut items = Vec::new();
            for chunk in &chunks {
                splitter.push(chunk, |item| {
                    items.push(match item {
                        LineItem::Line { number, bytes } => Item::Line(number, bytes.to_vec()),
                        LineItem::TooLong { number, len } => Item::TooLong(number, len),
                    })
                });
                assert!(splitter.partial.capacity() <= 64, "chunk size {size}");
            }
            assert_eq!(
                items,
                vec![line(1, "a"), Item::TooLong(2, 1000), line(3, "b")],
                "chunk size {size}"
            );
        }
    }

    #[test]
    fn a_line_exactly_at_the_cap_passes_even_with_crlf_split_across_chunks() {
        assert_eq!(
            split(&[b"0123456789\r", b"\nnext"], 10),
            vec![line(1, "0123456789"), line(2, "next")]
        );
        assert_eq!(
            split(&[b"0123456789A\r", b"\n"], 10),
            vec![Item::TooLong(1, 11)]
        );
    }
}
