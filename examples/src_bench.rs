// SPDX-License-Identifier: MPL-2.0

//! Measures `vdoninjasrc`'s start-up (issue 13, item 3):
//! - PLAYING → first buffer on its video and audio pads, for a publisher already live: by
//!   default our own `vdoninjasink` on loopback (our server, no internet); with `--server` and
//!   `--stream-id` any publisher, e.g. Raspberry Ninja's `publish.py --h264` in
//!   `../shared/realpeers` (`scripts/realpeers-startup.sh` runs that);
//! - `--join`: a guest joining a room that is being recorded: its publisher's PLAYING → the
//!   first buffer written to its file.
//!
//! `cargo build --release --lib --examples && target/release/examples/src_bench [--join]`

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "../tests/common/media.rs"]
#[allow(dead_code)]
mod media;

use clap::Parser;
use gst::prelude::*;
use gstvdoninja::server::hub::ServerMode;
use media::{MEDIA_WAIT, Server, SrcHarness, wait_until};

#[derive(Parser)]
struct Args {
    /// View this server's publisher instead of starting our own (with --stream-id).
    #[arg(long, requires = "stream_id")]
    server: Option<String>,
    #[arg(long)]
    stream_id: Option<String>,
    /// More vdoninjasrc properties for the external publisher (password=…, tls-ca-file=…).
    #[arg(long, default_value = "")]
    props: String,
    /// Runs per latency.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Measure guests joining a recorded room instead.
    #[arg(long)]
    join: bool,
}

fn fmt(v: &[f64]) -> String {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let list = v
        .iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join(", ");
    match s.get(s.len() / 2) {
        Some(m) => format!("{list} (median {m:.0})"),
        None => list,
    }
}

fn main() {
    let args = Args::parse();
    media::init();
    // The harness decodes what it gets (decodebin): those decoders are the application's, not
    // the element's, so their first loading (~400 ms for libav) is paid before timing.
    for f in ["decodebin", "avdec_h264", "vp8dec", "opusdec"] {
        let _ = gst::ElementFactory::make(f).build();
    }
    if args.join {
        join(args.runs);
        return;
    }
    let (_server, props, id, publisher) = match (&args.server, &args.stream_id) {
        (Some(url), Some(id)) => (
            None,
            format!("server={url} {}", args.props),
            id.clone(),
            None,
        ),
        _ => {
            let server = Server::start(ServerMode::Official);
            let desc = format!(
                "videotestsrc is-live=true ! video/x-raw,width=1280,height=720,framerate=30/1 ! \
                 vdoninjasink name=s stream-id=bench {} audiotestsrc is-live=true ! s.",
                server.props()
            );
            let publisher = gst::parse::launch(&desc).expect("publisher");
            publisher.set_state(gst::State::Playing).expect("plays");
            std::thread::sleep(Duration::from_secs(1));
            let props = server.props();
            (Some(server), props, "bench".to_string(), Some(publisher))
        }
    };
    for latency in [200u32, 0] {
        let mut video = Vec::new();
        let mut audio = Vec::new();
        for _ in 0..args.runs {
            let s = SrcHarness::start(&format!("stream-id={id} latency={latency} {props}"));
            let ok = wait_until(MEDIA_WAIT, || s.first_out.lock().expect("lock").len() >= 2);
            assert!(ok, "no media from {id}");
            let first = s.first_out.lock().expect("lock").clone();
            let since = |kind: &str| {
                first
                    .iter()
                    .filter(|(pad, _)| pad.starts_with(kind))
                    .map(|(_, t)| t.duration_since(s.started).as_secs_f64() * 1000.0)
                    .next()
            };
            video.extend(since("video_"));
            audio.extend(since("audio_"));
            s.stop();
        }
        println!(
            "latency={latency} ms: PLAYING -> first buffer: video {} ms; audio {} ms",
            fmt(&video),
            fmt(&audio)
        );
    }
    if let Some(p) = publisher {
        let _ = p.set_state(gst::State::Null);
    }
}

/// Guests join a room that one `vdoninjasrc record-location=…` records, one after another;
/// each is timed from its publisher's PLAYING to the first buffer its file receives (a probe on
/// the recording's filesink, added when `vdoninja/recording-started` names the file).
fn join(runs: usize) {
    let server = Server::start(ServerMode::Fanout);
    let dir = tempfile::tempdir().expect("tempdir");
    let recorder = gst::Pipeline::new();
    let src = media::element(&format!(
        "vdoninjasrc room=bench record-location={}/%s.mkv {}",
        dir.path().display(),
        server.props()
    ));
    recorder.add(&src).expect("add");
    let first: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let bus = recorder.bus().expect("bus");
    {
        let (first, src) = (first.clone(), src.downgrade());
        bus.enable_sync_message_emission();
        bus.connect_sync_message(None, move |_, msg| {
            let gst::MessageView::Element(e) = msg.view() else {
                return;
            };
            let Some(s) = e
                .structure()
                .filter(|s| s.name() == "vdoninja/recording-started")
            else {
                return;
            };
            let (Ok(location), Some(src)) = (s.get::<String>("location"), src.upgrade()) else {
                return;
            };
            let Some(bin) = src.downcast_ref::<gst::Bin>() else {
                return;
            };
            let sink = bin.iterate_recurse().into_iter().flatten().find(|e| {
                e.find_property("location").is_some()
                    && e.property::<Option<String>>("location").as_deref() == Some(&location)
            });
            if let Some(pad) = sink.and_then(|e| e.static_pad("sink")) {
                let first = first.clone();
                pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                    first
                        .lock()
                        .expect("lock")
                        .push((location.clone(), Instant::now()));
                    gst::PadProbeReturn::Remove
                });
            }
        });
    }
    recorder.set_state(gst::State::Playing).expect("plays");
    std::thread::sleep(Duration::from_secs(2));
    let mut times = Vec::new();
    let mut guests = Vec::new();
    for i in 0..runs {
        let id = format!("guest{i}");
        let publisher = gst::parse::launch(&format!(
            "videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 ! \
             vdoninjasink name=s stream-id={id} room=bench {} audiotestsrc is-live=true ! s.",
            server.props()
        ))
        .expect("publisher");
        let started = Instant::now();
        publisher.set_state(gst::State::Playing).expect("plays");
        let seen = |first: &Arc<Mutex<Vec<(String, Instant)>>>| {
            first
                .lock()
                .expect("lock")
                .iter()
                .find(|(l, _)| l.ends_with(&format!("/{id}.mkv")))
                .map(|(_, t)| *t)
        };
        assert!(
            wait_until(MEDIA_WAIT, || seen(&first).is_some()),
            "{id} was not recorded"
        );
        if let Some(t) = seen(&first) {
            times.push(t.duration_since(started).as_secs_f64() * 1000.0);
        }
        guests.push(publisher);
        std::thread::sleep(Duration::from_millis(500));
    }
    println!(
        "a guest joins a recorded room: its PLAYING -> first recorded buffer: {} ms",
        fmt(&times)
    );
    for p in guests {
        let _ = p.set_state(gst::State::Null);
    }
    let _ = recorder.set_state(gst::State::Null);
}
