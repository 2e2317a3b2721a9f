//! Message bodies between the client and the upstream, and the access record of a request.
//!
//! [`copy_body`] moves one body from a source to a sink by its framing: a known length is
//! copied as it comes; a chunked body is decoded and re-chunked (so the next hop parses exactly
//! what the gateway parsed); a body that lasts until the upstream closes is re-chunked for an
//! HTTP/1.1 client. Bytes already read past a head come first, and bytes waiting to be written
//! (the head going the same way) leave with the first piece of the body, so a small response
//! takes one write. The request side is limited to `http_max_body_bytes` (a chunked body that
//! declared nothing is stopped as soon as it passes the limit). A source silent for longer than
//! `upstream_response_timeout_secs` ends the copy (nginx's `client_body_timeout` and
//! `proxy_read_timeout`), so a client trickling a body cannot hold an upstream connection open
//! forever.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::gateway::metrics::GatewayMetrics;
use crate::gateway::verified::Authorized;
use crate::gateway::wire::{ChunkedDecoder, Framing, LAST_CHUNK, encode_chunk};

/// The tracing target of access lines.
pub(crate) const ACCESS_TARGET: &str = "fctf::gateway::access";

/// Reads never ask for less room than this.
const MIN_READ: usize = 4 * 1024;
/// Pending bytes and data together below this size are copied into one write.
const COALESCE_BELOW: usize = 16 * 1024;

/// Why a body was not copied whole.
#[derive(Debug)]
pub(crate) enum CopyError {
    /// Reading the source failed, or it ended early.
    Read(io::Error),
    /// Writing the sink failed.
    Write(io::Error),
    /// The chunked coding was malformed.
    Malformed,
    /// The body passed the limit.
    TooLarge,
}

impl std::fmt::Display for CopyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read(error) => write!(f, "read: {error}"),
            Self::Write(error) => write!(f, "write: {error}"),
            Self::Malformed => f.write_str("malformed chunked body"),
            Self::TooLarge => f.write_str("body too large"),
        }
    }
}

/// How a body is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Out {
    /// As its data only (a known length, or until the connection closes).
    Plain,
    /// Re-chunked.
    Chunked,
}

/// One body on its way: where its bytes come from and go to.
pub(crate) struct BodyCopy<'a, R, W> {
    pub(crate) source: &'a mut R,
    /// Bytes of the source already read (consumed as the body is copied; what follows the body
    /// stays).
    pub(crate) buffer: &'a mut BytesMut,
    pub(crate) sink: &'a mut W,
    /// Bytes to write before the body (a head); emptied.
    pub(crate) pending: &'a mut BytesMut,
    pub(crate) read_size: usize,
    pub(crate) limit: u64,
    /// The longest the source may stay silent.
    pub(crate) idle_timeout: Duration,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> BodyCopy<'_, R, W> {
    /// Copies the body; returns its size (data bytes).
    pub(crate) async fn run(mut self, framing: Framing, out: Out) -> Result<u64, CopyError> {
        match framing {
            Framing::None => {
                self.flush_pending().await?;
                Ok(0)
            }
            Framing::Length(length) => self.copy_length(length).await,
            Framing::Chunked => self.copy_chunked(out).await,
            Framing::UntilClose => self.copy_until_close(out).await,
        }
    }

    async fn flush_pending(&mut self) -> Result<(), CopyError> {
        if !self.pending.is_empty() {
            self.sink.write_all(self.pending).await.map_err(CopyError::Write)?;
            self.pending.clear();
        }
        Ok(())
    }

    /// Reads more of the source (up to `want` bytes, at most `read_size`); `Ok(false)` at its
    /// end.
    async fn fill(&mut self, want: u64) -> Result<bool, CopyError> {
        let want = usize::try_from(want).unwrap_or(usize::MAX).clamp(MIN_READ, self.read_size.max(MIN_READ));
        self.buffer.reserve(want);
        let read = match tokio::time::timeout(self.idle_timeout, self.source.read_buf(self.buffer)).await {
            Ok(read) => read.map_err(CopyError::Read)?,
            Err(_elapsed) => return Err(CopyError::Read(io::ErrorKind::TimedOut.into())),
        };
        Ok(read > 0)
    }

    async fn copy_length(mut self, length: u64) -> Result<u64, CopyError> {
        if length > self.limit {
            return Err(CopyError::TooLarge);
        }
        let mut remaining = length;
        loop {
            let take = usize::try_from(remaining).unwrap_or(usize::MAX).min(self.buffer.len());
            if take > 0 {
                write_after(self.sink, self.pending, &self.buffer[..take]).await?;
                self.buffer.advance(take);
                remaining -= take as u64;
            }
            if remaining == 0 {
                self.flush_pending().await?;
                return Ok(length);
            }
            self.flush_pending().await?;
            if !self.fill(remaining).await? {
                return Err(CopyError::Read(io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    async fn copy_chunked(mut self, out: Out) -> Result<u64, CopyError> {
        let mut decoder = ChunkedDecoder::default();
        let mut total: u64 = 0;
        loop {
            let pending = &mut *self.pending;
            let consumed = decoder
                .decode(self.buffer, |data| {
                    total += data.len() as u64;
                    match out {
                        Out::Chunked => encode_chunk(pending, data),
                        Out::Plain => pending.extend_from_slice(data),
                    }
                })
                .map_err(|_| CopyError::Malformed)?;
            self.buffer.advance(consumed);
            if total > self.limit {
                return Err(CopyError::TooLarge);
            }
            if decoder.is_done() {
                if out == Out::Chunked {
                    self.pending.extend_from_slice(LAST_CHUNK);
                }
                self.flush_pending().await?;
                return Ok(total);
            }
            self.flush_pending().await?;
            if !self.fill(u64::MAX).await? {
                return Err(CopyError::Read(io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    async fn copy_until_close(mut self, out: Out) -> Result<u64, CopyError> {
        let mut total: u64 = 0;
        loop {
            if !self.buffer.is_empty() {
                total += self.buffer.len() as u64;
                if total > self.limit {
                    return Err(CopyError::TooLarge);
                }
                match out {
                    Out::Chunked => encode_chunk(self.pending, self.buffer),
                    Out::Plain => self.pending.extend_from_slice(self.buffer),
                }
                self.buffer.clear();
            }
            self.flush_pending().await?;
            if !self.fill(u64::MAX).await? {
                if out == Out::Chunked {
                    self.pending.extend_from_slice(LAST_CHUNK);
                }
                self.flush_pending().await?;
                return Ok(total);
            }
        }
    }
}

/// Writes `pending` and then `data`: copied behind the pending bytes when small (one write),
/// else in one vectored write. Empties `pending`.
async fn write_after<W: AsyncWrite + Unpin>(
    sink: &mut W,
    pending: &mut BytesMut,
    data: &[u8],
) -> Result<(), CopyError> {
    if pending.is_empty() {
        return sink.write_all(data).await.map_err(CopyError::Write);
    }
    if pending.len() + data.len() <= COALESCE_BELOW || !sink.is_write_vectored() {
        pending.extend_from_slice(data);
        sink.write_all(pending).await.map_err(CopyError::Write)?;
        pending.clear();
        return Ok(());
    }
    let (mut head, mut data) = (&pending[..], data);
    while !head.is_empty() || !data.is_empty() {
        let slices = [io::IoSlice::new(head), io::IoSlice::new(data)];
        let written = sink.write_vectored(&slices).await.map_err(CopyError::Write)?;
        if written == 0 {
            return Err(CopyError::Write(io::ErrorKind::WriteZero.into()));
        }
        let from_head = written.min(head.len());
        head = &head[from_head..];
        data = &data[written - from_head..];
    }
    pending.clear();
    Ok(())
}

/// One access log line, written when the request is done; also feeds the metrics.
pub(crate) struct AccessRecord {
    pub(crate) started: Instant,
    pub(crate) method: String,
    /// The path as logged (`None` when access logging is off).
    pub(crate) path: Option<String>,
    pub(crate) status: u16,
    pub(crate) client_ip: IpAddr,
    pub(crate) auth: Option<Arc<Authorized>>,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
}

impl AccessRecord {
    /// Counts the request and writes its access line (when that log target is enabled).
    pub(crate) fn finish(&self, metrics: &GatewayMetrics) {
        metrics.http_request(self.status);
        if self.bytes_in > 0 {
            metrics.http_bytes_in.add(self.bytes_in);
        }
        metrics.http_bytes_out.add(self.bytes_out);
        let Some(path) = &self.path else { return };
        let auth = self.auth.as_deref();
        let (team, challenge) = auth.and_then(|auth| auth.labels).unzip();
        tracing::info!(
            target: ACCESS_TARGET,
            proto = "http",
            method = %self.method,
            path = %path,
            status = self.status,
            bytes_in = self.bytes_in,
            bytes_out = self.bytes_out,
            team,
            challenge,
            ns = auth.map(|auth| auth.claims.route.as_str()),
            instance = auth.and_then(|auth| auth.claims.instance_id).map(crate::domain::InstanceId::get),
            client = %self.client_ip,
            ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn copy(input: &[u8], framing: Framing, out: Out, limit: u64) -> (Result<u64, CopyError>, Vec<u8>, Vec<u8>) {
        let mut source: &[u8] = input;
        let mut buffer = BytesMut::new();
        let mut sink = Vec::new();
        let mut pending = BytesMut::from(&b"HEAD|"[..]);
        let result = BodyCopy {
            source: &mut source,
            buffer: &mut buffer,
            sink: &mut sink,
            pending: &mut pending,
            read_size: 7,
            limit,
            idle_timeout: Duration::from_secs(5),
        }
        .run(framing, out)
        .await;
        let mut rest = buffer.to_vec();
        rest.extend_from_slice(source);
        (result, sink, rest)
    }

    #[tokio::test]
    async fn lengths_copy_exactly_and_leave_the_rest() {
        let (result, sink, rest) = copy(b"hello worldNEXT", Framing::Length(11), Out::Plain, 100).await;
        assert_eq!(result.unwrap(), 11);
        assert_eq!(sink, b"HEAD|hello world");
        assert_eq!(rest, b"NEXT");
        let (result, sink, _) = copy(b"", Framing::None, Out::Plain, 100).await;
        assert_eq!(result.unwrap(), 0);
        assert_eq!(sink, b"HEAD|");
        let (short, _, _) = copy(b"abc", Framing::Length(5), Out::Plain, 100).await;
        assert!(matches!(short, Err(CopyError::Read(_))));
        let (over, sink, _) = copy(b"abcdef", Framing::Length(6), Out::Plain, 5).await;
        assert!(matches!(over, Err(CopyError::TooLarge)));
        assert!(sink.is_empty(), "nothing is sent for a declared length over the limit");
    }

    #[tokio::test]
    async fn chunked_bodies_are_rechunked_or_unwrapped() {
        let body = b"3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: 1\r\n\r\nNEXT";
        let (result, sink, rest) = copy(body, Framing::Chunked, Out::Chunked, 100).await;
        assert_eq!(result.unwrap(), 5);
        let rechunked = String::from_utf8(sink[5..].to_vec()).unwrap();
        assert!(rechunked.ends_with("0\r\n\r\n") && !rechunked.contains("x=y") && !rechunked.contains("Trailer"));
        assert_eq!(rest, b"NEXT");
        let (result, sink, _) = copy(body, Framing::Chunked, Out::Plain, 100).await;
        assert_eq!(result.unwrap(), 5);
        assert_eq!(sink, b"HEAD|abcde");
        let (over, _, _) = copy(body, Framing::Chunked, Out::Chunked, 4).await;
        assert!(matches!(over, Err(CopyError::TooLarge)));
        let (bad, _, _) = copy(b"3\r\nabcX\r\n", Framing::Chunked, Out::Chunked, 100).await;
        assert!(matches!(bad, Err(CopyError::Malformed)));
        let (cut, _, _) = copy(b"3\r\nab", Framing::Chunked, Out::Chunked, 100).await;
        assert!(matches!(cut, Err(CopyError::Read(_))));
    }

    #[tokio::test]
    async fn until_close_bodies_end_with_the_source() {
        let (result, sink, _) = copy(b"all of it", Framing::UntilClose, Out::Chunked, 100).await;
        assert_eq!(result.unwrap(), 9);
        let mut decoder = ChunkedDecoder::default();
        let mut decoded = Vec::new();
        decoder.decode(&sink[5..], |data| decoded.extend_from_slice(data)).unwrap();
        assert!(decoder.is_done());
        assert_eq!(decoded, b"all of it");
        let (result, sink, _) = copy(b"all of it", Framing::UntilClose, Out::Plain, 100).await;
        assert_eq!(result.unwrap(), 9);
        assert_eq!(sink, b"HEAD|all of it");
    }
}
