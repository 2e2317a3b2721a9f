//! Output capture for local challenge processes: a bounded ring buffer of tagged lines.
//!
//! Every line is stored as `[stdout] …`, `[stderr] …` or `[fctf] …` (notes the runtime adds,
//! such as the exit status), in arrival order. A line longer than [`MAX_LINE_BYTES`] is cut and
//! marked, and the rest of it up to the next newline is dropped, so a process writing a binary
//! blob without newlines costs at most one line's worth of memory. Bytes that are not UTF-8 are
//! replaced (lossy decoding).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::io::{AsyncRead, AsyncReadExt};

/// Longest line kept, in bytes; longer lines are truncated.
pub(super) const MAX_LINE_BYTES: usize = 4096;
/// Marker appended to a truncated line.
pub(super) const TRUNCATED_MARKER: &str = " …[line truncated]";
/// Longest excerpt of output quoted in a failure reason, in characters.
const REASON_EXCERPT_CHARS: usize = 200;

/// Which stream a captured line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn tag(self) -> &'static str {
        match self {
            Stream::Stdout => "[stdout] ",
            Stream::Stderr => "[stderr] ",
        }
    }
}

/// The last lines of one instance's output, shared by its readers, its supervisor and `logs`.
#[derive(Debug, Clone)]
pub(super) struct SharedLogs(Arc<Mutex<LogBuffer>>);

#[derive(Debug)]
struct LogBuffer {
    lines: VecDeque<String>,
    capacity: usize,
    /// The last line the process itself wrote (without tag), for failure reasons.
    last_output: Option<String>,
}

impl SharedLogs {
    /// An empty buffer keeping at most `capacity` lines.
    pub(super) fn new(capacity: usize) -> Self {
        Self(Arc::new(Mutex::new(LogBuffer {
            lines: VecDeque::with_capacity(capacity.min(1024)),
            capacity,
            last_output: None,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, LogBuffer> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends a line the process wrote.
    pub(super) fn push_output(&self, stream: Stream, text: String) {
        let mut buffer = self.lock();
        buffer.push(format!("{}{text}", stream.tag()));
        buffer.last_output = Some(text);
    }

    /// Appends a note from the runtime itself.
    pub(super) fn push_note(&self, text: &str) {
        self.lock().push(format!("[fctf] {text}"));
    }

    /// The last `tail_lines` lines, joined with newlines.
    pub(super) fn tail(&self, tail_lines: usize) -> String {
        let buffer = self.lock();
        let skip = buffer.lines.len().saturating_sub(tail_lines);
        let mut out = String::new();
        for line in buffer.lines.iter().skip(skip) {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(line);
        }
        out
    }

    /// A short excerpt of the last line the process wrote, for a failure reason, with `secret`
    /// (the instance's flag) blanked out since reasons may be shown to players.
    pub(super) fn last_output_excerpt(&self, secret: Option<&str>) -> Option<String> {
        let buffer = self.lock();
        let line = buffer.last_output.as_deref()?.trim();
        if line.is_empty() {
            return None;
        }
        let redacted = match secret {
            Some(secret) if !secret.is_empty() => line.replace(secret, "[redacted]"),
            _ => line.to_owned(),
        };
        let mut excerpt: String = redacted.chars().take(REASON_EXCERPT_CHARS).collect();
        if excerpt.len() < redacted.len() {
            excerpt.push('…');
        }
        Some(excerpt)
    }
}

impl LogBuffer {
    fn push(&mut self, line: String) {
        if self.capacity == 0 {
            return;
        }
        while self.lines.len() >= self.capacity {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }
}

/// Reads `reader` to its end, storing each line in `logs`. Read errors end the capture.
pub(super) async fn capture<R>(mut reader: R, stream: Stream, logs: SharedLogs)
where
    R: AsyncRead + Unpin,
{
    let mut chunk = vec![0u8; 8192];
    let mut line = LineAssembler::default();
    loop {
        let read = match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        line.feed(&chunk[..read], |text| logs.push_output(stream, text));
    }
    line.finish(|text| logs.push_output(stream, text));
}

/// Splits a byte stream into bounded lines.
#[derive(Debug, Default)]
struct LineAssembler {
    current: Vec<u8>,
    truncated: bool,
}

impl LineAssembler {
    fn feed(&mut self, mut bytes: &[u8], mut emit: impl FnMut(String)) {
        while !bytes.is_empty() {
            let (piece, rest, ends_line) = match bytes.iter().position(|byte| *byte == b'\n') {
                Some(newline) => (&bytes[..newline], &bytes[newline + 1..], true),
                None => (bytes, &[][..], false),
            };
            let room = MAX_LINE_BYTES.saturating_sub(self.current.len());
            if piece.len() > room {
                self.current.extend_from_slice(&piece[..room]);
                self.truncated = true;
            } else {
                self.current.extend_from_slice(piece);
            }
            if ends_line {
                emit(self.take());
            }
            bytes = rest;
        }
    }

    fn finish(&mut self, emit: impl FnOnce(String)) {
        if !self.current.is_empty() || self.truncated {
            emit(self.take());
        }
    }

    fn take(&mut self) -> String {
        if self.current.last() == Some(&b'\r') {
            self.current.pop();
        }
        let mut text = String::from_utf8_lossy(&self.current).into_owned();
        if self.truncated {
            text.push_str(TRUNCATED_MARKER);
        }
        self.current.clear();
        self.truncated = false;
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(chunks: &[&[u8]]) -> Vec<String> {
        let mut assembler = LineAssembler::default();
        let mut out = Vec::new();
        for chunk in chunks {
            assembler.feed(chunk, |line| out.push(line));
        }
        assembler.finish(|line| out.push(line));
        out
    }

    #[test]
    fn lines_split_across_chunks_are_joined() {
        assert_eq!(lines_of(&[b"hel", b"lo\nwor", b"ld\r\n", b"tail"]), ["hello", "world", "tail"]);
    }

    #[test]
    fn long_lines_are_truncated_and_marked() {
        let blob = vec![b'a'; MAX_LINE_BYTES * 3];
        let lines = lines_of(&[&blob, &blob, b"\nnext\n"]);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], format!("{}{TRUNCATED_MARKER}", "a".repeat(MAX_LINE_BYTES)));
        assert_eq!(lines[1], "next");
    }

    #[test]
    fn ring_buffer_keeps_the_last_lines() {
        let logs = SharedLogs::new(3);
        for index in 0..10 {
            logs.push_output(Stream::Stdout, format!("line {index}"));
        }
        logs.push_note("exited");
        assert_eq!(logs.tail(10), "[stdout] line 8\n[stdout] line 9\n[fctf] exited");
        assert_eq!(logs.tail(1), "[fctf] exited");
        assert_eq!(logs.tail(0), "");
        assert_eq!(logs.last_output_excerpt(None).as_deref(), Some("line 9"));
    }

    #[test]
    fn excerpt_redacts_the_flag_and_is_bounded() {
        let logs = SharedLogs::new(3);
        logs.push_output(Stream::Stderr, format!("leaked fctf{{s3cret}} {}", "x".repeat(500)));
        let excerpt = logs.last_output_excerpt(Some("fctf{s3cret}")).unwrap();
        assert!(excerpt.starts_with("leaked [redacted] x"));
        assert!(!excerpt.contains("s3cret"));
        assert_eq!(excerpt.chars().count(), REASON_EXCERPT_CHARS + 1);
    }
}
