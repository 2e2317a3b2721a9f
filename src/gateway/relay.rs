//! The byte relay between a client connection and its upstream, in both directions at once.
//!
//! [`relay`] returns when both directions have ended: when one side sends EOF the write side of
//! the other is shut down and the opposite direction goes on until it ends too (the half-close
//! semantics of `tokio::io::copy_bidirectional`). An error in either direction ends both.
//!
//! **Plaintext clients on Linux: splice(2).** Each direction owns a pipe; bytes move from the
//! source socket into the pipe and from the pipe into the destination socket without ever being
//! copied into user space, which roughly halves the CPU a relayed byte costs compared with a
//! read/write loop through a buffer. The sockets stay registered with tokio: every splice runs
//! inside `TcpStream::try_io`, so `EAGAIN` clears the readiness it was tried under and the task
//! sleeps until epoll reports the socket again. A direction only splices into an *empty* pipe
//! and then drains it before reading more. That keeps `EAGAIN` unambiguous: from an empty pipe's
//! point of view it can only mean "the socket has nothing to read" (a full pipe would also answer
//! `EAGAIN` and clearing the socket's readiness then could stall the direction for good), and
//! draining a non-empty pipe can only block on the destination socket. The sockets' own buffers
//! keep both ends busy meanwhile, so the strict alternation costs no throughput worth having.
//!
//! Each session thus holds two more pipes (four file descriptors); when they cannot be created
//! (descriptor limits) the session falls back to the buffered copy below. Pipes keep the kernel's
//! default size: every pipe page counts against the user's `fs.pipe-user-pages-soft`, past which
//! the kernel creates smaller pipes (that still work, just with more syscalls per byte).
//!
//! **TLS clients (and anywhere splice is not available): a buffered copy** through
//! `copy_bidirectional_with_sizes`, with `buffer` bytes per direction (the kernel cannot decrypt
//! for us, so the bytes have to pass through user space anyway).
//!
//! **Counting.** [`Moved`] counts the bytes *delivered* to each side (spliced out of the pipe, or
//! accepted by the destination's `poll_write`) and is updated as the relay runs, through a
//! `&mut` the caller keeps: a relay cut by the watchdog is simply dropped, and the figures up to
//! the cut stay readable for the access log and metrics. Payload bytes are never looked at or
//! logged.
//!
//! **Upgraded HTTP connections** can use [`relay`] too once both sides are unwrapped to their
//! sockets (hyper's `Upgraded::downcast`); the bytes hyper had already buffered (`Parts::read_buf`
//! of each side) must be written to the other side first, as the TCP port does with the bytes
//! that followed the token line.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::gateway::tls::ClientStream;

/// Bytes delivered to each side so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Moved {
    /// Client to upstream.
    pub(crate) to_upstream: u64,
    /// Upstream to client.
    pub(crate) to_client: u64,
}

/// Relays between `client` and `upstream` until both directions have ended; `moved` is kept up
/// to date meanwhile. `buffer` is the per-direction buffer of the buffered copy (TLS clients).
pub(crate) async fn relay(
    client: &mut ClientStream,
    upstream: &mut TcpStream,
    buffer: usize,
    moved: &mut Moved,
) -> io::Result<()> {
    match client {
        ClientStream::Plain(client) => {
            #[cfg(target_os = "linux")]
            match (splice::Pipe::new(), splice::Pipe::new()) {
                (Ok(inbound), Ok(outbound)) => {
                    return splice::relay(client, upstream, [&inbound, &outbound], moved).await;
                }
                (Err(error), _) | (_, Err(error)) => {
                    tracing::debug!(%error, "no pipes for splice, relaying through buffers");
                }
            }
            copy(client, upstream, buffer, moved).await
        }
        ClientStream::Tls(client) => copy(client.as_mut(), upstream, buffer, moved).await,
    }
}

/// The buffered relay, for any pair of streams: `copy_bidirectional_with_sizes` with the
/// delivered bytes counted into `moved`.
pub(crate) async fn copy<C, U>(client: &mut C, upstream: &mut U, buffer: usize, moved: &mut Moved) -> io::Result<()>
where
    C: AsyncRead + AsyncWrite + Unpin + ?Sized,
    U: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let Moved { to_upstream, to_client } = moved;
    let mut client = CountWrites { inner: client, written: to_client };
    let mut upstream = CountWrites { inner: upstream, written: to_upstream };
    tokio::io::copy_bidirectional_with_sizes(&mut client, &mut upstream, buffer, buffer).await?;
    Ok(())
}

/// Counts the bytes written to a stream into a counter owned elsewhere.
struct CountWrites<'a, S: ?Sized> {
    inner: &'a mut S,
    written: &'a mut u64,
}

impl<S: AsyncRead + Unpin + ?Sized> AsyncRead for CountWrites<'_, S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin + ?Sized> AsyncWrite for CountWrites<'_, S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut *this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = &polled {
            *this.written += *written as u64;
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(target_os = "linux")]
mod splice {
    use std::io;
    use std::net::Shutdown;
    use std::os::fd::OwnedFd;

    use rustix::pipe::{PipeFlags, SpliceFlags};
    use tokio::io::Interest;
    use tokio::net::TcpStream;

    use super::Moved;

    /// Asked for per splice into an empty pipe; the pipe's capacity is the real bound.
    const SPLICE_LEN: usize = 1 << 20;

    /// A non-blocking pipe carrying one direction.
    pub(super) struct Pipe {
        read: OwnedFd,
        write: OwnedFd,
    }

    impl Pipe {
        pub(super) fn new() -> io::Result<Self> {
            let (read, write) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
            Ok(Self { read, write })
        }
    }

    /// Both directions at once, each through its own pipe: `[client to upstream, upstream to
    /// client]`.
    pub(super) async fn relay(
        client: &TcpStream,
        upstream: &TcpStream,
        [inbound, outbound]: [&Pipe; 2],
        moved: &mut Moved,
    ) -> io::Result<()> {
        let Moved { to_upstream, to_client } = moved;
        tokio::try_join!(
            one_way(client, upstream, inbound, to_upstream),
            one_way(upstream, client, outbound, to_client)
        )?;
        Ok(())
    }

    /// `from` to `to` until EOF on `from`, then shuts down `to`'s write side.
    async fn one_way(from: &TcpStream, to: &TcpStream, pipe: &Pipe, moved: &mut u64) -> io::Result<()> {
        let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
        loop {
            // The pipe is empty here, so EAGAIN can only come from `from`.
            let filled = loop {
                from.readable().await?;
                let spliced = from.try_io(Interest::READABLE, || {
                    Ok(rustix::pipe::splice(from, None, &pipe.write, None, SPLICE_LEN, flags)?)
                });
                match spliced {
                    Ok(filled) => break filled,
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    Err(error) => return Err(error),
                }
            };
            if filled == 0 {
                return socket2::SockRef::from(to).shutdown(Shutdown::Write);
            }
            let mut in_pipe = filled;
            while in_pipe > 0 {
                to.writable().await?;
                let spliced = to.try_io(Interest::WRITABLE, || {
                    Ok(rustix::pipe::splice(&pipe.read, None, to, None, in_pipe, flags)?)
                });
                match spliced {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(sent) => {
                        in_pipe -= sent;
                        *moved += sent as u64;
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    Err(error) => return Err(error),
                }
            }
        }
    }
}
