// SPDX-License-Identifier: MPL-2.0

//! Prints what a room recording holds: for every Matroska file in a directory, its tracks
//! (codec, size), its duration and whether it is seekable; and the manifest's participants.
//!
//! `cargo run --example recording_report -- DIR`

use clap::Parser;
use std::path::{Path, PathBuf};

use gst::prelude::*;

/// (tracks as "kind codec WxH", duration, seekable) of one file.
fn describe(path: &Path) -> Result<(Vec<String>, Option<gst::ClockTime>, bool), String> {
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path.to_string_lossy().as_ref())
        .build()
        .map_err(|e| e.to_string())?;
    let demux = gst::ElementFactory::make("matroskademux")
        .build()
        .map_err(|e| e.to_string())?;
    pipeline
        .add_many([&src, &demux])
        .map_err(|e| e.to_string())?;
    src.link(&demux).map_err(|e| e.to_string())?;
    let tracks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let t = tracks.clone();
    let p = pipeline.clone();
    demux.connect_pad_added(move |_, pad| {
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        if let Some(s) = caps.structure(0) {
            let mut d = s.name().to_string();
            if let (Ok(w), Ok(h)) = (s.get::<i32>("width"), s.get::<i32>("height")) {
                d.push_str(&format!(" {w}x{h}"));
            }
            if let Ok(c) = s.get::<i32>("channels") {
                d.push_str(&format!(" {c} ch"));
            }
            if let Ok(mut t) = t.lock() {
                t.push(d);
            }
        }
        if let Ok(sink) = gst::ElementFactory::make("fakesink").build() {
            let _ = p.add(&sink);
            let _ = sink.sync_state_with_parent();
            if let Some(sp) = sink.static_pad("sink") {
                let _ = pad.link(&sp);
            }
        }
    });
    pipeline
        .set_state(gst::State::Paused)
        .map_err(|e| format!("{e:?}"))?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(10),
        &[gst::MessageType::AsyncDone, gst::MessageType::Error],
    );
    if let Some(m) = &msg
        && let gst::MessageView::Error(e) = m.view()
    {
        let _ = pipeline.set_state(gst::State::Null);
        return Err(e.error().to_string());
    }
    let duration = pipeline.query_duration::<gst::ClockTime>();
    let mut q = gst::query::Seeking::new(gst::Format::Time);
    let seekable = pipeline.query(&mut q) && q.result().0;
    let _ = pipeline.set_state(gst::State::Null);
    let tracks = tracks.lock().map(|t| t.clone()).unwrap_or_default();
    Ok((tracks, duration, seekable))
}

/// Prints what each recording in a directory holds: tracks, codecs, duration, seekability.
#[derive(clap::Parser)]
#[command(version)]
struct Args {
    /// The directory vdoninjasrc recorded into.
    dir: PathBuf,
}

fn main() {
    let dir = Args::parse().dir;
    if let Err(e) = gst::init() {
        eprintln!("GStreamer: {e}");
        std::process::exit(1);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    let mut files = 0;
    for path in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mkv"))
    {
        files += 1;
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        match describe(path) {
            Ok((tracks, duration, seekable)) => {
                let d = duration
                    .map(|d| format!("{:.2} s", d.nseconds() as f64 / 1e9))
                    .unwrap_or_else(|| "unknown".into());
                println!(
                    "{}: {} bytes, duration {d}, {}seekable",
                    path.display(),
                    size,
                    if seekable { "" } else { "not " }
                );
                for t in tracks {
                    println!("    track: {t}");
                }
            }
            Err(e) => println!("{}: cannot be read: {e}", path.display()),
        }
    }
    if let Some(m) = entries
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        && let Ok(text) = std::fs::read_to_string(m)
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
    {
        println!("manifest {}:", m.display());
        for p in v["participants"].as_array().into_iter().flatten() {
            println!(
                "    {} joined at {} s, left at {} s, {} file(s)",
                p["stream_id"],
                p["joined"],
                p["left"],
                p["files"].as_array().map(Vec::len).unwrap_or(0)
            );
        }
    }
    if files == 0 {
        println!("no recording in {}", dir.display());
        std::process::exit(1);
    }
}
