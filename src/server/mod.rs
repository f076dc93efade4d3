// SPDX-License-Identifier: MPL-2.0

//! A VDO.Ninja-compatible handshake server.
//!
//! [`hub`] holds its logic, sans I/O. [`serve`] wraps it in WebSocket I/O: one task owns the
//! hub, one task per connection reads and writes frames, channels connect them. Used by the
//! `vdoninja-server` binary and, in-process on `127.0.0.1:0`, by the tests.

pub mod hub;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use hub::{Action, ConnId, Hub, RateLimit, ServerMode};

/// Frames larger than this are refused (the connection is closed by the WebSocket layer).
pub const DEFAULT_MAX_MESSAGE: usize = 256 * 1024;
/// Messages queued for one slow client before further ones are dropped.
const CLIENT_QUEUE: usize = 1024;

/// Where the server's log lines go.
pub type LogFn = Arc<dyn Fn(&str) + Send + Sync>;

#[derive(Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub mode: ServerMode,
    /// PEM certificate chain and private key for `wss://`.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub max_message: usize,
    pub rate: RateLimit,
    pub log: LogFn,
    /// Test hook: every accepted text frame, with its connection.
    pub tap: Option<mpsc::UnboundedSender<(ConnId, String)>>,
}

impl ServerConfig {
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            mode: ServerMode::Official,
            tls: None,
            max_message: DEFAULT_MAX_MESSAGE,
            rate: RateLimit::default(),
            log: Arc::new(|_| {}),
            tap: None,
        }
    }
}

/// A running server; dropping it stops it.
pub struct RunningServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes every connection and waits until the port is free.
    pub async fn stop(mut self) {
        self.stop_now();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    fn stop_now(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

enum HubEvent {
    Open(ConnId, mpsc::Sender<String>),
    Text(ConnId, String),
    Close(ConnId),
}

/// Binds and starts serving. Must be called inside a tokio runtime.
pub async fn serve(cfg: ServerConfig) -> std::io::Result<RunningServer> {
    let acceptor = match &cfg.tls {
        Some((cert, key)) => Some(crate::tls::acceptor(cert, key)?),
        None => None,
    };
    let listener = TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let (hub_tx, hub_rx) = mpsc::unbounded_channel::<HubEvent>();
    let hub_task = tokio::spawn(run_hub(
        Hub::new(cfg.mode, cfg.rate),
        hub_rx,
        cfg.log.clone(),
        cfg.tap.clone(),
    ));
    (cfg.log)(&format!(
        "listening on {}://{addr} ({:?} model)",
        if acceptor.is_some() { "wss" } else { "ws" },
        cfg.mode
    ));
    let task = tokio::spawn(async move {
        let mut next_id: ConnId = 0;
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                accepted = listener.accept() => {
                    let Ok((tcp, peer)) = accepted else { continue };
                    next_id += 1;
                    let id = next_id;
                    let hub_tx = hub_tx.clone();
                    let acceptor = acceptor.clone();
                    let cfg = cfg.clone();
                    conns.spawn(async move {
                        let _ = tcp.set_nodelay(true);
                        let result = match acceptor {
                            Some(a) => match a.accept(tcp).await {
                                Ok(s) => connection(s, id, hub_tx, &cfg).await,
                                Err(e) => Err(format!("TLS handshake failed: {e}")),
                            },
                            None => connection(tcp, id, hub_tx, &cfg).await,
                        };
                        if let Err(e) = result {
                            (cfg.log)(&format!("connection {id} from {peer}: {e}"));
                        }
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        conns.shutdown().await;
        drop(hub_tx);
        let _ = hub_task.await;
    });
    Ok(RunningServer {
        addr,
        stop: Some(stop_tx),
        task: Some(task),
    })
}

async fn run_hub(
    mut hub: Hub,
    mut rx: mpsc::UnboundedReceiver<HubEvent>,
    log: LogFn,
    tap: Option<mpsc::UnboundedSender<(ConnId, String)>>,
) {
    let mut outboxes: std::collections::HashMap<ConnId, mpsc::Sender<String>> = Default::default();
    while let Some(ev) = rx.recv().await {
        let now = Instant::now();
        match ev {
            HubEvent::Open(id, tx) => {
                hub.connect(id, now);
                outboxes.insert(id, tx);
            }
            HubEvent::Close(id) => {
                hub.disconnect(id);
                outboxes.remove(&id);
            }
            HubEvent::Text(id, text) => {
                if let Some(tap) = &tap {
                    let _ = tap.send((id, text.clone()));
                }
                for action in hub.message(id, &text, now) {
                    match action {
                        Action::Deliver(to, t) => {
                            if let Some(tx) = outboxes.get(&to)
                                && tx.try_send(t).is_err()
                            {
                                log(&format!("connection {to}: too slow, message dropped"));
                            }
                        }
                        Action::Log(line) => log(&line),
                    }
                }
            }
        }
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
    let ws_cfg = WebSocketConfig::default()
        .max_message_size(Some(cfg.max_message))
        .max_frame_size(Some(cfg.max_message));
    let ws = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::accept_async_with_config(stream, Some(ws_cfg)),
    )
    .await
    .map_err(|_| "WebSocket handshake timed out".to_string())?
    .map_err(|e| format!("WebSocket handshake failed: {e}"))?;
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::channel::<String>(CLIENT_QUEUE);
    hub.send(HubEvent::Open(id, tx))
        .map_err(|_| "server stopping")?;
    let mut ping = tokio::time::interval(hub::PING_INTERVAL);
    ping.tick().await;
    let result = loop {
        tokio::select! {
            frame = source.next() => match frame {
                Some(Ok(Message::Text(t))) => {
                    if hub.send(HubEvent::Text(id, t.to_string())).is_err() {
                        break Ok(());
                    }
                }
                Some(Ok(Message::Binary(b))) => {
                    (cfg.log)(&format!("connection {id}: binary frame of {} bytes dropped", b.len()));
                }
                Some(Ok(Message::Close(_))) | None => break Ok(()),
                Some(Ok(_)) => {} // ping/pong are answered by tungstenite
                Some(Err(e)) => break Err(format!("closed: {e}")),
            },
            out = rx.recv() => match out {
                Some(t) => {
                    if let Err(e) = sink.send(Message::text(t)).await {
                        break Err(format!("send failed: {e}"));
                    }
                }
                None => break Ok(()),
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break Ok(());
                }
            }
        }
    };
    let _ = hub.send(HubEvent::Close(id));
    let _ = sink.close().await;
    result
}
