// SPDX-License-Identifier: MPL-2.0

//! The WebSocket client task: connect (`ws://`, or `wss://` with verified TLS), reconnect with
//! jittered exponential backoff, a bounded queue while offline, a cap on inbound frames.
//!
//! It never blocks its caller: [`Client::send`] puts text on a channel, and everything that
//! happens comes back as [`ClientEvent`]s on another. What to say after a reconnect (joinroom,
//! seed, play) is the state machine's business: it gets [`ClientEvent::Connected`].

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Frames larger than this are refused.
pub const DEFAULT_MAX_MESSAGE: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `ws://…` or `wss://…`; a bare host means `wss://host`.
    pub url: String,
    /// Accept any server certificate.
    pub insecure_tls: bool,
    /// A PEM file of extra trusted CAs.
    pub tls_ca_file: Option<PathBuf>,
    pub max_message: usize,
    /// Peer messages kept while offline (the web app keeps 30); server commands are not kept,
    /// the state machine says them again.
    pub offline_queue: usize,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub connect_timeout: Duration,
}

impl ClientConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            insecure_tls: false,
            tls_ca_file: None,
            max_message: DEFAULT_MAX_MESSAGE,
            offline_queue: 30,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    Connected,
    /// The connection closed or could not be made; another attempt follows after `retry_in`.
    Disconnected {
        reason: String,
        retry_in: Duration,
        /// The server answered and said no (e.g. HTTP 503 at its connection limit), as
        /// opposed to a network failure.
        refused: bool,
    },
    Text(String),
    /// A configuration problem (bad URL, unreadable CA file): no retry.
    Failed(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("the server URL {0:?} is not a valid URL")]
    Invalid(String),
    #[error("the server URL must use ws:// or wss://, not {0}://")]
    Scheme(String),
    #[error("the server URL {0:?} has no host")]
    NoHost(String),
}

/// Normalises a server URL: a bare host becomes `wss://host`; only `ws`/`wss` are accepted.
pub fn normalize_url(raw: &str) -> Result<url::Url, UrlError> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("wss://{raw}")
    };
    let u = url::Url::parse(&with_scheme).map_err(|_| UrlError::Invalid(raw.to_string()))?;
    if !matches!(u.scheme(), "ws" | "wss") {
        return Err(UrlError::Scheme(u.scheme().to_string()));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(UrlError::NoHost(raw.to_string()));
    }
    Ok(u)
}

/// The backoff before attempt `n` (1-based): `initial · 2^(n-1)` capped, ±20 % jitter.
pub fn backoff(initial: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = initial.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let base = exp.min(max);
    let jitter: f64 = rand::random_range(0.8..1.2);
    base.mul_f64(jitter)
}

/// At most this many events (server frames) wait for the state machine: past it the socket is
/// not read, and TCP holds the server back. A server that sends faster than we can handle
/// then costs at most this many frames of memory, not all it sends.
pub const EVENT_QUEUE: usize = 64;

enum Cmd {
    Send(String),
    Close,
}

/// Handle to the client task; dropping it closes the connection.
pub struct Client {
    tx: mpsc::UnboundedSender<Cmd>,
}

impl Client {
    /// Starts the task on `rt`. Events go to `events` (make it [`EVENT_QUEUE`] long).
    pub fn spawn(
        rt: &tokio::runtime::Handle,
        cfg: ClientConfig,
        events: mpsc::Sender<ClientEvent>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        rt.spawn(run(cfg, rx, events));
        Self { tx }
    }

    /// Queues a text frame. Never blocks.
    pub fn send(&self, text: String) {
        let _ = self.tx.send(Cmd::Send(text));
    }

    /// Closes the connection and ends the task.
    pub fn close(&self) {
        let _ = self.tx.send(Cmd::Close);
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.close();
    }
}

fn is_server_command(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .is_some_and(|v| v.get("request").is_some())
}

/// Why a connection attempt failed, and whether the server refused it (answered, but not
/// with the upgrade: e.g. at its connection limit); a refusal carries the server's own words.
fn connect_error(e: &tokio_tungstenite::tungstenite::Error) -> (String, bool) {
    if let tokio_tungstenite::tungstenite::Error::Http(resp) = e {
        let body = resp
            .body()
            .as_deref()
            .map(|b| {
                String::from_utf8_lossy(b)
                    .trim()
                    .chars()
                    .take(200)
                    .collect::<String>()
            })
            .filter(|b| !b.is_empty());
        let why = match body {
            Some(b) => format!("the server refused the connection: {} ({b})", resp.status()),
            None => format!("the server refused the connection: {}", resp.status()),
        };
        return (why, true);
    }
    (format!("cannot connect: {e}"), false)
}

async fn run(
    cfg: ClientConfig,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    events: mpsc::Sender<ClientEvent>,
) {
    let url = match normalize_url(&cfg.url) {
        Ok(u) => u,
        Err(e) => {
            let _ = events.send(ClientEvent::Failed(e.to_string())).await;
            return;
        }
    };
    let connector = if url.scheme() == "wss" {
        match crate::tls::client_config(cfg.insecure_tls, cfg.tls_ca_file.as_deref()) {
            Ok(c) => Some(Connector::Rustls(Arc::new(c))),
            Err(e) => {
                let _ = events.send(ClientEvent::Failed(e.to_string())).await;
                return;
            }
        }
    } else {
        Some(Connector::Plain)
    };
    let ws_cfg = WebSocketConfig::default()
        .max_message_size(Some(cfg.max_message))
        .max_frame_size(Some(cfg.max_message));
    let mut queue: VecDeque<String> = VecDeque::new();
    let mut attempt: u32 = 0;
    loop {
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            url.as_str(),
            Some(ws_cfg),
            true,
            connector.clone(),
        );
        let mut refused = false;
        let reason = match tokio::time::timeout(cfg.connect_timeout, connect).await {
            Err(_) => "connection timed out".to_string(),
            Ok(Err(e)) => {
                let (why, refusal) = connect_error(&e);
                refused = refusal;
                why
            }
            Ok(Ok((ws, _))) => {
                attempt = 0;
                if events.send(ClientEvent::Connected).await.is_err() {
                    return;
                }
                let (mut sink, mut source) = ws.split();
                let mut reason = None;
                while let Some(text) = queue.pop_front() {
                    if let Err(e) = sink.send(Message::text(text)).await {
                        reason = Some(format!("send failed: {e}"));
                        break;
                    }
                }
                match reason {
                    Some(r) => r,
                    None => loop {
                        tokio::select! {
                            cmd = rx.recv() => match cmd {
                                Some(Cmd::Send(t)) => {
                                    if let Err(e) = sink.send(Message::text(t.clone())).await {
                                        queue.push_back(t);
                                        break format!("send failed: {e}");
                                    }
                                }
                                Some(Cmd::Close) | None => {
                                    let _ = sink.close().await;
                                    return;
                                }
                            },
                            frame = source.next() => match frame {
                                Some(Ok(Message::Text(t))) => {
                                    if events.send(ClientEvent::Text(t.to_string())).await.is_err() {
                                        return;
                                    }
                                }
                                Some(Ok(Message::Close(f))) => {
                                    break format!("closed by the server{}", f.map(|f| format!(": {}", f.reason)).unwrap_or_default());
                                }
                                Some(Ok(_)) => {} // binary is not ours; pings are answered for us
                                Some(Err(e)) => break format!("connection lost: {e}"),
                                None => break "connection lost".to_string(),
                            },
                        }
                    },
                }
            }
        };
        attempt = attempt.saturating_add(1);
        let delay = backoff(cfg.backoff_initial, cfg.backoff_max, attempt);
        if events
            .send(ClientEvent::Disconnected {
                reason,
                retry_in: delay,
                refused,
            })
            .await
            .is_err()
        {
            return;
        }
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Send(t)) => {
                        if !is_server_command(&t) {
                            if queue.len() >= cfg.offline_queue {
                                queue.pop_front();
                            }
                            queue.push_back(t);
                        }
                    }
                    Some(Cmd::Close) | None => return,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            normalize_url("wss.vdo.ninja").unwrap().as_str(),
            "wss://wss.vdo.ninja/"
        );
        assert_eq!(
            normalize_url("ws://127.0.0.1:8443").unwrap().port(),
            Some(8443)
        );
        assert_eq!(
            normalize_url("https://x"),
            Err(UrlError::Scheme("https".into()))
        );
        assert!(normalize_url("ws://").is_err());
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter() {
        let s = Duration::from_secs(1);
        let m = Duration::from_secs(30);
        for (attempt, base) in [
            (1, 1.0),
            (2, 2.0),
            (3, 4.0),
            (5, 16.0),
            (6, 30.0),
            (40, 30.0),
        ] {
            let d = backoff(s, m, attempt).as_secs_f64();
            assert!(
                d >= base * 0.8 - 1e-9 && d <= base * 1.2 + 1e-9,
                "{attempt}: {d}"
            );
        }
    }

    #[test]
    fn only_peer_messages_wait_offline() {
        assert!(is_server_command(r#"{"request":"play"}"#));
        assert!(!is_server_command(r#"{"UUID":"x","candidates":[]}"#));
    }
}
