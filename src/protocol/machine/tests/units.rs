// SPDX-License-Identifier: MPL-2.0

//! One machine at a time, fed hand-made messages.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::protocol::crypto::{Crypto, DEFAULT_SALT};
use crate::protocol::machine::{
    CloseReason, Config, ConfigError, Event, Input, Machine, Output, PeerId, PeerState, Role, View,
};
use crate::protocol::message::{IceCandidate, Object, SdpType, Sealed, SessionDescription};
use crate::protocol::routing::RoutingMode;

pub(super) fn crypto() -> Crypto {
    Crypto::new(None, DEFAULT_SALT)
}

pub(super) fn room_recorder() -> Machine {
    Machine::new(Config {
        room: Some("myroom".into()),
        view: View::Room(None),
        ..Default::default()
    })
    .unwrap()
}

pub(super) fn sealed_msg(uuid: &str, session: &str, key: &str, value: Value, c: &Crypto) -> String {
    let mut o = Object::new();
    o.insert("UUID".into(), json!(uuid));
    o.insert("session".into(), json!(session));
    Sealed::seal(&value, c).write_into(&mut o, key);
    Value::Object(o).to_string()
}

pub(super) fn offer(uuid: &str, session: &str, c: &Crypto) -> String {
    let mut o: Object = serde_json::from_str(&sealed_msg(
        uuid,
        session,
        "description",
        json!({"type":"offer","sdp":"v=0\r\n"}),
        c,
    ))
    .unwrap();
    o.insert("streamID".into(), json!("alice808d64"));
    Value::Object(o).to_string()
}

fn candidates(uuid: &str, session: &str, n: u32) -> String {
    let mut o: Object = serde_json::from_str(&sealed_msg(
        uuid,
        session,
        "candidates",
        json!([{"candidate": format!("candidate:{n} 1 UDP 1 10.0.0.1 {n} typ host"), "sdpMLineIndex": 0}]),
        &crypto(),
    ))
    .unwrap();
    o.insert("type".into(), json!("local"));
    Value::Object(o).to_string()
}

pub(super) fn created(outs: &[Output]) -> Option<PeerId> {
    outs.iter().find_map(|o| match o {
        Output::CreatePeer { peer, .. } => Some(*peer),
        _ => None,
    })
}

fn added(outs: &[Output]) -> Vec<IceCandidate> {
    outs.iter()
        .filter_map(|o| match o {
            Output::AddCandidates { candidates, .. } => Some(candidates.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn config_errors() {
    let e = Machine::new(Config::default()).unwrap_err();
    assert_eq!(e, ConfigError::NothingToDo);
    let e = Machine::new(Config {
        publish: Some("   ".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(e, ConfigError::BadStreamId(_)));
    let e = Machine::new(Config {
        view: View::Room(None),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(e, ConfigError::RoomViewWithoutRoom);
}

#[test]
fn early_candidates_are_queued_filtered_and_drained() {
    let t = Instant::now();
    let mut m = room_recorder();
    m.handle(Input::Connected, t);
    // Candidates beat their offer: one for the coming session, one for an old one.
    m.handle(Input::ServerText(candidates("pub", "S1", 1)), t);
    m.handle(Input::ServerText(candidates("pub", "OLD", 2)), t);
    assert_eq!(m.queued_candidates(), 2);
    let outs = m.handle(Input::ServerText(offer("pub", "S1", &crypto())), t);
    let peer = created(&outs).expect("offer creates a peer");
    assert!(outs.iter().any(
        |o| matches!(o, Output::SetRemoteDescription { sdp, .. } if sdp.kind == SdpType::Offer)
    ));
    // Before the remote description is applied, more candidates still queue.
    m.handle(Input::ServerText(candidates("pub", "S1", 3)), t);
    let outs = m.handle(Input::RemoteDescriptionApplied { peer }, t);
    let got: Vec<String> = added(&outs).into_iter().map(|c| c.candidate).collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].starts_with("candidate:1 ") && got[1].starts_with("candidate:3 "));
    assert_eq!(m.queued_candidates(), 0);
    // Afterwards candidates go straight to the peer; another session's are dropped.
    let outs = m.handle(Input::ServerText(candidates("pub", "S1", 4)), t);
    assert_eq!(added(&outs).len(), 1);
    let outs = m.handle(Input::ServerText(candidates("pub", "OTHER", 5)), t);
    assert!(added(&outs).is_empty());
    assert_eq!(m.queued_candidates(), 0);
}

#[test]
fn own_candidates_wait_for_our_sdp() {
    let t = Instant::now();
    let mut m = room_recorder();
    m.handle(Input::Connected, t);
    let outs = m.handle(Input::ServerText(offer("pub", "S1", &crypto())), t);
    let peer = created(&outs).unwrap();
    let c = IceCandidate {
        candidate: "candidate:9 1 UDP 1 10.0.0.2 9 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
    };
    let outs = m.handle(
        Input::LocalCandidate {
            peer,
            candidate: c.clone(),
        },
        t,
    );
    assert!(outs.is_empty(), "held until the answer is sent");
    let answer = SessionDescription {
        kind: SdpType::Answer,
        sdp: "v=0\r\n".into(),
    };
    let outs = m.handle(Input::LocalDescription { peer, sdp: answer }, t);
    let sends: Vec<&String> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Send(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(sends.len(), 2);
    let a: Value = serde_json::from_str(sends[0]).unwrap();
    assert_eq!(a["UUID"], json!("pub"));
    assert_eq!(a["session"], json!("S1"));
    assert!(a["vector"].is_string());
    let c2: Value = serde_json::from_str(sends[1]).unwrap();
    assert_eq!(c2["type"], json!("remote"));
    assert_eq!(c2["session"], json!("S1"));
    let opened = crypto()
        .decrypt(
            c2["candidates"].as_str().unwrap(),
            c2["vector"].as_str().unwrap(),
        )
        .unwrap();
    assert!(
        opened.contains("candidate:9")
            && opened.contains("sdpMid")
            && opened.contains("sdpMLineIndex")
    );
}

#[test]
fn wrong_password_is_named() {
    let t = Instant::now();
    let mut m = room_recorder();
    m.handle(Input::Connected, t);
    let other = Crypto::new(Some("not-ours"), DEFAULT_SALT);
    let outs = m.handle(Input::ServerText(offer("pub", "S1", &other)), t);
    assert!(created(&outs).is_none());
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::Event(Event::Warning(w)) if w.contains("password")))
    );
}

/// A room recorder viewing publisher `pub` (session `S1`): offer taken, answered, data
/// channel open; the outputs of the opening.
pub(super) fn viewing_peer(t: Instant) -> (Machine, PeerId, Vec<Output>) {
    let mut m = room_recorder();
    m.handle(Input::Connected, t);
    let outs = m.handle(Input::ServerText(offer("pub", "S1", &crypto())), t);
    let peer = created(&outs).unwrap();
    m.handle(Input::RemoteDescriptionApplied { peer }, t);
    m.handle(
        Input::LocalDescription {
            peer,
            sdp: SessionDescription {
                kind: SdpType::Answer,
                sdp: "v=0\r\n".into(),
            },
        },
        t,
    );
    let outs = m.handle(Input::DataChannelOpen { peer }, t);
    (m, peer, outs)
}

#[test]
fn renegotiation_over_data_channel() {
    let t = Instant::now();
    let (mut m, peer, outs) = viewing_peer(t);
    // The request object goes out on the data channel.
    let req = outs
        .iter()
        .find_map(|o| match o {
            Output::SendData { text, .. } => Some(text.clone()),
            _ => None,
        })
        .unwrap();
    let req: Value = serde_json::from_str(&req).unwrap();
    assert_eq!(
        (
            req["audio"].clone(),
            req["video"].clone(),
            req["allowchunked"].clone()
        ),
        (json!(true), json!(true), json!(false))
    );
    // A browser now renegotiates over the data channel with the same session.
    let reneg = sealed_msg(
        "ignored",
        "S1",
        "description",
        json!({"type":"offer","sdp":"v=0\r\nm=video\r\n"}),
        &crypto(),
    );
    let outs = m.handle(Input::DataChannelText { peer, text: reneg }, t);
    assert!(created(&outs).is_none(), "no new peer for a renegotiation");
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::SetRemoteDescription { peer: p, .. } if *p == peer))
    );
    let outs = m.handle(
        Input::LocalDescription {
            peer,
            sdp: SessionDescription {
                kind: SdpType::Answer,
                sdp: "v=0\r\n".into(),
            },
        },
        t,
    );
    assert!(
        matches!(outs.as_slice(), [Output::SendData { .. }]),
        "the answer goes back on the data channel: {outs:?}"
    );
    // A ping is answered with the same token.
    let outs = m.handle(
        Input::DataChannelText {
            peer,
            text: r#"{"ping":"42"}"#.into(),
        },
        t,
    );
    assert!(matches!(&outs[..], [Output::SendData { text, .. }] if text == r#"{"pong":"42"}"#));
    // A new session from the same UUID replaces the peer.
    let outs = m.handle(Input::ServerText(offer("pub", "S2", &crypto())), t);
    assert!(outs.iter().any(
        |o| matches!(o, Output::ClosePeer { peer: p, reason: CloseReason::Replaced } if *p == peer)
    ));
    assert!(created(&outs).is_some());
}

pub(super) fn publishing_peer(t: Instant) -> (Machine, PeerId) {
    let mut m = Machine::new(Config {
        publish: Some("cam1".into()),
        ..Default::default()
    })
    .unwrap();
    let outs = m.handle(Input::Connected, t);
    assert!(
        matches!(&outs[..], [Output::Send(s)] if s == r#"{"request":"seed","streamID":"cam1808d64"}"#)
    );
    let outs = m.handle(
        Input::ServerText(r#"{"request":"offerSDP","UUID":"viewer"}"#.into()),
        t,
    );
    let peer = created(&outs).unwrap();
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::CreateOffer {
            ice_restart: false,
            ..
        }
    )));
    let outs = m.handle(
        Input::LocalDescription {
            peer,
            sdp: SessionDescription {
                kind: SdpType::Offer,
                sdp: "v=0\r\n".into(),
            },
        },
        t,
    );
    let Output::Send(text) = &outs[0] else {
        panic!()
    };
    let o: Value = serde_json::from_str(text).unwrap();
    assert_eq!(o["streamID"], json!("cam1808d64"));
    assert_eq!(o["UUID"], json!("viewer"));
    assert_eq!(o["session"].as_str().unwrap().len(), 10);
    (m, peer)
}

#[test]
fn answer_with_wrong_session_is_dropped() {
    let t = Instant::now();
    let (mut m, peer) = publishing_peer(t);
    let session = m.peer(peer).unwrap().session.clone().unwrap();
    let bad = sealed_msg(
        "viewer",
        "nope",
        "description",
        json!({"type":"answer","sdp":"v=0\r\n"}),
        &crypto(),
    );
    assert!(
        !m.handle(Input::ServerText(bad), t)
            .iter()
            .any(|o| matches!(o, Output::SetRemoteDescription { .. }))
    );
    let good = sealed_msg(
        "viewer",
        &session,
        "description",
        json!({"type":"answer","sdp":"v=0\r\n"}),
        &crypto(),
    );
    assert!(
        m.handle(Input::ServerText(good), t)
            .iter()
            .any(|o| matches!(o, Output::SetRemoteDescription { .. }))
    );
}

#[test]
fn viewer_controls_become_events() {
    let t = Instant::now();
    let (mut m, peer) = publishing_peer(t);
    m.handle(Input::DataChannelOpen { peer }, t);
    let outs = m.handle(
        Input::DataChannelText {
            peer,
            text: r#"{"audio":true,"video":false,"bitrate":500,"keyframe":true}"#.into(),
        },
        t,
    );
    let events: Vec<&Event> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert!(events.contains(&&Event::MediaRequest {
        peer,
        audio: Some(true),
        video: Some(false)
    }));
    assert!(events.contains(&&Event::VideoBitrateRequest {
        peer,
        kbps: Some(500)
    }));
    assert!(events.contains(&&Event::KeyframeRequest { peer }));
    let outs = m.handle(
        Input::DataChannelText {
            peer,
            text: r#"{"bitrate":-1}"#.into(),
        },
        t,
    );
    assert!(outs.contains(&Output::Event(Event::VideoBitrateRequest {
        peer,
        kbps: None
    })));
    let outs = m.handle(
        Input::DataChannelText {
            peer,
            text: r#"{"iceRestartRequest":true}"#.into(),
        },
        t,
    );
    assert!(outs.contains(&Output::CreateOffer {
        peer,
        ice_restart: true
    }));
}

#[test]
fn failure_restarts_ice_then_closes() {
    let t = Instant::now();
    let (mut m, peer) = publishing_peer(t);
    m.handle(
        Input::PeerState {
            peer,
            state: PeerState::Connected,
        },
        t,
    );
    let outs = m.handle(
        Input::PeerState {
            peer,
            state: PeerState::Failed,
        },
        t,
    );
    assert!(outs.contains(&Output::CreateOffer {
        peer,
        ice_restart: true
    }));
    // The restart offer goes over the server (the data channel is presumed dead), same session.
    let session = m.peer(peer).unwrap().session.clone();
    let outs = m.handle(
        Input::LocalDescription {
            peer,
            sdp: SessionDescription {
                kind: SdpType::Offer,
                sdp: "v=0\r\n".into(),
            },
        },
        t,
    );
    let Output::Send(text) = &outs[0] else {
        panic!("{outs:?}")
    };
    let o: Value = serde_json::from_str(text).unwrap();
    assert_eq!(o["session"].as_str(), session.as_deref());
    let outs = m.handle(Input::Tick, t + Duration::from_secs(11));
    assert!(outs.contains(&Output::ClosePeer {
        peer,
        reason: CloseReason::ConnectionLost
    }));
    assert_eq!(m.peers().count(), 0);
}

/// A viewer of ours, connected, its data channel open (the greeting and first ping sent).
fn connected_viewer(t: Instant) -> (Machine, PeerId) {
    let (mut m, peer) = publishing_peer(t);
    m.handle(
        Input::PeerState {
            peer,
            state: PeerState::Connected,
        },
        t,
    );
    m.handle(Input::DataChannelOpen { peer }, t);
    (m, peer)
}

#[test]
fn a_peer_heard_from_neither_way_for_4_s_has_vanished() {
    let t = Instant::now();
    let (mut m, peer) = connected_viewer(t);
    let at = |ms: u64| t + Duration::from_millis(ms);
    let outs = m.handle(Input::Tick, at(1000));
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::SendData { text, .. } if text.contains("ping")))
    );
    // Media keeps it alive without any data-channel message; so does a pong.
    m.handle(Input::MediaSeen { peer }, at(3000));
    m.handle(
        Input::DataChannelText {
            peer,
            text: r#"{"pong":"1"}"#.into(),
        },
        at(5000),
    );
    for s in 6..=8 {
        let outs = m.handle(Input::Tick, at(s * 1000));
        assert!(
            !outs.iter().any(|o| matches!(o, Output::ClosePeer { .. })),
            "{s} s"
        );
    }
    // 4 s after the last sign of life, it has vanished.
    let outs = m.handle(Input::Tick, at(9000));
    assert!(outs.contains(&Output::ClosePeer {
        peer,
        reason: CloseReason::Vanished
    }));
}

#[test]
fn a_peer_that_never_answers_pings_is_judged_by_its_rtcp() {
    // Raspberry Ninja as a viewer: connected, its data channel open, no pong ever; its RTCP
    // receiver reports (MediaSeen) as far apart as RFC 3550 lets them be (7.5 s).
    let t = Instant::now();
    let (mut m, peer) = connected_viewer(t);
    let at = |ms: u64| t + Duration::from_millis(ms);
    let closed = |outs: &[Output]| outs.iter().any(|o| matches!(o, Output::ClosePeer { .. }));
    let mut last = 0;
    for report in [2_500, 10_000, 17_500, 25_000] {
        for ms in (last + 1000..report).step_by(1000) {
            assert!(!closed(&m.handle(Input::Tick, at(ms))), "{ms} ms");
        }
        m.handle(Input::MediaSeen { peer }, at(report));
        last = report;
    }
    // 12 s after its last report, it has gone.
    for ms in (26_000..37_000).step_by(1000) {
        assert!(!closed(&m.handle(Input::Tick, at(ms))), "{ms} ms");
    }
    let outs = m.handle(Input::Tick, at(37_000));
    assert!(outs.contains(&Output::ClosePeer {
        peer,
        reason: CloseReason::Vanished
    }));
}

#[test]
fn duplicate_stream_alert_reseeds_with_backoff() {
    let t = Instant::now();
    let mut m = Machine::new(Config {
        publish: Some("cam1".into()),
        ..Default::default()
    })
    .unwrap();
    m.handle(Input::Connected, t);
    let outs = m.handle(
        Input::ServerText(r#"{"request":"alert","message":"Stream ID is already in use."}"#.into()),
        t,
    );
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::Event(Event::ServerAlert { .. })))
    );
    assert!(m.handle(Input::Tick, t + Duration::from_secs(4)).is_empty());
    let outs = m.handle(Input::Tick, t + Duration::from_secs(5));
    assert!(matches!(&outs[..], [Output::Send(s)] if s.contains("seed")));
    assert!(
        m.handle(Input::Tick, t + Duration::from_secs(50))
            .is_empty()
    );
}

#[test]
fn garbage_is_dropped_and_logged() {
    let t = Instant::now();
    let mut m = room_recorder();
    m.handle(Input::Connected, t);
    for text in [
        "",
        "nope",
        "[1,2]",
        "{\"description\":5}",
        "{\"request\":7}",
        "{\"UUID\":\"x\",\"candidates\":\"zz\",\"vector\":\"00\"}",
    ] {
        let outs = m.handle(Input::ServerText(text.into()), t);
        assert!(
            outs.iter()
                .all(|o| matches!(o, Output::Log { .. } | Output::Event(Event::Warning(_)))),
            "{text}: {outs:?}"
        );
    }
    // Data-channel text for a peer that does not exist is ignored.
    assert!(
        m.handle(
            Input::DataChannelText {
                peer: PeerId(99),
                text: "{}".into()
            },
            t
        )
        .is_empty()
    );
}

#[test]
fn fanout_client_adds_from_and_room() {
    let t = Instant::now();
    let mut m = Machine::new(Config {
        mode: RoutingMode::Fanout,
        room: Some("myroom".into()),
        publish: Some("cam1".into()),
        client_uuid: Some("me".into()),
        ..Default::default()
    })
    .unwrap();
    let outs = m.handle(Input::Connected, t);
    let Output::Send(s) = &outs[0] else { panic!() };
    let v: Value = serde_json::from_str(s).unwrap();
    assert_eq!(
        v,
        json!({"request":"joinroom","roomid":"2f1a0139acdd5bdc","streamID":"cam1808d64","from":"me"})
    );
    // A newcomer's joinroom is an offer request for us.
    let outs = m.handle(
        Input::ServerText(
            r#"{"request":"joinroom","roomid":"2f1a0139acdd5bdc","from":"new"}"#.into(),
        ),
        t,
    );
    assert!(outs.iter().any(
        |o| matches!(o, Output::CreatePeer { role: Role::Publisher, uuid, .. } if uuid == "new")
    ));
}

/// Texts sent to the server.
fn sent(outs: &[Output]) -> Vec<String> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

fn plays(outs: &[Output]) -> usize {
    sent(outs).iter().filter(|t| t.contains("\"play\"")).count()
}

/// An official-model viewer of `cam1` inside `myroom` (the case that used to play twice).
fn room_viewer_of_cam1() -> Machine {
    Machine::new(Config {
        room: Some("myroom".into()),
        view: View::Stream("cam1".into()),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn manners_one_play_for_listing_and_wants() {
    let mut m = room_viewer_of_cam1();
    let t0 = Instant::now();
    let outs = m.handle(Input::Connected, t0);
    assert!(sent(&outs)[0].contains("joinroom"));
    let wire = Crypto::new(None, DEFAULT_SALT)
        .wire_stream_id("cam1")
        .unwrap();
    let listing = json!({"request":"listing","list":[{"UUID":"pub1","streamID":wire}]});
    let outs = m.handle(Input::ServerText(listing.to_string()), t0);
    assert_eq!(
        plays(&outs),
        1,
        "listing + explicit want: one play {outs:?}"
    );
    // The same stream announced again while the play is pending: no second play.
    let again = json!({"request":"videoaddedtoroom","UUID":"pub1","streamID":wire});
    let outs = m.handle(
        Input::ServerText(again.to_string()),
        t0 + Duration::from_secs(1),
    );
    assert_eq!(plays(&outs), 0, "{outs:?}");
}

#[test]
fn manners_no_play_while_a_live_peer_delivers() {
    let c = crypto();
    let mut m = room_viewer_of_cam1();
    let t0 = Instant::now();
    m.handle(Input::Connected, t0);
    let wire = c.wire_stream_id("cam1").unwrap();
    m.handle(
        Input::ServerText(json!({"request":"listing","list":[]}).to_string()),
        t0,
    );
    let mut o: Object = serde_json::from_str(&offer("pub1", "s1", &c)).unwrap();
    o.insert("streamID".into(), json!(wire));
    let outs = m.handle(Input::ServerText(Value::Object(o).to_string()), t0);
    let peer = created(&outs).expect("a peer");
    m.handle(
        Input::PeerState {
            peer,
            state: PeerState::Connected,
        },
        t0,
    );
    // The same stream from a new UUID (a second tab, a stale announcement), and the retry
    // timers running for minutes: never a play while the live peer delivers it.
    let announce = json!({"request":"videoaddedtoroom","UUID":"pub2","streamID":wire});
    let outs = m.handle(
        Input::ServerText(announce.to_string()),
        t0 + Duration::from_secs(6),
    );
    assert_eq!(plays(&outs), 0, "{outs:?}");
    let mut total = 0;
    for s in 7..400 {
        let t = t0 + Duration::from_secs(s);
        // The publisher stays alive on its data channel.
        let pong = json!({"pong": s.to_string()}).to_string();
        m.handle(Input::DataChannelText { peer, text: pong }, t);
        total += plays(&m.handle(Input::Tick, t));
    }
    assert_eq!(total, 0, "no re-play while connected");
}

#[test]
fn manners_control_messages_only_on_the_data_channel() {
    let c = crypto();
    let mut m = room_recorder();
    let t0 = Instant::now();
    m.handle(Input::Connected, t0);
    let outs = m.handle(Input::ServerText(offer("pub1", "s1", &c)), t0);
    let peer = created(&outs).unwrap();
    // Before the data channel opens: a ping over the server is not answered there, a key-frame
    // request is not sent there, and closing says no `bye` to the server.
    let outs = m.handle(
        Input::ServerText(json!({"UUID":"pub1","ping":"7"}).to_string()),
        t0,
    );
    assert!(sent(&outs).is_empty(), "{outs:?}");
    let outs = m.handle(Input::RequestKeyframe { peer }, t0);
    assert!(sent(&outs).is_empty(), "{outs:?}");
    // With the data channel: the same go there, and the `bye` goes there only.
    m.handle(Input::DataChannelOpen { peer }, t0);
    let outs = m.handle(Input::RequestKeyframe { peer }, t0);
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::SendData { text, .. } if text.contains("keyframe")))
    );
    let outs = m.handle(Input::Shutdown, t0);
    assert!(
        sent(&outs).is_empty(),
        "no bye through the server: {outs:?}"
    );
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::SendData { text, .. } if text.contains("\"bye\"")))
    );
}

#[test]
fn manners_bye_never_through_the_server_when_a_session_is_replaced() {
    let c = crypto();
    let mut m = room_recorder();
    let t0 = Instant::now();
    m.handle(Input::Connected, t0);
    let outs = m.handle(Input::ServerText(offer("pub1", "s1", &c)), t0);
    let old = created(&outs).unwrap();
    m.handle(Input::DataChannelOpen { peer: old }, t0);
    // The same publisher offers a new session: the old peer goes, saying bye on its own data
    // channel, never on the server (the web app would close the new connection too).
    let outs = m.handle(Input::ServerText(offer("pub1", "s2", &c)), t0);
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::ClosePeer { peer, .. } if *peer == old))
    );
    assert!(sent(&outs).iter().all(|t| !t.contains("bye")), "{outs:?}");
}

#[test]
fn manners_transferred_closes_the_old_room_first() {
    let c = crypto();
    let mut m = room_recorder();
    let t0 = Instant::now();
    m.handle(Input::Connected, t0);
    m.handle(
        Input::ServerText(json!({"request":"listing","list":[]}).to_string()),
        t0,
    );
    let outs = m.handle(Input::ServerText(offer("pub1", "s1", &c)), t0);
    let old = created(&outs).unwrap();
    let wire = c.wire_stream_id("bob").unwrap();
    let moved = json!({"request":"transferred","list":["pub9", {"UUID":"pub2","streamID":wire}]});
    let outs = m.handle(Input::ServerText(moved.to_string()), t0);
    let close = outs
        .iter()
        .position(|o| matches!(o, Output::ClosePeer { peer, .. } if *peer == old))
        .expect("the old room's peer is closed");
    let play = outs
        .iter()
        .position(|o| matches!(o, Output::Send(t) if t.contains("\"play\"") && t.contains(&wire)))
        .expect("the new room's stream is played");
    assert!(close < play, "{outs:?}");
}

#[test]
fn manners_listing_entries_may_be_plain_strings() {
    let mut m = room_recorder();
    let t0 = Instant::now();
    m.handle(Input::Connected, t0);
    let listing = json!({"request":"listing","list":["abc", {"UUID":"def"}, 5, null]});
    let obj = crate::protocol::message::parse_object(&listing.to_string()).unwrap();
    let Some(crate::protocol::message::ServerMessage::Listing { members, .. }) =
        crate::protocol::message::ServerMessage::from_object(&obj)
    else {
        panic!("a listing");
    };
    let uuids: Vec<&str> = members.iter().map(|m| m.uuid.as_str()).collect();
    assert_eq!(uuids, ["abc", "def"]);
    let outs = m.handle(Input::ServerText(listing.to_string()), t0);
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, Output::Log { message, .. } if message.contains("dropping"))),
        "{outs:?}"
    );
    // In the room: a later `videoaddedtoroom` is played.
    let wire = crypto().wire_stream_id("abc").unwrap();
    let added = json!({"request":"videoaddedtoroom","UUID":"abc","streamID":wire});
    assert_eq!(
        plays(&m.handle(Input::ServerText(added.to_string()), t0)),
        1
    );
}

#[test]
fn manners_no_listing_means_join_again_with_backoff() {
    let mut m = room_recorder();
    let t0 = Instant::now();
    m.handle(Input::Connected, t0);
    let joins_at = |m: &mut Machine, s: u64| {
        let outs = m.handle(Input::Tick, t0 + Duration::from_secs(s));
        let joined = sent(&outs).iter().any(|t| t.contains("joinroom"));
        let warned = outs.iter().any(
            |o| matches!(o, Output::Event(Event::Warning(w)) if w.contains("no room listing")),
        );
        assert_eq!(joined, warned, "a rejoin comes with its warning");
        joined
    };
    let rejoins: Vec<u64> = (1..60).filter(|&s| joins_at(&mut m, s)).collect();
    assert_eq!(rejoins, [10, 30], "10 s, then 20 s more");
    // The listing ends it.
    m.handle(
        Input::ServerText(json!({"request":"listing","list":[]}).to_string()),
        t0 + Duration::from_secs(61),
    );
    assert!(!(62..200).any(|s| joins_at(&mut m, s)));
}

#[test]
fn shutdown_says_every_bye_before_closing_anyone() {
    let c = crypto();
    let mut m = room_recorder();
    let t0 = Instant::now();
    m.handle(Input::Connected, t0);
    let mut peers = Vec::new();
    for (uuid, stream) in [("pub1", "ann"), ("pub2", "bob"), ("pub3", "cy")] {
        let mut o: Object = serde_json::from_str(&offer(uuid, "s1", &c)).unwrap();
        o.insert("streamID".into(), json!(c.wire_stream_id(stream).unwrap()));
        let text = Value::Object(o).to_string();
        let peer = created(&m.handle(Input::ServerText(text), t0)).unwrap();
        m.handle(Input::DataChannelOpen { peer }, t0);
        peers.push(peer);
    }
    let outs = m.handle(Input::Shutdown, t0);
    let byes: Vec<usize> = outs
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, Output::SendData { text, .. } if text.contains("\"bye\"")))
        .map(|(i, _)| i)
        .collect();
    let closes: Vec<usize> = outs
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, Output::ClosePeer { .. }))
        .map(|(i, _)| i)
        .collect();
    assert_eq!((byes.len(), closes.len()), (3, 3), "{outs:?}");
    assert!(byes.iter().max() < closes.iter().min(), "{outs:?}");
    assert!(sent(&outs).iter().all(|t| !t.contains("bye")));
}
