// SPDX-License-Identifier: MPL-2.0

//! The WebSocket client and the signaling session against the in-process server: reconnect
//! with backoff and intent replay, `wss://` with a test CA, and the TURN list fetch.

mod common;

use std::time::{Duration, Instant};

use common::{WAIT, start_server, start_server_at, tapped_all};
use gstvdoninja::protocol::machine::{Config, Machine, View};
use gstvdoninja::server::hub::ServerMode;
use gstvdoninja::server::{ServerConfig, serve};
use gstvdoninja::signaling::client::{Client, ClientConfig, ClientEvent};
use gstvdoninja::signaling::session::Session;
use gstvdoninja::signaling::turn_fetch::{TurnSource, turn_list};
use tokio::sync::mpsc;

fn fast(url: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url);
    c.backoff_initial = Duration::from_millis(200);
    c.backoff_max = Duration::from_secs(2);
    c
}

async fn next_event(rx: &mut mpsc::Receiver<ClientEvent>) -> ClientEvent {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("an event in time")
        .expect("client alive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_reconnects_and_replays_intent() {
    let mut s = start_server(ServerMode::Official).await;
    let addr = s.server.local_addr();
    let (out_tx, _out_rx) = mpsc::unbounded_channel();
    let publisher = Machine::new(Config {
        room: Some("myroom".into()),
        publish: Some("cam1".into()),
        ..Default::default()
    })
    .unwrap();
    let viewer = Machine::new(Config {
        view: View::Stream("other".into()),
        ..Default::default()
    })
    .unwrap();
    let rt = tokio::runtime::Handle::current();
    let _p = Session::spawn(&rt, publisher, fast(&s.url), out_tx.clone());
    let _v = Session::spawn(&rt, viewer, fast(&s.url), out_tx);
    let intent: [&dyn Fn(&serde_json::Value) -> bool; 3] = [
        &|v| v["request"] == "joinroom" && v["roomid"] == "2f1a0139acdd5bdc",
        &|v| v["request"] == "seed" && v["streamID"] == "cam1808d64",
        &|v| v["request"] == "play" && v["streamID"] == "other808d64",
    ];
    tapped_all(&mut s.tap, &intent).await;

    // The server goes away and comes back on the same port.
    let down = Instant::now();
    s.server.stop().await;
    let mut s2 = start_server_at(addr, ServerMode::Official).await;
    let up = Instant::now();
    tapped_all(&mut s2.tap, &intent).await;
    eprintln!(
        "reconnect: server restarted after {:?}, intent replayed {:?} after it was back",
        up - down,
        up.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_backs_off_while_the_server_is_down() {
    // A port with nobody listening.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let (tx, mut rx) = mpsc::channel(64);
    let client = Client::spawn(
        &tokio::runtime::Handle::current(),
        fast(&format!("ws://{addr}")),
        tx,
    );
    let mut delays = Vec::new();
    for _ in 0..4 {
        match next_event(&mut rx).await {
            ClientEvent::Disconnected { retry_in, .. } => delays.push(retry_in),
            other => panic!("unexpected {other:?}"),
        }
    }
    eprintln!("backoff delays: {delays:?}");
    // 200 ms doubling (±20 %) up to the 2 s cap.
    for (d, base) in delays.iter().zip([0.2, 0.4, 0.8, 1.6]) {
        let s = d.as_secs_f64();
        assert!(
            s >= base * 0.8 - 1e-6 && s <= base * 1.2 + 1e-6,
            "{s} vs {base}"
        );
    }
    // Peer messages wait while offline; commands do not (the state machine replays them).
    client.send(r#"{"request":"play","streamID":"x"}"#.into());
    client.send(r#"{"UUID":"peer","bye":true}"#.into());
    let mut s = start_server_at(addr, ServerMode::Official).await;
    loop {
        if next_event(&mut rx).await == ClientEvent::Connected {
            break;
        }
    }
    let (_, first) = tokio::time::timeout(WAIT, s.tap.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, r#"{"UUID":"peer","bye":true}"#);
}

fn write_pki(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_verifies_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = write_pki(dir.path());
    let mut cfg = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.tls = Some((cert, key));
    let server = serve(cfg).await.unwrap();
    let url = format!("wss://localhost:{}", server.local_addr().port());
    let rt = tokio::runtime::Handle::current();

    // Refused without the CA.
    let (tx, mut rx) = mpsc::channel(64);
    let _c = Client::spawn(&rt, fast(&url), tx);
    match next_event(&mut rx).await {
        ClientEvent::Disconnected { reason, .. } => {
            assert!(reason.to_lowercase().contains("certificate"), "{reason}")
        }
        other => panic!("connected without trusting the CA: {other:?}"),
    }
    // Accepted with tls-ca-file.
    let (tx, mut rx) = mpsc::channel(64);
    let mut c = fast(&url);
    c.tls_ca_file = Some(ca.clone());
    let _c = Client::spawn(&rt, c, tx);
    assert_eq!(next_event(&mut rx).await, ClientEvent::Connected);
    // Accepted with insecure-tls.
    let (tx, mut rx) = mpsc::channel(64);
    let mut c = fast(&url);
    c.insecure_tls = true;
    let _c = Client::spawn(&rt, c, tx);
    assert_eq!(next_event(&mut rx).await, ClientEvent::Connected);
    // A bad CA file is a configuration error, not a retry loop.
    let (tx, mut rx) = mpsc::channel(64);
    let mut c = fast(&url);
    c.tls_ca_file = Some(dir.path().join("missing.pem"));
    let _c = Client::spawn(&rt, c, tx);
    assert!(matches!(next_event(&mut rx).await, ClientEvent::Failed(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_list_fetch_cache_and_fallback() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = r#"{"servers":[{"username":"u","credential":"c","urls":["turn:127.0.0.1:3478"],"tz":0,"udp":true}]}"#;
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 2048];
            let _ = sock.read(&mut buf).await;
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        }
    });
    let url = format!("http://{addr}/");
    let (list, src, _) = turn_list(&url, Duration::from_secs(2)).await;
    assert_eq!(src, TurnSource::Fetched);
    assert_eq!(list[0].server.host, "127.0.0.1");
    let (_, src, _) = turn_list(&url, Duration::from_secs(2)).await;
    assert_eq!(src, TurnSource::Cached);
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);

    // Nobody listening: the built-in table, quickly.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/", dead.local_addr().unwrap());
    drop(dead);
    let t = Instant::now();
    let (list, src, why) = turn_list(&dead_url, Duration::from_secs(2)).await;
    assert_eq!(src, TurnSource::Fallback);
    assert_eq!(list.len(), 10);
    assert!(why.is_some());
    assert!(t.elapsed() < Duration::from_secs(3));
}
