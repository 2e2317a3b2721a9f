//! [`Client`]: the one handle through which the api (and the admin API) reach center. In
//! process it calls center's [`ControlService`] directly; otherwise it sends signed HTTP/1.1
//! requests to `center.url` (hyper-util's pooled client, plain HTTP: center is an internal
//! service, reached inside the cluster network).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::dto::*;
use super::signature::{KEY_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use super::{ControlError, ControlService, ErrorBody, paths};
use crate::config::Secrets;
use crate::domain::{ChallengeId, TeamId};

/// Bound on one HTTP call to center (a start waits for the queue's confirmation, a stop for
/// the runtime).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Handle to the deployment center. Cheap to clone.
#[derive(Clone)]
pub struct Client(Transport);

#[derive(Clone)]
enum Transport {
    Local(Arc<dyn ControlService>),
    Remote(Arc<Remote>),
}

struct Remote {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    /// `http://host:port` without a trailing slash.
    base: String,
    secrets: Secrets,
}

/// The body actually sent: the request plus a random nonce, so two identical requests never
/// share a signature (center refuses replayed signatures).
#[derive(Serialize)]
struct Envelope<'a, T> {
    nonce: String,
    #[serde(flatten)]
    request: &'a T,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Transport::Local(_) => f.write_str("control::Client(local)"),
            Transport::Remote(remote) => write!(f, "control::Client({})", remote.base),
        }
    }
}

impl Client {
    /// A client calling `service` in process.
    pub fn local(service: Arc<dyn ControlService>) -> Self {
        Self(Transport::Local(service))
    }

    /// A client sending signed requests to `base_url` (`http://host:port`).
    pub fn remote(base_url: &str, secrets: Secrets) -> Result<Self, ControlError> {
        let base = base_url.trim_end_matches('/');
        let uri: http::Uri = base
            .parse()
            .map_err(|error| ControlError::BadRequest(format!("center.url {base_url:?} is not a URL: {error}")))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(ControlError::BadRequest(format!("center.url {base_url:?} must be http://host:port")));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        let http =
            HyperClient::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(connector);
        Ok(Self(Transport::Remote(Arc::new(Remote { http, base: base.to_owned(), secrets }))))
    }

    /// The client for a process: in process when center was bound here (registered in
    /// `deps.control`), signed HTTP to `center.url` otherwise.
    pub fn for_process(deps: &crate::app::Deps) -> Result<Self, ControlError> {
        match deps.control.get() {
            Some(service) => Ok(Self::local(service)),
            None => Self::remote(&deps.settings.center.url, deps.secrets.clone()),
        }
    }

    /// True when calls stay in this process.
    pub fn is_local(&self) -> bool {
        matches!(self.0, Transport::Local(_))
    }

    /// See [`ControlService::start`].
    pub async fn start(&self, request: StartRequest) -> Result<StartOutcome, ControlError> {
        match &self.0 {
            Transport::Local(service) => service.start(request).await,
            Transport::Remote(remote) => remote.call(paths::START, &request).await,
        }
    }

    /// See [`ControlService::stop`].
    pub async fn stop(&self, request: StopRequest) -> Result<InstanceView, ControlError> {
        match &self.0 {
            Transport::Local(service) => service.stop(request).await,
            Transport::Remote(remote) => remote.call(paths::STOP, &request).await,
        }
    }

    /// See [`ControlService::status`].
    pub async fn status(&self, request: StatusRequest) -> Result<StatusOutcome, ControlError> {
        match &self.0 {
            Transport::Local(service) => service.status(request).await,
            Transport::Remote(remote) => remote.call(paths::STATUS, &request).await,
        }
    }

    /// See [`ControlService::list`].
    pub async fn list(&self, request: ListRequest) -> Result<ListOutcome, ControlError> {
        match &self.0 {
            Transport::Local(service) => service.list(request).await,
            Transport::Remote(remote) => remote.call(paths::LIST, &request).await,
        }
    }

    /// See [`ControlService::logs`].
    pub async fn logs(&self, request: LogsRequest) -> Result<LogsOutcome, ControlError> {
        match &self.0 {
            Transport::Local(service) => service.logs(request).await,
            Transport::Remote(remote) => remote.call(paths::LOGS, &request).await,
        }
    }

    /// See [`ControlService::stop_all`].
    pub async fn stop_all(&self, request: StopAllRequest) -> Result<StopAllOutcome, ControlError> {
        match &self.0 {
            Transport::Local(service) => service.stop_all(request).await,
            Transport::Remote(remote) => remote.call(paths::STOP_ALL, &request).await,
        }
    }

    /// See [`ControlService::build`].
    pub async fn build(&self, request: BuildRequest) -> Result<BuildAccepted, ControlError> {
        match &self.0 {
            Transport::Local(service) => service.build(request).await,
            Transport::Remote(remote) => remote.call(paths::BUILD, &request).await,
        }
    }

    /// See [`ControlService::build_status`].
    pub async fn build_status(&self, request: BuildStatusRequest) -> Result<BuildState, ControlError> {
        match &self.0 {
            Transport::Local(service) => service.build_status(request).await,
            Transport::Remote(remote) => remote.call(paths::BUILD_STATUS, &request).await,
        }
    }

    /// See [`ControlService::build_report`].
    pub async fn build_report(&self, report: BuildReport) -> Result<(), ControlError> {
        match &self.0 {
            Transport::Local(service) => service.build_report(report).await,
            Transport::Remote(remote) => {
                remote.call::<_, serde_json::Value>(paths::BUILD_REPORT, &report).await.map(|_| ())
            }
        }
    }

    /// Stops the team's instance of a challenge after a correct flag (or, with
    /// [`StopReason::AttemptsExhausted`], after its last allowed attempt). Returns true when an
    /// instance was stopped; no instance, or one already stopping, is not an error. Preview
    /// and shared instances are never stopped this way.
    pub async fn stop_after_solve(
        &self,
        team_id: TeamId,
        challenge_id: ChallengeId,
        reason: StopReason,
    ) -> Result<bool, ControlError> {
        if !team_id.is_real() {
            return Ok(false);
        }
        match self.stop(StopRequest { challenge_id, team_id, user_id: None, reason }).await {
            Ok(_) => Ok(true),
            Err(ControlError::NotFound(_) | ControlError::Conflict(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }
}

impl Remote {
    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        request: &Req,
    ) -> Result<Resp, ControlError> {
        let envelope = Envelope { nonce: uuid::Uuid::new_v4().simple().to_string(), request };
        let body = serde_json::to_vec(&envelope).map_err(|error| ControlError::Internal(error.to_string()))?;
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign(self.secrets.internal(), "POST", path, timestamp, &body);
        let http_request = http::Request::post(format!("{}{path}", self.base))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(KEY_ID_HEADER, self.secrets.key_id())
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(Full::new(Bytes::from(body)))
            .map_err(|error| ControlError::Internal(error.to_string()))?;
        let exchange = async {
            let response = self
                .http
                .request(http_request)
                .await
                .map_err(|error| ControlError::Unavailable(format!("deployment center unreachable: {error}")))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|error| ControlError::Unavailable(format!("deployment center connection lost: {error}")))?
                .to_bytes();
            Ok::<_, ControlError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| ControlError::Unavailable("deployment center did not answer in time".to_owned()))??;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|error| {
                ControlError::Internal(format!("unreadable answer from the deployment center: {error}"))
            });
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(ControlError::from_body(status.as_u16(), body)),
            Err(_) => Err(ControlError::from_body(
                status.as_u16(),
                ErrorBody { code: String::new(), message: format!("deployment center answered {status}") },
            )),
        }
    }
}
