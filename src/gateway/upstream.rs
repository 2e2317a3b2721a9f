//! Upstream HTTP/1.1 connections, driven inside the task of the client connection that uses
//! them.
//!
//! A general-purpose pooled client runs every upstream connection as its own task, so each
//! proxied request hops between two tasks (often two worker threads) and back. Here a client
//! connection's upstream connections are polled by a driver future joined with the client
//! connection itself: request, response and body flow without leaving the task, which is what
//! makes the proxy as cheap per request as nginx.
//!
//! Idle connections still outlive their client connection: when it closes, its idle upstream
//! connections move to a shared pool (each then driven by a task of its own) and the next client
//! connection to that upstream adopts one instead of dialling, so clients that open a connection
//! per request do not leave a trail of TIME_WAIT sockets towards the instance. Order of choice:
//! an idle connection of this client connection, then a pooled one, then a new one. A request
//! that could not even be written on a reused connection (the upstream closed it while idle) is
//! retried once on a new connection. Upgrade requests always get a new connection running in its
//! own task, since it becomes the relay's.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use http::uri::Authority;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::gateway::body::LimitedBody;

type Sender = SendRequest<LimitedBody>;
type Driven = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Why a request did not get a response.
#[derive(Debug)]
pub(crate) enum UpstreamError {
    /// No connection could be made.
    Connect(std::io::Error),
    /// The connection failed while the request was in flight.
    Request(hyper::Error),
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(error) => write!(f, "connect: {error}"),
            Self::Request(error) => write!(f, "request: {error}"),
        }
    }
}

/// Idle upstream connections shared by every client connection of the gateway.
pub(crate) struct SharedPool {
    idle: Mutex<HashMap<Authority, Vec<(Sender, Instant)>>>,
    max_idle_per_host: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
}

impl SharedPool {
    pub(crate) fn new(max_idle_per_host: usize, idle_timeout: Duration, connect_timeout: Duration) -> Self {
        Self { idle: Mutex::new(HashMap::new()), max_idle_per_host, idle_timeout, connect_timeout }
    }

    fn take(&self, authority: &Authority) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entries = idle.get_mut(authority)?;
        let mut found = None;
        while let Some((sender, since)) = entries.pop() {
            if since.elapsed() < self.idle_timeout && !sender.is_closed() && sender.is_ready() {
                found = Some(sender);
                break;
            }
        }
        if entries.is_empty() {
            idle.remove(authority);
        }
        found
    }

    fn put(&self, authority: Authority, sender: Sender) {
        if self.max_idle_per_host == 0 || sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entries = idle.entry(authority).or_default();
        entries.retain(|(pooled, since)| since.elapsed() < self.idle_timeout && !pooled.is_closed());
        if entries.len() < self.max_idle_per_host {
            entries.push((sender, Instant::now()));
        }
    }
}

/// One client connection's upstream connections.
pub(crate) struct Upstreams {
    /// Idle connections driven by this client connection's task: (id, authority, sender).
    own_idle: Mutex<Vec<(u64, Authority, Sender)>>,
    /// Idle connections borrowed from the shared pool (driven by their own tasks).
    pooled_idle: Mutex<Vec<(Authority, Sender)>>,
    driver_tx: mpsc::UnboundedSender<(u64, Driven)>,
    next_id: std::sync::atomic::AtomicU64,
}

/// Polls the upstream connections of one client connection; joined with it.
pub(crate) struct Driver {
    rx: mpsc::UnboundedReceiver<(u64, Driven)>,
    connections: FuturesUnordered<Tagged>,
}

/// A driven connection and its id, so that it can be handed to the shared pool.
struct Tagged {
    id: u64,
    future: Option<Driven>,
}

impl Future for Tagged {
    type Output = u64;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<u64> {
        let id = self.id;
        match self.future.as_mut() {
            Some(future) => future.as_mut().poll(cx).map(|()| id),
            None => std::task::Poll::Ready(id),
        }
    }
}

impl Driver {
    /// Drives the connections; never returns while the `Upstreams` lives.
    pub(crate) async fn run(&mut self) {
        loop {
            tokio::select! {
                received = self.rx.recv() => match received {
                    Some((id, future)) => self.connections.push(Tagged { id, future: Some(future) }),
                    None => std::future::pending::<()>().await,
                },
                Some(_) = self.connections.next(), if !self.connections.is_empty() => {}
            }
        }
    }
}

impl Upstreams {
    pub(crate) fn new() -> (Self, Driver) {
        let (driver_tx, rx) = mpsc::unbounded_channel();
        let upstreams = Self {
            own_idle: Mutex::new(Vec::new()),
            pooled_idle: Mutex::new(Vec::new()),
            driver_tx,
            next_id: std::sync::atomic::AtomicU64::new(0),
        };
        (upstreams, Driver { rx, connections: FuturesUnordered::new() })
    }

    /// Sends `request` to `authority` and returns the response head.
    pub(crate) async fn send(
        &self,
        pool: &SharedPool,
        authority: &Authority,
        request: Request<LimitedBody>,
        upgrade: bool,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut request = request;
        loop {
            let (mut sender, origin) = match self.checkout(pool, authority, upgrade) {
                Some(found) => found,
                None => self.connect(pool, authority, upgrade).await?,
            };
            let reused = !matches!(origin, Origin::New(_));
            if sender.ready().await.is_err() {
                if reused {
                    continue;
                }
                return Err(UpstreamError::Connect(std::io::Error::other("connection closed before use")));
            }
            match sender.try_send_request(request).await {
                Ok(response) => {
                    if !upgrade {
                        self.checkin(authority, sender, origin);
                    }
                    return Ok(response);
                }
                Err(mut error) => match error.take_message() {
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(UpstreamError::Request(error.into_error())),
                },
            }
        }
    }

    fn checkout(&self, pool: &SharedPool, authority: &Authority, upgrade: bool) -> Option<(Sender, Origin)> {
        if upgrade {
            return None;
        }
        {
            let mut own = self.own_idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(index) = own.iter().position(|(_, idle_authority, _)| idle_authority == authority) {
                let (id, _, sender) = own.swap_remove(index);
                if !sender.is_closed() {
                    return Some((sender, Origin::Own(id)));
                }
            }
        }
        {
            let mut pooled = self.pooled_idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(index) = pooled.iter().position(|(idle_authority, _)| idle_authority == authority) {
                let (_, sender) = pooled.swap_remove(index);
                if !sender.is_closed() {
                    return Some((sender, Origin::Pooled));
                }
            }
        }
        pool.take(authority).map(|sender| (sender, Origin::Pooled))
    }

    fn checkin(&self, authority: &Authority, sender: Sender, origin: Origin) {
        match origin {
            Origin::Own(id) | Origin::New(id) => {
                let mut own = self.own_idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                own.push((id, authority.clone(), sender));
            }
            Origin::Pooled => {
                let mut pooled = self.pooled_idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                pooled.push((authority.clone(), sender));
            }
        }
    }

    async fn connect(
        &self,
        pool: &SharedPool,
        authority: &Authority,
        upgrade: bool,
    ) -> Result<(Sender, Origin), UpstreamError> {
        let stream =
            match tokio::time::timeout(pool.connect_timeout, TcpStream::connect(authority_addr(authority))).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return Err(UpstreamError::Connect(error)),
                Err(_elapsed) => return Err(UpstreamError::Connect(std::io::ErrorKind::TimedOut.into())),
            };
        let _ = stream.set_nodelay(true);
        let (sender, connection) =
            http1::Builder::new().handshake(TokioIo::new(stream)).await.map_err(UpstreamError::Request)?;
        let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if upgrade {
            tokio::spawn(async move {
                if let Err(error) = connection.with_upgrades().await {
                    tracing::debug!(%error, "upstream connection (upgrade) ended with an error");
                }
            });
        } else {
            let driven: Driven = Box::pin(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "upstream connection ended with an error");
                }
            });
            if self.driver_tx.send((id, driven)).is_err() {
                return Err(UpstreamError::Connect(std::io::Error::other("client connection is closing")));
            }
        }
        Ok((sender, Origin::New(id)))
    }

    /// Hands the idle connections to the shared pool when the client connection ends: the
    /// connections this task drove get a task of their own.
    pub(crate) fn release_into(self, mut driver: Driver, pool: &SharedPool) {
        let own = self.own_idle.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
        let pooled = self.pooled_idle.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (authority, sender) in pooled {
            pool.put(authority, sender);
        }
        if own.is_empty() {
            return;
        }
        let mut futures: HashMap<u64, Driven> = HashMap::new();
        for mut tagged in std::mem::take(&mut driver.connections).into_iter() {
            if let Some(future) = tagged.future.take() {
                futures.insert(tagged.id, future);
            }
        }
        while let Ok((id, future)) = driver.rx.try_recv() {
            futures.insert(id, future);
        }
        for (id, authority, sender) in own {
            if let Some(future) = futures.remove(&id)
                && !sender.is_closed()
            {
                tokio::spawn(future);
                pool.put(authority, sender);
            }
        }
    }
}

/// Where a checked-out connection came from.
#[derive(Clone, Copy)]
enum Origin {
    /// Driven by this client connection, reused.
    Own(u64),
    /// Driven by this client connection, just dialled.
    New(u64),
    /// Driven by its own task.
    Pooled,
}

/// `host:port` for the resolver (port 80 when the route names none).
fn authority_addr(authority: &Authority) -> String {
    match authority.port_u16() {
        Some(_) => authority.as_str().to_owned(),
        None => format!("{}:80", authority.as_str()),
    }
}
