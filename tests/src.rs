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
