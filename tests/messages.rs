// SPDX-License-Identifier: MPL-2.0

//! Application messages between two peers of ours, both directions: `send-chat`/`send-data`
//! on one side, `vdoninja/chat`/`vdoninja/data` on the other's bus; invalid and flooding
//! messages go nowhere and the stream goes on.

mod common;

use std::time::{Duration, Instant};

use common::media::*;
use gst::prelude::*;
use gstvdoninja::server::hub::ServerMode;

/// The next `vdoninja/<name>` element message on `bus` within `timeout`, as (uuid, stream-id,
/// payload field).
fn next_app_message(
    bus: &gst::Bus,
    name: &str,
    timeout: Duration,
) -> Option<(String, String, String)> {
    let deadline = Instant::now() + timeout;
    let field = if name == "vdoninja/chat" {
        "text"
    } else {
        "data"
    };
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[gst::MessageType::Element],
        )?;
        let Some(s) = msg.structure().filter(|s| s.name() == name) else {
            continue;
        };
        let get = |f: &str| s.get::<String>(f).unwrap_or_default();
        return Some((get("uuid"), get("stream-id"), get(field)));
    }
    None
}

fn send(element: &gst::Element, signal: &str, to: Option<&str>, body: &str) -> bool {
    element.emit_by_name::<bool>(signal, &[&to, &body])
}

#[test]
fn chat_and_data_both_ways_between_sink_and_src() {
    init();
    let server = Server::start(ServerMode::Official);
    let publisher = launch(&format!(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         vdoninjasink name=s stream-id=talk1 {}",
        server.props()
    ));
    publisher
        .set_state(gst::State::Playing)
        .expect("publisher plays");
    let sink = publisher.by_name("s").expect("sink");
    let pub_bus = publisher.bus().expect("bus");
    let viewer = SrcHarness::start(&format!("stream-id=talk1 {}", server.props()));
    let src_bus = viewer.pipeline.bus().expect("bus");
    assert!(viewer.wait_frames(&["video_talk1"], 5), "no media");

    // Not running: FALSE; invalid: FALSE.
    let idle = gst::ElementFactory::make("vdoninjasrc")
        .build()
        .expect("src");
    assert!(!send(&idle, "send-chat", None, "hi"));
    assert!(!send(&viewer.src, "send-data", None, "{not json"));
    assert!(!send(&viewer.src, "send-chat", None, &"x".repeat(70_000)));

    // Viewer → publisher, to every peer. The data channel may open just after the media:
    // send again until it arrives (each try waits for the message, bounded).
    let mut got = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.is_none() && Instant::now() < deadline {
        assert!(send(&viewer.src, "send-chat", None, "hello publisher ✓"));
        got = next_app_message(&pub_bus, "vdoninja/chat", Duration::from_millis(500));
    }
    let (viewer_uuid, sid, text) = got.expect("the publisher got the chat");
    assert_eq!(text, "hello publisher ✓");
    assert_eq!(sid, "", "a viewer publishes no stream");
    assert!(!viewer_uuid.is_empty());

    // Publisher → that viewer, by UUID: JSON data.
    let json = r#"{"scene":2,"tags":["a","b"],"nested":{"ok":true}}"#;
    assert!(send(&sink, "send-data", Some(&viewer_uuid), json));
    let (uuid, sid, data) = next_app_message(&src_bus, "vdoninja/data", Duration::from_secs(5))
        .expect("the viewer got the data");
    assert_eq!(sid, "talk1");
    assert!(!uuid.is_empty());
    let sent: serde_json::Value = serde_json::from_str(json).expect("json");
    let received: serde_json::Value = serde_json::from_str(&data).expect("data is JSON");
    assert_eq!(received, sent);

    // Viewer → publisher by stream ID, and publisher → all viewers: chat.
    assert!(send(&viewer.src, "send-data", Some("talk1"), "[1,2,3]"));
    let (_, _, data) = next_app_message(&pub_bus, "vdoninja/data", Duration::from_secs(5))
        .expect("data by stream ID");
    assert_eq!(data, "[1,2,3]");
    assert!(send(&sink, "send-chat", Some(""), "to everyone"));
    let (_, _, text) =
        next_app_message(&src_bus, "vdoninja/chat", Duration::from_secs(5)).expect("chat to all");
    assert_eq!(text, "to everyone");

    // A flood: no more than the rate limit reaches the bus, and the media goes on.
    while next_app_message(&pub_bus, "vdoninja/chat", Duration::ZERO).is_some() {}
    let before = viewer.frames("video_talk1");
    let started = Instant::now();
    for i in 0..2000 {
        send(&viewer.src, "send-chat", None, &format!("flood {i}"));
    }
    let mut delivered = 0;
    while next_app_message(&pub_bus, "vdoninja/chat", Duration::from_secs(2)).is_some() {
        delivered += 1;
    }
    let allowed = 60.0 + 20.0 * started.elapsed().as_secs_f64();
    assert!(
        delivered > 0 && (delivered as f64) <= allowed,
        "{delivered} of 2000 delivered, at most {allowed:.0} allowed"
    );
    assert!(
        wait_until(Duration::from_secs(10), || viewer.frames("video_talk1")
            > before + 30),
        "the stream stopped after the flood"
    );
    viewer.stop();
    let _ = publisher.set_state(gst::State::Null);
}
