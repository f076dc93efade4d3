// SPDX-License-Identifier: MPL-2.0

//! Every `gst-launch-1.0` line of the README and every pipeline of `docs/obs.md` runs, against
//! our server on 127.0.0.1, and its media is checked on the far side: the lines are read from
//! the documents themselves, so a line that stops working (or a new one that never worked)
//! fails here.
//!
//! A line is run as `gst-launch-1.0` runs it (shell words, then `gst_parse_launchv`), with
//! these substitutions, which are the only differences from what users type:
//! * after `vdoninjasrc` / `vdoninjasink`: our server and loopback ICE ([`Server::props`]);
//! * `v4l2src` → `videotestsrc is-live=true`, `pulsesrc` → `audiotestsrc is-live=true`;
//! * `autovideosink` / `autoaudiosink` → a counting `fakesink`;
//! * relative `location=`, `record-location=`, `playlist-location=` → inside a temporary folder;
//! * an OBS source pipeline ends in obs-gstreamer's two sinks, `video` and `audio`: here two
//!   counting `fakesink`s of those names; an OBS output pipeline starts from obs-gstreamer's
//!   `video` (H.264 from OBS's encoder, `h264parse name=video`) and `audio` (AAC,
//!   `aacparse name=audio`): here made from test sources the same way.
//!
//! The other side: a `vdoninjasrc stream-id=S` line gets a publisher of S, a room line two
//! publishers in that room (same password), a `vdoninjasink` line a viewer that decodes. A
//! `stream-id` viewing line is checked again after its publisher stops and a new one publishes
//! the same ID 3 s later (the pipeline, linked once, must get media again).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::media::*;
use common::run::publisher;
use gst::prelude::*;
use gstvdoninja::server::hub::ServerMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Launch,
    ObsSource,
    ObsOutput,
}

#[derive(Debug)]
struct DocLine {
    origin: String,
    kind: Kind,
    text: String,
}

/// Fenced blocks of `file`: `sh` blocks give their `gst-launch-1.0` commands (continuation
/// lines joined), `obs-source` / `obs-output` blocks give each non-empty line.
fn doc_lines(file: &str) -> Vec<DocLine> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    let mut pending = String::new();
    let mut start = 0;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(info) = trimmed.strip_prefix("```") {
            block = match block {
                None => Some(info.trim().to_string()),
                Some(_) => None,
            };
            continue;
        }
        let Some(info) = block.as_deref() else {
            continue;
        };
        let kind = match info {
            "sh" => Kind::Launch,
            "obs-source" => Kind::ObsSource,
            "obs-output" => Kind::ObsOutput,
            _ => continue,
        };
        if pending.is_empty() {
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            start = i + 1;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                let text = std::mem::take(&mut pending);
                if kind != Kind::Launch || text.starts_with("gst-launch-1.0 ") {
                    out.push(DocLine {
                        origin: format!("{file}:{start}"),
                        kind,
                        text,
                    });
                }
            }
        }
    }
    out
}

/// What a line's run is checked for.
#[derive(Default)]
struct Expect {
    stream: Option<String>,
    room: Option<String>,
    password: Option<String>,
    is_source: bool,
    is_sink: bool,
    eos: bool,
    /// (kind of output, path)
    outputs: Vec<(&'static str, PathBuf)>,
    sinks: Vec<String>,
    audio_in: bool,
    /// `record-audio`: the aligned audio files' extension.
    record_audio: Option<String>,
}

/// The line as `gst_parse_launchv` arguments, with the substitutions of this file's header.
fn rewrite(line: &DocLine, server: &Server, dir: &Path) -> (Vec<String>, Expect) {
    let mut words =
        shlex::split(&line.text).unwrap_or_else(|| panic!("{}: bad quoting", line.origin));
    let mut exp = Expect::default();
    match line.kind {
        Kind::Launch => {
            assert_eq!(words.remove(0), "gst-launch-1.0");
            while words.first().is_some_and(|w| w.starts_with('-')) {
                let flag = words.remove(0);
                exp.eos |= flag == "-e";
            }
        }
        Kind::ObsSource => {
            exp.eos = false;
            for name in ["video", "audio"] {
                words.push("fakesink".into());
                words.push(format!("name={name}"));
                exp.sinks.push(name.to_string());
            }
        }
        Kind::ObsOutput => {
            let obs = "videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 ! \
                       x264enc tune=zerolatency bframes=0 key-int-max=60 ! \
                       video/x-h264,stream-format=byte-stream ! h264parse name=video \
                       audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! avenc_aac ! \
                       aacparse name=audio";
            let mut pre = shlex::split(obs).expect("words");
            pre.append(&mut words);
            words = pre;
            exp.audio_in = true;
        }
    }
    // An empty value must reach the parser as "" (a bare `stun-server=` would take the next
    // word as its value, as it does for gst-launch-1.0).
    let props: Vec<String> = shlex::split(&server.props())
        .expect("props")
        .into_iter()
        .map(|w| match w.strip_suffix('=') {
            Some(key) => format!("{key}=\"\""),
            None => w,
        })
        .collect();
    let mut out = Vec::new();
    let mut sink_n = 0;
    for w in words {
        match w.as_str() {
            "v4l2src" => out.extend(["videotestsrc".into(), "is-live=true".into()]),
            "pulsesrc" => {
                exp.audio_in = true;
                out.extend(["audiotestsrc".into(), "is-live=true".into()]);
            }
            "autovideosink" | "autoaudiosink" => {
                sink_n += 1;
                let name = format!("docsink{sink_n}");
                out.extend(["fakesink".into(), format!("name={name}")]);
                exp.sinks.push(name);
            }
            "vdoninjasrc" | "vdoninjasink" => {
                exp.is_source |= w == "vdoninjasrc";
                exp.is_sink |= w == "vdoninjasink";
                out.push(w);
                out.extend(props.iter().cloned());
            }
            _ => {
                let mut w = w;
                if let Some((key, value)) = w.split_once('=') {
                    match key {
                        "stream-id" => exp.stream = Some(value.to_string()),
                        "room" => exp.room = Some(value.to_string()),
                        "password" => exp.password = Some(value.to_string()),
                        "record-audio" => exp.record_audio = Some(value.to_string()),
                        "location" | "record-location" | "playlist-location"
                            if !value.starts_with('/') =>
                        {
                            let path = dir.join(value);
                            if let Some(parent) = path.parent() {
                                std::fs::create_dir_all(parent).expect("output folder");
                            }
                            let what = match key {
                                "record-location" => "recording",
                                "playlist-location" => "playlist",
                                _ if value.ends_with(".ts") && !value.contains('%') => "ts",
                                _ if value.ends_with(".mp4") => "mp4",
                                _ => "segments",
                            };
                            exp.outputs.push((what, path.clone()));
                            w = format!("{key}={}", path.display());
                        }
                        _ => {}
                    }
                }
                if w.contains("audiotestsrc") || w == "audio." {
                    exp.audio_in = true;
                }
                out.push(w);
            }
        }
    }
    (out, exp)
}

fn counting(pipeline: &gst::Pipeline, name: &str) -> Arc<AtomicU64> {
    let n = Arc::new(AtomicU64::new(0));
    let sink = pipeline
        .by_name(name)
        .unwrap_or_else(|| panic!("no element {name}"));
    let pad = sink.static_pad("sink").expect("sink pad");
    let c = n.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        c.fetch_add(1, Ordering::Relaxed);
        gst::PadProbeReturn::Ok
    });
    n
}

/// The recordings' extension (with its dot) of a `record-location` pattern.
fn recording_ext(pattern: &Path) -> &'static str {
    if pattern.extension().is_some_and(|e| e == "mp4") {
        ".mp4"
    } else {
        ".mkv"
    }
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Files under `dir` whose name ends in `ext`.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.to_string_lossy().ends_with(ext));
    v.sort();
    v
}

/// Runs one documented line and checks its media; returns what went wrong.
fn check(line: &DocLine) -> Result<String, String> {
    let mode = ServerMode::Fanout;
    let server = Server::start(mode);
    let dir = tempfile::tempdir().expect("temp dir");
    let (argv, exp) = rewrite(line, &server, dir.path());
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    init();
    // As gst-launch-1.0 does: a lone element gets a pipeline around it.
    let parsed = gst::parse::launchv(&refs).map_err(|e| format!("does not parse: {e}"))?;
    let pipeline = match parsed.downcast::<gst::Pipeline>() {
        Ok(p) => p,
        Err(element) => {
            let p = gst::Pipeline::new();
            p.add(&element).map_err(|e| e.to_string())?;
            p
        }
    };
    let counters: Vec<(String, Arc<AtomicU64>)> = exp
        .sinks
        .iter()
        .map(|s| (s.clone(), counting(&pipeline, s)))
        .collect();
    // The other side.
    let mut publishers = Vec::new();
    if exp.is_source {
        match (&exp.stream, &exp.room) {
            (Some(s), room) => publishers.push(publisher(
                &server,
                s,
                room.as_deref(),
                exp.password.as_deref(),
                0,
            )),
            (None, Some(r)) => {
                for (n, s) in ["guest1", "guest2"].iter().enumerate() {
                    publishers.push(publisher(
                        &server,
                        s,
                        Some(r),
                        exp.password.as_deref(),
                        n as u32,
                    ));
                }
            }
            (None, None) => return Err("a vdoninjasrc line without stream-id or room".into()),
        }
    }
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("does not play: {e}"))?;
    let playing = std::time::Instant::now();
    let mut found = Vec::new();
    let viewer = exp.is_sink.then(|| {
        TestViewer::start(
            &server,
            ViewerOptions {
                stream_id: exp
                    .stream
                    .as_deref()
                    .expect("a vdoninjasink line names its stream-id"),
                room: exp.room.as_deref(),
                password: exp.password.as_deref(),
            },
        )
    });
    let fail = |what: String| -> Result<String, String> {
        Err(format!("{what}; bus errors: {:?}", bus_errors(&pipeline)))
    };
    // Media on the far side.
    if let Some(v) = &viewer {
        let audio = if exp.audio_in { 20 } else { 0 };
        if !v.wait_frames(30, audio) {
            return fail(format!(
                "the viewer decoded {} video / {} audio frames",
                v.video_frames(),
                v.audio_frames()
            ));
        }
        found.push(format!(
            "viewer decoded {} video + {} audio frames",
            v.video_frames(),
            v.audio_frames()
        ));
    }
    for (name, n) in &counters {
        if !wait_until(MEDIA_WAIT, || n.load(Ordering::Relaxed) >= 30) {
            return fail(format!("{name} got {} buffers", n.load(Ordering::Relaxed)));
        }
        found.push(format!("{name}: {} buffers", n.load(Ordering::Relaxed)));
    }
    // A viewing line (OBS sources, the README's viewer) across a publisher that stops and
    // comes back 3 s later: the pipeline, linked once, gets media again on the same pads.
    if exp.is_source
        && let Some(stream) = &exp.stream
    {
        for p in publishers.drain(..) {
            let _ = p.set_state(gst::State::Null);
        }
        std::thread::sleep(Duration::from_secs(3));
        let before: Vec<u64> = counters
            .iter()
            .map(|(_, n)| n.load(Ordering::Relaxed))
            .collect();
        publishers.push(publisher(
            &server,
            stream,
            exp.room.as_deref(),
            exp.password.as_deref(),
            1,
        ));
        for ((name, n), b) in counters.iter().zip(before) {
            if !wait_until(MEDIA_WAIT, || n.load(Ordering::Relaxed) >= b + 60) {
                return fail(format!(
                    "{name} got {} buffers after the publisher came back",
                    n.load(Ordering::Relaxed) - b
                ));
            }
            found.push(format!(
                "{name}: {} buffers after the publisher came back",
                n.load(Ordering::Relaxed) - b
            ));
        }
    }
    // Outputs: let them fill, then end the way gst-launch-1.0 ends (-e: EOS first).
    for (what, path) in &exp.outputs {
        let ready = match *what {
            "recording" => {
                let d = path.parent().expect("folder").to_path_buf();
                // At least 3 s of it: 300 KB is about one second at the publishers' bitrate.
                wait_until(MEDIA_WAIT, || {
                    let f = files(&d, recording_ext(path));
                    f.len() >= 2
                        && f.iter().all(|p| file_size(p) > 300_000)
                        && playing.elapsed() > Duration::from_secs(3)
                })
            }
            // Tracks enter the room stream one at a time, each after the key frames of the
            // one before (`ts::admit`): 400 KB can be one guest's first second and a half
            // (the check below failed once so). At least 6 s of it.
            "ts" => wait_until(MEDIA_WAIT, || {
                file_size(path) > 400_000 && playing.elapsed() > Duration::from_secs(6)
            }),
            // mp4mux writes its header at the end: the media data grows meanwhile. At least
            // 3 s of it, however fast it grows.
            "mp4" => wait_until(MEDIA_WAIT, || {
                file_size(path) > 200_000 && playing.elapsed() > Duration::from_secs(3)
            }),
            "playlist" => wait_until(Duration::from_secs(40), || {
                std::fs::read_to_string(path).is_ok_and(|t| t.matches(".ts").count() >= 2)
            }),
            _ => true,
        };
        if !ready {
            return fail(format!("{what} output {} did not fill", path.display()));
        }
    }
    if exp.eos {
        pipeline.send_event(gst::event::Eos::new());
        let bus = pipeline.bus().expect("bus");
        let ended = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(15),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        if !matches!(
            ended.as_ref().map(|m| m.view()),
            Some(gst::MessageView::Eos(_))
        ) {
            return fail(format!("no EOS after -e's EOS: {ended:?}"));
        }
    }
    pipeline
        .set_state(gst::State::Null)
        .map_err(|e| e.to_string())?;
    for p in publishers {
        let _ = p.set_state(gst::State::Null);
    }
    if let Some(v) = viewer {
        v.stop();
    }
    for (what, path) in &exp.outputs {
        if *what == "recording" {
            let d = path.parent().expect("folder");
            let recorded = files(d, recording_ext(path));
            if recorded.len() != 2 {
                return Err(format!(
                    "{} recordings, not 2: {recorded:?}",
                    recorded.len()
                ));
            }
            for f in &recorded {
                let demuxer = if recording_ext(path) == ".mp4" {
                    "qtdemux"
                } else {
                    "matroskademux"
                };
                let r = inspect_file(f, demuxer);
                let long_enough = r
                    .duration
                    .is_some_and(|d| d >= gst::ClockTime::from_seconds(1));
                if !(r.all_decoded()
                    && r.count("video") == 1
                    && r.count("audio") == 1
                    && long_enough)
                {
                    return Err(format!(
                        "{} does not decode: {:?} {:?}",
                        f.display(),
                        r.streams,
                        r.errors
                    ));
                }
                found.push(format!(
                    "{}: {:?}, {:?}",
                    f.file_name().unwrap_or_default().to_string_lossy(),
                    r.streams,
                    r.duration
                ));
            }
        }
        if let ("recording", Some(ext)) = (*what, &exp.record_audio) {
            let d = path.parent().expect("folder");
            let tracks = files(d, &format!(".{ext}"));
            let lengths: Vec<u64> = tracks.iter().map(|f| decoded_samples(f)).collect();
            if tracks.len() != 2 || lengths[0] != lengths[1] || lengths[0] < 48_000 {
                return Err(format!(
                    "aligned audio: {tracks:?}, decoded samples {lengths:?} (two of one length wanted)"
                ));
            }
            found.push(format!(
                "aligned {ext}: 2 files of {:.3} s",
                lengths[0] as f64 / 48_000.0
            ));
        }
        match *what {
            "ts" => {
                let r = inspect_file(path, "tsdemux");
                // Both guests' pictures (320x240; a free slot shows the placeholder's 320x180),
                // decoded by decodebin3 with every stream selected.
                let decoded = common::readers::decodebin3_all(path);
                let guests = decoded
                    .iter()
                    .filter(|(k, (n, sizes))| {
                        k.starts_with("video") && *n >= 30 && sizes.contains(&(320, 240))
                    })
                    .count();
                if r.decoded_tracks("video") < 2 || r.decoded_tracks("audio") < 2 || guests < 2 {
                    return Err(format!(
                        "{}: {:?} {:?}; decodebin3 {decoded:?}",
                        path.display(),
                        r.streams,
                        r.errors
                    ));
                }
                found.push(format!(
                    "room.ts: {} video and {} audio tracks decoded, {guests} guests' pictures by decodebin3",
                    r.decoded_tracks("video"),
                    r.decoded_tracks("audio")
                ));
            }
            "mp4" => {
                let r = inspect_file(path, "qtdemux");
                let long_enough = r
                    .duration
                    .is_some_and(|d| d >= gst::ClockTime::from_seconds(1));
                if !(r.all_decoded()
                    && r.count("video") == 1
                    && r.count("audio") == 1
                    && long_enough)
                {
                    return Err(format!(
                        "{}: {:?} {:?} {:?}",
                        path.display(),
                        r.streams,
                        r.duration,
                        r.errors
                    ));
                }
                found.push(format!("room.mp4: {:?}, {:?}", r.streams, r.duration));
            }
            "playlist" => {
                let d = path.parent().expect("folder");
                let segments = files(d, ".ts");
                let first = segments.first().ok_or("no segment")?;
                let r = inspect_file(first, "tsdemux");
                if r.decoded_tracks("video") < 1 {
                    return Err(format!(
                        "{}: {:?} {:?}",
                        first.display(),
                        r.streams,
                        r.errors
                    ));
                }
                found.push(format!(
                    "HLS: {} segments, the first decodes ({:?})",
                    segments.len(),
                    r.streams
                ));
            }
            _ => {}
        }
    }
    Ok(found.join("; "))
}

fn run_all(file: &str, min_lines: usize) {
    let lines = doc_lines(file);
    assert!(
        lines.len() >= min_lines,
        "{file}: only {} pipeline lines found: {lines:?}",
        lines.len()
    );
    let mut failed = Vec::new();
    for line in &lines {
        // What the elements logged, printed for a line that fails (one in several runs did).
        let log = common::logring::keep("vdoninja*:5");
        match check(line) {
            Ok(found) => eprintln!("ok   {} {}\n     {found}", line.origin, line.text),
            Err(e) => {
                eprintln!("FAIL {} {}\n     {e}", line.origin, line.text);
                eprintln!("--- its debug log ---\n{}\n--- end ---", log.dump());
                failed.push(format!("{}: {e}", line.origin));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} lines failed: {failed:#?}",
        failed.len(),
        lines.len()
    );
}

#[test]
fn every_gst_launch_line_of_the_readme_runs() {
    run_all("README.md", 7);
}

#[test]
fn every_pipeline_of_the_obs_page_runs() {
    run_all("docs/obs.md", 3);
}
