// SPDX-License-Identifier: MPL-2.0

//! `vdoninja-server`: a VDO.Ninja-compatible handshake server for offline and LAN use.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use gstvdoninja::server::hub::ServerMode;
use gstvdoninja::server::{RateLimit, ServerConfig, serve};

/// File descriptors kept for what is not a client (the listener, TLS files, logs).
const RESERVED_FDS: u64 = 64;

/// Raises the soft file descriptor limit to the hard one and returns how many clients fit.
fn fd_budget() -> Option<usize> {
    let soft = rlimit::increase_nofile_limit(u64::MAX).ok()?;
    usize::try_from(soft.saturating_sub(RESERVED_FDS)).ok()
}

/// A VDO.Ninja-compatible handshake (signaling) server.
///
/// Point both elements at it with server=ws://HOST:PORT (or wss:// with TLS). Every option can
/// also be given in the environment (VDONINJA_LISTEN, VDONINJA_TLS_CERT, ...).
#[derive(Debug, Parser)]
#[command(name = "vdoninja-server", version)]
struct Args {
    /// Address and port to listen on.
    #[arg(
        long,
        env = "VDONINJA_LISTEN",
        default_value = "127.0.0.1:8443",
        value_name = "ADDR"
    )]
    listen: SocketAddr,
    /// Route like the official server (wss.vdo.ninja): UUIDs are assigned by the server, which
    /// routes by stream and UUID; clients must then use signaling-mode=official.
    #[arg(long, env = "VDONINJA_OFFICIAL", conflicts_with = "fanout")]
    official: bool,
    /// Relay like self-hosted fan-out servers (the default; clients add `from`). It is what
    /// the elements' signaling-mode=auto expects of any host but *.vdo.ninja.
    #[arg(long)]
    fanout: bool,
    /// PEM certificate chain: serve wss:// (needs --tls-key).
    #[arg(
        long,
        env = "VDONINJA_TLS_CERT",
        requires = "tls_key",
        value_name = "FILE"
    )]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(
        long,
        env = "VDONINJA_TLS_KEY",
        requires = "tls_cert",
        value_name = "FILE"
    )]
    tls_key: Option<PathBuf>,
    /// Largest accepted frame, in bytes.
    #[arg(
        long,
        env = "VDONINJA_MAX_MESSAGE",
        default_value_t = gstvdoninja::server::DEFAULT_MAX_MESSAGE as u64,
        value_parser = clap::value_parser!(u64).range(1024..),
        value_name = "BYTES"
    )]
    max_message: u64,
    /// Connections served at once; more are refused (HTTP 503). Lowered to what the
    /// process's file descriptor limit allows.
    #[arg(
        long,
        env = "VDONINJA_MAX_CONNECTIONS",
        default_value_t = gstvdoninja::server::DEFAULT_MAX_CONNECTIONS as u32,
        value_parser = clap::value_parser!(u32).range(1..),
        value_name = "N"
    )]
    max_connections: u32,
    /// Kilobytes that may wait for one client; a client that lets more pile up (it does not
    /// read its socket) is dropped.
    #[arg(
        long,
        env = "VDONINJA_QUEUE_KB",
        default_value_t = (gstvdoninja::server::DEFAULT_QUEUE_BYTES / 1024) as u32,
        value_parser = clap::value_parser!(u32).range(16..),
        value_name = "KB"
    )]
    queue_kb: u32,
    /// Messages per second one client may send, sustained; more are dropped (logged).
    #[arg(long, env = "VDONINJA_RATE", default_value_t = RateLimit::default().per_second, value_name = "N")]
    rate: f64,
    /// Messages one client may send in a burst above --rate.
    #[arg(long, env = "VDONINJA_BURST", default_value_t = RateLimit::default().burst, value_name = "N")]
    burst: f64,
    /// Threads that serve connections. One is the lightest and evens out latency (no hand-offs
    /// between threads); more help with many TLS handshakes at once.
    #[arg(
        long,
        env = "VDONINJA_THREADS",
        default_value_t = 1,
        value_parser = clap::value_parser!(u16).range(1..),
        value_name = "N"
    )]
    threads: u16,
    /// Log nothing but errors.
    #[arg(long, env = "VDONINJA_QUIET")]
    quiet: bool,
}

impl Args {
    fn config(&self) -> ServerConfig {
        let mut cfg = ServerConfig::new(self.listen);
        cfg.mode = if self.official {
            ServerMode::Official
        } else {
            ServerMode::Fanout
        };
        cfg.tls = self.tls_cert.clone().zip(self.tls_key.clone());
        cfg.max_message = usize::try_from(self.max_message).unwrap_or(usize::MAX);
        cfg.max_connections = self.max_connections as usize;
        cfg.queue_bytes = self.queue_kb as usize * 1024;
        cfg.rate = RateLimit {
            per_second: self.rate.max(0.1),
            burst: self.burst.max(1.0),
        };
        cfg
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let quiet = args.quiet;
    let args_threads = args.threads;
    let mut cfg = args.config();
    if let Some(budget) = fd_budget()
        && budget < cfg.max_connections
    {
        eprintln!(
            "vdoninja-server: the file descriptor limit allows {budget} connections, not {}; \
             serving at most {budget} (raise `ulimit -n` for more)",
            cfg.max_connections
        );
        cfg.max_connections = budget.max(1);
    }
    cfg.log = Arc::new(move |line: &str| {
        if !quiet {
            eprintln!("vdoninja-server: {line}");
        }
    });
    let rt = if args_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(args_threads))
            .enable_all()
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vdoninja-server: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        // Handlers first: a signal that comes once the server listens must find them.
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).ok();
        let mut terminate = signal(SignalKind::terminate()).ok();
        let server = match serve(cfg).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("vdoninja-server: {e}");
                return ExitCode::FAILURE;
            }
        };
        // SIGINT (Ctrl-C) or SIGTERM (systemd, docker stop): close every connection and go.
        tokio::select! {
            Some(_) = async { interrupt.as_mut()?.recv().await } => {}
            Some(_) = async { terminate.as_mut()?.recv().await } => {}
            // No handler could be installed: serve until killed.
            else => std::future::pending::<()>().await,
        }
        server.stop().await;
        ExitCode::SUCCESS
    })
}
