// SPDX-License-Identifier: MPL-2.0

//! Clean shutdown and no leaks (issue 12, item 6): 20 join/leave cycles of a guest leave no
//! thread, file descriptor or webrtcbin behind in the recording process, and a pipeline
//! with 8 peers goes to NULL within 2 s. This file is one test so that the process holds
//! nothing else.

mod common;

use std::time::{Duration, Instant};

use common::media::*;
use gst::prelude::*;
use gstvdoninja::server::hub::ServerMode;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn webrtcbins(p: &gst::Pipeline) -> usize {
    p.iterate_recurse()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.factory().is_some_and(|f| f.name() == "webrtcbin"))
        .count()
}

fn guest(server: &Server, room: &str, n: u32) -> gst::Pipeline {
    let p = launch(&format!(
        "videotestsrc is-live=true pattern={n} ! video/x-raw,width=160,height=120,framerate=15/1 ! \
         vdoninjasink name=s stream-id=cycler{n} room={room} {props} \
         audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=1 ! s.",
        props = server.props()
    ));
    p.set_state(gst::State::Playing).expect("guest plays");
    p
}

/// Pops element messages until one named `name` (bounded).
fn wait_for(bus: &gst::Bus, name: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[gst::MessageType::Element],
        ) else {
            return false;
        };
        if msg.structure().is_some_and(|s| s.name() == name) {
            return true;
        }
    }
    false
}

#[test]
fn join_leave_cycles_leak_nothing_and_eight_peers_stop_fast() {
    // Printed only if the test fails: one full run had the first guest never recorded (20 s),
    // as CI had once in another room test; the log says where it stopped.
    let _log = common::logring::keep("vdoninja*:5,webrtcbin:4");
    let server = Server::start(ServerMode::Official);
    let dir = tempfile::tempdir().expect("tempdir");
    let room = "cycles";
    let recorder = launch(&format!(
        "vdoninjasrc name=rec room={room} record-location={}/%s-%t.mkv {}",
        dir.path().display(),
        server.props()
    ));
    let bus = recorder.bus().expect("bus");
    recorder.set_state(gst::State::Playing).expect("plays");

    let cycle = |i: u32| {
        let g = guest(&server, room, 0);
        assert!(
            wait_for(&bus, "vdoninja/recording-started"),
            "cycle {i}: recorded"
        );
        let _ = g.set_state(gst::State::Null);
        assert!(
            wait_for(&bus, "vdoninja/recording-finished"),
            "cycle {i}: finished"
        );
    };
    // The first cycle starts what lives as long as the process (thread pools, the runtime).
    cycle(0);
    let settle = |limit: (usize, usize)| {
        wait_until(Duration::from_secs(20), || {
            webrtcbins(&recorder) == 0 && threads() <= limit.0 && fds() <= limit.1
        })
    };
    assert!(
        settle((usize::MAX, usize::MAX)),
        "no webrtcbin after the first cycle"
    );
    let (t0, f0) = (threads(), fds());
    for i in 1..=20 {
        cycle(i);
    }
    // One cycle's guest and peer hold ~20 threads and ~15 descriptors: a leak of either
    // would be far beyond this slack.
    let back = settle((t0 + 4, f0 + 4));
    let files = std::fs::read_dir(dir.path()).map_or(0, |d| d.count());
    println!(
        "after 20 cycles: {} threads (baseline {t0}), {} fds (baseline {f0}), {} webrtcbin, {files} files",
        threads(),
        fds(),
        webrtcbins(&recorder)
    );
    assert!(
        back,
        "after 20 join/leave cycles: threads {} (baseline {t0}), fds {} (baseline {f0}), webrtcbin {}",
        threads(),
        fds(),
        webrtcbins(&recorder)
    );
    // 21 recordings and the manifest.
    assert_eq!(files, 22);

    // Eight peers at once, then the whole pipeline to NULL.
    let guests: Vec<gst::Pipeline> = (0..8).map(|n| guest(&server, room, n + 1)).collect();
    assert!(
        wait_until(Duration::from_secs(30), || webrtcbins(&recorder) == 8
            && recorder
                .by_name("rec")
                .map(|s| s.property::<gst::Structure>("stats").to_string())
                .is_some_and(|s| s
                    .matches("connection-state\\=\\(string\\)connected")
                    .count()
                    == 8)),
        "8 peers connect"
    );
    let stopping = Instant::now();
    recorder
        .set_state(gst::State::Null)
        .expect("the recorder stops");
    let took = stopping.elapsed();
    println!("8 peers: PLAYING → NULL in {took:?}");
    assert!(took <= Duration::from_secs(2), "took {took:?}");
    for g in guests {
        let _ = g.set_state(gst::State::Null);
    }
}
