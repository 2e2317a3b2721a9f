//! Notifications for players (fctf decision 18): the list, and a Server-Sent Events stream for
//! live updates.
//!
//! A player sees notifications addressed to everyone, to itself or to its team. The stream
//! (`GET /api/Notifications/stream`) authenticates like every endpoint (a bearer header, or a
//! `token` query parameter since browsers' `EventSource` cannot send headers), starts after the
//! `Last-Event-ID` header or `last_id` parameter (by default after the newest notification),
//! and sends each new notification as an event `notification` with its id. It wakes on the
//! `notifications` change signal (`signals::notification_published`, sent by whoever creates
//! one) and polls the store every few seconds as a backstop; the session is re-checked on every
//! wake-up and the stream ends when it is no longer valid.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};

use super::context::Contestant;
use super::error::{ApiError, ApiResult, iso_time, ok};
use super::session::{Player, authenticate};
use super::signals::NOTIFICATION_TOPIC;
use crate::api::ApiState;
use crate::cache::ChangeStream;
use crate::store::Notification;

/// Backstop poll period of a live stream.
const POLL_INTERVAL: Duration = Duration::from_secs(5);

fn visible_to(notification: &Notification, player: &Player) -> bool {
    let target = &notification.notification;
    match (target.user_id, target.team_id) {
        (None, None) => true,
        (Some(user), _) if user == player.user_id => true,
        (_, Some(team)) if Some(team) == player.team_id => true,
        _ => false,
    }
}

fn render(notification: &Notification) -> Value {
    json!({
        "id": notification.id,
        "title": notification.notification.title,
        "content": notification.notification.content,
        "type": notification.notification.kind,
        "sound": notification.notification.sound,
        "date": iso_time(notification.date),
    })
}

/// `GET /api/Notifications`.
pub async fn list(State(state): State<ApiState>, player: Player) -> ApiResult {
    let notifications = state.store.list_notifications(0).await?;
    let data: Vec<Value> =
        notifications.iter().filter(|notification| visible_to(notification, &player)).map(render).collect();
    ok(json!({"success": true, "data": data}))
}

/// Query of the stream.
#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    token: Option<String>,
    last_id: Option<i64>,
}

struct Listener {
    state: ApiState,
    context: Arc<Contestant>,
    token: String,
    player: Player,
    last_id: i64,
    signals: Option<ChangeStream>,
    pending: std::collections::VecDeque<Notification>,
    first: bool,
}

impl Listener {
    async fn wait(&mut self) {
        let signal = async {
            match self.signals.as_mut() {
                Some(stream) => stream.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = signal => {
                if received.is_none() {
                    self.signals = None;
                }
            }
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }

    /// The next event, or `None` when the session ended or the store failed.
    async fn next_event(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(notification) = self.pending.pop_front() {
                self.last_id = self.last_id.max(notification.id);
                let event = Event::default()
                    .event("notification")
                    .id(notification.id.to_string())
                    .data(render(&notification).to_string());
                return Some((Ok(event), self));
            }
            if !self.first {
                self.wait().await;
                self.player = authenticate(&self.state, &self.context, &self.token).await.ok()?;
            }
            self.first = false;
            let fresh = self.state.store.list_notifications(self.last_id).await.ok()?;
            for notification in fresh {
                self.last_id = self.last_id.max(notification.id);
                if visible_to(&notification, &self.player) {
                    self.pending.push_back(notification);
                }
            }
        }
    }
}

fn stream_of(listener: Listener) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(listener, Listener::next_event)
}

/// `GET /api/Notifications/stream`.
pub async fn stream(
    State(state): State<ApiState>,
    Extension(context): Extension<Arc<Contestant>>,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> Result<axum::response::Response, ApiError> {
    let header_token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let Some(token) = header_token.or(query.token).filter(|token| !token.is_empty()) else {
        return Err(ApiError::unauthenticated());
    };
    let player = authenticate(&state, &context, &token).await?;
    let last_event_id =
        headers.get("last-event-id").and_then(|value| value.to_str().ok()).and_then(|text| text.trim().parse().ok());
    let last_id = match last_event_id.or(query.last_id) {
        Some(id) => id,
        None => state.store.list_notifications(0).await?.last().map(|notification| notification.id).unwrap_or(0),
    };
    let signals = match state.cache.subscribe(NOTIFICATION_TOPIC).await {
        Ok(stream) => Some(stream),
        Err(error) => {
            tracing::warn!(%error, "notification stream without change signals; polling only");
            None
        }
    };
    let listener = Listener {
        state,
        context,
        token,
        player,
        last_id,
        signals,
        pending: std::collections::VecDeque::new(),
        first: true,
    };
    Ok(Sse::new(stream_of(listener)).keep_alive(KeepAlive::default()).into_response())
}
