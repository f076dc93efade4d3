// SPDX-License-Identifier: MPL-2.0

//! Aligned per-guest audio (`record-audio`): guests that beep on one clock, joining at
//! different times, one leaving and coming back; in the files the beeps stand at the same
//! place, the files have the same length, and the returning guest continues in its file.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::media::*;
use common::recorder::Recorder;
use gst::prelude::*;
use gstvdoninja::server::hub::ServerMode;

const RATE: usize = 48_000;
/// Beeps every half second.
const BEEP_EVERY: Duration = Duration::from_millis(500);

/// One audio source beeping on the pipeline's clock, a tee for the guests.
struct Beeper {
    pipeline: gst::Pipeline,
    tee: gst::Element,
}

/// A guest: `queue ! vdoninjasink`, fed by the beeper's tee.
struct Guest {
    bin: gst::Bin,
    tee_pad: gst::Pad,
}

impl Beeper {
    fn start() -> Self {
        init();
        let pipeline = gst::parse::launch(&format!(
            "audiotestsrc is-live=true wave=ticks freq=1000 sine-periods-per-tick=40 \
             tick-interval={} volume=0.8 ! audio/x-raw,rate=48000,channels=1 ! \
             tee name=t allow-not-linked=true",
            BEEP_EVERY.as_nanos()
        ))
        .expect("beeper parses")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
        let tee = pipeline.by_name("t").expect("tee");
        pipeline
            .set_state(gst::State::Playing)
            .expect("beeper plays");
        Self { pipeline, tee }
    }

    fn join(&self, server: &Server, stream: &str, room: &str) -> Guest {
        let bin = gst::parse::bin_from_description(
            &format!(
                "queue ! audio/x-raw ! vdoninjasink stream-id={stream} room={room} {} password=false",
                server.props()
            ),
            true,
        )
        .expect("guest parses");
        self.pipeline.add(&bin).expect("add guest");
        // Playing before it is linked: a push into a stopped branch would stop the beeper.
        bin.sync_state_with_parent().expect("guest plays");
        let tee_pad = self.tee.request_pad_simple("src_%u").expect("tee pad");
        tee_pad
            .link(&bin.static_pad("sink").expect("ghost sink"))
            .expect("link guest");
        Guest { bin, tee_pad }
    }

    fn leave(&self, g: Guest) {
        if let Some(peer) = g.tee_pad.peer() {
            let _ = g.tee_pad.unlink(&peer);
        }
        self.tee.release_request_pad(&g.tee_pad);
        let _ = g.bin.set_state(gst::State::Null);
        let _ = self.pipeline.remove(&g.bin);
    }
}

impl Drop for Beeper {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// A file's samples (mono, 48 kHz), decoded by GStreamer.
fn decode(path: &Path) -> Vec<i16> {
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! audioconvert ! audioresample ! \
         audio/x-raw,format=S16LE,channels=1,rate=48000 ! appsink name=out sync=false",
        path.display()
    ))
    .expect("decoder parses")
    .downcast::<gst::Pipeline>()
    .expect("a pipeline");
    let sink = pipeline
        .by_name("out")
        .expect("appsink")
        .downcast::<gst_app::AppSink>()
        .expect("an appsink");
    pipeline
        .set_state(gst::State::Playing)
        .expect("decoder plays");
    let mut samples = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        let Some(buf) = sample.buffer() else { continue };
        let map = buf.map_readable().expect("readable");
        samples.extend(
            map.chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]])),
        );
    }
    let errors = bus_errors(&pipeline);
    let _ = pipeline.set_state(gst::State::Null);
    assert!(errors.is_empty(), "{path:?} decodes: {errors:?}");
    samples
}

/// Sample positions where a beep begins: loud after at least 100 ms of quiet.
fn beeps(samples: &[i16]) -> Vec<usize> {
    let threshold = 8_000;
    let mut onsets = Vec::new();
    let mut quiet_since = 0usize;
    for (i, s) in samples.iter().enumerate() {
        if s.unsigned_abs() >= threshold {
            if i - quiet_since >= RATE / 10 {
                onsets.push(i);
            }
            quiet_since = i + 1;
        }
    }
    onsets
}

/// Sample positions where a beep ends: the last loud sample before at least 100 ms of quiet.
fn beep_ends(samples: &[i16]) -> Vec<usize> {
    let mut reversed: Vec<i16> = samples.to_vec();
    reversed.reverse();
    let mut ends: Vec<usize> = beeps(&reversed)
        .into_iter()
        .map(|i| samples.len() - 1 - i)
        .collect();
    ends.reverse();
    ends
}

/// Each beep's (onset, end), from its onsets `on`; a beep the file's end cuts has no end and
/// is left out.
fn edges(samples: &[i16], on: &[usize]) -> Vec<(usize, usize)> {
    let ends = beep_ends(samples);
    on.iter()
        .filter_map(|&o| {
            let end = ends.iter().copied().find(|&e| e >= o)?;
            (end - o < RATE / 2).then_some((o, end))
        })
        .collect()
}

fn secs(sample: usize) -> f64 {
    sample as f64 / RATE as f64
}

fn audio_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

fn file_of<'a>(files: &'a [PathBuf], stream: &str) -> &'a PathBuf {
    files
        .iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{stream}-")))
        })
        .unwrap_or_else(|| panic!("no file for {stream} in {files:?}"))
}

fn aligned_room(format: &str) {
    let _log = common::logring::keep("vdoninja*:6");
    let server = Server::start(ServerMode::Official);
    let dir = tempfile::tempdir().expect("tempdir");
    let room = format!("daw{format}");
    let mut rec = Recorder::start(&format!(
        "vdoninjasrc room={room} password=false record-location={}/%s-%t.mkv record-audio={format} {}",
        dir.path().display(),
        server.props()
    ));
    let started = Instant::now();
    let beeper = Beeper::start();
    let host = beeper.join(&server, "host", &room);
    rec.wait("the host is recorded", |r| r.started.len() == 1);
    std::thread::sleep(Duration::from_secs(2));
    let guest = beeper.join(&server, "guest", &room);
    rec.wait("the guest is recorded", |r| r.started.len() == 2);
    std::thread::sleep(Duration::from_secs(3));
    let left = started.elapsed();
    beeper.leave(guest);
    rec.wait("the guest's first file ends", |r| r.finished.len() == 1);
    std::thread::sleep(Duration::from_secs(3));
    let back = started.elapsed();
    let guest = beeper.join(&server, "guest", &room);
    rec.wait("the guest is recorded again", |r| r.started.len() == 3);
    std::thread::sleep(Duration::from_secs(3));
    let rec = rec.end();
    let total = started.elapsed();
    beeper.leave(guest);
    beeper.leave(host);
    assert!(rec.errors.is_empty(), "{:?}", rec.errors);

    let files = audio_files(dir.path(), format);
    assert_eq!(files.len(), 2, "one file per stream ID: {files:?}");
    let host_samples = decode(file_of(&files, "host"));
    let guest_samples = decode(file_of(&files, "guest"));
    let (h, g) = (beeps(&host_samples), beeps(&guest_samples));
    eprintln!(
        "{format}: host {} samples ({:.3} s), guest {} ({:.3} s), recording ran {total:?}; \
         guest left at {left:?}, back at {back:?}",
        host_samples.len(),
        secs(host_samples.len()),
        guest_samples.len(),
        secs(guest_samples.len())
    );
    eprintln!(
        "host beeps at {:?}",
        h.iter()
            .map(|&s| format!("{:.3}", secs(s)))
            .collect::<Vec<_>>()
    );
    eprintln!(
        "guest beeps at {:?}",
        g.iter()
            .map(|&s| format!("{:.3}", secs(s)))
            .collect::<Vec<_>>()
    );
    // Same length, within one 20 ms audio frame.
    assert!(
        host_samples.len().abs_diff(guest_samples.len()) <= RATE / 50,
        "lengths {} and {}",
        host_samples.len(),
        guest_samples.len()
    );
    // As long as the recording ran (less what came before the element played).
    let len = secs(host_samples.len());
    assert!(
        len <= total.as_secs_f64() + 0.1 && len >= total.as_secs_f64() - 2.0,
        "{len} s of a {total:?} recording"
    );
    // Every guest beep stands where the host's does, within 10 ms; but for the recording's last
    // 0.3 s, where what was still in a jitter buffer (200 ms) when the recording ended is
    // silence in one file and not in another. A beep is measured at both edges: at the edge of
    // a connection a beep can lose its first or last packet (concealed at the join, cut at the
    // leave: measured, 1 run in ~5 under load, onset 8-29 ms late with its end in place, or its
    // end early with its onset in place), and then its other edge shows where it stands.
    let (host_beeps, guest_beeps) = (edges(&host_samples, &h), edges(&guest_samples, &g));
    let measured: Vec<(f64, f64)> = guest_beeps
        .iter()
        .filter(|&&(on, _)| secs(on) < len - 0.3)
        .map(|&(on, end)| {
            let &(hon, hend) = host_beeps
                .iter()
                .min_by_key(|(hon, _)| hon.abs_diff(on))
                .expect("the host beeps");
            (
                (secs(on) - secs(hon)) * 1000.0,
                (secs(end) - secs(hend)) * 1000.0,
            )
        })
        .collect();
    eprintln!(
        "guest - host, per beep, onset/end (ms): {:?}",
        measured
            .iter()
            .map(|(on, end)| format!("{on:.1}/{end:.1}"))
            .collect::<Vec<_>>()
    );
    assert!(g.len() >= 8, "the guest beeps in its file: {g:?}");
    let stands = |&(on, end): &(f64, f64)| {
        let aligned = |ms: f64| ms.abs() <= 10.0;
        (aligned(on) && aligned(end))
            // Its start lost: it begins late, ends in place.
            || (on > 10.0 && aligned(end))
            // Its end lost: it begins in place, ends early.
            || (aligned(on) && end < -10.0)
    };
    assert!(
        measured.iter().all(stands),
        "the beeps line up: {measured:?}"
    );
    let whole = measured
        .iter()
        .filter(|(on, end)| on.abs() <= 10.0 && end.abs() <= 10.0)
        .count();
    assert!(
        whole + 2 >= measured.len(),
        "at most a connection's edges lose a packet: {measured:?}"
    );
    // The guest joined 2 s after the host: silence before; none of its beeps while it was away.
    let first_guest = secs(g[0]);
    assert!(
        first_guest >= 1.5,
        "the guest's first beep at {first_guest} s"
    );
    let away = (left.as_secs_f64() + 0.5, back.as_secs_f64());
    assert!(
        !g.iter().any(|&b| secs(b) > away.0 && secs(b) < away.1),
        "silence while the guest was away {away:?}: {g:?}"
    );
    assert!(
        g.iter().any(|&b| secs(b) > back.as_secs_f64()),
        "the returning guest continues in its file: {g:?}"
    );
    // The host beeps throughout, every half second.
    assert!(
        h.len() as f64 >= (len - 2.0) * 2.0 * 0.9,
        "host beeps {h:?}"
    );
    let manifest_path = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("manifest");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("read")).expect("json");
    let audio = m["audio"].as_array().cloned().unwrap_or_default();
    assert_eq!(audio.len(), 2, "{m:#}");
    assert!(
        audio.iter().all(|a| a["finalized"] == true),
        "the manifest lists final files: {m:#}"
    );
}

#[test]
fn flac_beeps_line_up_across_late_joins_and_a_return() {
    aligned_room("flac");
}

#[test]
fn wav_beeps_line_up_across_late_joins_and_a_return() {
    aligned_room("wav");
}

#[test]
#[ignore = "run as a child process by a_killed_recorder_leaves_audio_files_that_play"]
fn child_recorder() {
    common::recorder::run_child_recorder();
}

#[test]
fn a_killed_recorder_leaves_audio_files_that_play() {
    let server = Server::start(ServerMode::Official);
    let room = "dawkill";
    let recorders: Vec<(&str, tempfile::TempDir, common::run::Killed)> = ["wav", "flac"]
        .into_iter()
        .map(|format| {
            let dir = tempfile::tempdir().expect("tempdir");
            let child = common::recorder::spawn_child_recorder(&format!(
                "vdoninjasrc room={room} password=false record-location={}/%s-%t.mkv \
                 record-audio={format} {}",
                dir.path().display(),
                server.props()
            ));
            (format, dir, child)
        })
        .collect();
    let beeper = Beeper::start();
    let guest = beeper.join(&server, "victim", room);
    let size = |dir: &Path, ext: &str| {
        audio_files(dir, ext)
            .first()
            .map_or(0, |f| std::fs::metadata(f).map_or(0, |m| m.len()))
    };
    // Three seconds and more of audio in each (the decoded Opus is stereo: 192,000 bytes a
    // second of WAV; FLAC of beeps and silence is small). (This said 3 * 96,000 before: 1.5 s
    // of stereo, and a full run once killed the recorder at 1.78 s of WAV.)
    let grew = wait_until(MEDIA_WAIT, || {
        size(recorders[0].1.path(), "wav") > 3 * 192_000
            && size(recorders[1].1.path(), "flac") > 20_000
    });
    for (format, dir, child) in recorders {
        let _ = child.kill_and_read();
        assert!(
            grew,
            "the {format} file grows: {} bytes",
            size(dir.path(), format)
        );
        let files = audio_files(dir.path(), format);
        assert_eq!(files.len(), 1, "{files:?}");
        let samples = decode(&files[0]);
        let beeps = beeps(&samples);
        eprintln!(
            "{format}, killed: {:.3} s decoded, {} beeps",
            secs(samples.len()),
            beeps.len()
        );
        assert!(
            secs(samples.len()) >= 2.0 && beeps.len() >= 2,
            "{format}: {:.3} s, beeps {beeps:?}",
            secs(samples.len())
        );
    }
    beeper.leave(guest);
}

#[test]
fn record_audio_without_record_location_is_a_clear_error() {
    let p = launch("vdoninjasrc room=r record-audio=flac server=ws://127.0.0.1:9 auto-turn=false");
    assert!(p.set_state(gst::State::Playing).is_err());
    let errors = bus_errors(&p);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("record-audio") && e.contains("record-location")),
        "{errors:?}"
    );
    let _ = p.set_state(gst::State::Null);
}
