// SPDX-License-Identifier: MPL-2.0

//! vdoninjasrc against vdoninjasink and a browser-like publisher, real webrtcbin on 127.0.0.1
//! and our in-process server.

mod common;

use common::media::*;
use gst::prelude::*;
use gstvdoninja::server::hub::ServerMode;

/// A `vdoninjasink` publisher with its own test pattern and tone.
fn publisher(server: &Server, stream: &str, extra: &str, pattern: u32) -> gst::Pipeline {
    init();
    let desc = format!(
        "videotestsrc is-live=true pattern={pattern} ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         vdoninjasink name=s stream-id={stream} {props} {extra} \
         audiotestsrc is-live=true freq={freq} ! audio/x-raw,rate=48000,channels=2 ! s.",
        props = server.props(),
        freq = 300 + 100 * pattern,
    );
    let p = gst::parse::launch(&desc)
        .expect("pipeline parses")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    p.set_state(gst::State::Playing).expect("publisher plays");
    p
}

#[test]
fn views_one_stream_from_vdoninjasink() {
    let server = Server::start(ServerMode::Official);
    let p = publisher(&server, "cam1", "", 0);
    let s = SrcHarness::start(&format!("stream-id=cam1 {}", server.props()));
    assert!(
        s.wait_frames(&["video_cam1", "audio_cam1"], 20),
        "frames {:?} warnings {:?}",
        s.frames,
        s.warnings()
    );
    assert_eq!(s.added.lock().expect("lock").as_slice(), ["cam1"]);
    s.stop();
    let _ = p.set_state(gst::State::Null);
}

#[test]
fn decode_true_gives_raw_media() {
    let server = Server::start(ServerMode::Fanout);
    let p = publisher(&server, "raw1", "", 1);
    let s = SrcHarness::start(&format!("stream-id=raw1 decode=true {}", server.props()));
    assert!(
        s.wait_frames(&["video_raw1", "audio_raw1"], 20),
        "frames {:?}",
        s.frames
    );
    let caps = s
        .src
        .static_pad("video_raw1")
        .expect("pad")
        .current_caps()
        .expect("caps");
    assert_eq!(caps.structure(0).expect("s").name(), "video/x-raw");
    s.stop();
    let _ = p.set_state(gst::State::Null);
}

#[test]
fn a_room_with_three_publishers_gives_three_pairs_of_pads() {
    for mode in [ServerMode::Fanout, ServerMode::Official] {
        let server = Server::start(mode);
        let pubs: Vec<gst::Pipeline> = (0..3)
            .map(|i| publisher(&server, &format!("guest{i}"), "room=studio", i))
            .collect();
        let s = SrcHarness::start(&format!("room=studio {}", server.props()));
        let pads: Vec<String> = (0..3)
            .flat_map(|i| [format!("video_guest{i}"), format!("audio_guest{i}")])
            .collect();
        let names: Vec<&str> = pads.iter().map(String::as_str).collect();
        assert!(
            s.wait_frames(&names, 15),
            "{mode:?}: frames {:?} warnings {:?} publisher errors {:?}",
            s.frames,
            s.warnings(),
            pubs.iter()
                .map(|p| (
                    bus_errors(p),
                    p.by_name("s")
                        .map(|s| s.property::<gst::Structure>("stats").to_string())
                ))
                .collect::<Vec<_>>()
        );
        let mut added = s.added.lock().expect("lock").clone();
        added.sort();
        assert_eq!(added, ["guest0", "guest1", "guest2"]);
        let stats = s.src.property::<gst::Structure>("stats");
        assert_eq!(stats.get::<u32>("streams").expect("streams"), 3);
        s.stop();
        for p in pubs {
            let _ = p.set_state(gst::State::Null);
        }
    }
}

#[test]
fn streams_filter_limits_the_room() {
    let server = Server::start(ServerMode::Official);
    let pubs: Vec<gst::Pipeline> = (0..2)
        .map(|i| publisher(&server, &format!("only{i}"), "room=filtered", i))
        .collect();
    let s = SrcHarness::start(&format!("room=filtered streams=only1 {}", server.props()));
    assert!(
        s.wait_frames(&["video_only1", "audio_only1"], 15),
        "frames {:?}",
        s.frames
    );
    assert!(!s.has_pad("video_only0"));
    assert_eq!(s.added.lock().expect("lock").as_slice(), ["only1"]);
    s.stop();
    for p in pubs {
        let _ = p.set_state(gst::State::Null);
    }
}

#[test]
fn a_publisher_that_leaves_and_returns_continues_on_its_pads() {
    let server = Server::start(ServerMode::Official);
    let stay = publisher(&server, "stay", "room=door", 0);
    let leaver = publisher(&server, "leaver", "room=door", 1);
    let s = SrcHarness::start(&format!("room=door {}", server.props()));
    assert!(
        s.wait_frames(&["video_leaver", "audio_leaver", "video_stay"], 10),
        "frames {:?}",
        s.frames
    );
    let _ = leaver.set_state(gst::State::Null);
    assert!(
        wait_until(MEDIA_WAIT, || s
            .removed
            .lock()
            .expect("lock")
            .contains(&"leaver".to_string())),
        "stream-removed for the leaver"
    );
    // The pads stay (within rejoin-grace), carrying nothing.
    let pads: Vec<String> = s.src.pads().iter().map(|p| p.name().to_string()).collect();
    assert!(
        s.has_pad("video_leaver") && s.has_pad("audio_leaver"),
        "pads {pads:?}, removed {:?}",
        s.removed.lock().expect("lock")
    );
    let stay_frames = s.frames("video_stay");
    assert!(
        s.wait_frames(&["video_stay"], stay_frames + 20),
        "the other publisher keeps streaming"
    );

    // It comes back on the same pads, already linked downstream.
    let (v, a) = (s.frames("video_leaver"), s.frames("audio_leaver"));
    let back = publisher(&server, "leaver", "room=door", 2);
    assert!(
        wait_until(MEDIA_WAIT, || s.frames("video_leaver") >= v + 10
            && s.frames("audio_leaver") >= a + 10),
        "frames after rejoin {:?}",
        s.frames
    );
    assert_eq!(
        s.added
            .lock()
            .expect("lock")
            .iter()
            .filter(|x| *x == "leaver")
            .count(),
        2
    );
    assert!(!s.has_pad("video_leaver_2"), "no second pad");
    s.stop();
    let _ = back.set_state(gst::State::Null);
    let _ = stay.set_state(gst::State::Null);
}

#[test]
fn passwords_and_server_models() {
    for mode in [ServerMode::Official, ServerMode::Fanout] {
        for pw in [None, Some("Test@Room#1!"), Some("false")] {
            let server = Server::start(mode);
            let extra = pw.map(|p| format!("password=\"{p}\"")).unwrap_or_default();
            let p = publisher(&server, "secret", &extra, 0);
            let s = SrcHarness::start(&format!("stream-id=secret {extra} {}", server.props()));
            assert!(
                s.wait_frames(&["video_secret", "audio_secret"], 10),
                "{mode:?} {pw:?}: frames {:?} warnings {:?}",
                s.frames,
                s.warnings()
            );
            s.stop();
            let _ = p.set_state(gst::State::Null);
        }
    }
}

#[test]
fn a_server_that_refuses_the_connection_is_reported_on_the_bus() {
    init();
    // A server at its connection limit (here: none allowed) answers 503 with its reason.
    let mut cfg = gstvdoninja::server::ServerConfig::new("127.0.0.1:0".parse().expect("addr"));
    cfg.mode = ServerMode::Fanout;
    cfg.max_connections = 0;
    let running = gstvdoninja::runtime::handle()
        .block_on(gstvdoninja::server::serve(cfg))
        .expect("server starts");
    let server = Server {
        url: format!("ws://{}", running.local_addr()),
        server: Some(running),
        mode: ServerMode::Fanout,
    };
    let s = SrcHarness::start(&format!("stream-id=cam1 {}", server.props()));
    let mut seen = Vec::new();
    let found = wait_until(MEDIA_WAIT, || {
        seen.extend(s.warnings());
        seen.iter()
            .any(|w| w.contains("503") && w.contains("connection limit (0) reached"))
    });
    assert!(found, "warnings: {seen:?}");
    s.stop();
}

#[test]
fn a_wrong_password_is_reported() {
    let server = Server::start(ServerMode::Official);
    // The password is part of the stream's wire ID: the viewer asks for a stream nobody
    // publishes, and after the first unanswered play (15 s) it says why that may be.
    let p = publisher(&server, "locked", "password=right", 0);
    let s = SrcHarness::start(&format!(
        "stream-id=locked password=wrong {}",
        server.props()
    ));
    let mut seen = Vec::new();
    let found = wait_until(MEDIA_WAIT, || {
        seen.extend(s.warnings());
        seen.iter().any(|w| w.contains("password"))
    });
    assert!(found, "warnings: {seen:?}");
    assert!(s.frames.lock().expect("lock").is_empty());
    s.stop();
    let _ = p.set_state(gst::State::Null);
}

#[test]
fn a_browser_like_publisher_renegotiates_media_over_the_data_channel() {
    for mode in [ServerMode::Official, ServerMode::Fanout] {
        let server = Server::start(mode);
        let b = common::browser::BrowserPublisher::start(&server, "webcam", None);
        let s = SrcHarness::start(&format!("stream-id=webcam {}", server.props()));
        assert!(
            s.wait_frames(&["video_webcam", "audio_webcam"], 20),
            "{mode:?}: frames {:?} warnings {:?}",
            s.frames,
            s.warnings()
        );
        use std::sync::atomic::Ordering;
        assert_eq!(
            b.bare_offers.load(Ordering::SeqCst),
            1,
            "one data-channel-only offer"
        );
        assert_eq!(
            b.media_offers.load(Ordering::SeqCst),
            1,
            "one renegotiation with media"
        );
        let caps = s
            .src
            .static_pad("video_webcam")
            .expect("pad")
            .current_caps()
            .expect("caps");
        assert_eq!(caps.structure(0).expect("s").name(), "video/x-vp8");
        s.stop();
        b.stop();
    }
}

/// Posts an error from an element inside the peer bin that delivers `stream`.
fn break_peer(src: &gst::Element, pad: &str) {
    let ghost = src
        .static_pad(pad)
        .expect("pad")
        .downcast::<gst::GhostPad>()
        .expect("ghost");
    let inner = ghost.target().expect("target");
    let peer_bin = inner.parent_element().expect("peer bin");
    let victim = peer_bin
        .downcast_ref::<gst::Bin>()
        .expect("a bin")
        .iterate_elements()
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.factory().is_some_and(|f| f.name().contains("depay")))
        .expect("a depayloader");
    gst::element_error!(victim, gst::StreamError::Decode, ["injected failure"]);
}

#[test]
fn a_failing_peer_is_torn_down_alone() {
    let server = Server::start(ServerMode::Official);
    let a = publisher(&server, "fragile", "room=iso", 0);
    let b = publisher(&server, "sturdy", "room=iso", 1);
    let s = SrcHarness::start(&format!("room=iso {}", server.props()));
    assert!(
        s.wait_frames(&["video_fragile", "video_sturdy"], 10),
        "frames {:?}",
        s.frames
    );
    break_peer(&s.src, "video_fragile");
    let mut seen = Vec::new();
    assert!(
        wait_until(MEDIA_WAIT, || {
            seen.extend(s.warnings());
            seen.iter().any(|w| w.contains("failed and is dropped"))
        }),
        "warnings {seen:?}"
    );
    assert!(
        seen.iter().all(|w| !w.starts_with("ERROR")),
        "no error reached the pipeline: {seen:?}"
    );
    assert!(wait_until(MEDIA_WAIT, || s
        .removed
        .lock()
        .expect("lock")
        .contains(&"fragile".to_string())));
    let f = s.frames("video_sturdy");
    assert!(
        s.wait_frames(&["video_sturdy"], f + 30),
        "the other stream keeps going"
    );
    s.stop();
    let _ = a.set_state(gst::State::Null);
    let _ = b.set_state(gst::State::Null);
}

#[test]
fn an_offer_webrtcbin_cannot_take_is_refused_not_a_crash() {
    let server = Server::start(ServerMode::Official);
    let b = common::browser::BrowserPublisher::start_with(&server, "nossrc", None, false);
    let s = SrcHarness::start(&format!("stream-id=nossrc {}", server.props()));
    let mut seen = Vec::new();
    let found = wait_until(MEDIA_WAIT, || {
        seen.extend(s.warnings());
        seen.iter().any(|w| w.contains("a=ssrc"))
    });
    assert!(found, "warnings {seen:?}");
    s.stop();
    b.stop();
}

#[test]
fn vp8_decodes_with_decode_true() {
    // The highest-ranked VP8 decoder factory (vp8alphadecodebin) only takes alpha streams: the
    // element must pick a plain decoder.
    let server = Server::start(ServerMode::Official);
    let b = common::browser::BrowserPublisher::start(&server, "vp8raw", None);
    let s = SrcHarness::start(&format!("stream-id=vp8raw decode=true {}", server.props()));
    assert!(
        s.wait_frames(&["video_vp8raw", "audio_vp8raw"], 20),
        "frames {:?} warnings {:?}",
        s.frames,
        s.warnings()
    );
    let caps = s
        .src
        .static_pad("video_vp8raw")
        .expect("pad")
        .current_caps()
        .expect("caps");
    assert_eq!(caps.structure(0).expect("s").name(), "video/x-raw");
    s.stop();
    b.stop();
}

/// Debian's coturn on 127.0.0.1, as the platform notes give it; stopped when dropped.
struct Coturn {
    child: std::process::Child,
    port: u16,
}

impl Coturn {
    fn start() -> Self {
        // A free port: bound and released (coturn takes it a moment later).
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free port")
            .port();
        let child = std::process::Command::new("turnserver")
            .args([
                "-n",
                "--no-cli",
                "--no-tls",
                "--no-dtls",
                "--listening-ip=127.0.0.1",
                "--relay-ip=127.0.0.1",
                "--lt-cred-mech",
                "--user=relayuser:relaypass",
                "--realm=test",
                "--allow-loopback-peers",
                "--min-port=49160",
                "--max-port=49300",
                "--no-stdout-log",
            ])
            .arg(format!("--listening-port={port}"))
            .arg(format!(
                "--pidfile={}/coturn-{port}.pid",
                std::env::temp_dir().display()
            ))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("turnserver runs (Debian's coturn; scripts/setup.sh installs it)");
        Self { child, port }
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn relay_only_through_coturn() {
    let turn = Coturn::start();
    let server = Server::start(ServerMode::Fanout);
    let relay = format!(
        "turn-servers=turn://relayuser:relaypass@127.0.0.1:{} ice-transport-policy=relay",
        turn.port
    );
    let p = publisher(&server, "relay1", "", 0);
    let s = SrcHarness::start(&format!("stream-id=relay1 {} {relay}", server.props()));
    assert!(
        s.wait_frames(&["video_relay1", "audio_relay1"], 30),
        "frames {:?} warnings {:?}",
        s.frames,
        s.warnings()
    );
    // Relay-only is enforced: the selected pair is our relay candidate.
    let stats = s.src.property::<gst::Structure>("stats");
    let kinds: Vec<String> = stats
        .iter()
        .filter_map(|(_, v)| v.get::<gst::Structure>().ok())
        .filter_map(|peer| peer.get::<String>("candidate-type").ok())
        .collect();
    assert_eq!(kinds, ["relay"], "{stats}");
    s.stop();
    let _ = p.set_state(gst::State::Null);
}
