// SPDX-License-Identifier: MPL-2.0

//! `vdoninja-server`: a VDO.Ninja-compatible handshake server for offline and LAN use.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use gstvdoninja::server::hub::ServerMode;
use gstvdoninja::server::{ServerConfig, serve};

const HELP: &str = "\
vdoninja-server: a VDO.Ninja-compatible handshake (signaling) server

USAGE:
    vdoninja-server [OPTIONS]

OPTIONS:
    --listen ADDR        address and port to listen on [default: 127.0.0.1:8443]
    --official           route like the official server (wss.vdo.ninja): UUIDs are
                         assigned by the server, which routes by stream and UUID;
                         clients must then use signaling-mode=official
    --fanout             relay like self-hosted fan-out servers (the default; clients
                         add `from`). It is what the elements' signaling-mode=auto
                         expects of any host but *.vdo.ninja
    --tls-cert FILE      PEM certificate chain: serve wss:// (needs --tls-key)
    --tls-key FILE       PEM private key for --tls-cert
    --max-message BYTES  largest accepted frame [default: 262144]
    --quiet              log nothing but errors
    -h, --help           print this help
    -V, --version        print the version

Point both elements at it with server=ws://HOST:PORT (or wss:// with TLS).
";

fn parse() -> Result<Option<(ServerConfig, bool)>, String> {
    let mut listen: SocketAddr = "127.0.0.1:8443".parse().map_err(|e| format!("{e}"))?;
    let mut mode = ServerMode::Fanout;
    let (mut cert, mut key): (Option<PathBuf>, Option<PathBuf>) = (None, None);
    let mut max_message = gstvdoninja::server::DEFAULT_MAX_MESSAGE;
    let mut quiet = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("vdoninja-server {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--listen" => {
                let v = value("--listen")?;
                listen = v
                    .parse()
                    .map_err(|_| format!("--listen: {v:?} is not an address like 0.0.0.0:8443"))?;
            }
            "--fanout" => mode = ServerMode::Fanout,
            "--official" => mode = ServerMode::Official,
            "--tls-cert" => cert = Some(value("--tls-cert")?.into()),
            "--tls-key" => key = Some(value("--tls-key")?.into()),
            "--max-message" => {
                let v = value("--max-message")?;
                max_message = v.parse().ok().filter(|n| *n >= 1024).ok_or(format!(
                    "--max-message: {v:?} is not a number of bytes >= 1024"
                ))?;
            }
            "--quiet" => quiet = true,
            other => return Err(format!("unknown option {other:?} (see --help)")),
        }
    }
    let tls = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    let mut cfg = ServerConfig::new(listen);
    cfg.mode = mode;
    cfg.tls = tls;
    cfg.max_message = max_message;
    Ok(Some((cfg, quiet)))
}

fn main() -> ExitCode {
    let (mut cfg, quiet) = match parse() {
        Ok(Some(c)) => c,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vdoninja-server: {e}");
            return ExitCode::from(2);
        }
    };
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
