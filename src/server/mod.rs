// SPDX-License-Identifier: MPL-2.0

//! A VDO.Ninja-compatible handshake server.
//!
//! [`hub`] holds its logic, sans I/O. [`serve`] wraps it in WebSocket I/O: one task owns the
//! hub, one task per connection reads and writes frames (`conn`), channels connect them.
//! Used by the `vdoninja-server` binary and, in-process on `127.0.0.1:0`, by the tests.
//!
//! What one client may cost the others is bounded: past `max_connections` new clients are
//! refused with HTTP 503; a client's messages are rate-limited where they are read; a client
//! that does not read its socket is dropped once too much waits for it (`queue_bytes` with
//! nothing written for a second, or four times that at once), its memory with it.

mod conn;
pub mod envelope;
pub mod hub;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot};

pub use crate::protocol::rate::RateLimit;
use hub::{Action, ConnId, Hub, ServerMode, Text};

/// Frames larger than this are refused (the connection is closed by the WebSocket layer).
pub const DEFAULT_MAX_MESSAGE: usize = 256 * 1024;
/// Connections served at once; more are refused with HTTP 503.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;
/// Bytes that may wait for one client: more, with nothing written to it for
/// [`STALL`], or four times as much at any time, and it counts as not reading and is dropped.
pub const DEFAULT_QUEUE_BYTES: usize = 1024 * 1024;
/// How long a client's full queue may go without anything written to it.
pub const STALL: Duration = Duration::from_secs(1);

/// Where the server's log lines go.
pub type LogFn = Arc<dyn Fn(&str) + Send + Sync>;

#[derive(Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub mode: ServerMode,
    /// PEM certificate chain and private key for `wss://`.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub max_message: usize,
    pub max_connections: usize,
    pub queue_bytes: usize,
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
            max_connections: DEFAULT_MAX_CONNECTIONS,
            queue_bytes: DEFAULT_QUEUE_BYTES,
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

/// What a connection tells the hub.
enum HubEvent {
    Open(ConnId, Outbox),
    Text(ConnId, Text),
    Close(ConnId),
}

/// What the hub hands a connection to write.
enum Out {
    Text(Text),
    /// Keep-alive: one timer in the hub for all connections, not one each.
    Ping,
}

/// The hub's side of one connection: its queue, and the switch that drops it.
struct Outbox {
    tx: mpsc::UnboundedSender<Out>,
    backlog: Arc<Backlog>,
    kill: oneshot::Sender<String>,
}

/// What waits for one client, shared by the hub (which adds) and its writer (which takes).
#[derive(Default)]
struct Backlog {
    bytes: AtomicUsize,
    /// When the writer last moved, or the queue last started filling: milliseconds on the
    /// server's clock.
    moved_ms: AtomicU64,
}

/// The server's coarse clock, for [`Backlog::moved_ms`].
fn clock_ms() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl Backlog {
    /// Queues `len` bytes; `false` when the client counts as not reading.
    fn add(&self, len: usize, budget: usize) -> bool {
        let before = self.bytes.fetch_add(len, Ordering::Relaxed);
        let now = clock_ms();
        if before == 0 {
            self.moved_ms.store(now, Ordering::Relaxed);
        }
        let after = before + len;
        let stalled =
            now.saturating_sub(self.moved_ms.load(Ordering::Relaxed)) >= STALL.as_millis() as u64;
        after <= budget || (after <= budget.saturating_mul(4) && !stalled)
    }

    /// The writer took `len` bytes.
    fn took(&self, len: usize) {
        self.bytes.fetch_sub(len, Ordering::Relaxed);
    }

    /// The writer handed what it took to the socket.
    fn moved(&self) {
        self.moved_ms.store(clock_ms(), Ordering::Relaxed);
    }

    fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Concurrent refusals (HTTP 503 past the connection limit); past these, plain closes.
const MAX_REFUSING: usize = 64;

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
        Hub::new(cfg.mode),
        hub_rx,
        cfg.queue_bytes,
        cfg.log.clone(),
        cfg.tap.clone(),
    ));
    (cfg.log)(&format!(
        "listening on {}://{addr} ({:?} model, at most {} connections)",
        if acceptor.is_some() { "wss" } else { "ws" },
        cfg.mode,
        cfg.max_connections
    ));
    let cfg = Arc::new(cfg);
    let task = tokio::spawn(async move {
        let mut next_id: ConnId = 0;
        let mut conns = tokio::task::JoinSet::new();
        let active = Arc::new(AtomicUsize::new(0));
        let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
        let mut refused: u64 = 0;
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                accepted = listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors, typically: don't spin on it.
                            (cfg.log)(&format!("accept failed: {e}"));
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    if active.load(Ordering::Relaxed) >= cfg.max_connections {
                        refused += 1;
                        if refused.is_power_of_two() {
                            (cfg.log)(&format!(
                                "connection limit ({}) reached: {refused} connection(s) refused",
                                cfg.max_connections
                            ));
                        }
                        if let Ok(permit) = refusing.clone().try_acquire_owned() {
                            let (acceptor, cfg) = (acceptor.clone(), cfg.clone());
                            tokio::spawn(async move {
                                conn::refuse(tcp, acceptor, &cfg).await;
                                drop(permit);
                            });
                        }
                        continue;
                    }
                    next_id += 1;
                    let slot = ActiveSlot::take(&active);
                    let (hub_tx, acceptor, cfg) = (hub_tx.clone(), acceptor.clone(), cfg.clone());
                    conns.spawn(async move {
                        let id = next_id;
                        if let Err(e) = conn::serve(tcp, acceptor, id, hub_tx, &cfg).await {
                            (cfg.log)(&format!("connection {id} from {peer}: {e}"));
                        }
                        drop(slot);
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

/// One of the `max_connections` places, given back when the connection ends.
struct ActiveSlot(Arc<AtomicUsize>);

impl ActiveSlot {
    fn take(active: &Arc<AtomicUsize>) -> Self {
        active.fetch_add(1, Ordering::Relaxed);
        Self(active.clone())
    }
}

impl Drop for ActiveSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn run_hub(
    mut hub: Hub,
    mut rx: mpsc::UnboundedReceiver<HubEvent>,
    queue_bytes: usize,
    log: LogFn,
    tap: Option<mpsc::UnboundedSender<(ConnId, String)>>,
) {
    // Server-assigned keys: the fast hash is safe here (clients choose none of them).
    let mut outboxes: FxHashMap<ConnId, Outbox> = FxHashMap::default();
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + hub::PING_INTERVAL,
        hub::PING_INTERVAL,
    );
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => ev,
                None => break,
            },
            _ = ping.tick() => {
                for outbox in outboxes.values() {
                    let _ = outbox.tx.send(Out::Ping);
                }
                continue;
            }
        };
        match ev {
            HubEvent::Open(id, outbox) => {
                hub.connect(id);
                outboxes.insert(id, outbox);
            }
            HubEvent::Close(id) => {
                hub.disconnect(id);
                outboxes.remove(&id);
            }
            HubEvent::Text(id, text) => {
                if let Some(tap) = &tap {
                    let _ = tap.send((id, text.to_string()));
                }
                for action in hub.message(id, text) {
                    match action {
                        Action::Deliver(to, t) => {
                            let Some(outbox) = outboxes.get(&to) else {
                                continue;
                            };
                            if outbox.backlog.add(t.len(), queue_bytes)
                                && outbox.tx.send(Out::Text(t)).is_ok()
                            {
                                continue;
                            }
                            // It does not read: drop it, alone.
                            if let Some(outbox) = outboxes.remove(&to) {
                                let _ = outbox.kill.send(format!(
                                    "dropped: not reading ({} KB waiting for it)",
                                    outbox.backlog.bytes() / 1024
                                ));
                            }
                            hub.disconnect(to);
                        }
                        Action::Log(line) => log(&line),
                    }
                }
            }
        }
    }
}
