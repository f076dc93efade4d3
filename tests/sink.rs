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
    assert_eq!(
        upnp_agents(&sink_of(&p)),
        (1, 0),
        "(webrtcbins, with UPnP on)"
    );
    v.stop();
    let _ = p.set_state(gst::State::Null);
}

/// The element's webrtcbins, and how many of their ICE agents would search for UPnP routers
/// (SSDP multicast out of every interface; browsers never do).
fn upnp_agents(bin: &gst::Bin) -> (usize, usize) {
    let webrtcbins: Vec<gst::Element> = bin
        .iterate_recurse()
        .into_iter()
        .flatten()
        .filter(|e| e.factory().is_some_and(|f| f.name() == "webrtcbin"))
        .collect();
    let on = webrtcbins
        .iter()
        .filter(|w| {
            let ice = w.property::<gst::glib::Object>("ice-agent");
            let agent = ice.property::<gst::glib::Object>("agent");
            agent.property::<bool>("upnp")
        })
        .count();
    (webrtcbins.len(), on)
}

fn encoder_bitrate(p: &gst::Pipeline) -> u32 {
    let sink = sink_of(p);
    let enc = sink
        .iterate_recurse()
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.factory().is_some_and(|f| f.name() == "x264enc"))
        .expect("an x264enc");
    enc.property::<u32>("bitrate")
}

#[test]
fn three_viewers_share_one_encoder_and_one_leaving_spares_the_others() {
    let server = Server::start(ServerMode::Official);
    let p = publisher(&server, "cam3", "", "");
    let sink = sink_of(&p);
    let removed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let r = removed.clone();
    sink.connect("viewer-removed", false, move |args| {
        let uuid = args[1].get::<String>().expect("uuid");
        r.lock().expect("lock").push(uuid);
        None
    });
    let opts = || ViewerOptions {
        stream_id: "cam3",
        room: None,
        password: None,
    };
    let viewers: Vec<TestViewer> = (0..3).map(|_| TestViewer::start(&server, opts())).collect();
    for v in &viewers {
        assert!(
            v.wait_frames(30, 20),
            "video {} audio {}",
            v.video_frames(),
            v.audio_frames()
        );
    }
    assert_eq!(
        count_elements(&sink, &["Encoder", "Video"]),
        1,
        "one video encoder for all"
    );
    assert_eq!(
        count_elements(&sink, &["Encoder", "Audio"]),
        1,
        "one audio encoder for all"
    );
    let stats = sink.property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u32>("viewers").expect("viewers"), 3);

    let mut viewers = viewers;
    let gone = viewers.remove(0);
    gone.stop();
    assert!(
        wait_until(MEDIA_WAIT, || removed.lock().expect("lock").len() == 1),
        "viewer-removed"
    );
    let before: Vec<u64> = viewers.iter().map(TestViewer::video_frames).collect();
    for (v, b) in viewers.iter().zip(before) {
        assert!(
            v.wait_frames(b + 30, 0),
            "a remaining viewer keeps receiving"
        );
    }
    assert_eq!(
        sink.property::<gst::Structure>("stats")
            .get::<u32>("viewers")
            .expect("n"),
        2
    );
    assert!(bus_errors(&p).is_empty());
    let _ = p.set_state(gst::State::Null);
}

#[test]
fn bitrate_and_keyframe_requests_reach_the_encoder() {
    let server = Server::start(ServerMode::Official);
    let p = publisher(
        &server,
        "cam4",
        "bitrate=2000 min-bitrate=200 max-bitrate=4000",
        "",
    );
    let v = TestViewer::start(
        &server,
        ViewerOptions {
            stream_id: "cam4",
            room: None,
            password: None,
        },
    );
    assert!(v.wait_frames(10, 0));
    assert_eq!(encoder_bitrate(&p), 2000);
    v.send_data(r#"{"bitrate":500}"#);
    assert!(
        wait_until(MEDIA_WAIT, || encoder_bitrate(&p) == 500),
        "bitrate now {}",
        encoder_bitrate(&p)
    );
    v.send_data(r#"{"bitrate":50}"#);
    assert!(
        wait_until(MEDIA_WAIT, || encoder_bitrate(&p) == 200),
        "clamped to min-bitrate"
    );
    v.send_data(r#"{"bitrate":-1}"#);
    assert!(
        wait_until(MEDIA_WAIT, || encoder_bitrate(&p) == 2000),
        "back to the target"
    );

    // key-int-max is 60 frames (2 s at 30 fps): a key frame well inside that interval comes
    // from the request. Wait for the next periodic one, then ask.
    let k0 = v.keyframes();
    assert!(wait_until(MEDIA_WAIT, || v.keyframes() > k0));
    let k1 = v.keyframes();
    let frames = v.video_frames();
    v.input(gstvdoninja::protocol::machine::Input::RequestKeyframe {
        peer: v.peer_ids()[0],
    });
    assert!(
        wait_until(MEDIA_WAIT, || v.keyframes() > k1),
        "a key frame after the request"
    );
    assert!(
        v.video_frames() < frames + 45,
        "it came before the periodic one ({} frames later)",
        v.video_frames() - frames
    );
    v.stop();
    let _ = p.set_state(gst::State::Null);
}

fn publish_and_view(mode: ServerMode, password: Option<&str>, room: Option<&str>) {
    let server = Server::start(mode);
    let mut extra = String::new();
    if let Some(pw) = password {
        extra.push_str(&format!(" password=\"{pw}\""));
    }
    if let Some(r) = room {
        extra.push_str(&format!(" room={r}"));
    }
    let p = publisher(&server, "pwcam", &extra, "");
    let v = TestViewer::start(
        &server,
        ViewerOptions {
            stream_id: "pwcam",
            room,
            password,
        },
    );
    assert!(
        v.wait_frames(15, 10),
        "{mode:?} password {password:?}: video {} audio {}",
        v.video_frames(),
        v.audio_frames()
    );
    v.stop();
    let _ = p.set_state(gst::State::Null);
}

#[test]
fn passwords_in_both_server_models() {
    for mode in [ServerMode::Official, ServerMode::Fanout] {
        publish_and_view(mode, None, None);
        publish_and_view(mode, Some("Test@Room#1!"), None);
        publish_and_view(mode, Some("false"), None);
    }
    publish_and_view(ServerMode::Fanout, None, Some("sinkroom"));
}

#[test]
fn pre_encoded_h264_is_sent_without_a_second_encoder() {
    let server = Server::start(ServerMode::Official);
    let p = publisher(
        &server,
        "enc1",
        "",
        "x264enc tune=zerolatency key-int-max=30 bitrate=800 ! h264parse !",
    );
    let v = TestViewer::start(
        &server,
        ViewerOptions {
            stream_id: "enc1",
            room: None,
            password: None,
        },
    );
    assert!(
        v.wait_frames(20, 10),
        "video {} audio {}",
        v.video_frames(),
        v.audio_frames()
    );
    assert_eq!(
        count_elements(&sink_of(&p), &["Encoder", "Video"]),
        0,
        "no encoder inside the sink"
    );
    v.stop();
    let _ = p.set_state(gst::State::Null);
}

#[test]
fn missing_stream_id_is_a_clear_error() {
    init();
    let p =
        gst::parse::launch("videotestsrc ! vdoninjasink server=ws://127.0.0.1:9 auto-turn=false")
            .expect("parses")
            .downcast::<gst::Pipeline>()
            .expect("pipeline");
    assert!(p.set_state(gst::State::Playing).is_err());
    let errors = bus_errors(&p);
    assert!(
        errors.iter().any(|e| e.contains("stream-id is required")),
        "{errors:?}"
    );
    let _ = p.set_state(gst::State::Null);
}

#[test]
fn a_viewer_that_never_answers_does_not_stall_the_others() {
    let server = Server::start(ServerMode::Official);
    let p = publisher(&server, "stall1", "", "");
    // A viewer that asks for the stream and then never answers the offer: its webrtcbin never
    // connects, so its branch stays blocked.
    let wire = gstvdoninja::protocol::crypto::Crypto::new(None, "vdo.ninja")
        .wire_stream_id("stall1")
        .expect("wire id");
    let rt = gstvdoninja::runtime::handle();
    let mut mute = rt.block_on(common::Ws::connect(&server.url));
    rt.block_on(mute.send(serde_json::json!({"request": "play", "streamID": wire})));
    let offer = rt.block_on(mute.recv());
    assert!(
        offer.get("description").is_some(),
        "the sink offered: {offer}"
    );
    let v = TestViewer::start(
        &server,
        ViewerOptions {
            stream_id: "stall1",
            room: None,
            password: None,
        },
    );
    assert!(
        v.wait_frames(30, 20),
        "video {} audio {}",
        v.video_frames(),
        v.audio_frames()
    );
    let later = TestViewer::start(
        &server,
        ViewerOptions {
            stream_id: "stall1",
            room: None,
            password: None,
        },
    );
    assert!(later.wait_frames(30, 20), "a later viewer too");
    let f = v.video_frames();
    assert!(v.wait_frames(f + 30, 0), "and the first keeps receiving");
    drop(mute);
    v.stop();
    later.stop();
    let _ = p.set_state(gst::State::Null);
}

#[test]
fn a_failing_viewer_is_torn_down_alone() {
    let server = Server::start(ServerMode::Official);
    let p = publisher(&server, "iso1", "", "");
    let sink = sink_of(&p);
    let opts = || ViewerOptions {
        stream_id: "iso1",
        room: None,
        password: None,
    };
    let a = TestViewer::start(&server, opts());
    assert!(a.wait_frames(10, 0));
    let b = TestViewer::start(&server, opts());
    assert!(b.wait_frames(10, 0));
    let first_viewer = sink
        .by_name("peer1")
        .expect("peer1")
        .downcast::<gst::Bin>()
        .expect("bin");
    let pay = first_viewer
        .iterate_elements()
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.factory().is_some_and(|f| f.name().contains("pay")))
        .expect("a payloader");
    gst::element_error!(pay, gst::StreamError::Encode, ["injected failure"]);
    assert!(
        wait_until(MEDIA_WAIT, || sink.by_name("peer1").is_none()),
        "the failing viewer is removed"
    );
    let f = b.video_frames();
    assert!(b.wait_frames(f + 30, 0), "the other viewer keeps receiving");
    assert!(bus_errors(&p).is_empty(), "no error reached the pipeline");
    a.stop();
    b.stop();
    let _ = p.set_state(gst::State::Null);
}
