// SPDX-License-Identifier: MPL-2.0

//! A/V sync (issue 12, item 7): a publisher whose video flashes white and whose audio beeps
//! at the same capture time, once a second, recorded by `vdoninjasrc`: in the file, each
//! beep starts within 40 ms of its flash, from 1.5 s into the file and after 60 s.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::media::*;
use gst::prelude::*;
use gstvdoninja::server::hub::ServerMode;

const RATE: u64 = 48_000;
const BEEP: Duration = Duration::from_millis(60);

/// Within the first `len` of every second of running time?
fn in_pulse(pts: gst::ClockTime, len: Duration) -> bool {
    pts.nseconds() % 1_000_000_000 < len.as_nanos() as u64
}

/// The publisher: black video with a white frame at every whole second, silence with a
/// 1 kHz beep at every whole second, both stamped from the same clock.
fn publisher(server: &Server, room: &str) -> gst::Pipeline {
    let p = launch(&format!(
        "videotestsrc name=v is-live=true pattern=black ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! \
         vdoninjasink name=s stream-id=avsync room={room} {props} \
         audiotestsrc name=a is-live=true wave=silence samplesperbuffer=480 ! \
         audio/x-raw,format=S16LE,rate=48000,channels=1 ! s.",
        props = server.props()
    ));
    let pad = |name: &str| {
        p.by_name(name)
            .and_then(|e| e.static_pad("src"))
            .expect("src pad")
    };
    pad("v").add_probe(gst::PadProbeType::BUFFER, |_, info| {
        if let Some(buf) = info.buffer_mut()
            && buf
                .pts()
                .is_some_and(|t| in_pulse(t, Duration::from_millis(33)))
        {
            let b = buf.make_mut();
            if let Ok(mut map) = b.map_writable() {
                // The Y plane (first 320x240 bytes) white; chroma stays neutral.
                let y = 320 * 240;
                map[..y].fill(235);
            }
        }
        gst::PadProbeReturn::Ok
    });
    pad("a").add_probe(gst::PadProbeType::BUFFER, |_, info| {
        let Some(buf) = info.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(start) = buf.pts() else {
            return gst::PadProbeReturn::Ok;
        };
        let b = buf.make_mut();
        if let Ok(mut map) = b.map_writable() {
            for (i, s) in map.chunks_exact_mut(2).enumerate() {
                let t = start + gst::ClockTime::from_nseconds(i as u64 * 1_000_000_000 / RATE);
                if in_pulse(t, BEEP) {
                    let phase = (t.nseconds() % 1_000_000_000) as f64 / 1e9;
                    let v = (phase * 1000.0 * std::f64::consts::TAU).sin() * 16_000.0;
                    s.copy_from_slice(&(v as i16).to_le_bytes());
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
    p.set_state(gst::State::Playing).expect("publisher plays");
    p
}

/// Flash and beep onsets (file time) in a recording, and when both tracks have begun (the
/// later of their first time stamps).
fn onsets(path: &std::path::Path) -> (Vec<gst::ClockTime>, Vec<gst::ClockTime>, gst::ClockTime) {
    let p = launch(&format!(
        "filesrc location={} ! matroskademux name=d \
         d.video_0 ! queue ! decodebin ! videoconvert ! video/x-raw,format=GRAY8 ! fakesink name=vs sync=false \
         d.audio_0 ! queue ! decodebin ! audioconvert ! audio/x-raw,format=F32LE,channels=1,rate=48000 ! \
         fakesink name=as sync=false",
        path.display()
    ));
    let flashes: Arc<Mutex<(Vec<gst::ClockTime>, bool)>> = Arc::default();
    let firsts: Arc<Mutex<[Option<gst::ClockTime>; 2]>> = Arc::default();
    let beeps: Arc<Mutex<(Vec<gst::ClockTime>, Option<gst::ClockTime>)>> = Arc::default();
    let pad = |name: &str| {
        p.by_name(name)
            .and_then(|e| e.static_pad("sink"))
            .expect("pad")
    };
    let (f, fv) = (flashes.clone(), firsts.clone());
    pad("vs").add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(b) = info.buffer()
            && let (Some(pts), Ok(map)) = (b.pts(), b.map_readable())
        {
            fv.lock().expect("lock")[0].get_or_insert(pts);
            let mean = map.iter().map(|v| u64::from(*v)).sum::<u64>() / map.len().max(1) as u64;
            let mut f = f.lock().expect("lock");
            let white = mean > 128;
            if white && !f.1 {
                f.0.push(pts);
            }
            f.1 = white;
        }
        gst::PadProbeReturn::Ok
    });
    let (be, fa) = (beeps.clone(), firsts.clone());
    pad("as").add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(b) = info.buffer()
            && let (Some(pts), Ok(map)) = (b.pts(), b.map_readable())
        {
            fa.lock().expect("lock")[1].get_or_insert(pts);
            let mut be = be.lock().expect("lock");
            for (i, c) in map.chunks_exact(4).enumerate() {
                let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]).abs();
                let t = pts + gst::ClockTime::from_nseconds(i as u64 * 1_000_000_000 / RATE);
                if v > 0.1 {
                    // A beep starts after at least half a second of silence.
                    if be
                        .1
                        .is_none_or(|last| t > last + gst::ClockTime::from_mseconds(500))
                    {
                        be.0.push(t);
                    }
                    be.1 = Some(t);
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
    p.set_state(gst::State::Playing).expect("plays");
    let bus = p.bus().expect("bus");
    let end = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(120),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    assert!(
        matches!(
            end.as_ref().map(|m| m.view()),
            Some(gst::MessageView::Eos(_))
        ),
        "{end:?}"
    );
    let _ = p.set_state(gst::State::Null);
    let f = flashes.lock().expect("lock").0.clone();
    let b = beeps.lock().expect("lock").0.clone();
    let both = firsts.lock().expect("lock").iter().flatten().copied().max();
    (f, b, both.unwrap_or_default())
}

#[test]

fn flash_and_beep_stay_within_40_ms_at_the_start_and_after_60_s() {
    // Printed only if the test fails (it failed once in CI: no recording within 30 s).
    let log = common::logring::keep("vdoninja*:5,webrtcbin:4");
    let server = Server::start(ServerMode::Official);
    let dir = tempfile::tempdir().expect("tempdir");
    let room = "avroom";
    let recorder = launch(&format!(
        "vdoninjasrc room={room} record-location={}/%s.mkv {}",
        dir.path().display(),
        server.props()
    ));
    recorder.set_state(gst::State::Playing).expect("plays");
    let publisher = publisher(&server, room);
    let file = dir.path().join("avsync.mkv");
    let started = wait_until(Duration::from_secs(30), || {
        log.bus(&recorder, "recorder");
        log.bus(&publisher, "publisher");
        file.exists()
    });
    assert!(started, "recording starts");
    // 65 s of recording.
    let since = std::time::Instant::now();
    let recorded = wait_until(Duration::from_secs(90), || {
        since.elapsed() > Duration::from_secs(65)
    });
    assert!(recorded, "65 s recorded");
    recorder.send_event(gst::event::Eos::new());
    let bus = recorder.bus().expect("bus");
    let _ = bus.timed_pop_filtered(gst::ClockTime::from_seconds(15), &[gst::MessageType::Eos]);
    let _ = recorder.set_state(gst::State::Null);
    let _ = publisher.set_state(gst::State::Null);

    let (flashes, beeps, both) = onsets(&file);
    // Each flash with the beep nearest to it. Not the flashes of the first 1.5 s after both
    // tracks have begun: a flash or beep that began before its track did (the file starts at a
    // key frame, at any point of the pattern) has no onset in the file; and until the
    // publisher's first RTCP sender report reaches the recorder (RTCP comes once a second),
    // its jitter buffers align the tracks by arrival: the first second was 224 ms off in 1 of
    // 5 runs, on a loaded machine, then within 10 ms.
    let pairs: Vec<(gst::ClockTime, i64)> = flashes
        .iter()
        .filter(|f| **f > both + gst::ClockTime::from_mseconds(1500))
        .filter_map(|f| {
            let b = beeps
                .iter()
                .min_by_key(|b| (b.nseconds() as i64 - f.nseconds() as i64).abs())?;
            Some((*f, (b.nseconds() as i64 - f.nseconds() as i64) / 1_000_000))
        })
        .collect();
    println!(
        "{} flashes, {} beeps; offsets (ms, beep - flash) by file time: {:?}",
        flashes.len(),
        beeps.len(),
        pairs
            .iter()
            .map(|(t, o)| (t.seconds(), *o))
            .collect::<Vec<_>>()
    );
    let first = pairs.first().map(|p| p.0).expect("a flash");
    let start: Vec<i64> = pairs.iter().take(5).map(|p| p.1).collect();
    let late: Vec<i64> = pairs
        .iter()
        .filter(|p| p.0 >= first + gst::ClockTime::from_seconds(60))
        .map(|p| p.1)
        .collect();
    assert!(start.len() == 5 && !late.is_empty(), "{pairs:?}");
    assert!(
        start.iter().chain(&late).all(|o| o.abs() <= 40),
        "offsets at the start {start:?}, after 60 s {late:?}"
    );
}
