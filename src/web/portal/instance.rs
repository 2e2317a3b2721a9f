//! Instance control: start, queue position, status, countdown to expiry, stop, and the
//! connection info (the gateway HTTP link with the token, `nc host port` plus the token, and
//! the TLS variant `openssl s_client -quiet -connect host:port` when the gateway serves TLS).
//!
//! Deployment note: the gateway expires the other cookies of its host when it hands out its
//! own (FCTF behaviour), so the gateway's public host (`gateway.public_host`, or the host of
//! `gateway.public_http_url`) must be another host name than the portal's, or opening an
//! instance would log the player out of the portal; `fctf` warns at start when they are equal.

use askama::Template;
use axum::Form;
use axum::extract::Path;
use serde_json::{Value, json};

use super::GatewayInfo;
use super::session::{PageResult, Session, text};
use crate::web::Layout;

/// What the challenge page shows about the team's instance.
#[derive(Debug, Clone, Default)]
pub struct InstancePanel {
    /// An instance exists (queued, deploying, running or stopping).
    pub started: bool,
    /// The FCTF status (`PENDING_DEPLOY`, `Pending`, `Running`, `Deleting`, ...).
    pub status: String,
    /// Human-readable state.
    pub label: String,
    /// Badge class (`ok`, `warn`, `err`).
    pub class: &'static str,
    /// Message of the last status check.
    pub message: String,
    /// Queue position while queued.
    pub queue_position: Option<i64>,
    /// Seconds until expiry.
    pub seconds_left: Option<i64>,
    /// Connection info while running.
    pub connection: Option<Connection>,
    /// The challenge can be stopped by players (not a shared instance).
    pub stoppable: bool,
}

/// How to reach a running instance.
#[derive(Debug, Clone)]
pub struct Connection {
    /// `http` or `tcp`.
    pub protocol: String,
    /// The gateway token.
    pub token: String,
    /// The HTTP link carrying the token.
    pub http_link: String,
    /// Host of TCP access.
    pub tcp_host: String,
    /// Port of TCP access.
    pub tcp_port: u16,
    /// The plain TCP command (`nc <host> <port>`).
    pub nc: String,
    /// The TLS TCP command, when the gateway serves TLS.
    pub tls: Option<String>,
}

impl InstancePanel {
    /// True while the instance is between states (the page refreshes itself).
    pub fn transitional(&self) -> bool {
        matches!(self.status.as_str(), "PENDING_DEPLOY" | "Pending" | "Initial" | "Deleting")
    }
}

/// Connection info for a token.
pub fn connection(gateway: &GatewayInfo, protocol: &str, token: &str) -> Connection {
    let host = gateway.tcp_host.clone();
    let port = gateway.tcp_port;
    Connection {
        protocol: if protocol.eq_ignore_ascii_case("tcp") { "tcp".to_owned() } else { "http".to_owned() },
        token: token.to_owned(),
        http_link: format!("{}/?fctftoken={}", gateway.http_base, crate::web::query_escape(token)),
        nc: format!("nc {host} {port}"),
        tls: gateway
            .tls
            .then(|| format!("openssl s_client -quiet -connect {}:{port}", crate::gateway::url_host(&host))),
        tcp_host: host,
        tcp_port: port,
    }
}

fn describe(status: &str) -> (&'static str, &'static str) {
    match status {
        "PENDING_DEPLOY" | "Initial" => ("Queued", "warn"),
        "Pending" => ("Deploying", "warn"),
        "Running" => ("Running", "ok"),
        "Deleting" => ("Stopping", "warn"),
        "Failed" | "DEPLOY_FAILED" | "TIMEOUT" => ("Failed", "err"),
        "" | "NOT_FOUND" | "Stopped" => ("Not started", ""),
        _ => ("Unknown", ""),
    }
}

/// Builds the panel from the challenge detail reply and a status check.
pub async fn panel(session: &Session, id: i64, detail: &Value, data: &Value) -> InstancePanel {
    let protocol = text(data.get("connection_protocol").unwrap_or(&Value::Null));
    let stoppable = !data.get("shared_instance").and_then(Value::as_bool).unwrap_or(false);
    let mut status = text(detail.get("pod_status").unwrap_or(&Value::Null));
    let mut seconds_left = detail.get("time_remaining").and_then(Value::as_i64);
    let mut token = detail.get("challenge_url").and_then(Value::as_str).map(str::to_owned);
    let mut message = String::new();
    let mut queue_position = None;
    let started = detail.get("is_started").and_then(Value::as_bool).unwrap_or(false);
    if started || !stoppable {
        let check = session.post("/api/Challenge/check-status", &json!({"challengeId": id})).await;
        if let Some(pod) = check.body.get("pod_status").and_then(Value::as_str) {
            status = pod.to_owned();
            message = check.message();
            queue_position = check.body.get("queue_position").and_then(Value::as_i64);
            if let Some(url) = check.body.get("challenge_url").and_then(Value::as_str).filter(|url| !url.is_empty()) {
                token = Some(url.to_owned());
            }
        }
    }
    if status != "Running" {
        token = None;
        if !matches!(status.as_str(), "Pending" | "PENDING_DEPLOY") {
            seconds_left = None;
        }
    }
    let (label, class) = describe(&status);
    InstancePanel {
        started: !matches!(status.as_str(), "" | "NOT_FOUND" | "Stopped" | "Failed"),
        label: label.to_owned(),
        class,
        message,
        queue_position,
        seconds_left,
        connection: token.map(|token| connection(&session.portal.gateway, &protocol, &token)),
        stoppable,
        status,
    }
}

/// `POST /challenges/{id}/start`.
pub async fn start(session: Session, Path(id): Path<i64>, Form(form): Form<super::account::CsrfForm>) -> PageResult {
    session.check_csrf(&form.csrf)?;
    session.require_team()?;
    let reply = session.post("/api/Challenge/start", &json!({"challengeId": id})).await;
    Ok(session.after(&reply, &format!("/challenges/{id}#instance")))
}

/// `POST /challenges/{id}/stop`.
pub async fn stop(session: Session, Path(id): Path<i64>, Form(form): Form<super::account::CsrfForm>) -> PageResult {
    session.check_csrf(&form.csrf)?;
    session.require_team()?;
    let reply = session.post("/api/Challenge/stop-by-user", &json!({"challengeId": id})).await;
    Ok(session.after(&reply, &format!("/challenges/{id}#instance")))
}

struct Row {
    challenge_id: i64,
    name: String,
    category: String,
    label: &'static str,
    class: &'static str,
    seconds_left: Option<i64>,
    connection: Option<Connection>,
}

#[derive(Template)]
#[template(path = "portal/instances.html")]
struct InstancesPage {
    layout: Layout,
    rows: Vec<Row>,
    message: String,
}

/// `GET /instances`: the team's live instances.
pub async fn list(session: Session) -> PageResult {
    session.require_team()?;
    let reply = session.get("/api/Challenge/instances").await;
    if reply.status == axum::http::StatusCode::UNAUTHORIZED {
        return Err(session.read_failed(&reply));
    }
    let now = chrono::Utc::now().timestamp();
    let rows: Vec<Row> = reply
        .data()
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    let status = text(row.get("status").unwrap_or(&Value::Null));
                    let (label, class) = describe(&status);
                    let token = text(row.get("challenge_url").unwrap_or(&Value::Null));
                    let protocol = text(row.get("connection_protocol").unwrap_or(&Value::Null));
                    let expires = text(row.get("age").unwrap_or(&Value::Null)).parse::<i64>().unwrap_or_default();
                    Row {
                        challenge_id: row.get("challenge_id").and_then(Value::as_i64).unwrap_or_default(),
                        name: text(row.get("challenge_name").unwrap_or(&Value::Null)),
                        category: text(row.get("category").unwrap_or(&Value::Null)),
                        label,
                        class,
                        seconds_left: (expires > 0).then(|| (expires - now).max(0)),
                        connection: (status == "Running" && !token.is_empty() && token != "N/A")
                            .then(|| connection(&session.portal.gateway, &protocol, &token)),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let message = if reply.ok() { String::new() } else { reply.message() };
    Ok(session.page(&InstancesPage { layout: session.layout("Instances"), rows, message }))
}

#[cfg(test)]
mod tests {
    use super::{GatewayInfo, connection};

    #[test]
    fn connection_info_carries_the_token_and_the_tls_command_only_with_tls() {
        let mut gateway = GatewayInfo {
            http_base: "http://127.0.0.1:8080".to_owned(),
            tcp_host: "127.0.0.1".to_owned(),
            tcp_port: 1337,
            tls: false,
        };
        let plain = connection(&gateway, "HTTP", "a+b/c=");
        assert_eq!(plain.protocol, "http");
        assert_eq!(plain.http_link, "http://127.0.0.1:8080/?fctftoken=a%2Bb%2Fc%3D");
        assert_eq!(plain.nc, "nc 127.0.0.1 1337");
        assert_eq!(plain.token, "a+b/c=");
        assert!(plain.tls.is_none());

        gateway.tls = true;
        gateway.tcp_host = "::1".to_owned();
        let secured = connection(&gateway, "tcp", "t");
        assert_eq!(secured.protocol, "tcp");
        assert_eq!(secured.nc, "nc ::1 1337");
        assert_eq!(secured.tls.as_deref(), Some("openssl s_client -quiet -connect [::1]:1337"));
    }
}
