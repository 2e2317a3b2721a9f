//! The byte relay between a client connection and its upstream, in both directions at once.
//!
//! [`relay`] returns when both directions have ended: when one side sends EOF the write side of
//! the other is shut down and the opposite direction goes on until it ends too (the half-close
//! semantics of `tokio::io::copy_bidirectional`). An error in either direction ends both.
//!
//! **A buffered copy whose buffers grow.** Each direction reads into its own buffer and writes
//! what it read to the other side. A buffer starts at 16 KiB and doubles each time a read fills
//! it, up to `max_buffer` (`gateway.tcp_copy_buf_bytes`): an interactive session (a shell, a
//! prompt) keeps 16 KiB per direction, a bulk transfer soon moves up to the maximum per syscall,
//! which is what the relay's cost per byte depends on. On the loopback benchmark
//! (`tests::bench`, one stream) the relay reached 0.52 of a direct connection with 32 KiB, 0.62
//! with 256 KiB (the default) and 0.63–0.71 with 1 MiB, which would double the memory of a bulk
//! session again.
//!
//! **What bounds the ratio.** On loopback the relay adds a second TCP connection, and the kernel
//! work of a TCP hop, not the copies, is most of its cost: the whole benchmark process spends
//! about 280 ms of CPU per GB direct and about 530 ms relayed. On a machine where client,
//! upstream and gateway share two cores, throughput follows CPU per byte, so about 0.55 is what
//! a user-space relay can reach there.
//!
//! **Why not splice(2).** Plaintext sessions were first relayed through a pipe per direction
//! with splice(2) (no copy through user space; commit "gateway: relay module (splice(2) ...").
//! On the loopback benchmark it needed 15–25 % more CPU per byte than this copy and ran slower
//! with every pipe size tried (64 KiB to 1 MiB); its profile showed more softirq work and more
//! context switches than the copy, which outweighed the copies saved (about a tenth of the
//! relay's cost). It also takes two pipes (four descriptors) per session. It would have to be
//! measured again between real network interfaces before being brought back.
//!
//! **Counting.** [`Moved`] counts the bytes *delivered* to each side (accepted by the
//! destination's write) and is updated as the relay runs, through a `&mut` the caller keeps: a
//! relay cut by the watchdog is simply dropped, and the figures up to the cut stay readable for
//! the access log and metrics. Payload bytes are never looked at or logged.
//!
//! **Other streams.** [`relay_halves`] is the same relay over any split streams, e.g. upgraded
//! HTTP connections (`tokio::io::split` of each side).

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::gateway::tls::ClientStream;

/// The buffer each direction starts with.
const FIRST_BUFFER: usize = 16 * 1024;

/// Bytes delivered to each side so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Moved {
    /// Client to upstream.
    pub(crate) to_upstream: u64,
    /// Upstream to client.
    pub(crate) to_client: u64,
}

/// Relays between `client` and `upstream` until both directions have ended; `moved` is kept up
/// to date meanwhile. Each direction's buffer grows up to `max_buffer` bytes.
pub(crate) async fn relay(
    client: &mut ClientStream,
    upstream: &mut TcpStream,
    max_buffer: usize,
    moved: &mut Moved,
) -> io::Result<()> {
    let upstream = upstream.split();
    match client {
        ClientStream::Plain(client) => relay_halves(client.split(), upstream, max_buffer, moved).await,
        ClientStream::Tls(client) => relay_halves(tokio::io::split(client.as_mut()), upstream, max_buffer, moved).await,
    }
}

/// [`relay`] over the (read, write) halves of each side.
pub(crate) async fn relay_halves<CR, CW, UR, UW>(
    (mut client_read, mut client_write): (CR, CW),
    (mut upstream_read, mut upstream_write): (UR, UW),
    max_buffer: usize,
    moved: &mut Moved,
) -> io::Result<()>
where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    UR: AsyncRead + Unpin,
    UW: AsyncWrite + Unpin,
{
    let Moved { to_upstream, to_client } = moved;
    tokio::try_join!(
        one_way(&mut client_read, &mut upstream_write, max_buffer, to_upstream),
        one_way(&mut upstream_read, &mut client_write, max_buffer, to_client),
    )?;
    Ok(())
}

/// `from` to `to` until EOF on `from`, then shuts down `to`'s write side.
async fn one_way<R, W>(from: &mut R, to: &mut W, max_buffer: usize, moved: &mut u64) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buffer = vec![0_u8; FIRST_BUFFER.min(max_buffer).max(1)];
    loop {
        let read = from.read(&mut buffer).await?;
        if read == 0 {
            return to.shutdown().await;
        }
        let mut sent = 0;
        while sent < read {
            let written = to.write(&buffer[sent..read]).await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            sent += written;
            *moved += written as u64;
        }
        // A TLS writer may keep records back until flushed; this one is about to wait for reads.
        to.flush().await?;
        if read == buffer.len() && buffer.len() < max_buffer {
            buffer.resize(buffer.len().saturating_mul(2).min(max_buffer), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::ReadBuf;

    use super::*;

    /// Serves `chunks` reads of up to `chunk` bytes each (a full buffer when `chunk` is
    /// `usize::MAX`), recording the size of each buffer it was offered.
    struct Source {
        chunk: usize,
        chunks: usize,
        offered: Vec<usize>,
    }

    impl AsyncRead for Source {
        fn poll_read(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            if this.chunks == 0 {
                return Poll::Ready(Ok(()));
            }
            this.chunks -= 1;
            this.offered.push(buf.remaining());
            let len = this.chunk.min(buf.remaining());
            buf.put_slice(&vec![1_u8; len]);
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn buffers_grow_while_reads_fill_them_up_to_the_maximum() {
        let mut bulk = Source { chunk: usize::MAX, chunks: 7, offered: Vec::new() };
        let mut moved = 0;
        one_way(&mut bulk, &mut tokio::io::sink(), 256 * 1024, &mut moved).await.unwrap();
        let kib: Vec<usize> = bulk.offered.iter().map(|size| size / 1024).collect();
        assert_eq!(kib, [16, 32, 64, 128, 256, 256, 256]);
        assert_eq!(moved, (16 + 32 + 64 + 128 + 3 * 256) * 1024);
    }

    #[tokio::test]
    async fn small_reads_keep_the_first_buffer() {
        let mut interactive = Source { chunk: 100, chunks: 50, offered: Vec::new() };
        let mut moved = 0;
        one_way(&mut interactive, &mut tokio::io::sink(), 256 * 1024, &mut moved).await.unwrap();
        assert!(interactive.offered.iter().all(|size| *size == FIRST_BUFFER));
        assert_eq!(moved, 5000);
    }

    #[tokio::test]
    async fn a_maximum_below_the_first_buffer_is_kept() {
        let mut bulk = Source { chunk: usize::MAX, chunks: 3, offered: Vec::new() };
        let mut moved = 0;
        one_way(&mut bulk, &mut tokio::io::sink(), 4096, &mut moved).await.unwrap();
        assert_eq!(bulk.offered, [4096, 4096, 4096]);
    }
}
