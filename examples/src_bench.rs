// SPDX-License-Identifier: MPL-2.0

//! Measures `vdoninjasrc`: time from PLAYING to the first buffer on its video and audio pads,
//! on loopback, against a `vdoninjasink` publisher (our own server, no internet).
//!
//! `cargo run --release --example src_bench`

use std::time::Duration;

#[path = "../tests/common/media.rs"]
#[allow(dead_code)]
mod media;

use gst::prelude::*;
use gstvdoninja::server::hub::ServerMode;
use media::{MEDIA_WAIT, Server, SrcHarness, wait_until};

fn main() {
    media::init();
    let server = Server::start(ServerMode::Official);
    let desc = format!(
        "videotestsrc is-live=true ! video/x-raw,width=1280,height=720,framerate=30/1 ! \
         vdoninjasink name=s stream-id=bench {} audiotestsrc is-live=true ! s.",
        server.props()
    );
    let publisher = gst::parse::launch(&desc).expect("publisher");
    publisher.set_state(gst::State::Playing).expect("plays");
    std::thread::sleep(Duration::from_secs(1));
    for latency in [200u32, 0] {
        let mut video = Vec::new();
        let mut audio = Vec::new();
        for _ in 0..5 {
            let s = SrcHarness::start(&format!(
                "stream-id=bench latency={latency} {}",
                server.props()
            ));
            let ok = wait_until(MEDIA_WAIT, || s.first_out.lock().expect("lock").len() >= 2);
            assert!(ok, "no media");
            let first = s.first_out.lock().expect("lock").clone();
            video.push(first["video_bench"].duration_since(s.started).as_secs_f64() * 1000.0);
            audio.push(first["audio_bench"].duration_since(s.started).as_secs_f64() * 1000.0);
            s.stop();
        }
        let fmt = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "latency={latency} ms: PLAYING -> first buffer: video {} ms; audio {} ms",
            fmt(&video),
            fmt(&audio)
        );
    }
    let _ = publisher.set_state(gst::State::Null);
}
