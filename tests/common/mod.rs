// SPDX-License-Identifier: MPL-2.0

//! Helpers shared by the integration tests: an in-process server on 127.0.0.1:0 and a raw
//! WebSocket test client with bounded waits.

#![allow(dead_code)]

pub mod browser;
pub mod linked;
pub mod logring;
pub mod media;
pub mod netns;
pub mod proxy;
pub mod readers;
pub mod recorder;
pub mod run;
pub mod slots;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gstvdoninja::server::hub::{ConnId, ServerMode};
use gstvdoninja::server::{RunningServer, ServerConfig, serve};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Every wait in the tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub server: RunningServer,
    pub url: String,
    pub tap: mpsc::UnboundedReceiver<(ConnId, String)>,
}

pub async fn start_server(mode: ServerMode) -> TestServer {
    start_server_at("127.0.0.1:0".parse().unwrap(), mode).await
}

pub async fn start_server_at(addr: SocketAddr, mode: ServerMode) -> TestServer {
    let (tx, tap) = mpsc::unbounded_channel();
    let mut cfg = ServerConfig::new(addr);
    cfg.mode = mode;
    cfg.tap = Some(tx);
    cfg.max_message = 64 * 1024;
    let server = serve(cfg).await.expect("server starts");
    let url = format!("ws://{}", server.local_addr());
    TestServer { server, url, tap }
}

/// Waits for the next tapped frame that satisfies `pred`.
pub async fn tapped(
    tap: &mut mpsc::UnboundedReceiver<(ConnId, String)>,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    tokio::time::timeout(WAIT, async {
        loop {
            let (_, t) = tap.recv().await.expect("server alive");
            if let Ok(v) = serde_json::from_str::<Value>(&t)
                && pred(&v)
            {
                return v;
            }
        }
    })
    .await
    .expect("the expected frame reached the server in time")
}

/// Waits until every predicate has matched some tapped frame, in any order.
pub async fn tapped_all(
    tap: &mut mpsc::UnboundedReceiver<(ConnId, String)>,
    preds: &[&dyn Fn(&Value) -> bool],
) {
    let mut seen = vec![false; preds.len()];
    tokio::time::timeout(WAIT, async {
        while seen.iter().any(|s| !s) {
            let (_, t) = tap.recv().await.expect("server alive");
            if let Ok(v) = serde_json::from_str::<Value>(&t) {
                for (i, p) in preds.iter().enumerate() {
                    seen[i] |= p(&v);
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("frames seen: {seen:?}"))
}

pub struct Ws(pub WebSocketStream<MaybeTlsStream<TcpStream>>);

impl Ws {
    pub async fn connect(url: &str) -> Self {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("connect");
        Ws(ws)
    }

    pub async fn send(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    pub async fn send_text(&mut self, t: String) {
        self.0.send(Message::text(t)).await.expect("send");
    }

    /// The next JSON text frame.
    pub async fn recv(&mut self) -> Value {
        tokio::time::timeout(WAIT, async {
            loop {
                match self.0.next().await {
                    Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).expect("JSON"),
                    Some(Ok(_)) => continue,
                    other => panic!("connection ended: {other:?}"),
                }
            }
        })
        .await
        .expect("a message in time")
    }
}
