// SPDX-License-Identifier: MPL-2.0

//! Bad input never panics: random and mutated JSON, wrong ciphertexts, wrong IV lengths and
//! huge strings thrown at the parser, the state machine (also chat/pipe application messages,
//! sent and received) and the server hub. Memory stays bounded by the candidate-queue caps,
//! and application messages reach the application only within their size cap.

use std::time::{Duration, Instant};

use gstvdoninja::protocol::crypto::{Crypto, DEFAULT_SALT};
use gstvdoninja::protocol::ice_queue::IceQueueLimits;
use gstvdoninja::protocol::machine::app::{AppPayload, MAX_APP_BYTES};
use gstvdoninja::protocol::machine::{Config, Event, Input, Machine, Output, PeerId, View};
use gstvdoninja::protocol::message::{Object, Sealed, parse_object};
use gstvdoninja::protocol::routing::RoutingMode;
use gstvdoninja::server::hub::{Hub, ServerMode};
use proptest::prelude::*;
use serde_json::{Value, json};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        "[0-9a-f]{0,64}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Keys the parser looks at, and some it does not.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "request",
            "UUID",
            "uuid",
            "from",
            "streamID",
            "streamId",
            "roomid",
            "session",
            "description",
            "candidate",
            "candidates",
            "vector",
            "type",
            "list",
            "director",
            "message",
            "bye",
            "ping",
            "pong",
            "keyframe",
            "bitrate",
            "audioBitrate",
            "audio",
            "video",
            "info",
            "iceRestartRequest",
            "hangup",
            "error",
            "code",
            "chat",
            "pipe",
        ])
        .prop_map(str::to_string),
        "[a-zA-Z]{1,10}",
    ]
}

fn request_value() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        "offerSDP",
        "listing",
        "someonejoined",
        "videoaddedtoroom",
        "alert",
        "error",
        "cleanup",
        "seed",
        "play",
        "joinroom",
        "transferred",
        "videoremovedfromroom",
        "sendoffer",
        "zzz",
    ])
    .prop_map(|s| json!(s))
}

/// Plausible messages with random holes and random values.
fn mutated_message() -> impl Strategy<Value = String> {
    (
        prop::option::of(request_value()),
        prop::option::of(prop::sample::select(vec!["pub", "viewer", "me", ""])),
        prop::option::of(arb_json()),
        prop::option::of("[0-9a-f]{0,40}"),
        prop::option::of(prop::sample::select(vec!["local", "remote", "x"])),
        prop::option::of(arb_json()),
        any::<bool>(),
    )
        .prop_map(|(request, uuid, payload, vector, kind, list, cands)| {
            let mut o = Object::new();
            if let Some(r) = request {
                o.insert("request".into(), r);
            }
            if let Some(u) = uuid {
                o.insert("UUID".into(), json!(u));
                o.insert("from".into(), json!(u));
            }
            o.insert("session".into(), json!("S1"));
            if let Some(p) = payload {
                o.insert(if cands { "candidates" } else { "description" }.into(), p);
            }
            if let Some(v) = vector {
                o.insert("vector".into(), json!(v));
            }
            if let Some(k) = kind {
                o.insert("type".into(), json!(k));
            }
            if let Some(l) = list {
                o.insert("list".into(), l);
            }
            Value::Object(o).to_string()
        })
}

/// Correctly encrypted payloads of random shapes (valid ciphertext, nonsense content).
fn encrypted_message() -> impl Strategy<Value = String> {
    (
        arb_json(),
        prop::bool::ANY,
        prop::sample::select(vec!["local", "remote"]),
    )
        .prop_map(|(v, desc, kind)| {
            let c = Crypto::new(None, DEFAULT_SALT);
            let mut o = Object::new();
            o.insert("UUID".into(), json!("pub"));
            o.insert("session".into(), json!("S1"));
            o.insert("type".into(), json!(kind));
            Sealed::seal(&v, &c)
                .write_into(&mut o, if desc { "description" } else { "candidates" });
            Value::Object(o).to_string()
        })
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,200}",
        arb_json().prop_map(|v| v.to_string()),
        mutated_message(),
        encrypted_message(),
        (1usize..400_000).prop_map(|n| format!(
            "{{\"UUID\":\"pub\",\"candidates\":\"{}\",\"vector\":\"00\"}}",
            "a".repeat(n)
        )),
    ]
}

fn machines() -> Vec<Machine> {
    let limits = IceQueueLimits {
        per_key: 5,
        keys: 4,
        total_bytes: 4096,
        ..Default::default()
    };
    let base = |mode| Config {
        mode,
        ice_limits: limits,
        ..Default::default()
    };
    let mut v = Vec::new();
    for mode in [RoutingMode::Official, RoutingMode::Fanout] {
        v.push(Config {
            publish: Some("cam1".into()),
            room: Some("r".into()),
            ..base(mode)
        });
        v.push(Config {
            view: View::Room(None),
            room: Some("r".into()),
            ..base(mode)
        });
        v.push(Config {
            view: View::Stream("cam1".into()),
            crypto: Crypto::new(Some("false"), DEFAULT_SALT),
            ..base(mode)
        });
    }
    v.into_iter().map(|c| Machine::new(c).unwrap()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics(text in any_text()) {
        let _ = parse_object(&text);
    }

    #[test]
    fn machine_never_panics_and_stays_bounded(texts in prop::collection::vec((any_text(), 0u8..5), 1..40)) {
        let t0 = Instant::now();
        for mut m in machines() {
            m.handle(Input::Connected, t0);
            for (i, (text, via)) in texts.iter().enumerate() {
                let now = t0 + Duration::from_millis(100 * i as u64);
                let input = match via {
                    0 => Input::DataChannelText { peer: PeerId(1), text: text.clone() },
                    1 => Input::Tick,
                    2 => Input::SendApp {
                        to: Some(text.chars().take(8).collect()),
                        payload: AppPayload::Chat(text.clone()),
                    },
                    _ => Input::ServerText(text.clone()),
                };
                for out in m.handle(input, now) {
                    // What peers send reaches the application only within its limits.
                    if let Output::Event(Event::AppMessage { payload, .. }) = out {
                        prop_assert!(payload.text().len() <= MAX_APP_BYTES);
                    }
                }
                prop_assert!(m.queued_candidates() <= 5 * 4);
                prop_assert!(m.queued_candidate_bytes() <= 4096);
                // Whatever peers were created can be fed local events without panicking.
                let ids: Vec<PeerId> = m.peers().map(|p| p.id).collect();
                for id in ids {
                    m.handle(Input::RemoteDescriptionApplied { peer: id }, now);
                    m.handle(Input::DataChannelText { peer: id, text: text.clone() }, now);
                }
            }
        }
    }

    #[test]
    fn hub_never_panics(texts in prop::collection::vec((any_text(), 0u64..3), 1..40)) {
        for mode in [ServerMode::Official, ServerMode::Fanout] {
            let mut hub = Hub::new(mode);
            for c in 0..3 {
                hub.connect(c);
            }
            for (text, conn) in &texts {
                let _ = hub.message(*conn, text);
            }
            hub.disconnect(1);
            for (text, conn) in &texts {
                let _ = hub.message(*conn, text);
            }
            hub.disconnect(0);
            hub.disconnect(2);
            prop_assert_eq!(hub.connections(), 0);
        }
    }

    #[test]
    fn decrypt_rejects_garbage(ct in "[0-9a-fA-Fxz]{0,200}", iv in "[0-9a-f]{0,40}") {
        let c = Crypto::new(None, DEFAULT_SALT);
        let _ = c.decrypt(&ct, &iv);
    }
}
