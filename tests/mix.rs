// SPDX-License-Identifier: MPL-2.0

//! The room mix: publishers with distinct solid colours and tones; the mix's frames show each
//! colour in its own tile and its audio holds each tone; a guest that leaves loses its tile
//! while the others grow; the mix keeps its frame rate through joins, leaves and a guest
//! whose media stops.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::media::*;
use gst::prelude::*;
use gstvdoninja::server::hub::ServerMode;

const W: usize = 320;
const H: usize = 180;
const FPS: u64 = 10;
const RATE: usize = 48_000;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Colour {
    Red,
    Green,
    Blue,
    Yellow,
    /// Label text.
    White,
}

impl Colour {
    fn argb(self) -> u32 {
        match self {
            Colour::Red => 0xffff0000,
            Colour::Green => 0xff00ff00,
            Colour::Blue => 0xff0000ff,
            Colour::Yellow => 0xffffff00,
            Colour::White => 0xffffffff,
        }
    }

    fn tone(self) -> f64 {
        match self {
            Colour::Red => 500.0,
            Colour::Green => 1300.0,
            Colour::Blue => 3100.0,
            Colour::Yellow => 2200.0,
            Colour::White => 0.0,
        }
    }

    fn matches(self, r: u8, g: u8, b: u8) -> bool {
        let (hi, lo) = (|v: u8| v > 150, |v: u8| v < 100);
        match self {
            Colour::Red => hi(r) && lo(g) && lo(b),
            Colour::Green => lo(r) && hi(g) && lo(b),
            Colour::Blue => lo(r) && lo(g) && hi(b),
            Colour::Yellow => hi(r) && hi(g) && lo(b),
            // Small text: chroma from the tile around it bleeds in.
            Colour::White => r > 160 && g > 160 && b > 160,
        }
    }
}

/// A publisher in the room: a solid colour and a tone, with valves to stop its media.
fn publisher(server: &Server, room: &str, c: Colour) -> gst::Pipeline {
    publisher_with(server, room, c, "")
}

/// The same, with more of the sink's properties.
fn publisher_with(server: &Server, room: &str, c: Colour, extra: &str) -> gst::Pipeline {
    let p = launch(&format!(
        "videotestsrc is-live=true pattern=solid-color foreground-color={argb} ! \
         video/x-raw,width=320,height=240,framerate=15/1 ! valve name=vv ! \
         vdoninjasink name=s stream-id={id} room={room} label={id} {props} {extra} \
         audiotestsrc is-live=true freq={freq} volume=0.2 ! audio/x-raw,rate=48000,channels=1 ! \
         valve name=av ! s.",
        argb = c.argb(),
        id = format!("{c:?}").to_lowercase(),
        freq = c.tone(),
        props = server.props(),
    ));
    p.set_state(gst::State::Playing).expect("publisher plays");
    p
}

fn stall(p: &gst::Pipeline, stalled: bool) {
    for v in ["vv", "av"] {
        p.by_name(v).expect("valve").set_property("drop", stalled);
    }
}

/// What the mix's sinks saw.
#[derive(Default)]
struct Seen {
    /// The newest RGB frame.
    frame: Vec<u8>,
    /// Arrival time and PTS of every frame.
    frames: Vec<(Instant, gst::ClockTime)>,
    /// The newest half second of mono audio.
    audio: VecDeque<f32>,
}

struct Mix {
    pipeline: gst::Pipeline,
    seen: Arc<Mutex<Seen>>,
}

impl Mix {
    fn start(server: &Server, room: &str, recordings: &std::path::Path) -> Self {
        Self::start_with(server, room, recordings, "")
    }

    /// The same, with more of the source's properties.
    fn start_with(server: &Server, room: &str, recordings: &std::path::Path, extra: &str) -> Self {
        init();
        let pipeline = gst::parse::launch(&format!(
            "vdoninjasrc name=src room={room} mix=true mix-width={W} mix-height={H} \
             mix-framerate={FPS}/1 record-location={rec}/%s.mkv {props} {extra} \
             src.video_mix ! queue ! videoconvert ! video/x-raw,format=RGB ! fakesink name=v \
             src.audio_mix ! queue ! audioconvert ! audio/x-raw,format=F32LE,channels=1,rate={RATE} ! \
             fakesink name=a",
            props = server.props(),
            rec = recordings.display(),
        ))
        .expect("mix pipeline parses")
        .downcast::<gst::Pipeline>()
        .expect("pipeline");
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let pad = |name: &str| {
            pipeline
                .by_name(name)
                .and_then(|e| e.static_pad("sink"))
                .expect("sink pad")
        };
        let s = seen.clone();
        pad("v").add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer()
                && let Ok(map) = b.map_readable()
            {
                let mut s = s.lock().expect("lock");
                s.frame = map.to_vec();
                s.frames
                    .push((Instant::now(), b.pts().unwrap_or(gst::ClockTime::ZERO)));
            }
            gst::PadProbeReturn::Ok
        });
        let s = seen.clone();
        pad("a").add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer()
                && let Ok(map) = b.map_readable()
            {
                let mut s = s.lock().expect("lock");
                for c in map.chunks_exact(4) {
                    s.audio
                        .push_back(f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
                }
                let excess = s.audio.len().saturating_sub(RATE / 2);
                s.audio.drain(..excess);
            }
            gst::PadProbeReturn::Ok
        });
        pipeline.set_state(gst::State::Playing).expect("mix plays");
        Self { pipeline, seen }
    }

    /// Share of the frame in colour `c`, and its centre.
    fn coverage(&self, c: Colour) -> (f64, (f64, f64)) {
        let s = self.seen.lock().expect("lock");
        if s.frame.len() < W * H * 3 {
            return (0.0, (0.0, 0.0));
        }
        let (mut n, mut sx, mut sy) = (0usize, 0usize, 0usize);
        for (i, px) in s.frame.chunks_exact(3).take(W * H).enumerate() {
            if c.matches(px[0], px[1], px[2]) {
                n += 1;
                sx += i % W;
                sy += i / W;
            }
        }
        let share = n as f64 / (W * H) as f64;
        let centre = if n > 0 {
            (sx as f64 / n as f64, sy as f64 / n as f64)
        } else {
            (0.0, 0.0)
        };
        (share, centre)
    }

    /// Power of the newest half second of audio at `freq`, relative to the signal's power.
    fn tone(&self, freq: f64) -> f64 {
        let s = self.seen.lock().expect("lock");
        let x: Vec<f64> = s.audio.iter().map(|v| f64::from(*v)).collect();
        if x.len() < RATE / 4 {
            return 0.0;
        }
        // Goertzel.
        let k = 2.0 * (2.0 * std::f64::consts::PI * freq / RATE as f64).cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for v in &x {
            let s0 = v + k * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - k * s1 * s2;
        let energy: f64 = x.iter().map(|v| v * v).sum();
        if energy <= 0.0 {
            0.0
        } else {
            // A pure tone gives len/2 times its energy.
            power / (energy * x.len() as f64 / 2.0)
        }
    }

    fn frames(&self) -> Vec<(Instant, gst::ClockTime)> {
        self.seen.lock().expect("lock").frames.clone()
    }

    fn errors(&self) -> Vec<String> {
        bus_errors(&self.pipeline)
    }
}

/// The longest time between two frames' arrivals.
fn max_gap(frames: &[(Instant, gst::ClockTime)]) -> Duration {
    frames
        .windows(2)
        .map(|w| w[1].0.saturating_duration_since(w[0].0))
        .max()
        .unwrap_or_default()
}

/// Frames that reached the sink from `from` on, and the largest PTS step between them.
fn rate_since(frames: &[(Instant, gst::ClockTime)], from: Instant) -> (usize, gst::ClockTime) {
    let later: Vec<_> = frames.iter().filter(|(t, _)| *t >= from).collect();
    let step = later
        .windows(2)
        .map(|w| w[1].1.saturating_sub(w[0].1))
        .max()
        .unwrap_or_default();
    (later.len(), step)
}

#[test]
fn an_av1_guest_is_in_the_mix() {
    let server = Server::start(ServerMode::Official);
    let p = publisher_with(&server, "av1mix", Colour::Red, "video-codec=av1");
    let dir = tempfile::tempdir().expect("temp dir");
    let mix = Mix::start_with(&server, "av1mix", dir.path(), "video-codec=av1");
    let seen = wait_until(Duration::from_secs(30), || {
        mix.coverage(Colour::Red).0 > 0.1 && mix.tone(Colour::Red.tone()) > 0.05
    });
    assert!(
        seen,
        "the AV1 guest is in the mix: {:?} tone {:.3}; errors {:?}",
        mix.coverage(Colour::Red),
        mix.tone(Colour::Red.tone()),
        mix.errors()
    );
    // It came as AV1: the guest's own file, from the same connection, holds AV1 (some of it
    // first: on a loaded machine the mix shows the guest before its file has a picture).
    let file = dir.path().join("red.mkv");
    let size = || std::fs::metadata(&file).map_or(0, |m| m.len());
    assert!(
        wait_until(Duration::from_secs(20), || size() > 100_000),
        "the guest's file grows: {} bytes",
        size()
    );
    let _ = mix.pipeline.set_state(gst::State::Null);
    let _ = p.set_state(gst::State::Null);
    let r = inspect_file(&file, "matroskademux");
    assert!(
        r.all_decoded() && r.count("video/x-av1") == 1,
        "{:?} {:?}",
        r.streams,
        r.errors
    );
}

#[test]
fn the_room_mix_shows_every_guest_and_keeps_its_pace() {
    let server = Server::start(ServerMode::Official);
    let room = "mixroom";
    let colours = [Colour::Red, Colour::Green, Colour::Blue];
    let mut pubs: Vec<gst::Pipeline> = colours
        .iter()
        .map(|c| publisher(&server, room, *c))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let mix = Mix::start(&server, room, dir.path());

    // Each colour in its own tile, each tone in the sound.
    let all_in = wait_until(Duration::from_secs(30), || {
        let cov: Vec<_> = colours.iter().map(|c| mix.coverage(*c)).collect();
        let apart = cov.iter().enumerate().all(|(i, (_, a))| {
            cov[i + 1..]
                .iter()
                .all(|(_, b)| (a.0 - b.0).hypot(a.1 - b.1) > 60.0)
        });
        cov.iter().all(|(share, _)| *share > 0.1)
            && apart
            && colours.iter().all(|c| mix.tone(c.tone()) > 0.05)
    });
    let report = |mix: &Mix| {
        colours
            .iter()
            .chain([&Colour::Yellow])
            .map(|c| {
                format!(
                    "{c:?}: {:?} tone {:.3}",
                    mix.coverage(*c),
                    mix.tone(c.tone())
                )
            })
            .collect::<Vec<_>>()
    };
    assert!(
        all_in,
        "not every guest is in the mix: {:?}; errors {:?}",
        report(&mix),
        mix.errors()
    );
    let three: Vec<f64> = colours.iter().map(|c| mix.coverage(*c).0).collect();
    // The guests' labels, in white under their pictures.
    assert!(
        wait_until(Duration::from_secs(5), || mix.coverage(Colour::White).0
            > 0.0005),
        "no label in the mix: {:?}",
        mix.pipeline
            .by_name("src")
            .map(|s| s.property::<gst::Structure>("stats").to_string())
    );
    assert!(mix.tone(Colour::Yellow.tone()) < 0.01, "no tone of nobody");

    // A guest whose media stops: the mix goes on. It waits for the guest once, up to its
    // latency (the guest's jitter buffer + 300 ms), then runs at its rate without it.
    stall(&pubs[1], true);
    let from = Instant::now();
    assert!(wait_until(Duration::from_secs(10), || {
        from.elapsed() > Duration::from_millis(4500)
    }));
    let frames = mix.frames();
    let stalled: Vec<_> = frames.iter().filter(|(t, _)| *t >= from).copied().collect();
    let arrivals: Vec<_> = stalled
        .iter()
        .map(|(t, pts)| {
            (
                t.saturating_duration_since(from).as_millis(),
                pts.mseconds(),
            )
        })
        .collect();
    let (n, step) = rate_since(&stalled, from + Duration::from_millis(1500));
    assert!(
        n as u64 >= 3 * FPS * 8 / 10,
        "{n} frames in 3 s with a stalled guest: {arrivals:?}"
    );
    let wait = max_gap(&stalled);
    assert!(
        step <= gst::ClockTime::from_mseconds(2 * 1000 / FPS) && wait < Duration::from_secs(1),
        "a hole of {step} in the mix, or a wait of {wait:?}: {arrivals:?}"
    );
    println!("a stalled guest held the mix once for {wait:?}, then {n} frames in 3 s");
    stall(&pubs[1], false);

    // Blue leaves: its tile goes, the others grow, its tone goes.
    let from = Instant::now();
    let blue = pubs.pop().expect("blue");
    let _ = blue.set_state(gst::State::Null);
    let regrown = wait_until(Duration::from_secs(10), || {
        mix.coverage(Colour::Blue).0 < 0.002
            && mix.coverage(Colour::Red).0 > three[0] * 1.4
            && mix.coverage(Colour::Green).0 > three[1] * 1.4
            && mix.tone(Colour::Blue.tone()) < 0.01
    });
    assert!(
        regrown,
        "after blue left: {:?}, before {three:?}",
        report(&mix)
    );
    println!(
        "blue's tile gone and the others grown {:?} after it left",
        from.elapsed()
    );

    // Yellow joins.
    let joined = Instant::now();
    pubs.push(publisher(&server, room, Colour::Yellow));
    assert!(
        wait_until(Duration::from_secs(15), || mix.coverage(Colour::Yellow).0
            > 0.1
            && mix.tone(Colour::Yellow.tone()) > 0.05),
        "yellow never appeared: {:?}",
        report(&mix)
    );
    println!(
        "yellow in the mix {:?} after its publisher started",
        joined.elapsed()
    );

    // Through the leave and the join, the mix kept its rate.
    let (n, step) = rate_since(&mix.frames(), from);
    let expected = from.elapsed().as_secs_f64() * FPS as f64;
    assert!(
        n as f64 >= expected * 0.8,
        "{n} frames where {expected:.0} were due"
    );
    assert!(
        step <= gst::ClockTime::from_mseconds(2 * 1000 / FPS),
        "a hole of {step} in the mix"
    );
    assert!(mix.errors().is_empty(), "{:?}", mix.errors());
    let _ = mix.pipeline.set_state(gst::State::Null);
    for p in pubs {
        let _ = p.set_state(gst::State::Null);
    }

    // From the same connections, every guest's own file.
    for c in [Colour::Red, Colour::Green, Colour::Blue, Colour::Yellow] {
        let name = format!("{c:?}").to_lowercase();
        let path = dir.path().join(format!("{name}.mkv"));
        let r = inspect_file(&path, "matroskademux");
        assert!(
            r.all_decoded() && r.count("video") == 1 && r.count("audio") == 1,
            "{}: {:?} {:?}",
            path.display(),
            r.streams,
            r.errors
        );
    }
}
