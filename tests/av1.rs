// SPDX-License-Identifier: MPL-2.0

//! AV1 both ways: `vdoninjasink video-codec=av1` encodes raw input (libaom's `av1enc`, real
//! time) or passes AV1 through; `vdoninjasrc video-codec=av1` views, decodes, records it in
//! Matroska and transcodes it for the room's MPEG-TS stream. The RTP elements are gst-plugins-rs'
//! `rtpav1pay`/`rtpav1depay`, bundled. A codec this machine cannot send or receive is an error
//! at start that names the element and its Debian package.

mod common;

use std::time::Duration;

use common::media::*;
use common::recorder::{Recorder, file_size};
use gst::prelude::*;
use gstvdoninja::server::hub::ServerMode;

/// A live publisher of `stream` in AV1: raw test video encoded by the sink, or `pre-encoded`.
fn av1_publisher(server: &Server, stream: &str, room: &str, pre_encoded: bool) -> gst::Pipeline {
    let encode = if pre_encoded {
        " ! av1enc usage-profile=realtime cpu-used=9 end-usage=cbr min-quantizer=10 \
         max-quantizer=63 target-bitrate=800 lag-in-frames=0 keyframe-max-dist=30 ! av1parse"
    } else {
        ""
    };
    let p = launch(&format!(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 \
         {encode} ! vdoninjasink name=s stream-id={stream} {room} video-codec=av1 {} \
         congestion-control=disabled \
         audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! s.",
        server.props()
    ));
    p.set_state(gst::State::Playing).expect("publisher plays");
    p
}

/// The caps of a pad of `src` once it has them.
fn pad_caps(src: &gst::Element, pad: &str) -> Option<String> {
    let mut caps = None;
    wait_until(MEDIA_WAIT, || {
        caps = src
            .static_pad(pad)
            .and_then(|p| p.current_caps())
            .and_then(|c| c.structure(0).map(|s| s.name().to_string()));
        caps.is_some()
    });
    caps
}

#[test]
fn our_av1_sink_to_our_src_decodes() {
    init();
    let server = Server::start(ServerMode::Official);
    let p = av1_publisher(&server, "av1cam", "", false);
    // Encoded pads carry AV1 (decoded here by the harness); decode=true pads are raw.
    let encoded = SrcHarness::start(&format!(
        "stream-id=av1cam video-codec=av1 {}",
        server.props()
    ));
    let decoded = SrcHarness::start(&format!(
        "stream-id=av1cam video-codec=av1 decode=true {}",
        server.props()
    ));
    for h in [&encoded, &decoded] {
        assert!(
            h.wait_frames(&["video_av1cam", "audio_av1cam"], 90),
            "frames: video {} audio {}; warnings {:?}",
            h.frames("video_av1cam"),
            h.frames("audio_av1cam"),
            h.warnings()
        );
    }
    assert_eq!(
        pad_caps(&encoded.src, "video_av1cam").as_deref(),
        Some("video/x-av1")
    );
    assert_eq!(
        pad_caps(&decoded.src, "video_av1cam").as_deref(),
        Some("video/x-raw")
    );
    encoded.stop();
    decoded.stop();
    let _ = p.set_state(gst::State::Null);
}

#[test]
fn pre_encoded_av1_is_passed_through() {
    init();
    let server = Server::start(ServerMode::Official);
    let p = av1_publisher(&server, "av1pre", "", true);
    let h = SrcHarness::start(&format!(
        "stream-id=av1pre video-codec=av1 decode=true {}",
        server.props()
    ));
    assert!(
        h.wait_frames(&["video_av1pre"], 90),
        "frames {}; warnings {:?}",
        h.frames("video_av1pre"),
        h.warnings()
    );
    let sink = p
        .by_name("s")
        .expect("sink")
        .downcast::<gst::Bin>()
        .expect("bin");
    assert_eq!(
        count_elements(&sink, &["Encoder", "Video"]),
        0,
        "no encoder inside the sink"
    );
    h.stop();
    let _ = p.set_state(gst::State::Null);
}

#[test]
fn an_av1_guest_is_recorded_in_matroska_and_transcoded_for_the_room_stream() {
    init();
    let server = Server::start(ServerMode::Official);
    let dir = tempfile::tempdir().expect("tempdir");
    let ts = dir.path().join("room.ts");
    let mut rec = Recorder::start(&format!(
        "vdoninjasrc room=av1room password=false video-codec=av1 record-location={}/%s.mkv {} \
         ts-slots=1 ! filesink location={}",
        dir.path().display(),
        server.props(),
        ts.display()
    ));
    let p = av1_publisher(&server, "av1guest", "room=av1room password=false", false);
    rec.wait("the recording starts", |r| r.started.len() == 1);
    rec.wait("a warning says the room stream transcodes it", |r| {
        r.warnings.iter().any(|w| w.contains("transcoding"))
    });
    rec.wait("the TS file grows", |_| file_size(&ts) > 100_000);
    // At least 4 s of the guest in the file.
    std::thread::sleep(Duration::from_secs(4));
    let rec = rec.end();
    let _ = p.set_state(gst::State::Null);
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);
    let mkv = &rec.started[0].1;
    let report = inspect_file(mkv, "matroskademux");
    assert!(report.all_decoded(), "{report:?}");
    assert_eq!(report.count("video/x-av1"), 1, "{report:?}");
    assert_eq!(report.count("audio/x-opus"), 1, "{report:?}");
    let least = |caps: &str| {
        report
            .streams
            .iter()
            .find(|(c, _)| c.starts_with(caps))
            .map_or(0, |(_, n)| *n)
    };
    assert!(least("video/x-av1") >= 90, "{report:?}");
    let report = inspect_file(&ts, "tsdemux");
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(report.decoded_tracks("video/x-h264"), 1, "{report:?}");
}

/// Where the child runs `GST_PLUGIN_SYSTEM_PATH` without libaom's plugin.
const NO_AOM: &str = "VDONINJA_TEST_NO_AOM";

#[test]
#[ignore = "run as a child process by a_missing_av1_element_is_an_error_at_start"]
fn child_without_aom() {
    if std::env::var_os(NO_AOM).is_none() {
        return;
    }
    init();
    assert!(
        gst::ElementFactory::find("av1enc").is_none(),
        "the child's GStreamer has no av1enc"
    );
    let cases = [
        (
            "videotestsrc is-live=true ! video/x-raw,width=320,height=240 ! \
             vdoninjasink stream-id=x video-codec=av1 server=ws://127.0.0.1:9 auto-turn=false",
            "av1enc",
        ),
        (
            "vdoninjasrc stream-id=x video-codec=av1 decode=true server=ws://127.0.0.1:9 \
             auto-turn=false",
            "av1dec",
        ),
        (
            "vdoninjasrc room=r video-codec=av1 server=ws://127.0.0.1:9 auto-turn=false \
             ! fakesink",
            "av1dec",
        ),
    ];
    for (desc, element) in cases {
        let p = launch(desc);
        assert!(p.set_state(gst::State::Playing).is_err(), "{desc}");
        let errors = bus_errors(&p);
        let _ = p.set_state(gst::State::Null);
        assert!(
            errors.iter().any(|e| e.contains(&format!(
                "the GStreamer element {element} is not installed (Debian package gstreamer1.0-plugins-bad)"
            ))),
            "{desc}: {errors:?}"
        );
        println!("CASE-OK {element}");
    }
    // Encoded AV1 without decoding needs no libaom: it starts.
    let p =
        launch("vdoninjasrc stream-id=x video-codec=av1 server=ws://127.0.0.1:9 auto-turn=false");
    assert!(p.set_state(gst::State::Playing).is_ok());
    let _ = p.set_state(gst::State::Null);
    println!("CASE-OK encoded");
    // The element's warm-up makes GStreamer's DTLS key on a worker thread; exiting while it
    // does crashes in OpenSSL's exit handlers. Wait for it: the same key, made here.
    let _ = gst::ElementFactory::make("dtlsdec").build();
}

#[test]
fn a_missing_av1_element_is_an_error_at_start() {
    // A GStreamer without libaom's plugin: the system plugins, linked one by one but for it.
    init();
    let aom = gst::ElementFactory::find("av1enc")
        .and_then(|f| f.plugin())
        .and_then(|p| p.filename())
        .expect("av1enc is installed here (scripts/setup.sh)");
    let system = aom.parent().expect("plugin directory");
    let aom = aom.file_name().expect("file name").to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).expect("mkdir");
    let mut linked = 0;
    for entry in std::fs::read_dir(system).expect("system plugins").flatten() {
        let name = entry.file_name();
        if name != aom && name.to_string_lossy().ends_with(".so") {
            std::os::unix::fs::symlink(entry.path(), plugins.join(&name)).expect("symlink");
            linked += 1;
        }
    }
    assert!(linked > 20, "system plugins found: {linked}");
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["child_without_aom", "--exact", "--ignored", "--nocapture"])
        .env(NO_AOM, "1")
        .env("GST_PLUGIN_SYSTEM_PATH", &plugins)
        .env("GST_REGISTRY", dir.path().join("registry.bin"))
        .env_remove("GST_PLUGIN_PATH")
        .output()
        .expect("child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.matches("CASE-OK").count() == 4,
        "child: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
