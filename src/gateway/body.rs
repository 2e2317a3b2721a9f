//! Request and response bodies of the HTTP proxy.
//!
//! `LimitedBody` streams a client's body to the upstream and fails as soon as it passes the size
//! limit (which also catches chunked bodies that declared nothing), flagging the overflow so the
//! handler answers 413 instead of 502. `ResponseBody` streams the answer to the client, counts
//! its bytes and writes the access log line when it is done (or dropped, when the client left).

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use http::Method;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::gateway::http::ConnInfo;
use crate::gateway::verified::Authorized;

/// The tracing target of access lines.
pub(crate) const ACCESS_TARGET: &str = "fctf::gateway::access";

/// Errors crossing the body boundary.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The client's body went over the limit while streaming.
#[derive(Debug, thiserror::Error)]
#[error("request body too large")]
pub(crate) struct BodyTooLarge;

/// What the handler learns about a request body after it was streamed.
#[derive(Debug, Default)]
pub(crate) struct BodyProgress {
    pub(crate) exceeded: AtomicBool,
    pub(crate) bytes: AtomicU64,
}

/// A request body that stops at `limit` bytes.
pub(crate) struct LimitedBody {
    inner: Incoming,
    seen: u64,
    limit: u64,
    progress: Arc<BodyProgress>,
}

impl LimitedBody {
    pub(crate) fn new(inner: Incoming, limit: u64, progress: Arc<BodyProgress>) -> Self {
        Self { inner, seen: 0, limit, progress }
    }
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    this.seen = this.seen.saturating_add(len);
                    this.progress.bytes.fetch_add(len, Ordering::Relaxed);
                    if this.seen > this.limit {
                        this.progress.exceeded.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(error)) => Poll::Ready(Some(Err(Box::new(error)))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// One access log line, written when the response body is finished; also feeds the metrics.
pub(crate) struct AccessRecord {
    pub(crate) conn: Arc<ConnInfo>,
    pub(crate) started: Instant,
    pub(crate) method: Method,
    /// The path as logged (`None` when access logging is off).
    pub(crate) path: Option<String>,
    pub(crate) status: u16,
    pub(crate) client_ip: IpAddr,
    pub(crate) auth: Option<Arc<Authorized>>,
    pub(crate) request_body: Option<Arc<BodyProgress>>,
}

impl AccessRecord {
    fn finish(&self, bytes_out: u64) {
        let bytes_in = self.request_body.as_ref().map_or(0, |progress| progress.bytes.load(Ordering::Relaxed));
        let metrics = &self.conn.metrics;
        metrics.http_request(self.status);
        if bytes_in > 0 {
            metrics.http_bytes_in.add(bytes_in);
        }
        metrics.http_bytes_out.add(bytes_out);
        let Some(path) = &self.path else { return };
        let auth = self.auth.as_deref();
        let (team, challenge) = auth.and_then(|auth| auth.labels).unzip();
        tracing::info!(
            target: ACCESS_TARGET,
            proto = "http",
            method = %self.method,
            path = %path,
            status = self.status,
            bytes_in,
            bytes_out,
            team,
            challenge,
            ns = auth.map(|auth| auth.claims.route.as_str()),
            instance = auth.and_then(|auth| auth.claims.instance_id).map(crate::domain::InstanceId::get),
            client = %self.client_ip,
            ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        );
    }
}

enum Source {
    Full(Option<Bytes>),
    Upstream(Incoming),
}

/// A response body: the gateway's own or the upstream's, with the access log attached.
pub(crate) struct ResponseBody {
    source: Source,
    sent: u64,
    record: Option<Box<AccessRecord>>,
}

impl ResponseBody {
    /// A body the gateway wrote itself.
    pub(crate) fn full(bytes: Bytes) -> Self {
        Self { source: Source::Full((!bytes.is_empty()).then_some(bytes)), sent: 0, record: None }
    }

    /// The upstream's body.
    pub(crate) fn upstream(body: Incoming) -> Self {
        Self { source: Source::Upstream(body), sent: 0, record: None }
    }

    /// Attaches the access log line.
    pub(crate) fn with_record(mut self, record: AccessRecord) -> Self {
        self.record = Some(Box::new(record));
        self
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = match &mut this.source {
            Source::Full(bytes) => Poll::Ready(bytes.take().map(|bytes| Ok(Frame::data(bytes)))),
            Source::Upstream(body) => match ready!(Pin::new(body).poll_frame(cx)) {
                Some(Ok(frame)) => Poll::Ready(Some(Ok(frame))),
                Some(Err(error)) => Poll::Ready(Some(Err(Box::new(error) as BoxError))),
                None => Poll::Ready(None),
            },
        };
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.sent = this.sent.saturating_add(data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.source {
            Source::Full(bytes) => bytes.is_none(),
            Source::Upstream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Source::Full(None) => SizeHint::with_exact(0),
            Source::Upstream(body) => body.size_hint(),
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            record.finish(self.sent);
        }
    }
}
