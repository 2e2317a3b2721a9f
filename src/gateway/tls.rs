//! TLS (rustls with the `ring` provider), auto-detected per connection on both ports.
//!
//! Detection peeks at the first byte without consuming it: a TLS record starts with `0x16`
//! (handshake), which is never the first byte of an HTTP request or of a token line. On the
//! HTTP port the client always speaks first, so the peek waits up to the header timeout. On the
//! TCP port a plaintext client waits for our prompt, so the peek waits only
//! `tls_detect_timeout_ms`; silence means plaintext and the prompt goes out. Without a
//! configured certificate nothing is peeked at all. TLS 1.2 and 1.3 only.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Server-side TLS acceptors for the two ports (the HTTP one advertises ALPN `http/1.1`).
#[derive(Clone)]
pub(crate) struct TlsAcceptors {
    pub(crate) http: TlsAcceptor,
    pub(crate) tcp: TlsAcceptor,
}

/// Loads the certificate chain and key; errors name the file.
pub(crate) fn load(cert_file: &Path, key_file: &Path) -> anyhow::Result<TlsAcceptors> {
    use anyhow::Context as _;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .with_context(|| format!("cannot read gateway.tls_cert_file {}", cert_file.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("gateway.tls_cert_file {} is not PEM", cert_file.display()))?;
    if certs.is_empty() {
        anyhow::bail!("gateway.tls_cert_file {} holds no certificate", cert_file.display());
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .with_context(|| format!("cannot read a private key from gateway.tls_key_file {}", key_file.display()))?;
    let build = |alpn: Vec<Vec<u8>>| -> anyhow::Result<TlsAcceptor> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .context("tls protocol versions")?
            .with_no_client_auth()
            .with_single_cert(certs.clone(), key.clone_key())
            .context("the gateway certificate and key do not form a usable pair")?;
        config.alpn_protocols = alpn;
        Ok(TlsAcceptor::from(Arc::new(config)))
    };
    Ok(TlsAcceptors { http: build(vec![b"http/1.1".to_vec()])?, tcp: build(Vec::new())? })
}

/// What the first byte says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sniffed {
    Tls,
    Plain,
    /// The peer closed before sending anything.
    Closed,
}

/// Peeks at the first byte for up to `wait`; silence counts as plaintext.
pub(crate) async fn sniff(stream: &TcpStream, wait: Duration) -> Sniffed {
    let mut first = [0_u8; 1];
    match tokio::time::timeout(wait, stream.peek(&mut first)).await {
        Err(_elapsed) => Sniffed::Plain,
        Ok(Ok(0)) | Ok(Err(_)) => Sniffed::Closed,
        Ok(Ok(_)) if first[0] == TLS_HANDSHAKE_RECORD => Sniffed::Tls,
        Ok(Ok(_)) => Sniffed::Plain,
    }
}

/// A client connection, plaintext or TLS.
pub(crate) enum ClientStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl ClientStream {
    /// True for TLS.
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(_))
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(stream) => stream.is_write_vectored(),
            Self::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Detects and, for TLS, completes the handshake within `handshake_timeout`. `None` when the
/// peer closed, sent garbage or was too slow.
pub(crate) async fn accept(
    stream: TcpStream,
    acceptor: Option<&TlsAcceptor>,
    detect_wait: Duration,
    handshake_timeout: Duration,
) -> Option<ClientStream> {
    let Some(acceptor) = acceptor else { return Some(ClientStream::Plain(stream)) };
    match sniff(&stream, detect_wait).await {
        Sniffed::Closed => None,
        Sniffed::Plain => Some(ClientStream::Plain(stream)),
        Sniffed::Tls => match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => Some(ClientStream::Tls(Box::new(tls))),
            Ok(Err(error)) => {
                tracing::debug!(%error, "tls handshake failed");
                None
            }
            Err(_elapsed) => {
                tracing::debug!("tls handshake timed out");
                None
            }
        },
    }
}
