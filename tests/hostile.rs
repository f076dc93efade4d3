// SPDX-License-Identifier: MPL-2.0

//! Hostile input end to end (issue 12, item 5), with real webrtcbin peers:
//! - a hostile handshake server (a proxy in front of ours) throws at a room recorder garbage,
//!   binary frames, frames cut mid-way, valid ciphertext of nonsense, offers of nonsense SDP,
//!   a flood of candidates for peers that do not exist, a frame over the size cap, and closes
//!   the connection in the middle of a negotiation: the recorder records the real guest, its
//!   memory stays bounded by the queue caps, each kind of drop is logged a few times at most;
//! - a hostile viewer on the data channel (oversized and malformed messages, a storm of
//!   renegotiations, key-frame and ICE-restart requests) next to a well-behaved one: the
//!   publisher goes on serving the good viewer.

mod common;

#[allow(dead_code)] // only its memory reading is used here
#[path = "common/procstat.rs"]
mod procstat;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::media::*;
use common::recorder::{Recorder, record_some};
use futures_util::{SinkExt, StreamExt};
use gst::prelude::*;
use gstvdoninja::protocol::crypto::{Crypto, DEFAULT_SALT};
use gstvdoninja::protocol::message::{Object, Sealed};
use gstvdoninja::server::hub::ServerMode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// Warning-or-worse lines our elements logged, by element name.
fn capture_warnings() -> Arc<Mutex<Vec<(String, String)>>> {
    init();
    let lines: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    gst::log::set_threshold_for_name("vdoninja*", gst::DebugLevel::Warning);
    let l = lines.clone();
    gst::log::add_log_function(move |cat, level, _file, _fn, _line, obj, msg| {
        if cat.name().starts_with("vdoninja")
            && level <= gst::DebugLevel::Warning
            && let Some(text) = msg.get()
        {
            let who = obj.map(|o| o.to_string()).unwrap_or_default();
            l.lock().expect("lock").push((who, text.to_string()));
        }
    });
    lines
}

/// A line's kind: its text without digits (counts, UUIDs of the flood).
fn kind(line: &str) -> String {
    line.chars().filter(|c| !c.is_ascii_digit()).collect()
}

/// What the hostile server sends before it relays: the barrage.
fn barrage() -> Vec<Message> {
    let crypto = Crypto::new(None, DEFAULT_SALT);
    let sealed = |uuid: &str, key: &str, v: Value| {
        let mut o = Object::new();
        o.insert("UUID".into(), json!(uuid));
        o.insert("session".into(), json!(format!("s-{uuid}")));
        Sealed::seal(&v, &crypto).write_into(&mut o, key);
        Value::Object(o).to_string()
    };
    let mut out = Vec::new();
    for t in [
        "",
        "nope",
        "[1,2,3]",
        "{\"description\":5}",
        "\u{0}\u{1}\u{2}",
        "null",
    ] {
        out.push(Message::text(t));
    }
    out.push(Message::binary(vec![0xff; 1000]));
    // Cut mid-way.
    let whole = sealed(
        "cut",
        "description",
        json!({"type":"offer","sdp":"v=0\r\n"}),
    );
    out.push(Message::text(&whole[..whole.len() / 2]));
    // Valid ciphertext of nonsense, and offers of nonsense SDP from peers nobody knows.
    for i in 0..20 {
        out.push(Message::text(sealed(
            &format!("nonsense{i}"),
            "description",
            json!("\u{1}not a description"),
        )));
        out.push(Message::text(sealed(
            &format!("junk{i}"),
            "description",
            json!({"type":"offer","sdp":"v=0\r\nthis is not SDP\r\n"}),
        )));
    }
    // Candidates for peers that do not exist (plain: taken with or without a password, and
    // no AES in a debug build): 20,000 messages of 4 candidates of 1.5 KB, 120 MB if kept.
    let pad = "x".repeat(1500);
    let candidates: Vec<Value> = (0..4)
        .map(|i| {
            json!({"candidate": format!("candidate:{i} 1 udp 2122260223 10.9.9.9 5000{i} typ host {pad}"),
                   "sdpMLineIndex": 0})
        })
        .collect();
    let candidates = Value::Array(candidates);
    for i in 0..20_000 {
        let m = json!({"UUID": format!("ghost{i}"), "session": format!("g{i}"),
                       "type": "remote", "candidates": candidates});
        out.push(Message::text(m.to_string()));
    }
    out
}

/// A proxy in front of `upstream` that is hostile to its clients: the first connection gets
/// the barrage and is closed right after the first SDP it relays (mid-negotiation); the second
/// gets a frame over the client's size cap; later ones are relayed as they are.
fn hostile_server(upstream: &str) -> (String, Arc<AtomicUsize>) {
    let barrage = Arc::new(barrage());
    let rt = gstvdoninja::runtime::handle();
    let listener = rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("binds");
    let addr = listener.local_addr().expect("address");
    let upstream = upstream.to_string();
    let conns = Arc::new(AtomicUsize::new(0));
    let counter = conns.clone();
    rt.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let (upstream, barrage) = (upstream.clone(), barrage.clone());
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
                match n {
                    0 => {
                        for m in barrage.iter().cloned() {
                            if c_tx.feed(m).await.is_err() {
                                return;
                            }
                        }
                        let _ = c_tx.flush().await;
                    }
                    1 => {
                        let _ = c_tx.send(Message::text("y".repeat(2 << 20))).await;
                    }
                    _ => {}
                }
                let up = async move {
                    while let Some(Ok(m)) = c_rx.next().await {
                        if s_tx.send(m).await.is_err() {
                            break;
                        }
                    }
                };
                let down = async move {
                    while let Some(Ok(m)) = s_rx.next().await {
                        let sdp = m.to_text().is_ok_and(|t| t.contains("\"description\""));
                        if c_tx.send(m).await.is_err() {
                            break;
                        }
                        if n == 0 && sdp {
                            break; // and the connection goes, mid-negotiation
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
    (format!("ws://{addr}"), conns)
}

fn rss_mb() -> f64 {
    procstat::rss_kb(std::process::id()) as f64 / 1024.0
}

#[test]
fn a_hostile_server_does_not_stop_the_recording() {
    let warnings = capture_warnings();
    let server = Server::start(ServerMode::Official);
    let (proxy, conns) = hostile_server(&server.url);
    let dir = tempfile::tempdir().expect("tempdir");
    let room = "hostile";
    let guest = common::run::publisher(&server, "guest", Some(room), None, 0);
    let before = rss_mb();
    let mut rec = Recorder::start(&format!(
        "vdoninjasrc name=victim room={room} record-location={}/%s-%t.mkv {}",
        dir.path().display(),
        server.props().replace(&server.url, &proxy)
    ));
    let mut peak = before;
    let t0 = Instant::now();
    let recorded = wait_until(Duration::from_secs(60), || {
        rec.poll();
        peak = peak.max(rss_mb());
        !rec.started.is_empty()
    });
    assert!(
        recorded,
        "the guest is recorded through the hostile server ({} connections): {:?}",
        conns.load(Ordering::SeqCst),
        rec.warnings
    );
    eprintln!("recorded {:?} after the recorder started", t0.elapsed());
    let path = rec.started[0].1.clone();
    record_some(&path, Duration::from_secs(2));
    peak = peak.max(rss_mb());
    let rec = rec.end();
    let _ = guest.set_state(gst::State::Null);
    let connections = conns.load(Ordering::SeqCst);
    eprintln!(
        "RSS {before:.0} MB before, peak {peak:.0} MB; {connections} connections to the hostile server"
    );
    assert!(
        connections >= 3,
        "the recorder reconnected after the close and the oversized frame"
    );
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);
    assert_eq!(rec.started.len(), 1, "{:?}", rec.started);
    let r = inspect_file(&path, "matroskademux");
    assert!(r.all_decoded(), "{r:?}");
    assert_eq!((r.count("video/"), r.count("audio/")), (1, 1), "{r:?}");
    // 120 MB of candidates were thrown at it; the queue keeps 2 MB, the socket is not read
    // past 64 waiting frames. The recorder's own pipeline costs 36-39 MB (the same with no
    // flood, with 60 MB or with 240 MB of it).
    assert!(
        peak - before < 80.0,
        "memory grew by {:.0} MB",
        peak - before
    );
    assert_few_lines_per_kind(&warnings, "victim", 20_000);
}

#[test]
fn a_hostile_viewer_does_not_disturb_the_others() {
    let warnings = capture_warnings();
    let server = Server::start(ServerMode::Official);
    let publisher = launch(&format!(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         vdoninjasink name=caster stream-id=cast {} \
         audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! caster.",
        server.props()
    ));
    publisher.set_state(gst::State::Playing).expect("plays");
    let opts = || ViewerOptions {
        stream_id: "cast",
        room: None,
        password: None,
    };
    let good = TestViewer::start(&server, opts());
    let bad = TestViewer::start(&server, opts());
    assert!(
        good.wait_frames(30, 10) && bad.wait_frames(10, 5),
        "both see the stream"
    );
    let big = format!("{{\"chat\":\"{}\"}}", "z".repeat(300 * 1024));
    let reneg = json!({"description": {"type":"offer","sdp":"v=0\r\nnot SDP\r\n"}}).to_string();
    let t0 = Instant::now();
    let frames_before = good.video_frames();
    for i in 0..500 {
        bad.send_data(match i % 6 {
            0 => &big,
            1 => "{not json",
            2 => &reneg,
            3 => r#"{"keyframe":true}"#,
            4 => r#"{"iceRestartRequest":true}"#,
            _ => r#"{"request":{"audio":true,"video":true}}"#,
        });
    }
    // The good viewer's picture goes on during and after the storm.
    let flowing = wait_until(Duration::from_secs(10), || {
        good.video_frames() >= frames_before + 90
    });
    let elapsed = t0.elapsed();
    assert!(
        flowing,
        "the good viewer got {} frames in {elapsed:?} after the storm",
        good.video_frames() - frames_before
    );
    eprintln!(
        "good viewer: 90 frames {elapsed:?} after the storm began; the hostile viewer has {} frames",
        bad.video_frames()
    );
    assert!(
        bus_errors(&publisher).is_empty(),
        "the publisher reports no error"
    );
    good.stop();
    bad.stop();
    let _ = publisher.set_state(gst::State::Null);
    assert_few_lines_per_kind(&warnings, "caster", 500);
}

/// At most 20 warning lines of any one kind from element `name`, for `messages` bad ones.
fn assert_few_lines_per_kind(warnings: &Mutex<Vec<(String, String)>>, name: &str, messages: usize) {
    let lines: Vec<String> = warnings
        .lock()
        .expect("lock")
        .iter()
        .filter(|(who, _)| who.contains(name))
        .map(|(_, l)| l.clone())
        .collect();
    let mut kinds: HashMap<String, usize> = HashMap::new();
    for l in &lines {
        *kinds.entry(kind(l)).or_default() += 1;
    }
    eprintln!(
        "{name}: {} warning lines, {} kinds:",
        lines.len(),
        kinds.len()
    );
    for (k, n) in &kinds {
        eprintln!("  {n} x {k}");
    }
    assert!(
        lines.len() <= 200,
        "{} warning lines for {messages} bad messages",
        lines.len()
    );
    for (k, n) in &kinds {
        assert!(*n <= 20, "{n} lines of one kind: {k}");
    }
}
