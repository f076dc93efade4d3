// SPDX-License-Identifier: MPL-2.0

//! A pipeline keeps its pads across a publisher's return: `gst_parse_launch` pipelines whose
//! named `vdoninjasrc` pads are linked once in the text (as gst-launch-1.0 and obs-gstreamer
//! run them) get media again after the publisher stops and a new one publishes the same ID,
//! decoded on the far side, with running time that never goes back; in a room, the pads of IDs
//! named in `streams` stay while the other guest never stops, and an unnamed guest's pads end
//! (EOS) once `rejoin-grace` is over.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::linked::Linked;
use common::media::*;
use gst::prelude::*;
use gstvdoninja::server::hub::ServerMode;

/// A `vdoninjasink` publisher of a test pattern at `w`x`h`.
fn publisher(server: &Server, stream: &str, extra: &str, (w, h): (u32, u32)) -> gst::Pipeline {
    let p = launch(&format!(
        "videotestsrc is-live=true ! video/x-raw,width={w},height={h},framerate=30/1 ! \
         vdoninjasink name=p stream-id={stream} {props} {extra} \
         audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! p.",
        props = server.props()
    ));
    p.set_state(gst::State::Playing).expect("publisher plays");
    p
}

/// The publisher of `cam` stops (its `bye`), a new one publishes `cam` 3 s later at another
/// size (with `second_extra` on its sink), and the pipeline linked once in its text decodes
/// both.
fn viewer_survives_a_return(decode: bool, second_extra: &str) {
    let server = Server::start(ServerMode::Official);
    let video = if decode {
        "s.video_cam ! queue ! fakesink name=video sync=false async=false"
    } else {
        "s.video_cam ! queue ! h264parse ! avdec_h264 ! fakesink name=video sync=false async=false"
    };
    let audio = if decode {
        "s.audio_cam ! queue ! fakesink name=audio sync=false async=false"
    } else {
        "s.audio_cam ! queue ! opusdec ! fakesink name=audio sync=false async=false"
    };
    let first = publisher(&server, "cam", "", (640, 360));
    let s = Linked::start(
        &format!(
            "vdoninjasrc name=s stream-id=cam decode={decode} {} {video} {audio}",
            server.props()
        ),
        &["video", "audio"],
    );
    s.wait_added("cam", 1);
    assert!(
        wait_until(MEDIA_WAIT, || s.count("video") >= 60
            && s.count("audio") >= 60),
        "before: {} / {}",
        s.report("video"),
        s.report("audio")
    );
    let before = (s.count("video"), s.count("audio"));
    let _ = first.set_state(gst::State::Null);
    s.wait_removed("cam");
    std::thread::sleep(Duration::from_secs(3));
    let last_before = s.seen["video"]
        .lock()
        .expect("lock")
        .buffers
        .last()
        .map(|b| b.1)
        .expect("frames before");
    let restarted = Instant::now();
    let second = publisher(&server, "cam", second_extra, (1280, 720));
    let back = s.wait_added("cam", 2);
    let ok = wait_until(MEDIA_WAIT, || {
        s.after("video", back).0 >= 150 && s.after("audio", back).0 >= 150
    });
    let (v, v_first) = s.after("video", back);
    let (_, from_start) = s.after("video", restarted);
    let first_rt_after = s.seen["video"]
        .lock()
        .expect("lock")
        .buffers
        .iter()
        .find(|(at, _)| *at > back)
        .map(|b| b.1);
    let (a, a_first) = s.after("audio", back);
    let trouble = s.trouble();
    eprintln!(
        "decode={decode}: before {before:?}; after the return: video {v} (first {v_first:?} after \
         stream-added, {from_start:?} after the new publisher started), audio {a} (first after \
         {a_first:?}); running time {last_before} -> {first_rt_after:?}; longest gap video {} \
         audio {}; {} / {}",
        s.longest_gap("video"),
        s.longest_gap("audio"),
        s.report("video"),
        s.report("audio")
    );
    assert!(ok, "frames after the return: video {v}, audio {a}");
    assert!(
        v_first.is_some_and(|d| d <= Duration::from_secs(8)),
        "first frame after the return: {v_first:?}"
    );
    assert!(trouble.is_empty(), "errors or EOS: {trouble:?}");
    assert!(
        first_rt_after.is_some_and(|rt| rt > last_before),
        "running time after the return: {first_rt_after:?}, before {last_before}"
    );
    for sink in ["video", "audio"] {
        let (backwards, eos) = {
            let seen = s.seen[sink].lock().expect("lock");
            (seen.backwards.clone(), seen.eos)
        };
        assert!(
            backwards.is_empty(),
            "running time went back on {sink}: {backwards:?}"
        );
        assert!(!eos, "EOS on {sink}");
    }
    let sizes = s.seen["video"].lock().expect("lock").sizes.clone();
    assert_eq!(sizes.first(), Some(&(640, 360)), "{sizes:?}");
    assert_eq!(sizes.last(), Some(&(1280, 720)), "{sizes:?}");
    drop(s);
    let _ = second.set_state(gst::State::Null);
}

#[test]
fn encoded_pads_carry_a_returning_publisher_at_a_new_size() {
    viewer_survives_a_return(false, "");
}

#[test]
fn decoded_pads_carry_a_returning_publisher_at_a_new_size() {
    viewer_survives_a_return(true, "");
}

#[test]
fn decoded_pads_carry_a_returning_publisher_that_changed_codec() {
    // H.264 at 640x360, then VP8 at 1280x720: the decoder inside follows, the pad stays raw.
    viewer_survives_a_return(true, "video-codec=vp8");
}

#[test]
fn named_room_streams_keep_their_pads_while_the_other_guest_goes_on() {
    let server = Server::start(ServerMode::Official);
    let a = publisher(&server, "a", "room=keep", (320, 240));
    let b = publisher(&server, "b", "room=keep", (320, 240));
    // rejoin-grace=1: IDs named in `streams` are kept past it.
    let s = Linked::start(
        &format!(
            "vdoninjasrc name=s room=keep streams=a,b rejoin-grace=1 {} \
             s.video_a ! queue ! h264parse ! avdec_h264 ! fakesink name=va sync=false async=false \
             s.video_b ! queue ! h264parse ! avdec_h264 ! fakesink name=vb sync=false async=false",
            server.props()
        ),
        &["va", "vb"],
    );
    assert!(
        wait_until(MEDIA_WAIT, || s.count("va") >= 30 && s.count("vb") >= 30),
        "{} {}",
        s.report("va"),
        s.report("vb")
    );
    let _ = a.set_state(gst::State::Null);
    s.wait_removed("a");
    let left = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    // While a is away (past the grace), b goes on.
    let (b_meanwhile, _) = s.after("vb", left);
    assert!(b_meanwhile >= 45, "b while a was away: {b_meanwhile}");
    let a2 = publisher(&server, "a", "room=keep", (320, 240));
    let back = s.wait_added("a", 2);
    assert!(
        wait_until(MEDIA_WAIT, || s.after("va", back).0 >= 60),
        "a after its return: {}",
        s.report("va")
    );
    let (va, first) = s.after("va", back);
    eprintln!(
        "a: {va} frames after its return (first after {first:?}), b: {b_meanwhile} while a was \
         away; {} / {}",
        s.report("va"),
        s.report("vb")
    );
    let trouble = s.trouble();
    assert!(trouble.is_empty(), "errors or EOS: {trouble:?}");
    drop(s);
    let _ = a2.set_state(gst::State::Null);
    let _ = b.set_state(gst::State::Null);
}

#[test]
fn an_unnamed_guest_gone_past_rejoin_grace_ends_its_pads() {
    let server = Server::start(ServerMode::Official);
    let stay = publisher(&server, "stay", "room=grace", (320, 240));
    let leaver = publisher(&server, "leaver", "room=grace", (320, 240));
    // 6 s: the pads are released before the leaver's webrtcbin is torn down and
    // `stream-removed` is posted, which took over 2 s once on a loaded machine.
    let s = SrcHarness::start(&format!("room=grace rejoin-grace=6 {}", server.props()));
    assert!(
        s.wait_frames(&["video_leaver", "video_stay"], 10),
        "frames {:?}",
        s.frames
    );
    let eos = Arc::new(AtomicBool::new(false));
    let e = eos.clone();
    s.src.static_pad("video_leaver").expect("pad").add_probe(
        gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            if let Some(gst::PadProbeData::Event(ev)) = &info.data
                && ev.type_() == gst::EventType::Eos
            {
                e.store(true, Ordering::SeqCst);
            }
            gst::PadProbeReturn::Ok
        },
    );
    let _ = leaver.set_state(gst::State::Null);
    assert!(wait_until(MEDIA_WAIT, || s
        .removed
        .lock()
        .expect("lock")
        .contains(&"leaver".to_string())));
    let gone = Instant::now();
    assert!(
        s.has_pad("video_leaver"),
        "the pads wait for the guest's return"
    );
    assert!(
        wait_until(MEDIA_WAIT, || !s.has_pad("video_leaver")
            && !s.has_pad("audio_leaver")),
        "the pads go after rejoin-grace"
    );
    let waited = gone.elapsed();
    assert!(eos.load(Ordering::SeqCst), "an EOS ended the branch");
    assert!(
        waited >= Duration::from_secs(3),
        "removed after {waited:?}, before the grace"
    );
    let stay_frames = s.frames("video_stay");
    assert!(
        s.wait_frames(&["video_stay"], stay_frames + 20),
        "the other publisher keeps streaming"
    );
    s.stop();
    let _ = stay.set_state(gst::State::Null);
}
