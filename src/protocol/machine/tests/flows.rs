// SPDX-License-Identifier: MPL-2.0

//! The flows of spec §2.5 (a)–(d), each in both routing models, through the real hub.

use std::time::Duration;

use super::harness::Net;
use crate::protocol::crypto::{Crypto, DEFAULT_SALT};
use crate::protocol::machine::{CloseReason, Config, Event, Input, Role, View};
use crate::protocol::routing::RoutingMode;
use crate::server::hub::ServerMode;

const MODES: [(ServerMode, RoutingMode); 2] = [
    (ServerMode::Official, RoutingMode::Official),
    (ServerMode::Fanout, RoutingMode::Fanout),
];

fn publisher(mode: RoutingMode, stream: &str, room: Option<&str>, pw: Option<&str>) -> Config {
    Config {
        mode,
        crypto: Crypto::new(pw, DEFAULT_SALT),
        room: room.map(str::to_string),
        publish: Some(stream.to_string()),
        label: Some(format!("label-{stream}")),
        ..Default::default()
    }
}

fn viewer(mode: RoutingMode, view: View, room: Option<&str>, pw: Option<&str>) -> Config {
    Config {
        mode,
        crypto: Crypto::new(pw, DEFAULT_SALT),
        room: room.map(str::to_string),
        view,
        label: Some("recorder".into()),
        ..Default::default()
    }
}

/// Both ends of every viewer peer of `v` are linked, have exchanged SDP and candidates, and
/// the publisher saw the media request.
fn assert_healthy(net: &Net, v: usize) {
    for (id, p) in net.live(v) {
        if p.role != Some(Role::Viewer) {
            continue;
        }
        let (pn, pp) = p.link.unwrap_or_else(|| panic!("{id} never connected"));
        let publisher_peer = &net.nodes[pn].peers[&pp];
        assert_eq!(p.added.len(), 2, "viewer got both publisher candidates");
        assert_eq!(
            publisher_peer.added.len(),
            2,
            "publisher got both viewer candidates"
        );
        assert!(net.nodes[pn].events.iter().any(|e| matches!(e,
            Event::MediaRequest { peer, audio: Some(true), video: Some(true) } if *peer == pp)));
        assert!(net.nodes[v].events.iter().any(|e| matches!(e,
            Event::PeerInfo { peer, label: Some(_) } if peer == id)));
    }
}

#[test]
fn a_b_publish_then_view() {
    for pw in [None, Some("Test@Room#1!"), Some("false")] {
        for (sm, rm) in MODES {
            let mut net = Net::new(sm);
            let p = net.add(publisher(rm, "cam1", None, pw));
            let v = net.add(viewer(rm, View::Stream("cam1".into()), None, pw));
            net.connect(p);
            net.connect(v);
            assert_eq!(net.connected_streams(v), ["cam1"], "{sm:?} {pw:?}");
            assert_healthy(&net, v);
            // What went over the server is encrypted when a password is active.
            let offer = net.nodes[p]
                .sent
                .iter()
                .find(|t| t.contains("description"))
                .unwrap();
            assert_eq!(offer.contains("vector"), pw != Some("false"), "{offer}");
            assert_eq!(
                offer.contains("v=0"),
                pw == Some("false"),
                "plain SDP only without password"
            );
        }
    }
}

#[test]
fn b_view_before_publish() {
    for (sm, rm) in MODES {
        let mut net = Net::new(sm);
        let v = net.add(viewer(rm, View::Stream("cam1".into()), None, None));
        let p = net.add(publisher(rm, "cam1", None, None));
        net.connect(v);
        assert!(net.live(v).is_empty());
        net.connect(p);
        assert_eq!(net.connected_streams(v), ["cam1"], "{sm:?}");
        assert_healthy(&net, v);
    }
}

#[test]
fn b_view_retries_play_and_warns() {
    let mut net = Net::new(ServerMode::Fanout);
    let v = net.add(viewer(
        RoutingMode::Fanout,
        View::Stream("cam1".into()),
        None,
        None,
    ));
    net.connect(v);
    let plays = |net: &Net| {
        net.nodes[v]
            .sent
            .iter()
            .filter(|t| t.contains("\"play\""))
            .count()
    };
    assert_eq!(plays(&net), 1);
    net.advance(Duration::from_secs(14));
    assert_eq!(plays(&net), 1);
    net.advance(Duration::from_secs(2));
    assert_eq!(plays(&net), 2);
    assert!(
        net.nodes[v]
            .events
            .iter()
            .any(|e| matches!(e, Event::Warning(w) if w.contains("password")))
    );
    // The second play went at 15 s; the third is due 45 s later.
    net.advance(Duration::from_secs(43));
    assert_eq!(plays(&net), 2);
    net.advance(Duration::from_secs(2));
    assert_eq!(plays(&net), 3);
}

#[test]
fn c_room_recording() {
    for (sm, rm) in MODES {
        let mut net = Net::new(sm);
        // Two publishers before the recorder, one after it; one stream is filtered out.
        let a = net.add(publisher(rm, "alice", Some("myroom"), None));
        let b = net.add(publisher(rm, "bob", Some("myroom"), None));
        let r = net.add(viewer(
            rm,
            View::Room(Some(vec!["alice".into(), "bob".into(), "carol".into()])),
            Some("myroom"),
            None,
        ));
        let c = net.add(publisher(rm, "carol", Some("myroom"), None));
        let d = net.add(publisher(rm, "dave", Some("myroom"), None));
        let other = net.add(publisher(rm, "eve", Some("otherroom"), None));
        for n in [a, b, r, c, d, other] {
            net.connect(n);
        }
        assert_eq!(
            net.connected_streams(r),
            ["alice", "bob", "carol"],
            "{sm:?}"
        );
        assert_healthy(&net, r);
        // The recorder never publishes, and nobody viewed the other room.
        assert!(net.live(other).is_empty());
        assert!(!net.nodes[r].sent.iter().any(|t| t.contains("\"seed\"")));
    }
}

#[test]
fn c_publishers_in_room_seed_after_listing() {
    let mut net = Net::new(ServerMode::Official);
    let p = net.add(publisher(
        RoutingMode::Official,
        "cam1",
        Some("myroom"),
        None,
    ));
    net.connect(p);
    let sent = &net.nodes[p].sent;
    assert!(sent[0].contains("joinroom") && !sent[0].contains("streamID"));
    assert!(sent[1].contains("\"seed\""));
}

#[test]
fn d_leave_and_rejoin() {
    for (sm, rm) in MODES {
        let mut net = Net::new(sm);
        let r = net.add(viewer(rm, View::Room(None), Some("myroom"), None));
        let a = net.add(publisher(rm, "alice", Some("myroom"), None));
        net.connect(r);
        net.connect(a);
        assert_eq!(net.connected_streams(r), ["alice"]);
        // Alice leaves: bye on the data channel, then her socket closes.
        net.input(a, Input::Shutdown);
        net.disconnect(a);
        assert!(net.connected_streams(r).is_empty(), "{sm:?}");
        let closed: Vec<_> = net.nodes[r]
            .peers
            .values()
            .filter_map(|p| p.closed.clone())
            .collect();
        assert_eq!(closed, [CloseReason::Bye]);
        // She comes back as a new client (new UUID, new session).
        let a2 = net.add(publisher(rm, "alice", Some("myroom"), None));
        net.connect(a2);
        assert_eq!(net.connected_streams(r), ["alice"], "{sm:?}");
        let (_, p) = net.live(r).into_iter().next().unwrap();
        assert_eq!(p.link.unwrap().0, a2);
    }
}

#[test]
fn d_single_view_rejoin_uses_retry_timer() {
    for (sm, rm) in MODES {
        let mut net = Net::new(sm);
        let v = net.add(viewer(rm, View::Stream("cam1".into()), None, None));
        let p = net.add(publisher(rm, "cam1", None, None));
        net.connect(p);
        net.connect(v);
        net.input(p, Input::Shutdown);
        net.disconnect(p);
        assert!(net.connected_streams(v).is_empty());
        let p2 = net.add(publisher(rm, "cam1", None, None));
        net.connect(p2);
        net.advance(Duration::from_secs(6));
        assert_eq!(net.connected_streams(v), ["cam1"], "{sm:?}");
    }
}

#[test]
fn many_viewers_and_max_viewers() {
    for (sm, rm) in MODES {
        let mut net = Net::new(sm);
        let mut cfg = publisher(rm, "cam1", None, None);
        cfg.max_viewers = Some(2);
        let p = net.add(cfg);
        net.connect(p);
        let vs: Vec<usize> = (0..3)
            .map(|_| net.add(viewer(rm, View::Stream("cam1".into()), None, None)))
            .collect();
        for v in &vs {
            net.connect(*v);
        }
        assert_eq!(net.live(p).len(), 2, "{sm:?}");
        assert!(
            net.nodes[p]
                .events
                .iter()
                .any(|e| matches!(e, Event::ViewerRefused { .. }))
        );
        assert_eq!(net.connected_streams(vs[0]), ["cam1"]);
        assert_eq!(net.connected_streams(vs[1]), ["cam1"]);
        assert!(net.connected_streams(vs[2]).is_empty());
    }
}

#[test]
fn signaling_outage_keeps_peers_and_replays_intent() {
    let mut net = Net::new(ServerMode::Official);
    let p = net.add(publisher(
        RoutingMode::Official,
        "cam1",
        Some("myroom"),
        None,
    ));
    let v = net.add(viewer(
        RoutingMode::Official,
        View::Room(None),
        Some("myroom"),
        None,
    ));
    net.connect(p);
    net.connect(v);
    assert_eq!(net.connected_streams(v), ["cam1"]);
    let before = net.nodes[p].sent.len();
    net.disconnect(p);
    net.connect(p);
    let replay: Vec<&String> = net.nodes[p].sent[before..].iter().collect();
    assert!(replay[0].contains("joinroom"));
    assert!(replay[1].contains("seed"));
    // The peer survived; heartbeats keep it alive across a minute.
    for _ in 0..20 {
        net.advance(Duration::from_secs(3));
    }
    assert_eq!(net.connected_streams(v), ["cam1"]);
}
