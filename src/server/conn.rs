// SPDX-License-Identifier: MPL-2.0

//! One client connection's I/O: the TLS and WebSocket handshakes (bounded in time), frames
//! read and rate-limited on their way to the hub, the hub's messages (and keep-alive pings)
//! written back in batches, and the refusal of clients past the connection limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::hub::ConnId;
use super::{Backlog, HubEvent, Out, Outbox, ServerConfig};
use crate::protocol::rate::{TokenBucket, Verdict};

/// TLS plus WebSocket handshake, together.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A closing handshake with a client that does not answer is not waited for longer.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Reads grow from this; an idle connection keeps no more.
const READ_BUFFER: usize = 4 * 1024;

fn ws_config(cfg: &ServerConfig) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(cfg.max_message))
        .max_frame_size(Some(cfg.max_message))
        .read_buffer_size(READ_BUFFER)
        // Written as they come (batched by the writer below), not gathered to 128 KiB.
        .write_buffer_size(0)
        .max_write_buffer_size(cfg.max_message.saturating_mul(2).max(64 * 1024))
}

/// Serves one accepted connection until it closes, is dropped by the hub, or fails.
pub(super) async fn serve(
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
    id: ConnId,
    hub: mpsc::UnboundedSender<HubEvent>,
    cfg: &ServerConfig,
) -> Result<(), String> {
    let _ = tcp.set_nodelay(true);
    match tls {
        Some(a) => {
            let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, a.accept(tcp))
                .await
                .map_err(|_| "TLS handshake timed out".to_string())?
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
            connection(tls, id, hub, cfg).await
        }
        None => connection(tcp, id, hub, cfg).await,
    }
}

async fn connection<S>(
    stream: S,
    id: ConnId,
    hub: mpsc::UnboundedSender<HubEvent>,
    cfg: &ServerConfig,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ws = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        tokio_tungstenite::accept_async_with_config(stream, Some(ws_config(cfg))),
    )
    .await
    .map_err(|_| "WebSocket handshake timed out".to_string())?
    .map_err(|e| format!("WebSocket handshake failed: {e}"))?;
    let mut ws = ws;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (kill, mut killed) = oneshot::channel::<String>();
    let backlog = Arc::new(Backlog::default());
    let outbox = Outbox {
        tx,
        backlog: backlog.clone(),
        kill,
    };
    hub.send(HubEvent::Open(id, outbox))
        .map_err(|_| "server stopping")?;
    let mut bucket = TokenBucket::new(cfg.rate, Instant::now());
    let io = async {
        loop {
            tokio::select! {
                frame = ws.next() => match frame {
                    Some(Ok(Message::Text(t))) => match bucket.take(Instant::now()) {
                        Verdict::Pass => {
                            if hub.send(HubEvent::Text(id, t)).is_err() {
                                return Ok(());
                            }
                        }
                        Verdict::Drop { dropped, log } => {
                            if log {
                                (cfg.log)(&format!(
                                    "connection {id}: rate limit exceeded, {dropped} message(s) dropped"
                                ));
                            }
                        }
                    },
                    Some(Ok(Message::Binary(b))) => {
                        (cfg.log)(&format!("connection {id}: binary frame of {} bytes dropped", b.len()));
                    }
                    Some(Ok(Message::Close(_))) | None => return Ok(()),
                    Some(Ok(_)) => {} // ping/pong are answered by tungstenite
                    Some(Err(e)) => return Err(format!("closed: {e}")),
                },
                out = rx.recv() => {
                    // The hub let go of it: its kill switch went with the queue and says why.
                    let Some(first) = out else { return std::future::pending().await };
                    // Everything that waits, then one flush.
                    let mut next = Some(first);
                    while let Some(out) = next {
                        let frame = match out {
                            Out::Text(t) => {
                                backlog.took(t.len());
                                Message::Text(t)
                            }
                            Out::Ping => Message::Ping(Default::default()),
                        };
                        ws.feed(frame).await.map_err(|e| format!("send failed: {e}"))?;
                        next = rx.try_recv().ok();
                    }
                    ws.flush().await.map_err(|e| format!("send failed: {e}"))?;
                    backlog.moved();
                }
            }
        }
    };
    let result = tokio::select! {
        r = io => r,
        // The hub gave up on it (it does not read): no goodbye, the socket just closes.
        reason = &mut killed => Err(reason.unwrap_or_else(|_| "server stopping".into())),
    };
    let _ = hub.send(HubEvent::Close(id));
    if result.is_ok() {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
    }
    result
}

/// Past the connection limit: the handshake is answered with HTTP 503 and a reason.
pub(super) async fn refuse(tcp: TcpStream, tls: Option<TlsAcceptor>, cfg: &ServerConfig) {
    let limit = cfg.max_connections;
    #[allow(
        clippy::result_large_err,
        reason = "the handshake callback's error type is tungstenite's"
    )]
    let reply = move |_: &Request, _: Response| -> Result<Response, ErrorResponse> {
        let mut r = ErrorResponse::new(Some(format!(
            "vdoninja-server: connection limit ({limit}) reached, try again later"
        )));
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        Err(r)
    };
    let refuse = async {
        match tls {
            Some(a) => {
                if let Ok(s) = a.accept(tcp).await {
                    let _ = tokio_tungstenite::accept_hdr_async(s, reply).await;
                }
            }
            None => {
                let _ = tokio_tungstenite::accept_hdr_async(tcp, reply).await;
            }
        }
    };
    let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, refuse).await;
}
