// SPDX-License-Identifier: MPL-2.0

//! No secret in the logs (issue 12, item 6): a publisher and a viewer with a password and TURN
//! credentials connect with `GST_DEBUG=*:9`; no line of the log, ours or GStreamer's, holds the
//! password, the key derived from it or a TURN credential. (GStreamer 1.22's webrtcbin and
//! libnice print the TURN URIs they are given at DEBUG; the peer silences those two categories
//! for the call that hands them over.) The secrets are set as properties: a `gst-launch-1.0`
//! line is logged whole by GStreamer's parser, and shown by `ps`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::media::*;
use gst::prelude::*;
use gstvdoninja::server::hub::ServerMode;
use sha2::{Digest, Sha256};

const CHILD: &str = "VDONINJA_TEST_SECRETS_CHILD";
const PASSWORD: &str = "Zx9-very-secret-pw";
const TURN_USER: &str = "turnuser-q7x";
const TURN_PASS: &str = "turnpass-q7x";

/// Not a test: the publisher and viewer, run with `GST_DEBUG=*:9` by the test below.
#[test]
#[ignore = "run as a child process by the test of this file"]
fn child_secret_call() {
    if std::env::var(CHILD).is_err() {
        return;
    }
    let server = Server::start(ServerMode::Official);
    // The secrets are set as properties, as an application does: a launch line goes whole
    // into GStreamer's own log (GST_PIPELINE, INFO), and into `ps` for gst-launch-1.0.
    let set_secrets = |e: &gst::Element| {
        e.set_property("password", PASSWORD);
        e.set_property(
            "turn-servers",
            format!("turn://{TURN_USER}:{TURN_PASS}@127.0.0.1:9"),
        );
    };
    let publisher = launch(&format!(
        "videotestsrc is-live=true ! video/x-raw,width=64,height=64,framerate=10/1 ! \
         vdoninjasink name=s stream-id=hush {}",
        server.props()
    ));
    set_secrets(&publisher.by_name("s").expect("sink"));
    publisher.set_state(gst::State::Playing).expect("plays");
    let viewer = launch(&format!(
        "vdoninjasrc name=v stream-id=hush {}",
        server.props()
    ));
    let src = viewer.by_name("v").expect("src");
    set_secrets(&src);
    let frames = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    {
        let (viewer, frames) = (viewer.clone(), frames.clone());
        src.connect_pad_added(move |_, pad| {
            let sink = gst::ElementFactory::make("fakesink")
                .build()
                .expect("fakesink");
            viewer.add(&sink).expect("add");
            let _ = sink.sync_state_with_parent();
            let _ = pad.link(&sink.static_pad("sink").expect("pad"));
            let frames = frames.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                frames.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                gst::PadProbeReturn::Ok
            });
        });
    }
    viewer.set_state(gst::State::Playing).expect("plays");
    let seen = wait_until(MEDIA_WAIT, || {
        frames.load(std::sync::atomic::Ordering::SeqCst) >= 5
    });
    let _ = viewer.set_state(gst::State::Null);
    let _ = publisher.set_state(gst::State::Null);
    assert!(seen, "the viewer sees the stream");
    std::thread::sleep(Duration::from_millis(100));
}

#[test]
fn no_password_or_turn_credential_in_the_logs_at_level_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("gst.log");
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["child_secret_call", "--exact", "--ignored", "--nocapture"])
        .env(CHILD, "1")
        .env("GST_DEBUG", "*:9")
        .env("GST_DEBUG_NO_COLOR", "1")
        .env("GST_DEBUG_FILE", &log)
        .output()
        .expect("child runs");
    assert!(
        out.status.success(),
        "the call with secrets: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read(&log).expect("the log");
    let text = String::from_utf8_lossy(&text);
    let lines = text.lines().count();
    assert!(lines > 10_000, "a level-9 log: {lines} lines");
    let key = hex::encode(Sha256::digest(format!("{PASSWORD}vdo.ninja")));
    for line in text.lines() {
        assert!(!line.contains(PASSWORD), "the password is logged: {line}");
        assert!(!line.contains(&key), "the encryption key is logged: {line}");
        assert!(
            !line.contains(TURN_USER) && !line.contains(TURN_PASS),
            "a TURN credential is logged: {line}"
        );
    }
    // The TURN servers were set (GStreamer's notification of the property is there).
    assert!(text.contains("(turn-servers)"), "the TURN servers were set");
    eprintln!("{lines} log lines, no secret in any");
}
