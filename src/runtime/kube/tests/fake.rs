//! A fake Kubernetes API server for `kube::Client`: every request is recorded and answered by
//! a test-supplied handler, with JSON bodies or streamed bodies (watches) that the test feeds
//! and can cut (a disconnect).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Recorded {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub accept: Option<String>,
    pub body: Option<Value>,
}

impl Recorded {
    /// A query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// True for a watch request.
    pub fn is_watch(&self) -> bool {
        self.param("watch") == Some("true")
    }
}

/// How the fake answers.
pub(crate) enum Reply {
    /// A complete JSON body with a status code.
    Json(u16, Value),
    /// Plain text with a status code.
    Text(u16, String),
    /// A streamed body (one JSON document per chunk); the stream ends when the sender drops.
    Stream(mpsc::UnboundedReceiver<Bytes>),
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// The requests a fake received, in order.
#[derive(Clone, Default)]
pub(crate) struct Log(Arc<Mutex<Vec<Recorded>>>);

impl Log {
    pub fn all(&self) -> Vec<Recorded> {
        self.0.lock().unwrap().clone()
    }

    fn push(&self, request: Recorded) {
        self.0.lock().unwrap().push(request);
    }
}

/// A client whose requests go to `handler`.
pub(crate) fn client(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> (::kube::Client, Log) {
    let handler: Arc<Handler> = Arc::new(handler);
    let log = Log::default();
    let recorder = log.clone();
    let service = tower::service_fn(move |request: http::Request<::kube::client::Body>| {
        let handler = handler.clone();
        let recorder = recorder.clone();
        async move {
            let (parts, body) = request.into_parts();
            let bytes = body.collect().await.map(|collected| collected.to_bytes()).unwrap_or_default();
            let query = parts
                .uri
                .query()
                .map(|query| url::form_urlencoded::parse(query.as_bytes()).into_owned().collect())
                .unwrap_or_default();
            let recorded = Recorded {
                method: parts.method.to_string(),
                path: parts.uri.path().to_owned(),
                query,
                accept: parts
                    .headers
                    .get(http::header::ACCEPT)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned),
                body: if bytes.is_empty() { None } else { serde_json::from_slice(&bytes).ok() },
            };
            recorder.push(recorded.clone());
            let response = match handler(&recorded) {
                Reply::Json(status, value) => respond(status, "application/json", full(value.to_string())),
                Reply::Text(status, text) => respond(status, "text/plain", full(text)),
                Reply::Stream(receiver) => {
                    let frames =
                        UnboundedReceiverStream::new(receiver).map(|chunk| Ok::<_, Infallible>(Frame::data(chunk)));
                    respond(200, "application/json", BoxBody::new(StreamBody::new(frames)))
                }
            };
            Ok::<_, Infallible>(response)
        }
    });
    (::kube::Client::new(service, "default"), log)
}

fn full(text: String) -> BoxBody<Bytes, Infallible> {
    BoxBody::new(Full::new(Bytes::from(text)))
}

fn respond(
    status: u16,
    content_type: &str,
    body: BoxBody<Bytes, Infallible>,
) -> http::Response<BoxBody<Bytes, Infallible>> {
    let mut response = http::Response::new(body);
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_str(content_type).unwrap());
    response
}

/// A Kubernetes `Status` failure body.
pub(crate) fn status(code: u16, reason: &str, message: &str) -> Value {
    serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code})
}

/// A list body.
pub(crate) fn list(kind: &str, api_version: &str, resource_version: &str, items: Vec<Value>) -> Value {
    serde_json::json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": resource_version}, "items": items})
}

/// One watch event line.
pub(crate) fn watch_event(kind: &str, object: Value) -> Bytes {
    Bytes::from(format!("{}\n", serde_json::json!({"type": kind, "object": object})))
}

/// A challenge pod.
pub(crate) struct PodFixture<'a> {
    pub instance: i64,
    pub namespace: &'a str,
    pub resource_version: &'a str,
    pub phase: &'a str,
    pub ready: bool,
    pub waiting: Option<&'a str>,
    pub terminated: Option<(&'a str, i32)>,
    pub created_secs_ago: i64,
}

impl PodFixture<'_> {
    pub fn json(&self) -> Value {
        let created = chrono::Utc::now() - chrono::Duration::seconds(self.created_secs_ago);
        let state = match (self.waiting, self.terminated) {
            (Some(reason), _) => serde_json::json!({"waiting": {"reason": reason, "message": "details"}}),
            (None, Some((reason, code))) => serde_json::json!({"terminated": {"reason": reason, "exitCode": code}}),
            (None, None) => serde_json::json!({"running": {}}),
        };
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": format!("challenge-{}", self.instance),
                "namespace": self.namespace,
                "resourceVersion": self.resource_version,
                "creationTimestamp": created.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "labels": {"ctf/kind": "challenge", "ctf/instance": self.instance.to_string()},
            },
            "spec": {"containers": [{"name": "challenge", "image": "x", "ports": [{"containerPort": 8080, "name": "challenge"}]}]},
            "status": {
                "phase": self.phase,
                "conditions": [{"type": "Ready", "status": if self.ready { "True" } else { "False" }}],
                "containerStatuses": [{"name": "challenge", "ready": self.ready, "restartCount": 0, "image": "x",
                    "imageID": "", "state": state}],
            },
        })
    }
}

/// A challenge namespace of an instance.
pub(crate) fn namespace_json(name: &str, instance: i64, terminating: bool) -> Value {
    let mut value = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"ctf/kind": "challenge", "ctf/instance": instance.to_string()}},
        "status": {"phase": if terminating { "Terminating" } else { "Active" }},
    });
    if terminating {
        value["metadata"]["deletionTimestamp"] = Value::String("2026-01-01T00:00:00Z".into());
    }
    value
}
