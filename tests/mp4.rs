// SPDX-License-Identifier: MPL-2.0

//! MP4 recordings for video editors (`record-location=….mp4`): H.264 as it came and AAC, in
//! fragmented MP4 that ffprobe and GStreamer read to the end, also after a SIGKILL; a guest
//! that sends VP8 is recorded as Matroska, with a warning.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::media::*;
use common::recorder::{Recorder, file_size, record_some};
use common::run::publisher;
use gst::prelude::*;
use gstvdoninja::server::hub::ServerMode;

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

fn recorder_desc(server: &Server, room: &str, dir: &Path) -> String {
    format!(
        "vdoninjasrc room={room} record-location={}/%s-%t.mp4 {}",
        dir.display(),
        server.props()
    )
}

/// The file holds H.264 and AAC that ffprobe and GStreamer read, `secs` of it at least.
fn assert_plays(path: &Path, secs: f64) {
    let (streams, duration) = ffprobe(path);
    eprintln!("{}: ffprobe {streams:?}, {duration:.3} s", path.display());
    let frames = |codec: &str| streams.iter().find(|(c, _)| c == codec).map_or(0, |s| s.1);
    assert_eq!(streams.len(), 2, "{path:?}: {streams:?}");
    assert!(
        frames("h264") as f64 >= secs * 20.0 && frames("aac") as f64 >= secs * 40.0,
        "{path:?}: {streams:?}"
    );
    let report = inspect_file(path, "qtdemux");
    eprintln!("{}: GStreamer {report:?}", path.display());
    assert!(report.all_decoded(), "{path:?}: {report:?}");
    assert_eq!(report.count("video/x-h264"), 1, "{report:?}");
    assert_eq!(report.count("audio/mpeg"), 1, "{report:?}");
}

#[test]
fn guests_are_recorded_as_mp4_with_h264_and_aac() {
    let server = Server::start(ServerMode::Official);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rec = Recorder::start(&recorder_desc(&server, "mp4room", dir.path()));
    let pubs: Vec<gst::Pipeline> = (0..2)
        .map(|i| publisher(&server, &format!("guest{i}"), Some("mp4room"), None, i))
        .collect();
    rec.wait("both guests are recorded", |r| r.started.len() == 2);
    for (_, path) in rec.started.clone() {
        record_some(&path, Duration::from_secs(3));
    }
    let rec = rec.end();
    for p in &pubs {
        let _ = p.set_state(gst::State::Null);
    }
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);
    let recorded = files(dir.path(), "mp4");
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    for f in &recorded {
        assert_plays(f, 3.0);
        let (_, duration) = ffprobe(f);
        assert!(duration >= 3.0, "{f:?} lasts {duration} s");
    }
}

#[test]
#[ignore = "run as a child process by a_killed_mp4_recorder_leaves_files_that_play"]
fn child_recorder() {
    common::recorder::run_child_recorder();
}

#[test]
fn a_killed_mp4_recorder_leaves_files_that_play() {
    let server = Server::start(ServerMode::Official);
    let dir = tempfile::tempdir().expect("tempdir");
    let child =
        common::recorder::spawn_child_recorder(&recorder_desc(&server, "mp4crash", dir.path()));
    let p = publisher(&server, "victim", Some("mp4crash"), None, 0);
    let size = || files(dir.path(), "mp4").first().map_or(0, |f| file_size(f));
    // Three seconds and more of 320x240 video and audio.
    let grew = wait_until(MEDIA_WAIT, || size() > 700_000);
    let _ = child.kill_and_read();
    let _ = p.set_state(gst::State::Null);
    assert!(grew, "the recording grows ({} bytes)", size());
    let recorded = files(dir.path(), "mp4");
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_plays(&recorded[0], 2.0);
}

#[test]
fn a_vp8_guest_is_recorded_as_matroska_with_a_warning() {
    let server = Server::start(ServerMode::Official);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rec = Recorder::start(&recorder_desc(&server, "mp4vp8", dir.path()));
    let p = launch(&format!(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         vdoninjasink name=s stream-id=vp8guest room=mp4vp8 video-codec=vp8 {} \
         congestion-control=disabled \
         audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! s.",
        server.props()
    ));
    p.set_state(gst::State::Playing).expect("publisher plays");
    rec.wait("the guest is recorded", |r| r.started.len() == 1);
    record_some(&rec.started[0].1.clone(), Duration::from_secs(1));
    let rec = rec.end();
    let _ = p.set_state(gst::State::Null);
    let path = &rec.started[0].1;
    assert_eq!(path.extension().and_then(|e| e.to_str()), Some("mkv"));
    assert!(
        rec.warnings
            .iter()
            .any(|w| w.contains("VP8") && w.contains("recorded as Matroska")),
        "{:?}",
        rec.warnings
    );
    let report = inspect_file(path, "matroskademux");
    assert!(
        report.all_decoded() && report.count("video/x-vp8") == 1,
        "{report:?}"
    );
}
