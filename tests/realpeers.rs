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
        let peers = std::env::var_os("PEERS_DIR").map(PathBuf::from).unwrap_or_else(|| {
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
        let child = Command::new(self.dir.join(script))
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
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "mkv"))
        .collect();
    files.sort();
    files
}

/// Records the room of `guests` (web-app guests, started here) and checks each file: one
/// `video` track and one Opus track, decoded to the end, `min_video_frames` pictures at least.
fn record_webapp_room(port: u16, room: &str, extra_props: &str, video: &str) {
    let h = Harness::start(port);
    let dir = tempfile::tempdir().expect("tempdir");
    let guests = ["guestA", "guestB"];
    let _browsers: Vec<Proc> = guests.iter().map(|g| h.browser_guest(g, room, "")).collect();
    let mut rec = Recorder::start(&format!(
        "vdoninjasrc room={room} password={PASSWORD} record-location={}/%s-%t.mkv {} {extra_props}",
        dir.path().display(),
        h.props()
    ));
    let ok = wait_until(PEER_WAIT, || {
        rec.poll();
        rec.started.len() >= guests.len()
            && rec.started.iter().all(|(_, p)| file_size(p) > 20_000)
    });
    assert!(
        ok,
        "both web-app guests are recorded: started {:?}, warnings {:?}, errors {:?}",
        rec.started, rec.warnings, rec.errors
    );
    std::thread::sleep(RECORD_FOR);
    let rec = rec.end();
    assert!(rec.errors.is_empty(), "no errors: {:?}", rec.errors);
    let files = recordings(dir.path());
    assert_eq!(files.len(), guests.len(), "one file per guest: {files:?}");
    for (f, g) in files.iter().zip(guests) {
        assert!(f.file_name().is_some_and(|n| n.to_string_lossy().starts_with(g)));
        let r = inspect_file(f, "matroskademux");
        eprintln!("{}: {r:?}", f.display());
        assert!(r.all_decoded(), "{f:?} decodes to the end: {r:?}");
        assert_eq!(r.count(video), 1, "{f:?} has one {video} track: {r:?}");
        assert_eq!(r.count("audio/x-opus"), 1, "{f:?} has one Opus track: {r:?}");
        let frames = r.streams.iter().find(|(c, _)| c == video).map_or(0, |s| s.1);
        // The guests start sending at a low frame rate: 10 per second at least.
        assert!(frames >= 10 * RECORD_FOR.as_secs(), "{f:?}: {frames} pictures");
        let secs = r.duration.map_or(0.0, |d| d.seconds_f64());
        assert!(secs >= RECORD_FOR.as_secs_f64() - 1.0, "{f:?} lasts {secs} s");
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
    record_webapp_room(8452, "rproomh264", "video-codec=h264", "video/x-h264");
}
