//! The relay on its own (`gateway::relay`), between loopback socket pairs, with plaintext and
//! with TLS clients (through the production acceptor): integrity under load in both directions at
//! once (with buffers growing to their maximum), half-close either way, either side closing first,
//! an upstream reset, and a cut. No cache is involved, so these run once rather than per backend.

use std::io;
use std::path::Path;
use std::time::Duration;

use rand::{RngCore, SeedableRng};
use rustls::pki_types::ServerName;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::tls_cases::{TestCert, connector, test_cert};
use crate::gateway::relay::{Moved, relay};
use crate::gateway::tls::ClientStream;

const MIB: usize = 1024 * 1024;
/// No scenario takes more than a few seconds; past this one it hangs, and fails instead.
const HANG: Duration = Duration::from_secs(60);

/// How a relay under test ended: `None` when it was cut.
struct Outcome {
    result: Option<io::Result<()>>,
    moved: Moved,
}

/// The client's end of a relay under test.
trait ClientEnd: AsyncRead + AsyncWrite + Unpin {
    const TLS: bool;
}

impl ClientEnd for TcpStream {
    const TLS: bool = false;
}

impl ClientEnd for tokio_rustls::client::TlsStream<TcpStream> {
    const TLS: bool = true;
}

/// The outer ends of a relay under test: what the client and the upstream hold.
struct Rig<C> {
    client: C,
    upstream: TcpStream,
    /// Sending (or dropping) cuts the relay, as the watchdog does.
    cut: oneshot::Sender<()>,
    relay: JoinHandle<Outcome>,
}

/// Waits for the relay to end on its own; the cut is held (unsent) until then.
async fn finish(cut: oneshot::Sender<()>, relay: JoinHandle<Outcome>) -> Outcome {
    let outcome = relay.await.unwrap();
    drop(cut);
    outcome
}

/// Asserts that the relay ended by itself without an error, having delivered `moved`.
async fn ends_cleanly(cut: oneshot::Sender<()>, relay: JoinHandle<Outcome>, moved: Moved) {
    let outcome = finish(cut, relay).await;
    outcome.result.expect("ended by itself, not cut").expect("no error");
    assert_eq!(outcome.moved, moved);
}

async fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (connected, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (connected.unwrap(), accepted.unwrap().0)
}

/// Relays `client` to `upstream` in a task the way the TCP port does: raced against a cut, with
/// the counts kept outside the relay future.
fn spawn_relay(mut client: ClientStream, mut upstream: TcpStream) -> (oneshot::Sender<()>, JoinHandle<Outcome>) {
    let (cut, cut_signal) = oneshot::channel::<()>();
    let relay = tokio::spawn(async move {
        let mut moved = Moved::default();
        let result = tokio::select! {
            result = relay(&mut client, &mut upstream, 256 * 1024, &mut moved) => Some(result),
            _ = cut_signal => None,
        };
        Outcome { result, moved }
    });
    (cut, relay)
}

async fn plain_rig() -> Rig<TcpStream> {
    let (client, client_inner) = socket_pair().await;
    let (upstream_inner, upstream) = socket_pair().await;
    let (cut, relay) = spawn_relay(ClientStream::Plain(client_inner), upstream_inner);
    Rig { client, upstream, cut, relay }
}

/// A TLS client through the gateway's own acceptor. Before the relay starts, the server side
/// sends a marker that the client reads: that makes the client consume the session tickets sent
/// after the handshake, so that closing it later is a clean close rather than a reset for unread
/// data.
async fn tls_rig(cert: &TestCert) -> Rig<tokio_rustls::client::TlsStream<TcpStream>> {
    let acceptors = crate::gateway::tls::load(Path::new(&cert.cert_file), Path::new(&cert.key_file)).unwrap();
    let (client_outer, client_inner) = socket_pair().await;
    let server_name = ServerName::try_from("localhost").unwrap();
    let (client, server) =
        tokio::join!(connector(cert).connect(server_name, client_outer), acceptors.tcp.accept(client_inner));
    let (mut client, mut server) = (client.unwrap(), server.unwrap());
    server.write_all(b"ready").await.unwrap();
    server.flush().await.unwrap();
    let mut marker = [0_u8; 5];
    client.read_exact(&mut marker).await.unwrap();
    assert_eq!(&marker, b"ready");
    let (upstream_inner, upstream) = socket_pair().await;
    let (cut, relay) = spawn_relay(ClientStream::Tls(Box::new(server)), upstream_inner);
    Rig { client, upstream, cut, relay }
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0_u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

async fn send_and_close<W: AsyncWrite + Unpin>(mut writer: W, bytes: &[u8]) {
    writer.write_all(bytes).await.unwrap();
    writer.shutdown().await.unwrap();
}

async fn read_all<R: AsyncRead + Unpin>(mut reader: R) -> Vec<u8> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).await.unwrap();
    bytes
}

async fn both_directions_at_once_keep_every_byte<C: ClientEnd>(rig: Rig<C>) {
    let for_upstream = random_bytes(8 * MIB, 1);
    let for_client = random_bytes(8 * MIB, 2);
    let Rig { client, upstream, cut, relay } = rig;
    let (client_reader, client_writer) = tokio::io::split(client);
    let (upstream_reader, upstream_writer) = upstream.into_split();
    let transfer = async {
        tokio::join!(
            send_and_close(client_writer, &for_upstream),
            read_all(upstream_reader),
            send_and_close(upstream_writer, &for_client),
            read_all(client_reader),
        )
    };
    let ((), at_upstream, (), at_client) = transfer.await;
    assert_eq!(Sha256::digest(&at_upstream), Sha256::digest(&for_upstream), "client to upstream");
    assert_eq!(Sha256::digest(&at_client), Sha256::digest(&for_client), "upstream to client");
    ends_cleanly(cut, relay, Moved { to_upstream: 8 * MIB as u64, to_client: 8 * MIB as u64 }).await;
}

async fn client_half_close_keeps_the_answer_flowing<C: ClientEnd>(rig: Rig<C>) {
    let Rig { mut client, mut upstream, cut, relay } = rig;
    send_and_close(&mut client, b"question").await;
    assert_eq!(read_all(&mut upstream).await, b"question");
    let answer = random_bytes(MIB, 3);
    let ((), at_client) = tokio::join!(send_and_close(&mut upstream, &answer), read_all(&mut client));
    assert!(at_client == answer, "the answer after the client's EOF arrives whole");
    ends_cleanly(cut, relay, Moved { to_upstream: 8, to_client: MIB as u64 }).await;
}

async fn upstream_half_close_keeps_the_question_flowing<C: ClientEnd>(rig: Rig<C>) {
    let Rig { mut client, mut upstream, cut, relay } = rig;
    let banner = random_bytes(MIB, 4);
    let ((), at_client) = tokio::join!(send_and_close(&mut upstream, &banner), read_all(&mut client));
    assert!(at_client == banner, "the banner arrives whole, then EOF");
    let question = random_bytes(MIB, 5);
    let ((), at_upstream) = tokio::join!(send_and_close(&mut client, &question), read_all(&mut upstream));
    assert!(at_upstream == question, "the question after the upstream's EOF arrives whole");
    ends_cleanly(cut, relay, Moved { to_upstream: MIB as u64, to_client: MIB as u64 }).await;
}

async fn upstream_closing_first_ends_the_relay_once_the_client_closes<C: ClientEnd>(rig: Rig<C>) {
    let Rig { mut client, mut upstream, cut, relay } = rig;
    upstream.write_all(b"bye").await.unwrap();
    drop(upstream);
    assert_eq!(read_all(&mut client).await, b"bye");
    assert!(!relay.is_finished(), "the client's direction is still open");
    client.shutdown().await.unwrap();
    drop(client);
    ends_cleanly(cut, relay, Moved { to_upstream: 0, to_client: 3 }).await;
}

/// For TLS the relay's closing close_notify then meets a client that is gone, which may be an
/// error; the upstream still gets everything and the relay ends.
async fn client_closing_first_ends_the_relay_once_the_upstream_closes<C: ClientEnd>(rig: Rig<C>) {
    let Rig { mut client, mut upstream, cut, relay } = rig;
    send_and_close(&mut client, b"hello").await;
    drop(client);
    assert_eq!(read_all(&mut upstream).await, b"hello");
    assert!(!relay.is_finished(), "the upstream's direction is still open");
    drop(upstream);
    let outcome = finish(cut, relay).await;
    let result = outcome.result.expect("ended by itself, not cut");
    assert_eq!(outcome.moved, Moved { to_upstream: 5, to_client: 0 });
    if !C::TLS {
        result.expect("a plaintext client closing first is a clean end");
    }
}

async fn upstream_reset_is_an_error_and_closes_the_client<C: ClientEnd>(rig: Rig<C>) {
    let Rig { mut client, upstream, cut, relay } = rig;
    socket2::SockRef::from(&upstream).set_linger(Some(Duration::ZERO)).unwrap();
    drop(upstream);
    let outcome = finish(cut, relay).await;
    assert!(outcome.result.expect("ended by itself, not cut").is_err(), "a reset is an error");
    let mut rest = [0_u8; 64];
    assert!(!matches!(client.read(&mut rest).await, Ok(read) if read > 0), "the client is closed");
}

async fn cut_keeps_the_counts_and_closes_both_sides<C: ClientEnd>(rig: Rig<C>) {
    let Rig { mut client, mut upstream, cut, relay } = rig;
    client.write_all(b"ping").await.unwrap();
    client.flush().await.unwrap();
    let mut ping = [0_u8; 4];
    upstream.read_exact(&mut ping).await.unwrap();
    assert_eq!(&ping, b"ping");
    upstream.write_all(b"pong!").await.unwrap();
    let mut pong = [0_u8; 5];
    client.read_exact(&mut pong).await.unwrap();
    assert_eq!(&pong, b"pong!");
    cut.send(()).unwrap();
    let outcome = relay.await.unwrap();
    assert!(outcome.result.is_none(), "cut");
    assert_eq!(outcome.moved, Moved { to_upstream: 4, to_client: 5 });
    assert_eq!(read_all(&mut upstream).await, b"", "the upstream is closed");
    let mut rest = [0_u8; 64];
    assert!(!matches!(client.read(&mut rest).await, Ok(read) if read > 0), "the client is closed");
}

/// One test per scenario and client kind, each failing rather than hanging.
macro_rules! plain_and_tls_clients {
    ($($scenario:ident),* $(,)?) => {
        mod plain {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let rig = super::plain_rig().await;
                    tokio::time::timeout(super::HANG, super::$scenario(rig)).await.expect("no hang");
                }
            )*
        }
        mod tls {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let cert = super::test_cert();
                    let rig = super::tls_rig(&cert).await;
                    tokio::time::timeout(super::HANG, super::$scenario(rig)).await.expect("no hang");
                }
            )*
        }
    };
}

plain_and_tls_clients!(
    both_directions_at_once_keep_every_byte,
    client_half_close_keeps_the_answer_flowing,
    upstream_half_close_keeps_the_question_flowing,
    upstream_closing_first_ends_the_relay_once_the_client_closes,
    client_closing_first_ends_the_relay_once_the_upstream_closes,
    upstream_reset_is_an_error_and_closes_the_client,
    cut_keeps_the_counts_and_closes_both_sides,
);
