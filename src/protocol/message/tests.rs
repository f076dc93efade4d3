// SPDX-License-Identifier: MPL-2.0

use super::*;
use crate::protocol::crypto::{Crypto, DEFAULT_SALT};
use serde_json::json;

fn obj(v: Value) -> Object {
    v.as_object().unwrap().clone()
}

#[test]
fn parse_rejects_non_objects() {
    assert_eq!(parse_object("[1]"), Err(ParseError::NotObject));
    assert!(matches!(parse_object("{"), Err(ParseError::NotJson(_))));
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_MESSAGE_LEN));
    assert!(matches!(parse_object(&big), Err(ParseError::TooLarge(_))));
}

#[test]
fn server_messages() {
    let m = ServerMessage::from_object(&obj(json!({"request":"offerSDP","UUID":"v1"})));
    assert_eq!(
        m,
        Some(ServerMessage::OfferRequest {
            uuid: "v1".into(),
            session: None
        })
    );
    let m = ServerMessage::from_object(&obj(json!({
        "request":"listing",
        "list":[{"UUID":"a","streamID":"camA808d64"},{"uuid":"b"},{"streamID":"orphan"}, 7],
        "director":"d"
    })))
    .unwrap();
    assert_eq!(
        m,
        ServerMessage::Listing {
            members: vec![
                Member {
                    uuid: "a".into(),
                    stream_id: Some("camA808d64".into())
                },
                Member {
                    uuid: "b".into(),
                    stream_id: None
                },
            ],
            director: Some("d".into()),
            transferred: false,
        }
    );
    let m = ServerMessage::from_object(&obj(
        json!({"request":"videoaddedtoroom","UUID":"x","streamId":"s"}),
    ));
    assert_eq!(
        m,
        Some(ServerMessage::VideoAdded {
            uuid: "x".into(),
            stream_id: "s".into()
        })
    );
    let m = ServerMessage::from_object(&obj(
        json!({"request":"alert","message":"Stream ID is already in use."}),
    ));
    assert!(matches!(
        m,
        Some(ServerMessage::Alert {
            level: AlertLevel::Alert,
            ..
        })
    ));
    let m = ServerMessage::from_object(&obj(json!({"error":"uuid already in use"})));
    assert!(matches!(
        m,
        Some(ServerMessage::Alert {
            level: AlertLevel::Error,
            ..
        })
    ));
    // Missing required parts degrade to Other, never an error.
    let m = ServerMessage::from_object(&obj(json!({"request":"offerSDP"})));
    assert_eq!(m, Some(ServerMessage::Other("offerSDP".into())));
    let m = ServerMessage::from_object(&obj(json!({"request":"whatever","x":1})));
    assert_eq!(m, Some(ServerMessage::Other("whatever".into())));
    assert_eq!(
        ServerMessage::from_object(&obj(json!({"description":{}}))),
        None
    );
}

#[test]
fn peer_message_aliases_and_payloads() {
    let c = Crypto::new(None, DEFAULT_SALT);
    let m = PeerMessage::from_object(&obj(json!({
        "UUID":"p","session":null,"type":"local",
        "candidate":{"candidate":"candidate:1 1 UDP 1 1.2.3.4 5 typ host","mid":0}
    })));
    assert_eq!(m.session, None);
    assert_eq!(m.direction, Some(Direction::Local));
    let cands = open_candidates(m.candidates.as_ref().unwrap(), &c).unwrap();
    assert_eq!(cands[0].sdp_mid.as_deref(), Some("0"));
    assert_eq!(cands[0].sdp_mline_index, None);

    // RN-style candidate with only sdpMLineIndex as a string, and an end-of-candidates entry.
    let m = PeerMessage::from_object(&obj(json!({
        "session": 12345,
        "candidates":[{"candidate":"candidate:2 1 UDP 1 1.2.3.4 6 typ host","sdpMLineIndex":"1"},{"candidate":""}]
    })));
    assert_eq!(m.session.as_deref(), Some("12345"));
    let cands = open_candidates(m.candidates.as_ref().unwrap(), &c).unwrap();
    assert_eq!(cands.len(), 1);
    assert_eq!(cands[0].sdp_mline_index, Some(1));

    // Encrypted description round trip.
    let sdp = json!({"type":"offer","sdp":"v=0\r\n"});
    let mut o = Object::new();
    Sealed::seal(&sdp, &c).write_into(&mut o, "description");
    assert!(o.contains_key("vector"));
    let m = PeerMessage::from_object(&o);
    assert!(m.description.as_ref().unwrap().is_encrypted());
    let d = open_description(m.description.as_ref().unwrap(), &c).unwrap();
    assert_eq!(d.kind, SdpType::Offer);
    // ... which a wrong password cannot open.
    let wrong = Crypto::new(Some("nope"), DEFAULT_SALT);
    assert!(open_description(m.description.as_ref().unwrap(), &wrong).is_err());
    // Plain text passes through even when we have a password.
    let m = PeerMessage::from_object(&obj(json!({"description": sdp})));
    assert!(open_description(m.description.as_ref().unwrap(), &c).is_ok());
    // A description as a JSON string without vector.
    let m = PeerMessage::from_object(&obj(json!({"description": sdp.to_string()})));
    assert!(open_description(m.description.as_ref().unwrap(), &c).is_ok());
}

#[test]
fn control_messages() {
    let m = PeerMessage::from_object(&obj(json!({"ping": "123"})));
    assert_eq!(m.ping, Some(json!("123")));
    let m = PeerMessage::from_object(&obj(json!({"videoMuted":true,"bye":true})));
    assert!(m.bye);
    let m = PeerMessage::from_object(&obj(json!({"hangup":true,"remote":"token"})));
    assert!(!m.bye, "a remote-control hangup is not a bye");
    let m = PeerMessage::from_object(&obj(json!({"audio":true,"video":false,"bitrate":"800"})));
    assert_eq!(
        m.request,
        Some(MediaRequest {
            audio: Some(true),
            video: Some(false)
        })
    );
    assert_eq!(m.bitrate, Some(800));
    let m = PeerMessage::from_object(&obj(json!({"keyframe":1, "iceRestartRequest": true})));
    assert!(m.keyframe && m.ice_restart_request);
}

#[test]
fn commands_serialise_canonically() {
    let s = serde_json::to_string(&Command::Seed {
        stream_id: "cam1808d64".into(),
    })
    .unwrap();
    assert_eq!(s, r#"{"request":"seed","streamID":"cam1808d64"}"#);
    let s = serde_json::to_string(&Command::Joinroom {
        roomid: "2f1a0139acdd5bdc".into(),
        stream_id: None,
    })
    .unwrap();
    assert_eq!(s, r#"{"request":"joinroom","roomid":"2f1a0139acdd5bdc"}"#);
    let v = serde_json::to_value(ViewerRequest::new(true, true)).unwrap();
    assert_eq!(v["allowchunked"], json!(false));
    assert_eq!(v["audio"], json!(true));
    assert!(v.get("preferVideoCodec").is_none());
}
