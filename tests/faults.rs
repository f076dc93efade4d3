// SPDX-License-Identifier: MPL-2.0

//! Faults on the way, kept as tests (issue 12, items 2 and 4):
//! - a 3 s break of the path (every UDP packet dropped) heals in the same connections and
//!   files; after an 8 s break (past the 4 s a vanished guest is given) both guests are
//!   recorded again into new files;
//! - 5 % UDP loss both ways for 20 s, made by an nftables `numgen random` drop rule in a
//!   network namespace this test creates (netem is not available here): the room's recordings
//!   decode to the end with no hole over 0.5 s, one file per guest;
//! - a 10 s outage of the handshake server: the recordings go on in the same files, everyone
//!   reconnects and says again what it wants (a viewer arriving after the restart sees an old
//!   publisher), and a guest who joins after the restart is recorded.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::linked::Linked;
use common::media::*;
use common::netns::{Netns, add_udp_rule, child_in, counters};
use common::recorder::{Recorder, record_some};
use gst::prelude::*;
use gstvdoninja::server::hub::ServerMode;

const CHILD: &str = "VDONINJA_TEST_FAULTS_CHILD";
const LOSS_ROOM: &str = "lossy";

/// The tests of this file run one at a time: each is a whole room (a server, publishers, a
/// recorder and a viewer) and four at once on 2 cores starved one of them (a guest not recorded
/// within 20 s, twice in a few runs).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn recorder_desc(server: &Server, room: &str, dir: &Path) -> String {
    format!(
        "vdoninjasrc room={room} record-location={}/%s-%t.mkv {}",
        dir.display(),
        server.props()
    )
}

/// Not a test: the room that the tests of this file
/// runs inside its namespace (server, two publishers, a recorder). Prints `READY` once both
/// guests are recorded, ends the recording when the file `stop` appears in its directory.
#[test]
#[ignore = "run as a child process inside a network namespace by the tests of this file"]
fn child_room() {
    let Ok(dir) = std::env::var(CHILD) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let server = Server::start(ServerMode::Official);
    let pubs: Vec<gst::Pipeline> = (0..2)
        .map(|i| common::run::publisher(&server, &format!("guest{i}"), Some(LOSS_ROOM), None, i))
        .collect();
    let mut rec = Recorder::start(&recorder_desc(&server, LOSS_ROOM, &dir));
    // And a viewer of guest0 whose pads are linked once, as gst-launch-1.0 links them.
    let view = Linked::start(
        &format!(
            "vdoninjasrc name=s room={LOSS_ROOM} stream-id=guest0 {} \
             s.video_guest0 ! queue ! fakesink name=video sync=false async=false",
            server.props()
        ),
        &["video"],
    );
    rec.wait("both guests are recorded", |r| r.started.len() == 2);
    for (_, path) in rec.started.clone() {
        record_some(&path, Duration::ZERO);
    }
    println!("READY");
    let _ = std::io::stdout().flush();
    let stop = dir.join("stop");
    let told = wait_until(Duration::from_secs(120), || {
        rec.poll();
        stop.exists()
    });
    assert!(told, "the test tells the room to stop");
    for line in rec.rtp_stats() {
        println!("STATS {line}");
    }
    let rec = rec.end();
    for p in &pubs {
        let _ = p.set_state(gst::State::Null);
    }
    let last_added = view.added.lock().expect("lock").last().map(|(_, t)| *t);
    let view_after = last_added.map_or(0, |t| view.after("video", t).0);
    println!(
        "RESULT started={} finished={} warnings={:?} errors={:?} view_added={} \
         view_after_last_add={view_after} view_trouble={:?}",
        rec.started.len(),
        rec.finished.len(),
        rec.warnings,
        rec.errors,
        view.added_count("guest0"),
        view.trouble()
    );
}

/// What [`child_room`] reported and the files it left.
struct RoomRun {
    result: String,
    files: Vec<PathBuf>,
    /// The recorder's jitter-buffer statistics at the end (`Recorder::rtp_stats`), one line each.
    stats: Vec<String>,
    _dir: tempfile::TempDir,
}

impl RoomRun {
    /// The sum of a statistic (`name=value`) over every jitter buffer.
    fn stat_sum(&self, name: &str) -> u64 {
        let key = format!("{name}=");
        self.stats
            .iter()
            .flat_map(|l| l.split(' '))
            .filter_map(|w| w.strip_prefix(key.as_str())?.parse::<u64>().ok())
            .sum()
    }

    /// Neither guest was given up and recorded again: two recordings, two files, no error.
    fn assert_one_file_per_guest(&self) {
        assert!(
            self.result.contains("started=2 finished=2 ") && self.result.contains("errors=[]"),
            "{}",
            self.result
        );
        assert_eq!(self.files.len(), 2, "{:?}", self.files);
    }
}

/// Runs [`child_room`] in a namespace of its own, applies `fault` to the namespace once both
/// guests are recorded, then ends the recording.
fn room_with_fault(what: &str, fault: impl FnOnce(&Netns)) -> RoomRun {
    let ns = Netns::new(what);
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, lines) = child_in(&ns, "child_room", CHILD, dir.path());
    let mut log = Vec::new();
    let mut wait_line = |prefix: &str, limit: Duration| -> Option<String> {
        let deadline = Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let line = lines.recv_timeout(left).ok()?;
            log.push(line.clone());
            if line.starts_with(prefix) {
                return Some(line);
            }
        }
        None
    };
    let ready = wait_line("READY", Duration::from_secs(60));
    assert!(ready.is_some(), "the room is recorded before the fault");
    fault(&ns);
    std::fs::write(dir.path().join("stop"), b"").expect("stop file");
    let result = wait_line("RESULT", Duration::from_secs(60));
    let status = child.wait().expect("the room ends");
    let result = result.unwrap_or_else(|| panic!("the room reports: {}", log.join("\n")));
    let stats: Vec<String> = log
        .iter()
        .filter(|l| l.starts_with("STATS"))
        .cloned()
        .collect();
    for line in &stats {
        eprintln!("{line}");
    }
    assert!(status.success(), "the room: {}", log.join("\n"));
    let files = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "mkv"))
        .collect();
    RoomRun {
        result,
        files,
        stats,
        _dir: dir,
    }
}

#[test]
fn five_percent_udp_loss_for_20_s_leaves_recordings_without_holes() {
    let _one = one_at_a_time();
    let mut counted = Vec::new();
    let run = room_with_fault("loss", |ns| {
        // 5 % of every UDP packet (media, RTCP, ICE, data channel; both ways, since both ends
        // send through lo's output hook) is dropped for 20 s.
        add_udp_rule(
            ns,
            "loss",
            "meta l4proto udp numgen random mod 100 < 5 counter drop",
        );
        std::thread::sleep(Duration::from_secs(20)); // the fault's duration, not a wait for a result
        counted = counters(ns, "loss");
        ns.exec("nft", &["delete", "table", "inet", "loss"]);
    });
    let [all, dropped] = counted[..] else {
        panic!("two counters: {counted:?}");
    };
    let ratio = dropped as f64 / all as f64;
    eprintln!(
        "loss: {dropped} of {all} UDP packets dropped ({:.1} %)",
        ratio * 100.0
    );
    assert!(
        dropped > 200 && (0.03..0.07).contains(&ratio),
        "the rule drops about 5 %: {dropped} of {all}"
    );
    // One file per guest: neither was given up and recorded again.
    run.assert_one_file_per_guest();
    // Lost packets are asked for again (RTCP NACK) and most come back (RTX): what stays lost
    // is well under the 5 % dropped (without retransmission: 5 %; with it, ~1.5 %).
    let (pushed, lost, back) = (
        run.stat_sum("num-pushed"),
        run.stat_sum("num-lost"),
        run.stat_sum("rtx-success-count"),
    );
    eprintln!("received {pushed} packets, {lost} lost for good, {back} retransmitted");
    assert!(
        back > 0 && (lost as f64) < 0.03 * (pushed + lost) as f64,
        "retransmission works: {pushed} received, {lost} lost, {back} retransmitted"
    );
    for f in &run.files {
        let r = inspect_file(f, "matroskademux");
        let duration = r.duration.unwrap_or_default();
        eprintln!(
            "{}: {duration}, longest hole video {} audio {}; holes by stream {:?} at {:?}",
            f.display(),
            r.max_gap("video/"),
            r.max_gap("audio/"),
            r.max_gaps,
            r.max_gap_at
        );
        assert!(r.all_decoded(), "{f:?} decodes to the end: {r:?}");
        assert_eq!((r.count("video/"), r.count("audio/")), (1, 1), "{r:?}");
        // It recorded through the loss (20 s; the container's duration counts from the first
        // key frame and was 19.97 s in one run).
        assert!(
            duration >= gst::ClockTime::from_seconds(18),
            "{f:?}: {duration}"
        );
        for kind in ["video/", "audio/"] {
            assert!(
                r.max_gap(kind) <= gst::ClockTime::from_mseconds(500),
                "{f:?}: a {kind} hole of {}",
                r.max_gap(kind)
            );
        }
    }
}

/// Every UDP packet in the namespace is dropped for `secs`, then the path heals and the room
/// records for `after`; the counted drops.
fn break_path(ns: &Netns, secs: u64, after: Duration) -> u64 {
    add_udp_rule(ns, "cut", "meta l4proto udp counter drop");
    std::thread::sleep(Duration::from_secs(secs)); // the fault's duration
    let dropped = counters(ns, "cut").get(1).copied().unwrap_or(0);
    ns.exec("nft", &["delete", "table", "inet", "cut"]);
    std::thread::sleep(after); // recording after the heal, not a wait for a result
    dropped
}

#[test]
fn a_3_s_break_in_the_path_heals_in_the_same_files() {
    let _one = one_at_a_time();
    let mut dropped = 0;
    let run = room_with_fault("break", |ns| {
        dropped = break_path(ns, 3, Duration::from_secs(6));
    });
    assert!(
        dropped > 100,
        "the path was broken: {dropped} packets dropped"
    );
    // Both connections lived through it: still the first file of each guest.
    run.assert_one_file_per_guest();
    for f in &run.files {
        let r = inspect_file(f, "matroskademux");
        let (video, audio) = (r.max_gap("video/"), r.max_gap("audio/"));
        eprintln!(
            "{}: {:?}, hole video {video} audio {audio}",
            f.display(),
            r.duration
        );
        assert!(r.all_decoded(), "{f:?}: {r:?}");
        assert_eq!((r.count("video/"), r.count("audio/")), (1, 1), "{r:?}");
        // Audio's hole is the break (media stopped, so the test did break it: audio is sent
        // without retransmission) and media came back at once, into this file. Video's is at
        // most the break: after the heal the recorder asks for the packets it missed, and
        // what the publisher still has comes back (holes of 0.5–3.1 s in runs).
        assert!(
            audio >= gst::ClockTime::from_mseconds(2500)
                && audio <= gst::ClockTime::from_mseconds(3600),
            "{f:?}: an audio hole of {audio} for a 3 s break"
        );
        assert!(
            video <= gst::ClockTime::from_mseconds(3600),
            "{f:?}: a video hole of {video} for a 3 s break"
        );
        // The 6 s after the heal are in the file (the file ends about 6 s after the hole; its
        // start is whenever the first key frame came before the break, 0.0–0.2 s in runs).
        assert!(
            r.duration.unwrap_or_default() >= audio + gst::ClockTime::from_seconds(5),
            "{f:?} records after the heal: {:?}",
            r.duration
        );
    }
}

#[test]
fn after_an_8_s_break_both_guests_are_recorded_again() {
    let _one = one_at_a_time();
    let run = room_with_fault("longbreak", |ns| {
        break_path(ns, 8, Duration::from_secs(12));
    });
    // Given up (nothing heard for 4 s) and recorded again after the heal: two files each.
    assert!(
        run.result.contains("started=4 finished=4 ") && run.result.contains("errors=[]"),
        "{}",
        run.result
    );
    let mut seconds = Vec::new();
    for f in &run.files {
        let r = inspect_file(f, "matroskademux");
        eprintln!("{}: {:?}", f.display(), r.duration);
        assert!(r.all_decoded(), "{f:?}: {r:?}");
        seconds.push(r.duration.unwrap_or_default().seconds());
    }
    seconds.sort();
    // The second files hold most of the 12 s after the heal.
    assert!(seconds[2] >= 6, "files of {seconds:?} s");
    eprintln!("{}", run.result);
    // The viewer whose pads were linked once saw guest0 go and come back (our side gave it
    // up and asked again): media again on the same pads.
    let field = |name: &str| {
        run.result
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(
        field("view_added=") == 2 && field("view_after_last_add=") >= 60,
        "{}",
        run.result
    );
    assert!(run.result.contains("view_trouble=[]"), "{}", run.result);
}

#[test]
fn a_10_s_server_outage_keeps_the_files_and_admits_a_newcomer() {
    let _one = one_at_a_time();
    let room = "outage";
    let mut server = Server::start(ServerMode::Official);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rec = Recorder::start(&recorder_desc(&server, room, dir.path()));
    let pubs: Vec<gst::Pipeline> = (0..2)
        .map(|i| common::run::publisher(&server, &format!("before{i}"), Some(room), None, i))
        .collect();
    rec.wait("both guests are recorded", |r| r.started.len() == 2);
    for (_, path) in rec.started.clone() {
        record_some(&path, Duration::from_secs(1));
    }
    // A viewer of before1 whose pads were linked once: its media goes on through the outage.
    let view = Linked::start(
        &format!(
            "vdoninjasrc name=s room={room} stream-id=before1 {} \
             s.video_before1 ! queue ! fakesink name=video sync=false async=false",
            server.props()
        ),
        &["video"],
    );
    view.wait_added("before1", 1);

    server.stop();
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(10) {
        rec.poll();
        std::thread::sleep(Duration::from_millis(100));
    }
    server.restart();
    let up = Instant::now();
    let newcomer = common::run::publisher(&server, "after", Some(room), None, 2);
    // The recorder's and the newcomer's clients back off up to 8 s while the server is down.
    let back = wait_until(Duration::from_secs(40), || {
        rec.poll();
        rec.started.iter().any(|(s, _)| s == "after")
    });
    assert!(
        back,
        "the newcomer is recorded after the restart: {:?}",
        rec.started
    );
    eprintln!("newcomer recorded {:?} after the restart", up.elapsed());
    let (after_down, _) = view.after("video", down);
    eprintln!(
        "the linked viewer: {after_down} buffers since the outage began, longest gap {}",
        view.longest_gap("video")
    );
    assert!(
        after_down >= 300 && view.added_count("before1") == 1,
        "the linked viewer's media goes on: {}",
        view.report("video")
    );
    assert!(view.trouble().is_empty(), "{:?}", view.trouble());
    // A viewer new to the room sees an old publisher: it seeded again.
    let viewer = TestViewer::start(
        &server,
        ViewerOptions {
            stream_id: "before0",
            room: Some(room),
            password: None,
        },
    );
    assert!(
        viewer.wait_frames(30, 10),
        "an old publisher is seen after the restart"
    );
    viewer.stop();
    let newfile = rec
        .started
        .iter()
        .find(|(s, _)| s == "after")
        .map(|(_, p)| p.clone())
        .expect("newcomer's file");
    record_some(&newfile, Duration::from_secs(1));
    assert!(
        rec.finished.is_empty(),
        "nobody's recording ended during the outage: {:?}",
        rec.finished
    );
    let rec = rec.end();
    let _ = newcomer.set_state(gst::State::Null);
    for p in &pubs {
        let _ = p.set_state(gst::State::Null);
    }
    assert_eq!(
        rec.started.len(),
        3,
        "one file per guest, the old ones went on: {:?}",
        rec.started
    );
    for (sid, path) in &rec.started {
        let r = inspect_file(path, "matroskademux");
        let duration = r.duration.unwrap_or_default();
        eprintln!(
            "{sid}: {duration}, longest hole video {} audio {}",
            r.max_gap("video/"),
            r.max_gap("audio/")
        );
        assert!(r.all_decoded(), "{path:?}: {r:?}");
        assert_eq!((r.count("video/"), r.count("audio/")), (1, 1), "{r:?}");
        if sid.starts_with("before") {
            assert!(
                duration >= gst::ClockTime::from_seconds(12),
                "{sid} recorded through the outage: {duration}"
            );
            for kind in ["video/", "audio/"] {
                assert!(
                    r.max_gap(kind) <= gst::ClockTime::from_mseconds(500),
                    "{sid}: a {kind} hole of {}",
                    r.max_gap(kind)
                );
            }
        }
    }
}
