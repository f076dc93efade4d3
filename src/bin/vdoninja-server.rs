// SPDX-License-Identifier: MPL-2.0

//! `vdoninja-server`: a VDO.Ninja-compatible handshake server for offline and LAN use.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use gstvdoninja::server::hub::ServerMode;
use gstvdoninja::server::{ServerConfig, serve};

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
        cfg
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let quiet = args.quiet;
    let mut cfg = args.config();
    cfg.log = Arc::new(move |line: &str| {
        if !quiet {
            eprintln!("vdoninja-server: {line}");
        }
    });
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vdoninja-server: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let server = match serve(cfg).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("vdoninja-server: {e}");
                return ExitCode::FAILURE;
            }
        };
        let _ = tokio::signal::ctrl_c().await;
        server.stop().await;
        ExitCode::SUCCESS
    })
}
