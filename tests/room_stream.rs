// SPDX-License-Identifier: MPL-2.0

//! The room as one MPEG-TS stream (`vdoninjasrc ! filesink location=room.ts`), read by every
//! reader: GStreamer 1.22's `decodebin3` (all streams selected, as a player that shows the
//! whole room does), `gst-discoverer-1.0` and ffprobe see every slot's video and audio, also a
//! guest's who joined late and at another size, and a slot no guest took.

mod common;

use std::time::Duration;

use common::media::*;
use common::readers::{decodebin3_all, discovered};
use common::recorder::{Recorder, file_size};
use gst::prelude::*;
use gstvdoninja::server::hub::ServerMode;

#[test]
fn every_reader_sees_every_guest_of_the_room_stream() {
    let server = Server::start(ServerMode::Official);
    let dir = tempfile::tempdir().expect("tempdir");
    let ts = dir.path().join("room.ts");
    // Three slots, two guests: the third carries the placeholder throughout.
    let mut rec = Recorder::start(&format!(
        "vdoninjasrc room=readers password=false ts-slots=3 {} ! filesink location={}",
        server.props(),
        ts.display()
    ));
    let _log = common::logring::keep("vdoninja*:5");
    let first = common::run::publisher(&server, "early", Some("readers"), Some("false"), 0);
    rec.wait("the first guest is added", |r| r.added.len() == 1);
    let at_first = file_size(&ts);
    rec.wait("the room stream grows", |_| {
        file_size(&ts) > at_first + 600_000
    });
    // The second guest joins later, at another size.
    let late = launch(&format!(
        "videotestsrc is-live=true pattern=smpte ! video/x-raw,width=640,height=360,framerate=30/1 ! \
         vdoninjasink name=s stream-id=late room=readers password=false {} congestion-control=disabled \
         audiotestsrc is-live=true freq=700 ! audio/x-raw,rate=48000,channels=2 ! s.",
        server.props()
    ));
    late.set_state(gst::State::Playing).expect("plays");
    rec.wait("the late guest is added", |r| r.added.len() == 2);
    let at_join = file_size(&ts);
    rec.wait("the room stream grows with both", |_| {
        file_size(&ts) > at_join + 1_500_000
    });
    std::thread::sleep(Duration::from_secs(2));
    let rec = rec.end();
    let _ = late.set_state(gst::State::Null);
    let _ = first.set_state(gst::State::Null);
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);

    let decoded = decodebin3_all(&ts);
    eprintln!("decodebin3: {decoded:?}");
    let videos: Vec<&(u64, Vec<(i32, i32)>)> = decoded
        .iter()
        .filter(|(k, _)| k.starts_with("video"))
        .map(|(_, v)| v)
        .collect();
    let audios = decoded.keys().filter(|k| k.starts_with("audio")).count();
    assert_eq!((videos.len(), audios), (3, 3), "{decoded:?}");
    assert!(
        videos.iter().all(|(n, _)| *n >= 30),
        "every video decodes: {decoded:?}"
    );
    // The late guest's pictures are there at their own size (the slot showed the
    // placeholder's 320x180 before).
    assert!(
        videos.iter().any(|(_, s)| s.contains(&(640, 360))),
        "the late guest at 640x360: {decoded:?}"
    );
    let (v, a) = discovered(&ts);
    eprintln!("gst-discoverer-1.0: {v} video, {a} audio");
    assert_eq!((v, a), (3, 3));
    let (frames, _) = ffprobe(&ts);
    eprintln!("ffprobe: {frames:?}");
    assert_eq!(frames.len(), 6, "{frames:?}");
    assert!(frames.iter().all(|(_, n)| *n >= 30), "{frames:?}");
}

#[test]
fn a_guest_beyond_the_slots_is_left_out_with_a_warning() {
    // Once in a full run the pipeline did not end within 20 s of EOS (not seen alone, nor in
    // 11 runs under load): the log is kept for the next time.
    let _log = common::logring::keep("vdoninja*:5,mpegtsmux:5,aggregator:4,GST_EVENT:4");
    let server = Server::start(ServerMode::Official);
    let dir = tempfile::tempdir().expect("tempdir");
    let ts = dir.path().join("one.ts");
    let mut rec = Recorder::start(&format!(
        "vdoninjasrc room=oneslot password=false ts-slots=1 {} ! filesink location={}",
        server.props(),
        ts.display()
    ));
    let pubs: Vec<gst::Pipeline> = (0..2)
        .map(|i| {
            common::run::publisher(&server, &format!("g{i}"), Some("oneslot"), Some("false"), i)
        })
        .collect();
    rec.wait("a warning says the slots are taken", |r| {
        r.added.len() == 2 && r.warnings.iter().any(|w| w.contains("slots are taken"))
    });
    // ~50 pictures of the guest (300 KB, ~25-30 of them, was the assertion's edge: one full
    // run decoded 24).
    let at = file_size(&ts);
    rec.wait("the room stream goes on", |_| file_size(&ts) > at + 600_000);
    let rec = rec.end();
    for p in pubs {
        let _ = p.set_state(gst::State::Null);
    }
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);
    let decoded = decodebin3_all(&ts);
    let videos = decoded.keys().filter(|k| k.starts_with("video")).count();
    assert_eq!(videos, 1, "one slot, one guest's video: {decoded:?}");
    assert!(
        decoded
            .values()
            .any(|(n, sizes)| *n >= 30 && sizes.contains(&(320, 240))),
        "the guest in the slot is decoded: {decoded:?}"
    );
}
