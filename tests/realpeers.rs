// SPDX-License-Identifier: MPL-2.0

//! Interoperability with real VDO.Ninja peers: the web app in headless Chromium, Raspberry
//! Ninja's `publish.py` and the self-hosted handshake server, from the workspace's
//! `../shared/realpeers` (third-party code, run as test peers only).
//!
//! Every test here is `#[ignore]`d: they need root, a network namespace and those peers.
//! `scripts/realpeers.sh` sets them up and runs each test, inside the harness's namespace, as
//! a process of its own. Each test checks real media on the far side: files that decode to the
//! end with the right tracks, or frames counted by the viewer.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::media::*;
use common::recorder::{Recorder, file_size};
use gst::prelude::*;

/// How long real peers get to start (Chromium and publish.py take several seconds).
const PEER_WAIT: Duration = Duration::from_secs(45);
/// How long each recording runs once every participant is in it.
const RECORD_FOR: Duration = Duration::from_secs(12);
const PASSWORD: &str = "rp-secret";

/// The harness folder, its unpacked peers, and a fan-out server (`server.sh`) on `port`.
struct Harness {
    dir: PathBuf,
    peers: PathBuf,
    port: u16,
    logs: tempfile::TempDir,
}

impl Harness {
    fn start(port: u16) -> Self {
        let dir = std::env::var_os("VDONINJA_REALPEERS")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/realpeers"));
        assert!(
            dir.join("server.sh").exists(),
            "no real peers at {dir:?} (scripts/realpeers.sh runs these tests)"
        );
        let peers = std::env::var_os("PEERS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                    .join(".cache/vdoninja-realpeers")
            });
        let h = Self {
            dir,
            peers,
            port,
            logs: tempfile::tempdir().expect("tempdir"),
        };
        let status = Command::new(h.dir.join("server.sh"))
            .args(["start", &port.to_string()])
            .stdout(Stdio::null())
            .status()
            .expect("server.sh runs");
        assert!(status.success(), "server.sh start {port}");
        h
    }

    fn ca(&self) -> PathBuf {
        self.peers.join("webserver/ca.pem")
    }

    /// Properties every element of ours gets here: the harness's server, its CA, no internet.
    fn props(&self) -> String {
        format!(
            "server=wss://127.0.0.1:{} tls-ca-file={} stun-server=\"\" auto-turn=false",
            self.port,
            self.ca().display()
        )
    }

    /// Starts a harness script; its output goes to a log printed if the test fails.
    fn spawn(&self, name: &str, script: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let log = self.logs.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        // A process group of its own: `Proc::kill_all` can kill the script and everything it
        // started (Chromium) at once, as a crash would.
        use std::os::unix::process::CommandExt;
        let child = Command::new(self.dir.join(script))
            .process_group(0)
            .args(args)
            .envs(env.iter().copied())
            .env("PORT", self.port.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{script} starts: {e}"));
        Proc {
            name: name.to_string(),
            child: Some(child),
            log,
        }
    }

    /// A web-app guest publishing its fake camera and microphone into `room`.
    fn browser_guest(&self, stream: &str, room: &str, extra: &str) -> Proc {
        let params = format!("push={stream}&room={room}&password={PASSWORD}{extra}");
        self.spawn(
            &format!("browser-{stream}"),
            "browser-publish.sh",
            &[&params, "120"],
            &[("LABEL", stream)],
        )
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = Command::new(self.dir.join("server.sh"))
            .args(["stop", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A running harness script, stopped (SIGTERM, then SIGKILL) when dropped.
struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the script to end by itself; its exit status and output.
    fn wait(mut self, timeout: Duration) -> (bool, String) {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Ok(Some(s)) = child.try_wait() {
                break Some(s);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        (status.is_some_and(|s| s.success()), self.log())
    }

    /// SIGKILL to the script and everything it started: no goodbye of any kind.
    fn kill_all(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .status();
        let _ = child.wait();
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("---- {} ----\n{}", self.name, self.log());
        }
    }
}

/// The `.mkv` files a recording wrote into `dir`, by stream-ID prefix.
fn recordings(dir: &Path) -> Vec<PathBuf> {
    recordings_of(dir, "mkv")
}

fn recordings_of(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// Records the room of `guests` (web-app guests, started here) and checks each file: one
/// `video` track and one Opus track, decoded to the end, `min_video_frames` pictures at least.
fn record_webapp_room(port: u16, room: &str, extra_props: &str, video: &str) {
    record_webapp_room_as(port, room, extra_props, video, "mkv");
}

/// [`record_webapp_room`] into files of extension `ext` (`mkv` or `mp4`).
fn record_webapp_room_as(port: u16, room: &str, extra_props: &str, video: &str, ext: &str) {
    let h = Harness::start(port);
    let dir = tempfile::tempdir().expect("tempdir");
    let guests = ["guestA", "guestB"];
    let _browsers: Vec<Proc> = guests
        .iter()
        .map(|g| h.browser_guest(g, room, ""))
        .collect();
    let mut rec = Recorder::start(&format!(
        "vdoninjasrc room={room} password={PASSWORD} record-location={}/%s-%t.{ext} {} {extra_props}",
        dir.path().display(),
        h.props()
    ));
    let ok = wait_until(PEER_WAIT, || {
        rec.poll();
        rec.started.len() >= guests.len() && rec.started.iter().all(|(_, p)| file_size(p) > 20_000)
    });
    assert!(
        ok,
        "both web-app guests are recorded: started {:?}, warnings {:?}, errors {:?}",
        rec.started, rec.warnings, rec.errors
    );
    std::thread::sleep(RECORD_FOR);
    let rec = rec.end();
    assert!(rec.errors.is_empty(), "no errors: {:?}", rec.errors);
    let files = recordings_of(dir.path(), ext);
    assert_eq!(files.len(), guests.len(), "one file per guest: {files:?}");
    let audio = if ext == "mp4" {
        "audio/mpeg"
    } else {
        "audio/x-opus"
    };
    for (f, g) in files.iter().zip(guests) {
        assert!(
            f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(g))
        );
        let r = inspect_file(f, demuxer_for(f));
        eprintln!("{}: {r:?}", f.display());
        assert!(r.all_decoded(), "{f:?} decodes to the end: {r:?}");
        assert_eq!(r.count(video), 1, "{f:?} has one {video} track: {r:?}");
        assert_eq!(r.count(audio), 1, "{f:?} has one {audio} track: {r:?}");
        let frames = r
            .streams
            .iter()
            .find(|(c, _)| c == video)
            .map_or(0, |s| s.1);
        // The guests start sending at a low frame rate: 10 per second at least.
        assert!(
            frames >= 10 * RECORD_FOR.as_secs(),
            "{f:?}: {frames} pictures"
        );
        let secs = r.duration.map_or(0.0, |d| d.seconds_f64());
        assert!(
            secs >= RECORD_FOR.as_secs_f64() - 1.0,
            "{f:?} lasts {secs} s"
        );
    }
    if let Some(format) = extra_props
        .split(' ')
        .find_map(|p| p.strip_prefix("record-audio="))
    {
        // One aligned audio file per guest, of one length, decoded to the end.
        let tracks = recordings_of(dir.path(), format);
        let samples: Vec<u64> = tracks.iter().map(|t| decoded_samples(t)).collect();
        eprintln!("aligned audio: {tracks:?}, samples {samples:?}");
        assert_eq!(tracks.len(), guests.len(), "{tracks:?}");
        assert!(
            samples.iter().all(|&n| n == samples[0])
                && samples[0] as f64 / 48_000.0 >= RECORD_FOR.as_secs_f64(),
            "aligned files of one length: {samples:?}"
        );
    }
}

#[test]
#[ignore = "needs ../shared/realpeers: scripts/realpeers.sh"]
fn webapp_guests_are_recorded_vp8() {
    record_webapp_room(8451, "rproomvp8", "", "video/x-vp8");
}

#[test]
#[ignore = "needs ../shared/realpeers: scripts/realpeers.sh"]
fn webapp_guests_are_recorded_h264() {
    // With the aligned audio files for DAWs (issue 27).
    record_webapp_room(
        8452,
        "rproomh264",
        "video-codec=h264 record-audio=flac",
        "video/x-h264",
    );
}

#[test]
#[ignore = "needs ../shared/realpeers: scripts/realpeers.sh"]
fn webapp_guests_are_recorded_as_mp4_with_aligned_wav() {
    // For editors: H.264 + AAC in MP4 (the web app is asked for H.264), and DAW files.
    record_webapp_room_as(8464, "rproommp4", "record-audio=wav", "video/x-h264", "mp4");
}

#[test]
#[ignore = "needs ../shared/realpeers: scripts/realpeers.sh"]
fn webapp_guests_are_recorded_av1() {
    // rtpav1depay from the bundled gst-plugin-rtp; the web app encodes AV1 when asked.
    record_webapp_room(8463, "rproomav1", "video-codec=av1", "video/x-av1");
}

/// The demuxer for a recorded file, by its extension.
#[test]
#[ignore = "needs ../shared/realpeers: scripts/realpeers.sh"]
fn a_killed_webapp_guest_is_noticed_and_recorded_again() {
    let h = Harness::start(8459);
    let room = "rpkill";
    let dir = tempfile::tempdir().expect("tempdir");
    let mut victim = h.browser_guest("victim", room, "");
    let _steady = h.browser_guest("steady", room, "");
    let mut rec = Recorder::start(&format!(
        "vdoninjasrc room={room} password={PASSWORD} record-location={}/%s-%t.mkv {}",
        dir.path().display(),
        h.props()
    ));
    let ok = wait_until(PEER_WAIT, || {
        rec.poll();
        rec.started.len() >= 2 && rec.started.iter().all(|(_, p)| file_size(p) > 50_000)
    });
    assert!(
        ok,
        "both guests are recorded: {:?} {:?}",
        rec.started, rec.warnings
    );
    // The browser (script, Chromium and its helpers) killed outright.
    victim.kill_all();
    let killed = Instant::now();
    let noticed = wait_until(Duration::from_secs(30), || {
        rec.poll();
        rec.finished.iter().any(|(s, ..)| s == "victim")
    });
    let after = killed.elapsed();
    eprintln!("the web app guest's file was finished {after:?} after its browser was killed");
    assert!(
        noticed,
        "the killed guest's recording is finished: {:?}",
        rec.finished
    );
    assert!(after <= Duration::from_secs(6), "noticed after {after:?}");
    assert!(
        !rec.finished.iter().any(|(s, ..)| s == "steady"),
        "the other guest goes on: {:?}",
        rec.finished
    );
    // It comes back: recorded again into a new file.
    let _back = h.browser_guest("victim", room, "");
    let again = wait_until(PEER_WAIT, || {
        rec.poll();
        let v: Vec<_> = rec.started.iter().filter(|(s, _)| s == "victim").collect();
        v.len() == 2 && file_size(&v[1].1) > 50_000
    });
    assert!(
        again,
        "the returning guest is recorded again: {:?}",
        rec.started
    );
    let rec = rec.end();
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);
    let files = recordings(dir.path());
    assert_eq!(files.len(), 3, "victim twice, steady once: {files:?}");
    for f in &files {
        let r = inspect_file(f, "matroskademux");
        eprintln!("{}: {r:?}", f.display());
        assert!(r.all_decoded() && r.streams.len() == 2, "{f:?}: {r:?}");
    }
}

/// A pipeline linked once in its text (as gst-launch-1.0 and obs-gstreamer run one) views the
/// web app; the page is closed and a new page publishes the same stream ID 3 s later: the
/// pipeline gets media again on the same pads.
#[test]
#[ignore = "needs ../shared/realpeers: scripts/realpeers.sh"]
fn a_reloaded_webapp_publisher_continues_on_the_same_pads() {
    let h = Harness::start(8461);
    let page = |n: u32| {
        h.spawn(
            &format!("browser-cam-{n}"),
            "browser-publish.sh",
            &[&format!("push=rpcam&password={PASSWORD}"), "120"],
            &[],
        )
    };
    let mut first = page(1);
    let view = common::linked::Linked::start(
        &format!(
            "vdoninjasrc name=s stream-id=rpcam password={PASSWORD} decode=true {} \
             s.video_rpcam ! queue ! fakesink name=video sync=false async=false \
             s.audio_rpcam ! queue ! fakesink name=audio sync=false async=false",
            h.props()
        ),
        &["video", "audio"],
    );
    let ok = wait_until(PEER_WAIT, || {
        view.count("video") >= 60 && view.count("audio") >= 60
    });
    assert!(
        ok,
        "the first page: {} / {}",
        view.report("video"),
        view.report("audio")
    );
    let before = (view.count("video"), view.count("audio"));
    first.stop();
    view.wait_removed("rpcam");
    std::thread::sleep(Duration::from_secs(3));
    let _second = page(2);
    let back = view.wait_added_within("rpcam", 2, PEER_WAIT);
    let ok = wait_until(PEER_WAIT, || {
        view.after("video", back).0 >= 150 && view.after("audio", back).0 >= 150
    });
    let (v, v_first) = view.after("video", back);
    let (a, _) = view.after("audio", back);
    let trouble = view.trouble();
    eprintln!(
        "decoded from the web app: {before:?} before the reload; after it, {v} pictures (the first \
         {v_first:?} after stream-added) and {a} audio buffers; longest gap {}; {:?}",
        view.longest_gap("video"),
        view.removed.lock().expect("lock")
    );
    assert!(ok, "after the reload: {}", view.report("video"));
    assert!(
        v_first.is_some_and(|d| d <= Duration::from_secs(8)),
        "first picture after the reload: {v_first:?}"
    );
    assert!(trouble.is_empty(), "errors or EOS: {trouble:?}");
}

fn demuxer_for(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("ts") => "tsdemux",
        Some("mp4" | "mov") => "qtdemux",
        _ => "matroskademux",
    }
}

#[test]
#[ignore = "needs ../shared/realpeers: scripts/realpeers.sh"]
fn webapp_guests_as_one_mpegts_stream() {
    let h = Harness::start(8453);
    let dir = tempfile::tempdir().expect("tempdir");
    let ts = dir.path().join("room.ts");
    let guests = ["guestA", "guestB"];
    let _browsers: Vec<Proc> = guests
        .iter()
        .map(|g| h.browser_guest(g, "rproomts", ""))
        .collect();
    let mut rec = Recorder::start(&format!(
        "vdoninjasrc room=rproomts password={PASSWORD} ts-slots=2 {} ! filesink location={}",
        h.props(),
        ts.display()
    ));
    let ok = wait_until(PEER_WAIT, || {
        rec.poll();
        rec.added.len() >= guests.len() && file_size(&ts) > 200_000
    });
    assert!(
        ok,
        "both guests reach the room stream: added {:?}, {} bytes, warnings {:?}, errors {:?}",
        rec.added,
        file_size(&ts),
        rec.warnings,
        rec.errors
    );
    std::thread::sleep(RECORD_FOR);
    let rec = rec.end();
    assert!(rec.errors.is_empty(), "no errors: {:?}", rec.errors);
    let r = inspect_file(&ts, "tsdemux");
    eprintln!("{}: {r:?}", ts.display());
    assert!(r.errors.is_empty(), "the stream decodes to the end: {r:?}");
    // The web app agrees to H.264 when asked: no transcoding, two video and two audio PIDs.
    assert_eq!(r.decoded_tracks("video/x-h264"), 2, "{r:?}");
    assert_eq!(r.decoded_tracks("audio/x-opus"), 2, "{r:?}");
    assert!(
        !rec.warnings.iter().any(|w| w.contains("transcoding")),
        "{:?}",
        rec.warnings
    );
    // GStreamer's own readers see both guests (the program map never changes).
    let decoded = common::readers::decodebin3_all(&ts);
    let discovered = common::readers::discovered(&ts);
    eprintln!("decodebin3: {decoded:?}; gst-discoverer-1.0: {discovered:?}");
    let count = |kind: &str| {
        decoded
            .iter()
            .filter(|(k, (n, _))| k.starts_with(kind) && *n >= 30)
            .count()
    };
    assert_eq!((count("video"), count("audio")), (2, 2), "{decoded:?}");
    assert_eq!(discovered, (2, 2));
}

/// `vdoninjasink` publishing a test pattern and a tone as `stream`.
fn our_publisher(h: &Harness, stream: &str, extra: &str) -> gst::Pipeline {
    let p = launch(&format!(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 ! \
         vdoninjasink name=s stream-id={stream} password={PASSWORD} {} {extra} \
         audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! s.",
        h.props()
    ));
    p.set_state(gst::State::Playing).expect("publisher plays");
    p
}

#[test]
#[ignore = "needs ../shared/realpeers: scripts/realpeers.sh"]
fn webapp_views_vdoninjasink() {
    webapp_views_our_sink(8454, "rpsink", "", "H264");
}

#[test]
#[ignore = "needs ../shared/realpeers: scripts/realpeers.sh"]
fn webapp_views_vdoninjasink_in_av1() {
    webapp_views_our_sink(8464, "rpsinkav1", "video-codec=av1", "AV1");
}

/// The web app views our sink (`extra` its properties) and decodes 90 frames of `codec`.
fn webapp_views_our_sink(port: u16, stream: &str, extra: &str, codec: &str) {
    let h = Harness::start(port);
    let publisher = our_publisher(&h, stream, extra);
    let params = format!("view={stream}&password={PASSWORD}");
    let viewer = h.spawn(
        "browser-view",
        "browser-view.sh",
        &[&params, "60", "90"],
        &[],
    );
    let (ok, log) = viewer.wait(Duration::from_secs(90));
    let errors = bus_errors(&publisher);
    let _ = publisher.set_state(gst::State::Null);
    let frames = log
        .lines()
        .find_map(|l| l.strip_prefix("FRAMES_DECODED="))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or(0);
    eprintln!("the web app decoded {frames} frames");
    assert!(ok && frames >= 90, "the web app decodes our stream:\n{log}");
    assert!(errors.is_empty(), "{errors:?}");
    // browser-view.sh names the codecs it received.
    let codecs = log
        .lines()
        .filter(|l| l.contains("codecs"))
        .collect::<Vec<_>>();
    eprintln!("the web app received: {codecs:?}");
    assert!(
        codecs
            .iter()
            .any(|l| l.to_lowercase().contains(&codec.to_lowercase())),
        "the web app received {codec}: {codecs:?}"
    );
}

/// What `browser-view.sh` had counted `secs` seconds after it started (its lines every 2 s:
/// `t=…s … framesDecoded=N … freezeS=X`): pictures decoded, seconds frozen.
fn browser_view_at(log: &str, secs: u64) -> (u64, f64) {
    let field = |line: &str, key: &str| -> Option<String> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .map(|v| v.trim_end_matches('s').to_string())
    };
    log.lines()
        .filter_map(|l| {
            let t: u64 = field(l, "t=")?.parse().ok()?;
            let frames: u64 = field(l, "framesDecoded=")?.parse().ok()?;
            let frozen: f64 = field(l, "freezeS=")?.parse().ok()?;
            (t <= secs).then_some((frames, frozen))
        })
        .next_back()
        .unwrap_or((0, 0.0))
}

/// The web app starts viewing `stream` (for `secs` seconds at most).
fn webapp_view(h: &Harness, name: &str, stream: &str, secs: u64) -> Proc {
    h.spawn(
        name,
        "browser-view.sh",
        &[
            &format!("view={stream}&password={PASSWORD}"),
            &secs.to_string(),
            "1000000",
        ],
        &[],
    )
}

/// Waits until the viewer's log has reached `secs` seconds; what it had counted then.
fn watched_for(viewer: &Proc, secs: u64) -> (u64, f64) {
    let reached = wait_until(Duration::from_secs(secs + 60), || {
        viewer.log().lines().any(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("t="))
                .and_then(|t| t.trim_end_matches('s').parse::<u64>().ok())
                .is_some_and(|t| t >= secs)
        })
    });
    assert!(
        reached,
        "the web app viewed for {secs} s:\n{}",
        viewer.log()
    );
    browser_view_at(&viewer.log(), secs)
}

/// Frees the harness's UDP again when dropped (a failing test must not leave it policed).
struct Policed;

impl Drop for Policed {
    fn drop(&mut self) {
        set_udp_limit(0);
    }
}

/// All UDP of the harness's namespace through a token bucket of `kbits` kbit/s (the test runs
/// inside the namespace) until the guard is dropped.
fn police_udp(kbits: u32) -> Policed {
    set_udp_limit(kbits);
    Policed
}

/// The limit itself (0: none).
fn set_udp_limit(kbits: u32) {
    let nft = |args: &[&str]| {
        Command::new("nft")
            .args(args)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let _ = nft(&["delete", "table", "inet", "rpnarrow"]);
    if kbits == 0 {
        return;
    }
    let bytes = kbits / 8;
    assert!(
        nft(&["add", "table", "inet", "rpnarrow"]),
        "nft (root) works"
    );
    assert!(nft(&[
        "add",
        "chain",
        "inet",
        "rpnarrow",
        "out",
        "{ type filter hook output priority 0; }"
    ]));
    assert!(nft(&[
        "add",
        "rule",
        "inet",
        "rpnarrow",
        "out",
        &format!(
            "meta l4proto udp limit rate over {bytes} kbytes/second burst {} kbytes drop",
            bytes / 4
        ),
    ]));
}

/// The web app views `vdoninjasink` (640x360 snow, default bitrate) through a 1,000 kbit/s
/// policer, and a web-app publisher through the same policer for comparison (one at a time).
#[test]
#[ignore = "needs ../shared/realpeers: scripts/realpeers.sh"]
fn webapp_views_vdoninjasink_through_a_narrow_link() {
    const SECS: u64 = 40;
    let h = Harness::start(8462);
    let policed = police_udp(1000);
    // The reference: the web app's own publisher, with the browser's congestion control.
    let base_pub = h.spawn(
        "browser-base",
        "browser-publish.sh",
        &[&format!("push=rpbase&password={PASSWORD}"), "120"],
        &[],
    );
    let base_view = webapp_view(&h, "view-base", "rpbase", SECS + 5);
    let (base_frames, base_frozen) = watched_for(&base_view, SECS);
    drop(base_view);
    drop(base_pub);
    // Ours, watched as long, then the link is freed while the viewer goes on.
    let publisher = launch(&format!(
        "videotestsrc is-live=true pattern=snow ! video/x-raw,width=640,height=360,framerate=30/1 ! \
         vdoninjasink name=s stream-id=rpnarrow password={PASSWORD} {} \
         audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! s.",
        h.props()
    ));
    publisher.set_state(gst::State::Playing).expect("plays");
    let sink = publisher.by_name("s").expect("sink");
    let target = |s: &gst::Element| {
        s.property::<gst::Structure>("stats")
            .get::<u32>("video-bitrate")
            .unwrap_or(0)
    };
    let view = webapp_view(&h, "view-ours", "rpnarrow", SECS + 30);
    let (frames, frozen) = watched_for(&view, SECS);
    let under = target(&sink);
    drop(policed);
    let freed = Instant::now();
    let back = wait_until(Duration::from_secs(15), || target(&sink) >= 2500);
    let back_after = freed.elapsed();
    let log = view.log();
    drop(view);
    // When the freezes happened: the web app's count at each second (t, decoded, frozen s).
    let timeline: Vec<String> = (1..=SECS)
        .map(|t| {
            let (f, z) = browser_view_at(&log, t);
            format!("{t}:{f}/{z:.1}")
        })
        .collect();
    eprintln!(
        "the web app's view of vdoninjasink by second: {}",
        timeline.join(" ")
    );
    let errors = bus_errors(&publisher);
    let _ = publisher.set_state(gst::State::Null);
    eprintln!(
        "the web app through 1,000 kbit/s, first {SECS} s: from its own publisher {base_frames} \
         pictures, frozen {base_frozen:.1} s; from vdoninjasink {frames} pictures, frozen \
         {frozen:.1} s (encoder then at {under} kbit/s); freed: at 2,500 kbit/s again after \
         {back_after:?}"
    );
    assert!(base_frames > 0, "the reference decodes");
    assert!(
        frames as f64 >= 0.8 * base_frames as f64,
        "{frames} pictures against the web app's {base_frames}:\n{log}"
    );
    assert!(
        frozen <= 0.1 * SECS as f64,
        "frozen {frozen:.1} s of {SECS}"
    );
    assert!(
        back,
        "back at bitrate within 15 s: {} kbit/s",
        target(&sink)
    );
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
#[ignore = "needs ../shared/realpeers: scripts/realpeers.sh"]
fn publish_py_to_vdoninjasrc() {
    let h = Harness::start(8455);
    let _rpi = h.spawn(
        "publish.py",
        "rpi-publish.sh",
        &["rppy", "--password", PASSWORD, "--h264"],
        &[("DURATION", "90")],
    );
    let src = SrcHarness::start(&format!("stream-id=rppy password={PASSWORD} {}", h.props()));
    let ok = wait_until(PEER_WAIT, || {
        src.frames("video_rppy") >= 90 && src.frames("audio_rppy") >= 90
    });
    let (v, a) = (src.frames("video_rppy"), src.frames("audio_rppy"));
    let warnings = src.warnings();
    src.stop();
    eprintln!("decoded from publish.py: {v} pictures, {a} audio buffers");
    assert!(
        ok,
        "publish.py's stream decodes: {v} video, {a} audio, {warnings:?}"
    );
}

/// How long publish.py records our sink, and how much of that its own start-up takes at most
/// (Python, GStreamer, the handshake: 3-5 s in runs).
const RN_RUN: Duration = Duration::from_secs(30);
const RN_START: Duration = Duration::from_secs(6);

#[test]
#[ignore = "needs ../shared/realpeers: scripts/realpeers.sh"]
fn publish_py_records_vdoninjasink() {
    let h = Harness::start(8456);
    let out = tempfile::tempdir().expect("tempdir");
    let publisher = our_publisher(&h, "rprec", "");
    let outdir = out.path().to_string_lossy().to_string();
    let rn_log = h.logs.path().join("rpi-record.log");
    // publish.py's viewer never answers our data-channel pings; it must be kept for its whole
    // run all the same (it was dropped as vanished 4-13 s in while every peer had 4 s).
    let recorder = h.spawn(
        "publish.py-record",
        "rpi-record.sh",
        &["rprec", &outdir, "--password", PASSWORD],
        &[
            ("DURATION", &RN_RUN.as_secs().to_string()),
            ("LOG", &rn_log.to_string_lossy()),
        ],
    );
    let sink = publisher.by_name("s").expect("our sink");
    let removed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let r = removed.clone();
    sink.connect("viewer-removed", false, move |args| {
        let why = args
            .get(2)
            .and_then(|v| v.get::<String>().ok())
            .unwrap_or_default();
        r.lock().expect("lock").push(why);
        None
    });
    let (_, log) = recorder.wait(RN_RUN + Duration::from_secs(60));
    let rn = std::fs::read_to_string(&rn_log).unwrap_or_default();
    let tail: Vec<&str> = rn.lines().rev().take(60).collect();
    eprintln!(
        "publish.py's log, last lines:\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    let _ = publisher.set_state(gst::State::Null);
    let files: Vec<PathBuf> = std::fs::read_dir(out.path())
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            file_size(p) > 0
                && p.extension()
                    .is_some_and(|e| ["ts", "webm", "mkv", "mp4"].contains(&&*e.to_string_lossy()))
        })
        .collect();
    assert!(!files.is_empty(), "publish.py wrote files:\n{log}");
    let mut video_frames = 0;
    let mut audio_frames = 0;
    let (mut video_files, mut audio_files) = (0, 0);
    for f in &files {
        let r = inspect_file(f, demuxer_for(f));
        eprintln!("{}: {r:?}", f.display());
        assert!(r.all_decoded(), "{f:?} decodes to the end: {r:?}");
        video_files += usize::from(r.count("video/") > 0);
        audio_files += usize::from(r.count("audio/") > 0);
        for (caps, n) in &r.streams {
            if caps.starts_with("video/") {
                video_frames += n;
            } else if caps.starts_with("audio/") {
                audio_frames += n;
            }
        }
    }
    // Its run: from its first recorded frame to its end. At least 90 % of it is recorded, in
    // one file (a viewer dropped and back would start another).
    let seconds = video_frames as f64 / 30.0;
    let run = RN_RUN.as_secs_f64();
    eprintln!(
        "publish.py recorded {seconds:.1} s of video ({video_frames} pictures, {audio_frames} \
         audio frames) in a {run:.0} s run; our sink removed it: {:?}",
        removed.lock().expect("lock")
    );
    // publish.py writes video and audio apart: one file of each (a viewer dropped and back
    // would start others).
    assert!(
        video_files == 1 && audio_files == 1,
        "one recording of each kind: {files:?}"
    );
    assert!(
        removed
            .lock()
            .expect("lock")
            .iter()
            .all(|why| why != "vanished"),
        "publish.py was dropped as vanished: {:?}",
        removed.lock().expect("lock")
    );
    assert!(
        seconds >= 0.9 * (run - RN_START.as_secs_f64()),
        "{video_frames} pictures in {files:?}"
    );
    assert!(
        audio_frames as f64 >= 0.9 * 50.0 * (run - RN_START.as_secs_f64()),
        "{audio_frames} audio frames in {files:?}"
    );
}

/// A helper process of a test (a server), ended when the test ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `vdoninja-server --official` with the harness's certificate, on `port`.
fn official_server(h: &Harness, port: u16) -> KillOnDrop {
    let child = Command::new(env!("CARGO_BIN_EXE_vdoninja-server"))
        .args([
            "--official",
            "--quiet",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--tls-cert")
        .arg(h.peers.join("webserver/cert.pem"))
        .arg("--tls-key")
        .arg(h.peers.join("webserver/key.pem"))
        .spawn()
        .expect("vdoninja-server starts");
    let up = wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "vdoninja-server listens on {port}");
    KillOnDrop(child)
}

#[test]
#[ignore = "needs ../shared/realpeers: scripts/realpeers.sh"]
fn official_webapp_with_our_official_server() {
    let h = Harness::start(8457);
    let port = 8467;
    let _server = official_server(&h, port);
    let props = format!(
        "server=wss://127.0.0.1:{port} signaling-mode=official tls-ca-file={} stun-server=\"\" auto-turn=false",
        h.ca().display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    // The official page in a room, recorded by us; and it views our own publisher.
    let _guest = h.spawn(
        "official-guest",
        "browser-publish.sh",
        &[
            &format!("push=offguest&room=rproomoff&password={PASSWORD}&wss2=127.0.0.1:{port}"),
            "120",
        ],
        &[("PAGE", "official.html")],
    );
    let mut rec = Recorder::start(&format!(
        "vdoninjasrc room=rproomoff password={PASSWORD} record-location={}/%s-%t.mkv {props}",
        dir.path().display()
    ));
    let publisher = launch(&format!(
        "videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 ! \
         vdoninjasink name=s stream-id=offsink password={PASSWORD} {props} \
         audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! s."
    ));
    publisher.set_state(gst::State::Playing).expect("plays");
    let viewer = h.spawn(
        "official-viewer",
        "browser-view.sh",
        &[
            &format!("view=offsink&password={PASSWORD}&wss2=127.0.0.1:{port}"),
            "60",
            "60",
        ],
        &[("PAGE", "official.html")],
    );
    let (viewed, view_log) = viewer.wait(Duration::from_secs(90));
    let _ = publisher.set_state(gst::State::Null);
    assert!(
        viewed,
        "the official page decodes vdoninjasink:\n{view_log}"
    );
    let ok = wait_until(PEER_WAIT, || {
        rec.poll();
        rec.started.iter().any(|(_, p)| file_size(p) > 20_000)
    });
    assert!(
        ok,
        "the official page's guest is recorded: {:?} {:?}",
        rec.started, rec.warnings
    );
    std::thread::sleep(RECORD_FOR);
    let rec = rec.end();
    let files = recordings(dir.path());
    assert_eq!(files.len(), 1, "{files:?} {:?}", rec.finished);
    let r = inspect_file(&files[0], "matroskademux");
    eprintln!("{}: {r:?}", files[0].display());
    assert!(r.all_decoded(), "{r:?}");
    assert_eq!(r.count("video/"), 1, "{r:?}");
    assert_eq!(r.count("audio/x-opus"), 1, "{r:?}");
}

/// The harness's veth address, where coturn listens and relays.
const COTURN_ADDR: &str = "198.18.0.1";

/// coturn, as the issue gives it, on [`COTURN_ADDR`].
fn coturn(logs: &Path) -> KillOnDrop {
    let log = std::fs::File::create(logs.join("coturn.log")).expect("log");
    let child = Command::new("turnserver")
        .args([
            "-n",
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "--listening-port=3478",
            "--lt-cred-mech",
            "--user=rpuser:rppass",
            "--realm=rprealm",
            "--allow-loopback-peers",
            "--min-port=49160",
            "--max-port=49300",
            "--log-file=stdout",
            "--simple-log",
            "--verbose",
        ])
        .arg(format!("--listening-ip={}", COTURN_ADDR))
        .arg(format!("--relay-ip={}", COTURN_ADDR))
        .arg(format!("--pidfile={}", logs.join("coturn.pid").display()))
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("turnserver starts (Debian's coturn)");
    KillOnDrop(child)
}

#[test]
#[ignore = "needs ../shared/realpeers: scripts/realpeers.sh"]
fn relay_only_through_coturn() {
    let h = Harness::start(8458);
    let _turn = coturn(h.logs.path());
    let dir = tempfile::tempdir().expect("tempdir");
    let _guest = h.browser_guest("relayguest", "rproomrelay", "");
    let mut rec = Recorder::start(&format!(
        "vdoninjasrc name=src room=rproomrelay password={PASSWORD} record-location={}/%s-%t.mkv {} \
         turn-servers=turn://rpuser:rppass@{}:3478 ice-transport-policy=relay",
        dir.path().display(),
        h.props(),
        COTURN_ADDR
    ));
    let ok = wait_until(PEER_WAIT, || {
        rec.poll();
        rec.started.iter().any(|(_, p)| file_size(p) > 20_000)
    });
    let turn_log = std::fs::read_to_string(h.logs.path().join("coturn.log")).unwrap_or_default();
    assert!(
        ok,
        "the guest is recorded over the relay: {:?} {:?}\ncoturn:\n{turn_log}",
        rec.started, rec.warnings
    );
    let src = rec.pipeline.by_name("src").expect("src");
    let stats = src.property::<gst::Structure>("stats");
    eprintln!("stats: {stats}");
    let pair = stats.iter().find_map(|(_, v)| {
        v.get::<gst::Structure>()
            .ok()
            .and_then(|s| s.get::<String>("candidate-type").ok())
    });
    assert_eq!(pair.as_deref(), Some("relay"), "{stats}");
    std::thread::sleep(RECORD_FOR);
    let _rec = rec.end();
    let files = recordings(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let r = inspect_file(&files[0], "matroskademux");
    eprintln!("{}: {r:?}", files[0].display());
    assert!(r.all_decoded(), "{r:?}");
    assert_eq!(r.count("video/"), 1, "{r:?}");
    assert_eq!(r.count("audio/x-opus"), 1, "{r:?}");
    assert!(
        turn_log.contains("ALLOCATE") || turn_log.to_lowercase().contains("allocat"),
        "coturn allocated:\n{turn_log}"
    );
}
