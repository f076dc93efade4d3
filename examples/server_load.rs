// SPDX-License-Identifier: MPL-2.0

//! Load benchmark for a handshake server: N WebSocket clients in rooms of K, each sending a
//! message of S bytes R times a second, which the server relays to the rest of its room
//! (fan-out model) or to one member (official model). Prints the server process's CPU and
//! memory (idle, per connection) and the relay latency (p50/p99/max) seen by the receivers.
//!
//! The server is ours (the release `vdoninja-server` binary, started here on `--port`), the
//! Node fan-out server of `../shared/realpeers` (`--server node`: `server.sh start`, TLS only;
//! run this binary in the harness namespace), or any running one (`--server wss://… --pid P`).
//!
//! ```sh
//! cargo build --release --bin vdoninja-server --example server_load
//! target/release/examples/server_load --clients 3000 --tls
//! scripts/server-bench.sh                      # the whole table, ours and Node side by side
//! ```

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Mutex, Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, connect_async_tls_with_config};

#[path = "../tests/common/procstat.rs"]
mod procstat;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Model {
    Fanout,
    Official,
}

/// Load a handshake server and measure it.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// `ours` (start target/release/vdoninja-server), `node` (../shared/realpeers'
    /// server.js, TLS), or the URL of a running server (then give --pid).
    #[arg(long, default_value = "ours")]
    server: String,
    /// The `vdoninja-server` binary to start for `ours` (default: the one built next to this
    /// program), e.g. an older build for a before/after figure.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// The server's process, for a URL given in --server.
    #[arg(long)]
    pid: Option<u32>,
    /// Port for the server this program starts.
    #[arg(long, default_value_t = 8471)]
    port: u16,
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    #[arg(long, default_value_t = 4)]
    room_size: usize,
    /// Messages per second per client.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Bytes per message.
    #[arg(long, default_value_t = 200)]
    size: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    #[arg(long, value_enum, default_value = "fanout")]
    model: Model,
    /// wss:// (ours: with a certificate made here; node is TLS only).
    #[arg(long)]
    tls: bool,
    /// Threads of this load client (one: more add hand-offs between threads to the latency
    /// it measures).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Also print p99 and max latency per second of the run.
    #[arg(long)]
    timeline: bool,
    /// Names of rooms and clients start with this (several load processes on one server).
    #[arg(long, default_value = "load")]
    prefix: String,
    /// CA that signed the server's certificate (default: the one made here, or realpeers').
    #[arg(long)]
    ca: Option<PathBuf>,
}

struct Stats {
    joined: AtomicUsize,
    failed: AtomicUsize,
    sent: AtomicU64,
    received: AtomicU64,
    latencies_us: Mutex<Vec<u32>>,
    /// (second of the run, latency) of every relayed message, for --timeline.
    timeline: Mutex<Vec<(u32, u32)>>,
}

/// A server this program started; stopped on drop.
enum Started {
    Ours(Child),
    Node(PathBuf, u16),
    Nothing,
}

impl Drop for Started {
    fn drop(&mut self) {
        match self {
            Started::Ours(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Started::Node(script, port) => {
                let _ = Command::new(script)
                    .args(["stop", &port.to_string()])
                    .status();
            }
            Started::Nothing => {}
        }
    }
}

fn peers_dir() -> PathBuf {
    std::env::var_os("PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/vdoninja-realpeers")
        })
}

fn wait_for_port(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("nothing listens on 127.0.0.1:{port}"))
}

/// Starts (or finds) the server: its URL, its pid, the CA to trust, and the guard.
fn start_server(
    args: &Args,
    dir: &std::path::Path,
) -> Result<(String, u32, Option<PathBuf>, Started), String> {
    match args.server.as_str() {
        "ours" => {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let bin = args
                .server_bin
                .clone()
                .or_else(|| {
                    exe.parent()
                        .and_then(|d| d.parent())
                        .map(|d| d.join("vdoninja-server"))
                })
                .filter(|b| b.exists())
                .ok_or("build the server first: cargo build --release --bin vdoninja-server")?;
            let mut cmd = Command::new(bin);
            cmd.args(["--quiet", "--listen", &format!("127.0.0.1:{}", args.port)]);
            if args.model == Model::Official {
                cmd.arg("--official");
            }
            let mut ca = None;
            if args.tls {
                let (cert, key, ca_file) = make_certificate(dir)?;
                cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
                ca = Some(ca_file);
            }
            let child = cmd
                .spawn()
                .map_err(|e| format!("cannot start the server: {e}"))?;
            let pid = child.id();
            let guard = Started::Ours(child);
            wait_for_port(args.port)?;
            let scheme = if args.tls { "wss" } else { "ws" };
            Ok((
                format!("{scheme}://127.0.0.1:{}", args.port),
                pid,
                ca,
                guard,
            ))
        }
        "node" => {
            let script = std::env::var_os("VDONINJA_REALPEERS")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("../shared/realpeers"))
                .join("server.sh");
            let ok = Command::new(&script)
                .args(["start", &args.port.to_string()])
                .stdout(std::process::Stdio::null())
                .status()
                .map_err(|e| format!("{}: {e}", script.display()))?;
            if !ok.success() {
                return Err("server.sh start failed".into());
            }
            let guard = Started::Node(script, args.port);
            let pidfile = peers_dir().join(format!("run/server-{}.pid", args.port));
            let pid = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|p| p.trim().parse().ok())
                .ok_or_else(|| format!("no pid in {}", pidfile.display()))?;
            let ca = peers_dir().join("webserver/ca.pem");
            Ok((
                format!("wss://127.0.0.1:{}", args.port),
                pid,
                Some(ca),
                guard,
            ))
        }
        url => {
            let pid = args.pid.ok_or("--pid is needed with a URL")?;
            Ok((url.to_string(), pid, None, Started::Nothing))
        }
    }
}

/// A throw-away CA and a certificate for 127.0.0.1 signed by it.
fn make_certificate(dir: &std::path::Path) -> Result<(PathBuf, PathBuf, PathBuf), String> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let e = |e: rcgen::Error| e.to_string();
    let ca_key = KeyPair::generate().map_err(e)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).map_err(e)?;
    let key = KeyPair::generate().map_err(e)?;
    let params = CertificateParams::new(vec!["127.0.0.1".to_string()]).map_err(e)?;
    let cert = params.signed_by(&key, &ca, &ca_key).map_err(e)?;
    let paths = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("ca.pem"),
    );
    let w = |p: &PathBuf, s: String| std::fs::write(p, s).map_err(|e| e.to_string());
    w(&paths.0, cert.pem())?;
    w(&paths.1, key.serialize_pem())?;
    w(&paths.2, ca.pem())?;
    Ok(paths)
}

/// The `ts` field of a relayed message, found without parsing the whole message.
fn timestamp(text: &str) -> Option<u64> {
    let at = text.find("\"ts\":")? + 5;
    let digits: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connect,
    Load,
    Stop,
}

struct Client {
    index: usize,
    url: String,
    connector: Option<Connector>,
    args: Arc<Args>,
    stats: Arc<Stats>,
    phase: watch::Receiver<Phase>,
    epoch: Instant,
    connecting: Arc<Semaphore>,
}

impl Client {
    async fn run(mut self) {
        let ws_cfg = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0)
            .max_write_buffer_size(1 << 20);
        let permit = self.connecting.acquire().await;
        let connected = tokio::time::timeout(
            Duration::from_secs(30),
            connect_async_tls_with_config(&self.url, Some(ws_cfg), true, self.connector.clone()),
        )
        .await;
        drop(permit);
        let Ok(Ok((ws, _))) = connected else {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let (mut tx, mut rx) = ws.split();
        let room = format!("{}{}", self.args.prefix, self.index / self.args.room_size);
        let me = format!("{}u{}", self.args.prefix, self.index);
        let join = match self.args.model {
            Model::Fanout => json!({"request":"joinroom","roomid":room,"from":me}),
            Model::Official => json!({"request":"joinroom","roomid":room}),
        };
        if tx.send(Message::text(join.to_string())).await.is_err() {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.stats.joined.fetch_add(1, Ordering::Relaxed);
        let stats = self.stats.clone();
        let epoch = self.epoch;
        let timeline = self.args.timeline;
        // Official model: the room members we may send to, learnt from the server.
        let members = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let known = members.clone();
        let reader = tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut line = Vec::new();
            while let Some(Ok(frame)) = rx.next().await {
                let Message::Text(t) = frame else { continue };
                if let Some(ts) = timestamp(&t) {
                    let now = epoch.elapsed().as_micros() as u64;
                    let l = now.saturating_sub(ts).min(u32::MAX as u64) as u32;
                    lat.push(l);
                    if timeline {
                        line.push(((now / 1_000_000) as u32, l));
                    }
                    stats.received.fetch_add(1, Ordering::Relaxed);
                } else if let Ok(v) = serde_json::from_str::<Value>(&t) {
                    let mut m = known.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(list) = v["list"].as_array() {
                        m.extend(
                            list.iter()
                                .filter_map(|e| e["UUID"].as_str().map(String::from)),
                        );
                    }
                    if v["request"] == "someonejoined"
                        && let Some(u) = v["UUID"].as_str()
                    {
                        m.push(u.to_string());
                    }
                }
            }
            stats.latencies_us.lock().await.extend(lat);
            stats.timeline.lock().await.extend(line);
        });
        while *self.phase.borrow() == Phase::Connect {
            if self.phase.changed().await.is_err() {
                return;
            }
        }
        let period = Duration::from_secs_f64(1.0 / self.args.rate.max(0.001));
        let offset = period.mul_f64((self.index as f64 * 0.618_034).fract());
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
        let pad_len = self.args.size.saturating_sub(60);
        let pad: String = "x".repeat(pad_len);
        let mut n = 0usize;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.phase.changed() => break,
            }
            if *self.phase.borrow() != Phase::Load {
                break;
            }
            let ts = epoch.elapsed().as_micros() as u64;
            let msg = match self.args.model {
                Model::Fanout => format!(r#"{{"from":"{me}","ts":{ts},"pad":"{pad}"}}"#),
                Model::Official => {
                    let to = {
                        let m = members.lock().unwrap_or_else(|e| e.into_inner());
                        if m.is_empty() {
                            continue;
                        }
                        m[n % m.len()].clone()
                    };
                    format!(r#"{{"UUID":"{to}","ts":{ts},"pad":"{pad}"}}"#)
                }
            };
            n += 1;
            if tx.send(Message::text(msg)).await.is_err() {
                break;
            }
            self.stats.sent.fetch_add(1, Ordering::Relaxed);
        }
        // Give the last messages time to arrive, then close.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = tx.close().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() -> std::process::ExitCode {
    let args = Arc::new(Args::parse());
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server_load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Arc<Args>) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (url, pid, ca, _guard) = start_server(&args, dir.path())?;
    let connector = if url.starts_with("wss://") {
        let ca = args.ca.clone().or(ca);
        let cfg =
            gstvdoninja::tls::client_config(false, ca.as_deref()).map_err(|e| e.to_string())?;
        Some(Connector::Rustls(Arc::new(cfg)))
    } else {
        None
    };
    let rt = if args.client_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.client_threads)
            .enable_all()
            .build()
    }
    .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let stats = Arc::new(Stats {
            joined: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            latencies_us: Mutex::new(Vec::new()),
            timeline: Mutex::new(Vec::new()),
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_empty = procstat::rss_kb(pid);
        let (phase_tx, phase_rx) = watch::channel(Phase::Connect);
        let epoch = Instant::now();
        let connecting = Arc::new(Semaphore::new(64));
        let mut tasks = Vec::with_capacity(args.clients);
        let connect_start = Instant::now();
        for index in 0..args.clients {
            let c = Client {
                index,
                url: url.clone(),
                connector: connector.clone(),
                args: args.clone(),
                stats: stats.clone(),
                phase: phase_rx.clone(),
                epoch,
                connecting: connecting.clone(),
            };
            tasks.push(tokio::spawn(c.run()));
        }
        let deadline = Instant::now() + Duration::from_secs(120 + args.clients as u64 / 50);
        while stats.joined.load(Ordering::Relaxed) + stats.failed.load(Ordering::Relaxed) < args.clients {
            if Instant::now() > deadline {
                return Err("clients did not connect in time".to_string());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let connect_secs = connect_start.elapsed().as_secs_f64();
        let failed = stats.failed.load(Ordering::Relaxed);
        // Let joins settle, then measure the idle connections.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let rss_idle = procstat::rss_kb(pid);
        let cpu0 = procstat::cpu_seconds(pid);
        let me = std::process::id();
        let own0 = procstat::cpu_seconds(me);
        let t0 = Instant::now();
        let _ = phase_tx.send(Phase::Load);
        tokio::time::sleep(Duration::from_secs(args.duration)).await;
        let cpu = (procstat::cpu_seconds(pid) - cpu0) / t0.elapsed().as_secs_f64();
        let own = (procstat::cpu_seconds(me) - own0) / t0.elapsed().as_secs_f64();
        let rss_load = procstat::rss_kb(pid);
        let _ = phase_tx.send(Phase::Stop);
        for t in tasks {
            let _ = t.await;
        }
        if args.timeline {
            let mut line = std::mem::take(&mut *stats.timeline.lock().await);
            line.sort_unstable();
            for sec in line.chunk_by(|a, b| a.0 == b.0) {
                let mut l: Vec<u32> = sec.iter().map(|x| x.1).collect();
                l.sort_unstable();
                println!(
                    "  t={:>3} s: {:>6} relayed, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                    sec[0].0,
                    l.len(),
                    percentile(&l, 0.5),
                    percentile(&l, 0.99),
                    percentile(&l, 1.0)
                );
            }
        }
        let mut lat = std::mem::take(&mut *stats.latencies_us.lock().await);
        lat.sort_unstable();
        let sent = stats.sent.load(Ordering::Relaxed);
        let received = stats.received.load(Ordering::Relaxed);
        let fan = match args.model {
            Model::Fanout => args.room_size.saturating_sub(1) as u64,
            Model::Official => 1,
        };
        let joined = args.clients - failed;
        println!(
            "server={} model={:?} tls={} clients={} joined={} room={} rate={}/s size={}B: \
             connect {:.1} s; idle RSS {:.1} MB ({:.1} KB/conn); under load CPU {:.1} % of a core, \
             RSS {:.1} MB; relayed {}/{} ({:.2} %), latency p50 {:.2} ms p99 {:.2} ms max {:.2} ms (this load client: {:.0} % of a core)",
            args.server,
            args.model,
            url.starts_with("wss"),
            args.clients,
            joined,
            args.room_size,
            args.rate,
            args.size,
            connect_secs,
            rss_idle as f64 / 1024.0,
            rss_idle.saturating_sub(rss_empty) as f64 / joined.max(1) as f64,
            cpu * 100.0,
            rss_load as f64 / 1024.0,
            received,
            sent * fan,
            if sent == 0 { 0.0 } else { received as f64 * 100.0 / (sent * fan) as f64 },
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat.last().map(|l| *l as f64 / 1000.0).unwrap_or(f64::NAN),
            own * 100.0,
        );
        Ok(())
    })
}
