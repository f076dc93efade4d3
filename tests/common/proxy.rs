// SPDX-License-Identifier: MPL-2.0

//! A WebSocket proxy that rewrites text frames in both directions: it turns a well-behaved
//! client into one that sends what a hostile or buggy client would (e.g. a stream ID with
//! `../` in it), without a second client implementation.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// Starts the proxy in front of `upstream` (`ws://…`); returns its `ws://` URL. Frames from
/// the client get `from`→`to`; frames from the server get `to`→`from`.
pub fn start(upstream: &str, from: &str, to: &str) -> String {
    let rt = gstvdoninja::runtime::handle();
    let listener = rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("proxy binds");
    let addr = listener.local_addr().expect("address");
    let (upstream, from, to) = (upstream.to_string(), from.to_string(), to.to_string());
    rt.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (upstream, from, to) = (upstream.clone(), from.clone(), to.clone());
            tokio::spawn(async move {
                let Ok(client) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let Ok((server, _)) = tokio_tungstenite::connect_async(upstream.as_str()).await
                else {
                    return;
                };
                let (mut c_tx, mut c_rx) = client.split();
                let (mut s_tx, mut s_rx) = server.split();
                let (f1, t1) = (from.clone(), to.clone());
                let up = async move {
                    while let Some(Ok(m)) = c_rx.next().await {
                        let m = match m {
                            Message::Text(t) => Message::text(t.as_str().replace(&f1, &t1)),
                            Message::Close(_) => break,
                            other => other,
                        };
                        if s_tx.send(m).await.is_err() {
                            break;
                        }
                    }
                };
                let down = async move {
                    while let Some(Ok(m)) = s_rx.next().await {
                        let m = match m {
                            Message::Text(t) => Message::text(t.as_str().replace(&to, &from)),
                            Message::Close(_) => break,
                            other => other,
                        };
                        if c_tx.send(m).await.is_err() {
                            break;
                        }
                    }
                };
                tokio::select! {
                    _ = up => {}
                    _ = down => {}
                }
            });
        }
    });
    format!("ws://{addr}")
}
