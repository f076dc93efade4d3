// SPDX-License-Identifier: MPL-2.0

//! `vdoninja-server` degrades rather than falls over: past its connection limit new clients
//! get a clear refusal, a client that does not read is dropped alone, and a flooding client is
//! rate-limited while its room goes on. Real WebSocket clients on 127.0.0.1.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{WAIT, Ws};
use futures_util::{SinkExt, StreamExt};
use gstvdoninja::server::hub::ServerMode;
use gstvdoninja::server::{RateLimit, RunningServer, ServerConfig, serve};
use gstvdoninja::signaling::client::{Client, ClientConfig, ClientEvent};
use serde_json::json;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

struct Logged {
    server: RunningServer,
    url: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Logged {
    fn logged(&self, needle: &str) -> bool {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
    }
}

async fn server(adjust: impl FnOnce(&mut ServerConfig)) -> Logged {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let mut cfg = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.mode = ServerMode::Fanout;
    let sink = lines.clone();
    cfg.log = Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string()));
    adjust(&mut cfg);
    let server = serve(cfg).await.expect("server starts");
    let url = format!("ws://{}", server.local_addr());
    Logged { server, url, lines }
}

/// Polls `cond` every 20 ms until it holds, at most `WAIT`.
async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond().await {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Joins `room` and returns once the hub has taken the join (separate connections are not
/// ordered: without this a later member's join could overtake an earlier one's). A message
/// without `from` is answered to its sender alone, after the join.
async fn join(ws: &mut Ws, uuid: &str, room: &str) {
    ws.send(json!({"request":"joinroom","roomid":room,"from":uuid}))
        .await;
    ws.send(json!({"sync":1})).await;
    assert_eq!(ws.recv().await["error"], "missing from field");
}

#[tokio::test]
async fn past_the_connection_limit_clients_are_refused_with_a_reason() {
    let s = server(|c| c.max_connections = 3).await;
    let mut held = Vec::new();
    for i in 0..3 {
        let mut ws = Ws::connect(&s.url).await;
        join(&mut ws, &format!("u{i}"), "R").await;
        held.push(ws);
    }
    match tokio_tungstenite::connect_async(&s.url).await {
        Err(WsError::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 503);
            let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default());
            assert!(body.contains("connection limit (3) reached"), "{body}");
        }
        other => panic!("a fourth client was not refused: {other:?}"),
    }
    assert!(s.logged("connection limit (3) reached: 1 connection(s) refused"));
    // The elements' client says why, and tries again later.
    let (events_tx, mut events) = tokio::sync::mpsc::channel(64);
    let client = Client::spawn(
        &tokio::runtime::Handle::current(),
        ClientConfig::new(&s.url),
        events_tx,
    );
    match tokio::time::timeout(WAIT, events.recv()).await {
        Ok(Some(ClientEvent::Disconnected { reason, .. })) => assert!(
            reason.contains("503") && reason.contains("connection limit (3) reached"),
            "{reason}"
        ),
        other => panic!("the client did not report the refusal: {other:?}"),
    }
    drop(client);
    // The three are untouched, and a place that frees up is given again.
    held[2].send(json!({"from":"u2","after":"refusal"})).await;
    assert_eq!(held[0].recv().await["from"], "u1", "the joins first");
    assert_eq!(held[0].recv().await["from"], "u2");
    assert_eq!(held[0].recv().await["after"], "refusal");
    drop(held.pop());
    let url = s.url.clone();
    eventually("a freed place is given again", async || {
        tokio_tungstenite::connect_async(&url).await.is_ok()
    })
    .await;
    drop(s.server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_dropped_alone() {
    let s = server(|c| {
        c.rate = RateLimit {
            per_second: 10_000.0,
            burst: 10_000.0,
        };
    })
    .await;
    let mut a = Ws::connect(&s.url).await;
    let mut b = Ws::connect(&s.url).await;
    // The stalled client: a tiny receive window, and it never reads.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let tcp = sock.connect(s.server.local_addr()).await.expect("connect");
    let (mut stalled, _) = tokio_tungstenite::client_async(&s.url, tcp)
        .await
        .expect("handshake");
    join(&mut a, "a", "R").await;
    join(&mut b, "b", "R").await;
    assert_eq!(a.recv().await["from"], "b");
    stalled
        .send(Message::text(
            json!({"request":"joinroom","roomid":"R","from":"s"}).to_string(),
        ))
        .await
        .unwrap();
    // B heard it, so the hub took it.
    assert_eq!(a.recv().await["from"], "s");
    assert_eq!(b.recv().await["from"], "s");

    // 16 MB for the room: far more than the socket buffers (4 MB) and the queue (1 MB, at
    // most 4 MB at once) hold.
    const N: usize = 1000;
    let pad = "x".repeat(16 * 1024);
    let sender = tokio::spawn(async move {
        for i in 0..N {
            a.send(json!({"from":"a","n":i,"pad":pad})).await;
        }
        a
    });
    for i in 0..N {
        assert_eq!(
            b.recv().await["n"],
            i,
            "the reading member gets everything, in order"
        );
    }
    let _a = sender.await.unwrap();
    assert!(
        s.logged("dropped: not reading"),
        "{:?}",
        s.lines.lock().unwrap()
    );
    // The stalled client finds its connection closed after what the buffers held.
    let got = tokio::time::timeout(WAIT, async {
        let mut got = 0;
        while let Some(Ok(m)) = stalled.next().await {
            got += matches!(m, Message::Text(_)) as usize;
        }
        got
    })
    .await
    .expect("the stalled client's connection ends");
    assert!(got < N, "it was not dropped: it got all {got}");
}

#[tokio::test]
async fn a_flooding_client_is_rate_limited_and_its_room_goes_on() {
    let limit = RateLimit {
        per_second: 50.0,
        burst: 100.0,
    };
    let s = server(|c| c.rate = limit).await;
    let mut a = Ws::connect(&s.url).await;
    let mut b = Ws::connect(&s.url).await;
    let mut c = Ws::connect(&s.url).await;
    join(&mut a, "a", "R").await;
    join(&mut b, "b", "R").await;
    join(&mut c, "c", "R").await;
    assert_eq!(b.recv().await["from"], "c");
    assert_eq!(a.recv().await["from"], "b");
    assert_eq!(a.recv().await["from"], "c");

    let start = Instant::now();
    const FLOOD: usize = 5000;
    for i in 0..FLOOD {
        a.0.feed(Message::text(json!({"from":"a","flood":i}).to_string()))
            .await
            .unwrap();
    }
    a.0.flush().await.unwrap();
    // The room goes on: C's message reaches B.
    c.send(json!({"from":"c","marker":1})).await;
    let mut flood_seen = 0;
    loop {
        let m = b.recv().await;
        if m["marker"] == 1 {
            break;
        }
        assert_eq!(m["from"], "a");
        flood_seen += 1;
    }
    let allowed = limit.burst + limit.per_second * start.elapsed().as_secs_f64() + 1.0;
    assert!(
        (flood_seen as f64) <= allowed && flood_seen >= limit.burst as usize,
        "{flood_seen} of the flood passed (allowed {allowed:.0})"
    );
    assert!(s.logged("rate limit exceeded"));
    // The flooder is limited, not dropped: once its tokens are back, it is heard again.
    let mut n = 0;
    loop {
        n += 1;
        a.send(json!({"from":"a","after":n})).await;
        let m = tokio::time::timeout(Duration::from_millis(100), b.0.next()).await;
        if let Ok(Some(Ok(Message::Text(t)))) = m
            && t.contains("\"after\"")
        {
            break;
        }
        assert!(n < 100, "the flooder was never heard again");
    }
}
