// SPDX-License-Identifier: MPL-2.0

//! vdoninjasink against test viewers, real webrtcbin on 127.0.0.1 and our in-process server.

mod common;

use common::media::*;
use gst::prelude::*;
use gstvdoninja::server::hub::ServerMode;

fn publisher(server: &Server, stream: &str, extra: &str, video: &str) -> gst::Pipeline {
    init();
    let desc = format!(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! {video} \
         vdoninjasink name=s stream-id={stream} {props} {extra} \
         audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=48000,channels=2 ! s.",
        props = server.props()
    );
    let p = gst::parse::launch(&desc)
        .expect("pipeline parses")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    p.set_state(gst::State::Playing).expect("publisher plays");
    p
}

fn sink_of(p: &gst::Pipeline) -> gst::Bin {
    p.by_name("s").expect("sink").downcast().expect("a bin")
}

#[test]
fn one_viewer_decodes_video_and_audio() {
    let server = Server::start(ServerMode::Official);
    let p = publisher(&server, "cam1", "", "");
    let v = TestViewer::start(
        &server,
        ViewerOptions {
            stream_id: "cam1",
            room: None,
            password: None,
        },
    );
    assert!(
        v.wait_frames(30, 20),
        "video {} audio {} errors {:?}",
        v.video_frames(),
        v.audio_frames(),
        bus_errors(&p)
    );
    assert_eq!(count_elements(&sink_of(&p), &["Encoder", "Video"]), 1);
    v.stop();
    let _ = p.set_state(gst::State::Null);
}
