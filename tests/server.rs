// SPDX-License-Identifier: MPL-2.0

//! The handshake server with real WebSocket clients on 127.0.0.1.
//!
//! "Only to its destination" is checked without waiting for silence: the hub handles frames in
//! order, so after a relayed message the sender sends a marker to the third client, and the
//! marker must be the third client's next frame.

mod common;

use common::{Ws, start_server};
use gstvdoninja::server::hub::ServerMode;
use serde_json::{Value, json};

#[tokio::test]
async fn official_room_flow_with_three_clients() {
    let s = start_server(ServerMode::Official).await;
    let mut a = Ws::connect(&s.url).await;
    let mut b = Ws::connect(&s.url).await;
    let mut c = Ws::connect(&s.url).await;

    a.send(json!({"request":"joinroom","roomid":"R"})).await;
    assert_eq!(a.recv().await, json!({"request":"listing","list":[]}));
    a.send(json!({"request":"seed","streamID":"alice808d64"}))
        .await;

    b.send(json!({"request":"joinroom","roomid":"R"})).await;
    let listing = b.recv().await;
    assert_eq!(listing["request"], "listing");
    let a_uuid = listing["list"][0]["UUID"].as_str().unwrap().to_string();
    assert_eq!(listing["list"][0]["streamID"], "alice808d64");
    let joined = a.recv().await;
    assert_eq!(joined["request"], "someonejoined");
    let b_uuid = joined["UUID"].as_str().unwrap().to_string();
    assert!(joined.get("streamID").is_none());

    c.send(json!({"request":"joinroom","roomid":"R"})).await;
    let listing = c.recv().await;
    let list = listing["list"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(
        list.iter()
            .any(|m| m["UUID"] == a_uuid.as_str() && m["streamID"] == "alice808d64")
    );
    assert!(
        list.iter()
            .any(|m| m["UUID"] == b_uuid.as_str() && m.get("streamID").is_none())
    );
    let c_uuid = a.recv().await["UUID"].as_str().unwrap().to_string();
    assert_eq!(b.recv().await["UUID"], c_uuid.as_str());

    // B seeds: the others hear videoaddedtoroom.
    b.send(json!({"request":"seed","streamID":"bob808d64"}))
        .await;
    for ws in [&mut a, &mut c] {
        assert_eq!(
            ws.recv().await,
            json!({"request":"videoaddedtoroom","UUID":b_uuid,"streamID":"bob808d64"})
        );
    }

    // C plays A: A is asked to offer to C.
    c.send(json!({"request":"play","streamID":"alice808d64"}))
        .await;
    assert_eq!(a.recv().await, json!({"request":"offerSDP","UUID":c_uuid}));

    // A relays to C: UUID is rewritten to A, B gets nothing.
    a.send(json!({"UUID":c_uuid,"session":"S","description":"00ff","vector":"00"}))
        .await;
    a.send(json!({"UUID":b_uuid,"marker":1})).await;
    assert_eq!(
        c.recv().await,
        json!({"UUID":a_uuid,"session":"S","description":"00ff","vector":"00"})
    );
    assert_eq!(b.recv().await, json!({"UUID":a_uuid,"marker":1}));
}

#[tokio::test]
async fn duplicate_stream_gets_an_alert() {
    let s = start_server(ServerMode::Official).await;
    let mut a = Ws::connect(&s.url).await;
    let mut b = Ws::connect(&s.url).await;
    a.send(json!({"request":"seed","streamID":"cam1808d64"}))
        .await;
    b.send(json!({"request":"seed","streamID":"cam1808d64"}))
        .await;
    let alert = b.recv().await;
    assert_eq!(alert["request"], "alert");
    assert!(
        alert["message"]
            .as_str()
            .unwrap()
            .contains("already in use")
    );
    // Once the owner leaves, the ID is free again.
    drop(a);
    let mut tries = 0;
    loop {
        tries += 1;
        assert!(tries < 200, "the stream ID was never freed");
        b.send(json!({"request":"seed","streamID":"cam1808d64"}))
            .await;
        let mut v = Ws::connect(&s.url).await;
        v.send(json!({"request":"play","streamID":"cam1808d64"}))
            .await;
        // Either B is asked to offer (freed), or B got another alert first.
        let m = b.recv().await;
        if m["request"] == "offerSDP" {
            break;
        }
        assert_eq!(m["request"], "alert");
    }
}

#[tokio::test]
async fn play_before_seed_is_answered_once_seeded() {
    let s = start_server(ServerMode::Official).await;
    let mut v = Ws::connect(&s.url).await;
    let mut p = Ws::connect(&s.url).await;
    v.send(json!({"request":"play","streamID":"cam1808d64"}))
        .await;
    // Make sure the play is processed before the seed: relay a marker through the hub first.
    v.send(json!({"request":"joinroom","roomid":"x"})).await;
    assert_eq!(v.recv().await["request"], "listing");
    p.send(json!({"request":"seed","streamID":"cam1808d64"}))
        .await;
    let offer = p.recv().await;
    assert_eq!(offer["request"], "offerSDP");
    // V's UUID is the one the offer names: a relayed message gets back to V.
    p.send(json!({"UUID":offer["UUID"],"hello":true})).await;
    assert_eq!(v.recv().await["hello"], true);
}

#[tokio::test]
async fn garbage_and_oversized_frames_do_not_stop_the_server() {
    let s = start_server(ServerMode::Official).await;
    let mut bad = Ws::connect(&s.url).await;
    for t in [
        "not json",
        "[1,2,3]",
        "{\"request\":",
        "{\"UUID\":\"nobody\",\"x\":1}",
        "{\"request\":\"seed\"}",
        "{\"request\":\"play\",\"streamID\":7}",
    ] {
        bad.send_text(t.to_string()).await;
    }
    use futures_util::SinkExt;
    bad.0
        .send(tokio_tungstenite::tungstenite::Message::binary(vec![
            0u8;
            100
        ]))
        .await
        .unwrap();
    // The same connection still works.
    bad.send(json!({"request":"joinroom","roomid":"R"})).await;
    assert_eq!(bad.recv().await["request"], "listing");
    // An oversized frame ends that connection only.
    let mut huge = Ws::connect(&s.url).await;
    let _ = futures_util::SinkExt::send(
        &mut huge.0,
        tokio_tungstenite::tungstenite::Message::text("x".repeat(200_000)),
    )
    .await;
    let mut ok = Ws::connect(&s.url).await;
    ok.send(json!({"request":"joinroom","roomid":"R"})).await;
    let listing = ok.recv().await;
    assert_eq!(listing["list"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn fanout_rules() {
    let s = start_server(ServerMode::Fanout).await;
    let mut a = Ws::connect(&s.url).await;
    let mut b = Ws::connect(&s.url).await;
    let mut c = Ws::connect(&s.url).await;
    let mut lobby = Ws::connect(&s.url).await;

    // Without `from` the server answers with an error.
    a.send(json!({"request":"seed","streamID":"x"})).await;
    assert_eq!(a.recv().await, json!({"error":"missing from field"}));

    a.send(json!({"request":"joinroom","roomid":"R","streamID":"alice","from":"A"}))
        .await;
    b.send(json!({"request":"joinroom","roomid":"R","from":"B"}))
        .await;
    // A sees B's joinroom verbatim; the lobby (no room) sees neither.
    assert_eq!(
        a.recv().await,
        json!({"request":"joinroom","roomid":"R","from":"B"})
    );
    c.send(json!({"request":"joinroom","roomid":"R","from":"C"}))
        .await;
    assert_eq!(a.recv().await["from"], "C");
    assert_eq!(b.recv().await["from"], "C");

    // A UUID-addressed message reaches only its target.
    a.send(json!({"UUID":"C","from":"A","roomid":"R","x":1}))
        .await;
    a.send(json!({"UUID":"B","from":"A","roomid":"R","marker":1}))
        .await;
    let got = c.recv().await;
    assert_eq!(got["x"], 1, "{got}");
    assert_eq!(b.recv().await["marker"], 1);

    // `play` goes only to the socket whose sid matches.
    c.send(json!({"request":"play","streamID":"alice","from":"C","roomid":"R"}))
        .await;
    c.send(json!({"UUID":"B","from":"C","marker":2})).await;
    assert_eq!(a.recv().await["request"], "play");
    assert_eq!(b.recv().await["marker"], 2);

    // Identity and sid rules.
    let mut dup = Ws::connect(&s.url).await;
    dup.send(json!({"request":"joinroom","roomid":"R","from":"A"}))
        .await;
    assert_eq!(dup.recv().await, json!({"error":"uuid already in use"}));
    a.send(json!({"request":"seed","streamID":"other","from":"A"}))
        .await;
    assert_eq!(a.recv().await, json!({"error":"can't change sid"}));
    b.send(json!({"request":"seed","streamID":"alice","from":"B"}))
        .await;
    assert_eq!(b.recv().await, json!({"error":"sid already in use"}));

    // Sockets in no room only hear from sockets in no room.
    lobby
        .send(json!({"request":"seed","streamID":"lobbycam","from":"L"}))
        .await;
    let mut l2 = Ws::connect(&s.url).await;
    l2.send(json!({"request":"play","streamID":"lobbycam","from":"L2"}))
        .await;
    let m: Value = lobby.recv().await;
    assert_eq!(
        m,
        json!({"request":"play","streamID":"lobbycam","from":"L2"})
    );
    a.send(json!({"UUID":"B","from":"A","roomid":"R","marker":3}))
        .await;
    assert_eq!(
        b.recv().await["marker"],
        3,
        "room members never saw the lobby's seed"
    );
}

/// The `vdoninja-server` binary, as users run it.
fn server_cli(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_vdoninja-server"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("vdoninja-server runs")
}

#[test]
fn the_server_command_line_behaves_like_other_rust_tools() {
    let help = server_cli(&["--help"], &[]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--listen",
        "--official",
        "--tls-cert",
        "--max-message",
        "VDONINJA_LISTEN",
    ] {
        assert!(text.contains(flag), "--help names {flag}:\n{text}");
    }
    let version = server_cli(&["--version"], &[]);
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
    // Usage errors: exit code 2 and a message naming the problem.
    for (args, says) in [
        (&["--bogus"][..], "--bogus"),
        (&["--listen", "nowhere"][..], "nowhere"),
        (&["--tls-cert", "c.pem"][..], "--tls-key"),
        (&["--max-message", "12"][..], "12"),
        (&["--official", "--fanout"][..], "--fanout"),
    ] {
        let out = server_cli(args, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // An environment override is taken like the flag.
    let bad = server_cli(&[], &[("VDONINJA_LISTEN", "not-an-address")]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not-an-address"));
}

#[test]
fn the_server_stops_cleanly_on_sigterm_and_sigint() {
    use std::io::{BufRead, BufReader};
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vdoninja-server"))
            .args(["--listen", "127.0.0.1:0"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the server starts");
        // Once it says it listens, its signal handlers are in place.
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let listening = lines
            .by_ref()
            .take(5)
            .map_while(Result::ok)
            .any(|l| l.contains("listening on"));
        assert!(listening, "the server never said it listens");
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let deadline = std::time::Instant::now() + common::WAIT;
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "signal {signal}: still running"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert!(status.success(), "signal {signal}: {status:?}");
    }
}
