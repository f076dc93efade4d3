// SPDX-License-Identifier: MPL-2.0

//! Hostile peers and servers in bulk: storms of renegotiation offers and viewer requests, and
//! floods of candidates for peers that do not exist, cost bounded work, bounded memory and a
//! few log lines.

use std::time::{Duration, Instant};

use serde_json::json;

use super::units::{
    created, crypto, offer, publishing_peer, room_recorder, sealed_msg, viewing_peer,
};
use crate::protocol::machine::app::CONTROL_RATE;
use crate::protocol::machine::{CloseReason, Event, Input, LogLevel, Output, PeerState};

fn warning_lines(outs: &[Output]) -> usize {
    outs.iter()
        .filter(|o| {
            matches!(
                o,
                Output::Log {
                    level: LogLevel::Warning,
                    ..
                }
            )
        })
        .count()
}

#[test]
fn a_renegotiation_storm_is_rate_limited() {
    let t = Instant::now();
    let (mut m, peer, _) = viewing_peer(t);
    let reneg = sealed_msg(
        "ignored",
        "S1",
        "description",
        json!({"type":"offer","sdp":"v=0\r\nm=video\r\n"}),
        &crypto(),
    );
    let (mut applied, mut lines) = (0, 0);
    for _ in 0..1000 {
        let outs = m.handle(
            Input::DataChannelText {
                peer,
                text: reneg.clone(),
            },
            t,
        );
        applied += outs
            .iter()
            .filter(|o| matches!(o, Output::SetRemoteDescription { .. }))
            .count();
        lines += warning_lines(&outs);
    }
    assert_eq!(applied, CONTROL_RATE.burst as usize);
    assert!(lines <= 10, "{lines} log lines for 990 drops");
    // The peer is kept and served: a ping is answered, a renegotiation later is applied.
    let outs = m.handle(
        Input::DataChannelText {
            peer,
            text: r#"{"ping":"1"}"#.into(),
        },
        t,
    );
    assert!(outs.iter().any(|o| matches!(o, Output::SendData { .. })));
    let later = t + Duration::from_secs(1);
    let outs = m.handle(Input::DataChannelText { peer, text: reneg }, later);
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::SetRemoteDescription { .. }))
    );
}

#[test]
fn a_storm_of_viewer_requests_is_rate_limited() {
    let t = Instant::now();
    let (mut m, peer) = publishing_peer(t);
    m.handle(Input::DataChannelOpen { peer }, t);
    let (mut keyframes, mut offers, mut lines) = (0, 0, 0);
    for i in 0..1000 {
        let text = if i % 2 == 0 {
            r#"{"keyframe":true}"#
        } else {
            r#"{"iceRestartRequest":true}"#
        };
        let outs = m.handle(
            Input::DataChannelText {
                peer,
                text: text.into(),
            },
            t,
        );
        keyframes += outs
            .iter()
            .filter(|o| matches!(o, Output::Event(Event::KeyframeRequest { .. })))
            .count();
        offers += outs
            .iter()
            .filter(|o| matches!(o, Output::CreateOffer { .. }))
            .count();
        lines += warning_lines(&outs);
    }
    assert_eq!(keyframes + offers, CONTROL_RATE.burst as usize);
    assert!(lines <= 10, "{lines} log lines for 990 drops");
    // Pings are not limited: the viewer stays alive.
    for n in 0..50 {
        let outs = m.handle(
            Input::DataChannelText {
                peer,
                text: format!(r#"{{"ping":"{n}"}}"#),
            },
            t,
        );
        assert!(outs.iter().any(|o| matches!(o, Output::SendData { .. })));
    }
}

#[test]
fn a_flood_of_candidates_for_unknown_peers_is_bounded_and_barely_logged() {
    let t = Instant::now();
    let mut m = room_recorder();
    m.handle(Input::Connected, t);
    let line = format!("candidate:1 1 udp 2122260223 10.0.0.1 {} typ host", 50000);
    let mut lines = 0;
    for i in 0..20_000 {
        let text = sealed_msg(
            &format!("ghost{i}"),
            &format!("s{i}"),
            "candidates",
            json!([{"candidate": line, "sdpMLineIndex": 0}]),
            &crypto(),
        );
        let outs = m.handle(Input::ServerText(text), t);
        lines += warning_lines(&outs);
    }
    assert!(
        m.queued_candidates() <= 256 * 100,
        "{}",
        m.queued_candidates()
    );
    assert!(lines <= 16, "{lines} log lines for 20,000 messages");
    // A real peer still gets through.
    let outs = m.handle(Input::ServerText(offer("pub", "S1", &crypto())), t);
    assert!(created(&outs).is_some());
}

#[test]
fn a_negotiation_cut_by_the_server_starts_again_on_reconnection() {
    let t = Instant::now();
    let mut m = room_recorder();
    m.handle(Input::Connected, t);
    let outs = m.handle(Input::ServerText(offer("pub", "S1", &crypto())), t);
    let peer = created(&outs).expect("a peer");
    // The socket goes mid-negotiation; what the publisher sent meanwhile is lost.
    m.handle(Input::Disconnected, t);
    let outs = m.handle(Input::Connected, t + Duration::from_secs(2));
    assert!(
        outs.iter().any(|o| matches!(
            o,
            Output::ClosePeer { peer: p, reason: CloseReason::Interrupted } if *p == peer
        )),
        "{outs:?}"
    );
    // A connected peer is kept through the same reconnection.
    let outs = m.handle(Input::ServerText(offer("pub2", "S2", &crypto())), t);
    let live = created(&outs).expect("a peer");
    m.handle(
        Input::PeerState {
            peer: live,
            state: PeerState::Connected,
        },
        t,
    );
    m.handle(Input::Disconnected, t);
    let outs = m.handle(Input::Connected, t + Duration::from_secs(4));
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, Output::ClosePeer { peer: p, .. } if *p == live)),
        "{outs:?}"
    );
}
