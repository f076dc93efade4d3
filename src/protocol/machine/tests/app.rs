// SPDX-License-Identifier: MPL-2.0

//! Application messages (chat, data): taken within limits, sent to one peer or all.

use std::time::{Duration, Instant};

use serde_json::json;

use super::units::publishing_peer;
use crate::protocol::machine::app::{APP_RATE, AppError, AppPayload, MAX_APP_BYTES};
use crate::protocol::machine::{Event, Input, LogLevel, Machine, Output, PeerId};

fn app_events(outs: &[Output]) -> Vec<AppPayload> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Event(Event::AppMessage { payload, .. }) => Some(payload.clone()),
            _ => None,
        })
        .collect()
}

fn warnings(outs: &[Output]) -> Vec<String> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Log {
                level: LogLevel::Warning,
                message,
            } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn dc(m: &mut Machine, peer: PeerId, text: String, t: Instant) -> Vec<Output> {
    m.handle(Input::DataChannelText { peer, text }, t)
}

#[test]
fn chat_and_data_become_events() {
    let t = Instant::now();
    let (mut m, peer) = publishing_peer(t);
    m.handle(Input::DataChannelOpen { peer }, t);
    let outs = dc(
        &mut m,
        peer,
        json!({"chat": "hello", "pipe": {"n": 1, "list": [1, 2]}}).to_string(),
        t,
    );
    let got: Vec<&Output> = outs
        .iter()
        .filter(|o| matches!(o, Output::Event(Event::AppMessage { .. })))
        .collect();
    assert_eq!(got.len(), 2, "{outs:?}");
    match got[0] {
        Output::Event(Event::AppMessage {
            peer: p,
            uuid,
            payload,
            ..
        }) => {
            assert_eq!(*p, peer);
            assert_eq!(uuid, "viewer");
            assert_eq!(payload, &AppPayload::Chat("hello".into()));
        }
        _ => unreachable!(),
    }
    assert_eq!(
        app_events(&outs)[1],
        AppPayload::Data(json!({"n": 1, "list": [1, 2]}))
    );
    // A chat that is not a string is shown as its JSON; a null pipe is nothing.
    let outs = dc(
        &mut m,
        peer,
        json!({"chat": 5, "pipe": null}).to_string(),
        t,
    );
    assert_eq!(app_events(&outs), vec![AppPayload::Chat("5".into())]);
}

#[test]
fn oversized_and_flooding_messages_are_dropped_with_few_log_lines() {
    let t = Instant::now();
    let (mut m, peer) = publishing_peer(t);
    m.handle(Input::DataChannelOpen { peer }, t);
    let big = "x".repeat(MAX_APP_BYTES + 1);
    let mut logged = Vec::new();
    for _ in 0..10 {
        let outs = dc(&mut m, peer, json!({ "chat": big }).to_string(), t);
        assert!(app_events(&outs).is_empty());
        logged.extend(warnings(&outs));
    }
    assert_eq!(logged.len(), 4, "logged at 1, 2, 4, 8: {logged:?}");
    assert!(
        logged[0].contains("oversized application message"),
        "{logged:?}"
    );

    // A flood at one instant: the rest of the burst passes, then one line per doubling.
    let (mut m, peer) = publishing_peer(t);
    m.handle(Input::DataChannelOpen { peer }, t);
    let (mut passed, mut lines) = (0, 0);
    for i in 0..1000 {
        let outs = dc(&mut m, peer, json!({ "pipe": i }).to_string(), t);
        passed += app_events(&outs).len();
        lines += warnings(&outs).len();
    }
    assert_eq!(passed, APP_RATE.burst as usize);
    assert!(lines <= 10, "{lines} log lines for 940 drops");
    // A second later, the rate's worth passes again; the peer is still served.
    let later = t + Duration::from_secs(1);
    let passed = (0..100)
        .map(|i| app_events(&dc(&mut m, peer, json!({ "pipe": i }).to_string(), later)).len())
        .sum::<usize>();
    assert_eq!(passed, APP_RATE.per_second as usize);
    let outs = dc(&mut m, peer, r#"{"ping":"1"}"#.into(), later);
    assert!(outs.iter().any(|o| matches!(o, Output::SendData { .. })));
}

#[test]
fn huge_or_malformed_data_channel_text_is_dropped() {
    let t = Instant::now();
    let (mut m, peer) = publishing_peer(t);
    m.handle(Input::DataChannelOpen { peer }, t);
    let huge = format!("{{\"chat\":\"{}\"}}", "y".repeat(300 * 1024));
    let outs = dc(&mut m, peer, huge, t);
    assert!(app_events(&outs).is_empty());
    assert!(warnings(&outs)[0].contains("over 256 KiB"));
    for text in ["not json", "[1,2]", "{\"chat\":", "\u{0}\u{1}"] {
        let outs = dc(&mut m, peer, text.into(), t);
        assert!(app_events(&outs).is_empty());
    }
    // Still answered.
    let outs = dc(&mut m, peer, r#"{"ping":"2"}"#.into(), t);
    assert!(outs.iter().any(|o| matches!(o, Output::SendData { .. })));
}

#[test]
fn sends_to_one_peer_or_all() {
    let t = Instant::now();
    let (mut m, peer) = publishing_peer(t);
    // Data channel not open yet: nothing is sent, and the log says why.
    let outs = m.handle(
        Input::SendApp {
            to: None,
            payload: AppPayload::Chat("hi".into()),
        },
        t,
    );
    assert!(!outs.iter().any(|o| matches!(o, Output::SendData { .. })));
    assert!(warnings(&outs)[0].contains("not open"), "{outs:?}");
    m.handle(Input::DataChannelOpen { peer }, t);
    let sent = |outs: &[Output]| -> Vec<serde_json::Value> {
        outs.iter()
            .filter_map(|o| match o {
                Output::SendData { text, .. } => serde_json::from_str(text).ok(),
                _ => None,
            })
            .collect()
    };
    let outs = m.handle(
        Input::SendApp {
            to: Some("viewer".into()),
            payload: AppPayload::Data(json!({"a": [1]})),
        },
        t,
    );
    assert_eq!(sent(&outs), vec![json!({"pipe": {"a": [1]}})]);
    let outs = m.handle(
        Input::SendApp {
            to: None,
            payload: AppPayload::Chat("all".into()),
        },
        t,
    );
    assert_eq!(sent(&outs), vec![json!({"chat": "all"})]);
    let outs = m.handle(
        Input::SendApp {
            to: Some("nobody".into()),
            payload: AppPayload::Chat("x".into()),
        },
        t,
    );
    assert!(sent(&outs).is_empty());
    assert!(warnings(&outs)[0].contains("no such peer"));
}

#[test]
fn payloads_from_the_application_are_checked() {
    assert_eq!(
        AppPayload::data_from_json(r#"{"k":true}"#),
        Ok(AppPayload::Data(json!({"k": true})))
    );
    assert!(matches!(
        AppPayload::data_from_json("{oops"),
        Err(AppError::NotJson(_))
    ));
    let big = "z".repeat(MAX_APP_BYTES + 1);
    assert_eq!(
        AppPayload::chat(&big),
        Err(AppError::TooLarge(MAX_APP_BYTES + 1))
    );
    assert_eq!(AppPayload::Data(json!("s")).text(), "\"s\"");
}
