// SPDX-License-Identifier: MPL-2.0

//! Peers that vanish without a `bye` (their process killed): a publisher is noticed within
//! 5 s, its file finalized, the other guest untouched, and it is recorded again into a new
//! file when it returns; a viewer that vanishes is dropped within 5 s.

mod common;

use std::time::{Duration, Instant};

use common::media::*;
use gst::prelude::*;
use gstvdoninja::server::hub::ServerMode;

const CHILD: &str = "VDONINJA_TEST_VANISH_CHILD";

/// Not a test: the pipeline of a child process that the tests kill.
#[test]
#[ignore = "run as a child process by the tests of this file"]
fn child_pipeline() {
    let Ok(desc) = std::env::var(CHILD) else {
        return;
    };
    let p = launch(&desc);
    p.set_state(gst::State::Playing).expect("child plays");
    // Killed long before this.
    std::thread::sleep(Duration::from_secs(120));
}

/// This test binary again, running `desc` until it is killed.
struct Child(std::process::Child);

impl Child {
    fn start(desc: &str) -> Self {
        let c = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["child_pipeline", "--exact", "--ignored", "--nocapture"])
            .env(CHILD, desc)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("child process");
        Self(c)
    }

    /// SIGKILL: no goodbye of any kind.
    fn kill(mut self) -> Instant {
        let _ = self.0.kill();
        let at = Instant::now();
        let _ = self.0.wait();
        at
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn publisher_desc(server: &Server, stream: &str, room: &str) -> String {
    format!(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         vdoninjasink name=s stream-id={stream} room={room} {props} \
         audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! s.",
        props = server.props()
    )
}

/// The next `vdoninja/<name>` element message whose `field` is `value` (any, for an empty
/// `field`), within `timeout`.
fn wait_message(
    bus: &gst::Bus,
    name: &str,
    field: &str,
    value: &str,
    timeout: Duration,
) -> Option<gst::Structure> {
    let deadline = Instant::now() + timeout;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[gst::MessageType::Element],
        )?;
        if let Some(s) = msg.structure()
            && s.name() == name
            && (field.is_empty() || s.get::<String>(field).is_ok_and(|v| v == value))
        {
            return Some(s.to_owned());
        }
    }
    None
}

#[test]
fn a_vanished_publisher_is_noticed_within_5_s_and_recorded_again_when_it_returns() {
    let server = Server::start(ServerMode::Official);
    let dir = tempfile::tempdir().expect("tempdir");
    let room = "vanish";
    let steady = launch(&publisher_desc(&server, "steady", room));
    steady.set_state(gst::State::Playing).expect("plays");
    let recorder = launch(&format!(
        "vdoninjasrc room={room} record-location={}/%s-%t.mkv {}",
        dir.path().display(),
        server.props()
    ));
    let bus = recorder.bus().expect("bus");
    recorder.set_state(gst::State::Playing).expect("plays");
    let ghost = Child::start(&publisher_desc(&server, "ghost", room));
    let long = Duration::from_secs(30);
    let started = wait_message(
        &bus,
        "vdoninja/recording-started",
        "stream-id",
        "ghost",
        long,
    )
    .expect("the ghost is recorded");
    let first = started.get::<String>("location").expect("location");
    assert!(
        wait_until(MEDIA_WAIT, || std::fs::metadata(&first)
            .is_ok_and(|m| m.len() > 200_000)),
        "the ghost's file grows"
    );

    let killed = ghost.kill();
    let removed = wait_message(&bus, "vdoninja/stream-removed", "stream-id", "ghost", long)
        .expect("the vanished ghost is removed");
    let noticed = killed.elapsed();
    println!("a killed publisher was noticed {noticed:?} after the kill");
    assert_eq!(removed.get::<String>("reason").as_deref(), Ok("vanished"));
    assert!(
        noticed <= Duration::from_secs(6),
        "noticed after {noticed:?}"
    );
    let finished = wait_message(
        &bus,
        "vdoninja/recording-finished",
        "stream-id",
        "ghost",
        long,
    )
    .expect("its recording is finished");
    assert_eq!(finished.get::<bool>("finalized"), Ok(true), "{finished:?}");

    // It comes back: a new file.
    let back = Child::start(&publisher_desc(&server, "ghost", room));
    let again = wait_message(
        &bus,
        "vdoninja/recording-started",
        "stream-id",
        "ghost",
        long,
    )
    .expect("the returning ghost is recorded again");
    let second = again.get::<String>("location").expect("location");
    assert_ne!(first, second);
    assert!(
        wait_until(MEDIA_WAIT, || std::fs::metadata(&second)
            .is_ok_and(|m| m.len() > 200_000)),
        "the second file grows"
    );
    drop(back);
    let _ = recorder.set_state(gst::State::Null);
    let _ = steady.set_state(gst::State::Null);
    assert!(bus_errors(&recorder).is_empty());

    // Both of the ghost's files play; the steady guest kept one file through it all.
    for f in [&first, &second] {
        let r = inspect_file(std::path::Path::new(f), "matroskademux");
        assert!(r.all_decoded() && r.streams.len() == 2, "{f}: {r:?}");
    }
    let steady_files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.to_string_lossy().contains("steady-") && p.extension().is_some_and(|e| e == "mkv")
        })
        .collect();
    assert_eq!(steady_files.len(), 1, "{steady_files:?}");
    let r = inspect_file(&steady_files[0], "matroskademux");
    assert!(r.all_decoded() && r.streams.len() == 2, "{r:?}");
}

#[test]
fn a_vanished_viewer_is_dropped_within_5_s() {
    let server = Server::start(ServerMode::Official);
    let sink = launch(&publisher_desc(&server, "watched", "seen"));
    let bus = sink.bus().expect("bus");
    sink.set_state(gst::State::Playing).expect("plays");
    let viewer = Child::start(&format!(
        "vdoninjasrc stream-id=watched {} ! fakesink",
        server.props()
    ));
    let s = sink.by_name("s").expect("sink");
    let viewers = || {
        s.property::<gst::Structure>("stats")
            .get::<u32>("viewers")
            .unwrap_or(0)
    };
    let connected = || {
        s.property::<gst::Structure>("stats")
            .to_string()
            .contains("connection-state\\=\\(string\\)connected")
    };
    assert!(
        wait_until(Duration::from_secs(30), || viewers() == 1 && connected()),
        "the viewer connects: {:?}",
        s.property::<gst::Structure>("stats")
    );
    // The data channel opens just after the connection (it is what carries the pings that
    // notice a vanished viewer): give it a moment on a loaded machine, then kill.
    let connected_at = Instant::now();
    wait_until(Duration::from_secs(5), || {
        connected_at.elapsed() > Duration::from_secs(3)
    });
    let killed = viewer.kill();
    let removed = wait_message(
        &bus,
        "vdoninja/viewer-removed",
        "",
        "",
        Duration::from_secs(30),
    );
    let noticed = killed.elapsed();
    let removed = removed.expect("the vanished viewer is removed");
    println!("a killed viewer was dropped {noticed:?} after the kill");
    assert_eq!(removed.get::<String>("reason").as_deref(), Ok("vanished"));
    assert!(
        noticed <= Duration::from_secs(6),
        "dropped after {noticed:?}"
    );
    assert_eq!(viewers(), 0);
    let _ = sink.set_state(gst::State::Null);
}
