// SPDX-License-Identifier: MPL-2.0

//! Room recording with vdoninjasrc: one Matroska file per participant, finalized on leave and
//! on EOS, the manifest, safe file names, and the whole room as MPEG-TS on the src pad.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::media::*;
use common::recorder::{Recorder, file_size, record_some};
use gst::prelude::*;
use gstvdoninja::server::hub::ServerMode;

/// Four rooms at once at most (see `common::slots`): the hostile-ID test once recorded nothing
/// within 20 s in CI with all ten at once.
static SLOTS: common::slots::Slots = common::slots::Slots::new(4);

/// 320x240 at 30 frames per second, what test publishers send.
const SMALL_VIDEO: &str = "video/x-raw,width=320,height=240,framerate=30/1";

fn publisher(
    server_url: &str,
    server: &Server,
    stream: &str,
    room: &str,
    pattern: u32,
) -> gst::Pipeline {
    publisher_with(server_url, server, stream, room, pattern, SMALL_VIDEO)
}

/// A publisher whose test video goes through `video` (a launch fragment) to the sink.
fn publisher_with(
    server_url: &str,
    server: &Server,
    stream: &str,
    room: &str,
    pattern: u32,
    video: &str,
) -> gst::Pipeline {
    init();
    let desc = format!(
        "videotestsrc is-live=true pattern={pattern} ! {video} ! \
         vdoninjasink name=s stream-id={stream} room={room} server={server_url} signaling-mode={mode} \
         local-address=127.0.0.1 stun-server=\"\" auto-turn=false password=false \
         audiotestsrc is-live=true freq={freq} ! audio/x-raw,rate=48000,channels=2 ! s.",
        mode = server.signaling_mode(),
        freq = 300 + 100 * pattern,
    );
    let p = gst::parse::launch(&desc)
        .expect("pipeline parses")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    p.set_state(gst::State::Playing).expect("publisher plays");
    p
}

fn manifest(dir: &Path) -> serde_json::Value {
    let path = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a manifest");
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("JSON")
}

/// A `vdoninjasrc` (`what`: which streams, and how) whose src pad is written to `ts`.
fn ts_recorder(server: &Server, what: &str, ts: &Path) -> Recorder {
    Recorder::start(&format!(
        "vdoninjasrc {what} {} ! filesink location={}",
        server.props(),
        ts.display()
    ))
}

fn recorder_desc(server: &Server, room: &str, dir: &Path, extra: &str) -> String {
    format!(
        "vdoninjasrc name=src room={room} password=false record-location={}/%s-%t.mkv {} {extra}",
        dir.display(),
        server.props()
    )
}

#[test]
fn three_participants_three_files_that_play() {
    let _slot = SLOTS.take();
    let server = Server::start(ServerMode::Fanout);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rec = Recorder::start(&recorder_desc(&server, "trio", dir.path(), ""));
    let t0 = Instant::now();
    let pubs: Vec<gst::Pipeline> = (0..3)
        .map(|i| publisher(&server.url, &server, &format!("guest{i}"), "trio", i))
        .collect();
    rec.wait("three recordings start", |r| r.started.len() == 3);
    // The workload: about ten seconds in the room.
    std::thread::sleep(Duration::from_secs(10));
    for p in &pubs {
        let _ = p.set_state(gst::State::Null);
    }
    let wall = t0.elapsed().as_secs_f64();
    rec.wait(
        "three recordings finish when their participants leave",
        |r| r.finished.len() == 3,
    );
    let rec = rec.end();
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);

    let m = manifest(dir.path());
    let participants = m["participants"].as_array().expect("participants");
    assert_eq!(participants.len(), 3, "{m:#}");
    for p in participants {
        let files = p["files"].as_array().expect("files");
        assert_eq!(files.len(), 1, "{p:#}");
        let f = &files[0];
        assert_eq!(f["finalized"], true);
        assert_eq!(f["video_codec"], "H264");
        assert_eq!(f["audio_codec"], "OPUS");
        let in_room = p["left"].as_f64().expect("left") - p["joined"].as_f64().expect("joined");
        let path = PathBuf::from(f["location"].as_str().expect("location"));
        assert!(path.starts_with(dir.path()));
        let report = inspect_file(&path, "matroskademux");
        assert_eq!(report.count("video/"), 1, "{report:?}");
        assert_eq!(report.count("audio/"), 1, "{report:?}");
        assert!(report.all_decoded(), "{path:?}: {report:?}");
        let duration = report.duration.expect("a duration").nseconds() as f64 / 1e9;
        assert!(
            (duration - in_room).abs() <= 0.1 * in_room,
            "{path:?}: {duration:.2} s recorded, {in_room:.2} s in the room"
        );
        assert!(duration <= wall, "no more than the wall-clock time");
        let frames = report
            .streams
            .iter()
            .find(|(c, _)| c.starts_with("video/"))
            .map(|(_, n)| *n)
            .unwrap_or(0);
        assert!(
            frames as f64 >= duration * 30.0 * 0.9,
            "{frames} frames in {duration:.2} s"
        );
    }
}

#[test]
fn a_participant_that_rejoins_gets_a_second_file() {
    let _slot = SLOTS.take();
    let server = Server::start(ServerMode::Official);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rec = Recorder::start(&recorder_desc(&server, "again", dir.path(), ""));
    let first = publisher(&server.url, &server, "comeback", "again", 0);
    rec.wait("first recording starts", |r| r.started.len() == 1);
    record_some(&rec.started[0].1.clone(), Duration::from_secs(1));
    let _ = first.set_state(gst::State::Null);
    rec.wait("first file finalized on leave", |r| r.finished.len() == 1);
    let second = publisher(&server.url, &server, "comeback", "again", 1);
    rec.wait("second recording starts", |r| r.started.len() == 2);
    record_some(&rec.started[1].1.clone(), Duration::from_secs(1));
    let rec = rec.end();
    let _ = second.set_state(gst::State::Null);
    assert_eq!(rec.finished.len(), 2, "{:?}", rec.finished);
    assert_ne!(
        rec.finished[0].1, rec.finished[1].1,
        "a new file, not an overwrite"
    );
    for (_, path, duration, bytes) in &rec.finished {
        assert!(
            *bytes > 0 && *duration > gst::ClockTime::from_mseconds(500),
            "{:?} manifest {:#}",
            rec.finished,
            manifest(dir.path())
        );
        let report = inspect_file(path, "matroskademux");
        assert!(
            report.all_decoded() && report.streams.len() == 2,
            "{path:?}: {report:?}"
        );
        assert!(
            report.duration.is_some(),
            "{path:?} is finalized (has a duration)"
        );
    }
    let m = manifest(dir.path());
    assert_eq!(m["participants"].as_array().map(Vec::len), Some(2), "{m:#}");
}

#[test]
fn a_resolution_change_is_recorded_in_the_same_file() {
    let _slot = SLOTS.take();
    let server = Server::start(ServerMode::Official);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rec = Recorder::start(&recorder_desc(&server, "resize", dir.path(), ""));
    let p = publisher_with(
        &server.url,
        &server,
        "resizer",
        "resize",
        0,
        &format!("videoscale ! capsfilter name=size caps={SMALL_VIDEO}"),
    );
    rec.wait("the recording starts", |r| r.started.len() == 1);
    let path = rec.started[0].1.clone();
    record_some(&path, Duration::from_secs(1));
    // The camera switches to another size mid-stream: the encoder starts a new sequence.
    let size = p.by_name("size").expect("capsfilter");
    size.set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field("width", 640)
            .field("height", 360)
            .field("framerate", gst::Fraction::new(30, 1))
            .build(),
    );
    let before = file_size(&path);
    let grew = wait_until(MEDIA_WAIT, || file_size(&path) > before + 150_000);
    let rec = rec.end();
    let _ = p.set_state(gst::State::Null);
    assert!(grew, "the recording goes on after the change");
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);
    assert_eq!(rec.finished.len(), 1, "one file: {:?}", rec.finished);
    let report = inspect_file(&path, "matroskademux");
    assert!(
        report.all_decoded() && report.streams.len() == 2,
        "{report:?}"
    );
    assert!(report.duration.is_some(), "finalized: {report:?}");
    assert_eq!(report.sizes, vec![(320, 240), (640, 360)], "{report:?}");
}

/// Not a test of its own: the recorder process `a_killed_recorder_leaves_files_that_play`
/// starts (this test binary again) and kills.
#[test]
#[ignore = "run as a child process by a_killed_recorder_leaves_files_that_play"]
fn child_recorder() {
    common::recorder::run_child_recorder();
}

#[test]
fn a_killed_recorder_leaves_files_that_play() {
    let _slot = SLOTS.take();
    let server = Server::start(ServerMode::Official);
    let dir = tempfile::tempdir().expect("tempdir");
    let child =
        common::recorder::spawn_child_recorder(&recorder_desc(&server, "crash", dir.path(), ""));
    let p = publisher(&server.url, &server, "victim", "crash", 0);
    let file = || {
        std::fs::read_dir(dir.path())
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "mkv"))
    };
    let size = || file().map_or(0, |f| file_size(&f));
    // A couple of seconds of 320x240 video and audio.
    let grew = wait_until(MEDIA_WAIT, || size() > 600_000);
    let _ = child.kill_and_read();
    let _ = p.set_state(gst::State::Null);
    assert!(grew, "the recording grows ({} bytes)", size());
    let path = file().expect("a recording");
    let report = inspect_file(&path, "matroskademux");
    assert!(report.errors.is_empty(), "{path:?}: {report:?}");
    assert_eq!(report.streams.len(), 2, "{report:?}");
    for (caps, frames) in &report.streams {
        let least = if caps.starts_with("video/") { 30 } else { 50 };
        assert!(*frames >= least, "{caps}: {frames} frames: {report:?}");
    }
    // The manifest, written as things happened, names the file (not finalized).
    let m = manifest(dir.path());
    let files = &m["participants"][0]["files"];
    assert_eq!(files[0]["finalized"], false, "{m:#}");
    assert!(
        files[0]["location"]
            .as_str()
            .is_some_and(|l| Path::new(l) == path),
        "{m:#}"
    );
}

#[test]
fn a_hostile_stream_id_records_inside_the_directory() {
    let _slot = SLOTS.take();
    // Failed once in CI (nothing recorded within 20 s, no warning) and never here in many
    // runs: the element's log is kept and printed if it fails again.
    let _log = common::logring::keep("vdoninja*:6");
    let server = Server::start(ServerMode::Official);
    let dir = tempfile::tempdir().expect("tempdir");
    // The publisher's frames go through a proxy that renames its stream to ../../etc/x.
    let proxy = common::proxy::start(&server.url, "etcxstream", "../../etc/x");
    let mut rec = Recorder::start(&recorder_desc(&server, "hostile", dir.path(), ""));
    let p = publisher(&proxy, &server, "etcxstream", "hostile", 0);
    rec.wait("the recording starts", |r| r.started.len() == 1);
    let (sid, path) = rec.started[0].clone();
    assert_eq!(sid, "../../etc/x", "the stream ID as the network gave it");
    assert_eq!(path.parent(), Some(dir.path()), "{path:?}");
    assert!(
        path.file_name()
            .is_some_and(|f| f.to_string_lossy().starts_with("etc_x-")),
        "{path:?}"
    );
    record_some(&path, Duration::from_millis(500));
    let rec = rec.end();
    let _ = p.set_state(gst::State::Null);
    assert_eq!(rec.finished.len(), 1);
    assert!(inspect_file(&path, "matroskademux").all_decoded());
}

#[test]
fn the_src_pad_carries_the_room_as_mpeg_ts() {
    let _slot = SLOTS.take();
    let server = Server::start(ServerMode::Fanout);
    let dir = tempfile::tempdir().expect("tempdir");
    let ts = dir.path().join("room.ts");
    // Two slots, both taken: every stream of the file is a guest's.
    let mut rec = ts_recorder(&server, "room=tsroom password=false ts-slots=2", &ts);
    let pubs: Vec<gst::Pipeline> = (0..2)
        .map(|i| publisher(&server.url, &server, &format!("ts{i}"), "tsroom", i))
        .collect();
    let size = || file_size(&ts);
    rec.wait("the TS file grows", |_| size() > 600_000);
    // One participant leaves: the room stream goes on with the other.
    let _ = pubs[0].set_state(gst::State::Null);
    let at_leave = size();
    rec.wait("the TS file grows after a leave", |_| {
        size() > at_leave + 400_000
    });
    let rec = rec.end();
    for p in pubs {
        let _ = p.set_state(gst::State::Null);
    }
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);
    let report = inspect_file(&ts, "tsdemux");
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(report.decoded_tracks("video/x-h264"), 2, "{report:?}");
    assert_eq!(report.decoded_tracks("audio/x-opus"), 2, "{report:?}");
}

#[test]
fn a_silent_participant_does_not_hold_the_room_stream() {
    let _slot = SLOTS.take();
    let server = Server::start(ServerMode::Official);
    let dir = tempfile::tempdir().expect("tempdir");
    let ts = dir.path().join("silent.ts");
    let mut rec = ts_recorder(&server, "room=quiet password=false ts-slots=2", &ts);
    let talker = publisher(&server.url, &server, "talker", "quiet", 0);
    // The other participant's camera stops without the participant leaving.
    let quiet = publisher_with(
        &server.url,
        &server,
        "quiet",
        "quiet",
        1,
        &format!("{SMALL_VIDEO} ! valve name=camera"),
    );
    let size = || file_size(&ts);
    rec.wait("the TS file grows", |_| size() > 600_000);
    quiet
        .by_name("camera")
        .expect("valve")
        .set_property("drop", true);
    let at_silence = size();
    rec.wait("the TS file grows while a camera is off", |_| {
        size() > at_silence + 600_000
    });
    let off = Instant::now();
    quiet
        .by_name("camera")
        .expect("valve")
        .set_property("drop", false);
    let at_resume = size();
    rec.wait("the TS file grows after the camera is back", |_| {
        size() > at_resume + 600_000 && off.elapsed() > Duration::from_secs(3)
    });
    let rec = rec.end();
    let _ = quiet.set_state(gst::State::Null);
    let _ = talker.set_state(gst::State::Null);
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);
    let report = inspect_file(&ts, "tsdemux");
    assert!(report.errors.is_empty(), "{report:?}");
    // Two videos: the quiet one's came back under its own PID (the same stream to a player),
    // and the last program map (the one after it came back) has both decoding.
    assert_eq!(report.decoded_tracks("video/x-h264"), 2, "{report:?}");
    assert_eq!(report.decoded_tracks("audio/x-opus"), 2, "{report:?}");
    // tsdemux names pads <type>_<program version>_<PID>.
    let version = |pad: &str| pad.split('_').nth(1).and_then(|v| v.parse::<u32>().ok());
    let last = report.pads.iter().filter_map(|p| version(p)).max();
    let videos_at_end = report
        .streams
        .iter()
        .zip(&report.pads)
        .filter(|((caps, n), pad)| caps.starts_with("video/") && *n > 0 && version(pad) == last)
        .count();
    assert_eq!(videos_at_end, 2, "{report:?}");
}

#[test]
fn a_vp8_publisher_is_transcoded_for_the_ts_stream() {
    let _slot = SLOTS.take();
    let server = Server::start(ServerMode::Official);
    let dir = tempfile::tempdir().expect("tempdir");
    let ts = dir.path().join("vp8.ts");
    let mut rec = ts_recorder(&server, "stream-id=webcam ts-slots=1", &ts);
    let b = common::browser::BrowserPublisher::start(&server, "webcam", None);
    rec.wait("a warning says it is transcoded", |r| {
        r.warnings.iter().any(|w| w.contains("transcoding"))
    });
    let size = || file_size(&ts);
    rec.wait("the TS file grows", |_| size() > 50_000);
    let rec = rec.end();
    b.stop();
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);
    let report = inspect_file(&ts, "tsdemux");
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(report.decoded_tracks("video/x-h264"), 1, "{report:?}");
}

#[test]
fn a_missing_directory_is_a_clear_error() {
    let _slot = SLOTS.take();
    let p = launch(
        "vdoninjasrc room=r record-location=/no/such/dir/%s.mkv server=ws://127.0.0.1:9 auto-turn=false",
    );
    assert!(p.set_state(gst::State::Playing).is_err());
    let errors = bus_errors(&p);
    assert!(
        errors.iter().any(|e| e.contains("does not exist")),
        "{errors:?}"
    );
    let _ = p.set_state(gst::State::Null);
}
