// SPDX-License-Identifier: MPL-2.0

//! Records every guest of a VDO.Ninja room, one Matroska file each, and shows live progress:
//! who is in the room, and per file its duration, size and bitrate; joins and leaves as they
//! happen. Everything shown comes from the element's bus messages (`vdoninja/stream-added`,
//! `-removed`, `vdoninja/recording-started`, `-finished`) and its `stats` property, plus the
//! files' sizes on disk. Ctrl-C (or `--duration`) ends the recording cleanly: every file is
//! finalized.
//!
//! ```sh
//! cargo run --example record_room -- --room myroom --password secret
//! cargo run --example record_room -- --room myroom --server ws://127.0.0.1:8443 \
//!     --set local-address=127.0.0.1 --duration 60
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use gst::glib;
use gst::prelude::*;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Record every guest of a VDO.Ninja room, one file each, with live progress.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The room to record.
    #[arg(long)]
    room: String,
    /// The room's password (unset: VDO.Ninja's default; "false": no encryption).
    #[arg(long)]
    password: Option<String>,
    /// Handshake server.
    #[arg(long, default_value = "wss://wss.vdo.ninja:443")]
    server: String,
    /// Folder for the files (made if missing).
    #[arg(long, default_value = "recordings")]
    output_dir: PathBuf,
    /// File name pattern: %s stream ID, %t start time.
    #[arg(long, default_value = "%s-%t.mkv")]
    pattern: String,
    /// Stop after this many seconds (default: at Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<u64>,
    /// Any other vdoninjasrc property, as NAME=VALUE (repeatable), e.g. --set salt=vdo.ninja.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
}

/// One file being written.
struct Recording {
    location: PathBuf,
    started: Instant,
    bar: ProgressBar,
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("record_room: {e}");
    ExitCode::FAILURE
}

/// A line above the live view; plain output when it is not a terminal (indicatif draws
/// nothing then, and its `println` neither).
fn say(multi: &MultiProgress, line: impl AsRef<str>) {
    if multi.is_hidden() {
        println!("{}", line.as_ref());
    } else {
        let _ = multi.println(line);
    }
}

fn human_bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.2} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b => format!("{:.0} KB", b as f64 / 1024.0),
    }
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = gst::init() {
        return fail(format!("GStreamer: {e}"));
    }
    if let Err(e) = gstvdoninja::plugin_register_static() {
        return fail(format!("the plugin: {e}"));
    }
    if let Err(e) = std::fs::create_dir_all(&args.output_dir) {
        return fail(format!("{}: {e}", args.output_dir.display()));
    }
    let src = match build_source(&args) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let pipeline = gst::Pipeline::new();
    if let Err(e) = pipeline.add(&src) {
        return fail(e);
    }
    // Ctrl-C ends the recording cleanly; a second one quits at once.
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let interrupted = interrupted.clone();
        gstvdoninja::runtime::handle().spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                if interrupted.swap(true, Ordering::SeqCst) {
                    std::process::exit(130);
                }
            }
        });
    }
    if let Err(e) = pipeline.set_state(gst::State::Playing) {
        return fail(format!("cannot start: {e}"));
    }
    let multi = MultiProgress::new();
    let header = multi.add(ProgressBar::new_spinner());
    header.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let file_style =
        ProgressStyle::with_template("  {msg}").unwrap_or_else(|_| ProgressStyle::default_bar());
    let started = Instant::now();
    let mut recordings: BTreeMap<String, Recording> = BTreeMap::new();
    let mut finished = Vec::new();
    let mut guests = 0u32;
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let mut ending: Option<Instant> = None;
    let mut last_view: Option<Instant> = None;
    let code = 'run: loop {
        let stop_now = interrupted.load(Ordering::SeqCst)
            || args
                .duration
                .is_some_and(|d| started.elapsed() >= Duration::from_secs(d));
        if stop_now && ending.is_none() {
            say(&multi, "stopping: finalizing every file…");
            ending = Some(Instant::now());
            pipeline.send_event(gst::event::Eos::new());
        }
        if ending.is_some_and(|t| t.elapsed() > Duration::from_secs(15)) {
            break fail("the files were not finalized within 15 s");
        }
        // Everything the bus holds, then the view: a pipeline posts more than one message
        // per refresh.
        let first = bus.timed_pop(gst::ClockTime::from_mseconds(250));
        for msg in first.into_iter().chain(std::iter::from_fn(|| bus.pop())) {
            use gst::MessageView;
            match msg.view() {
                MessageView::Eos(_) => break 'run ExitCode::SUCCESS,
                MessageView::Error(e) => {
                    break 'run fail(format!(
                        "{}{}",
                        e.error(),
                        e.debug().map(|d| format!(" ({d})")).unwrap_or_default()
                    ));
                }
                MessageView::Warning(w) => {
                    say(&multi, format!("warning: {}", w.error()));
                }
                MessageView::Element(e) => {
                    let Some(s) = e.structure() else { continue };
                    let sid = s.get::<String>("stream-id").unwrap_or_default();
                    match s.name().as_str() {
                        "vdoninja/stream-added" => {
                            say(&multi, format!("+ {sid} joined"));
                        }
                        "vdoninja/stream-removed" => {
                            say(&multi, format!("- {sid} left"));
                        }
                        "vdoninja/recording-started" => {
                            let location =
                                PathBuf::from(s.get::<String>("location").unwrap_or_default());
                            say(
                                &multi,
                                format!("● {sid} recording to {}", location.display()),
                            );
                            let bar = multi.add(ProgressBar::new_spinner());
                            bar.set_style(file_style.clone());
                            recordings.insert(
                                sid,
                                Recording {
                                    location,
                                    started: Instant::now(),
                                    bar,
                                },
                            );
                        }
                        "vdoninja/recording-finished" => {
                            if let Some(r) = recordings.remove(&sid) {
                                r.bar.finish_and_clear();
                                multi.remove(&r.bar);
                            }
                            let bytes = s.get::<u64>("bytes").unwrap_or(0);
                            let duration = s.get::<gst::ClockTime>("duration").ok();
                            let line = format!(
                                "{} finished: {}, {}",
                                s.get::<String>("location").unwrap_or_default(),
                                duration
                                    .map(|d| clock(Duration::from_nanos(d.nseconds())))
                                    .unwrap_or_else(|| "?".into()),
                                human_bytes(bytes)
                            );
                            say(&multi, &line);
                            finished.push(line);
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        // The live view, once a second (reading `stats` asks every peer for its figures).
        if last_view.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            continue;
        }
        last_view = Some(Instant::now());
        if let Some(stats) = src.property::<Option<gst::Structure>>("stats") {
            guests = stats.get::<u32>("streams").unwrap_or(guests);
        }
        header.set_message(format!(
            "room {}: {guests} guest(s), {} file(s) recording",
            args.room,
            recordings.len()
        ));
        header.tick();
        for (sid, r) in &recordings {
            let bytes = std::fs::metadata(&r.location).map(|m| m.len()).unwrap_or(0);
            let secs = r.started.elapsed().as_secs_f64().max(0.001);
            r.bar.set_message(format!(
                "{sid:<16} {}  {:>9}  {:>6.0} kbit/s  {}",
                clock(r.started.elapsed()),
                human_bytes(bytes),
                bytes as f64 * 8.0 / secs / 1000.0,
                r.location.display()
            ));
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    header.finish_and_clear();
    for r in recordings.values() {
        r.bar.finish_and_clear();
    }
    println!("{} file(s) written:", finished.len());
    for f in &finished {
        println!("  {f}");
    }
    code
}

fn build_source(args: &Args) -> Result<gst::Element, String> {
    let location = args
        .output_dir
        .join(&args.pattern)
        .to_string_lossy()
        .into_owned();
    let mut b = gst::ElementFactory::make("vdoninjasrc")
        .property("server", &args.server)
        .property("room", &args.room)
        .property("record-location", &location);
    if let Some(p) = &args.password {
        b = b.property("password", p);
    }
    let src = b.build().map_err(|e| format!("vdoninjasrc: {e}"))?;
    for kv in &args.set {
        let (name, value) = kv
            .split_once('=')
            .ok_or_else(|| format!("--set {kv}: expected NAME=VALUE"))?;
        let pspec = src
            .find_property(name)
            .ok_or_else(|| format!("--set {kv}: vdoninjasrc has no property {name:?}"))?;
        let v = glib::Value::deserialize_with_pspec(value, &pspec).map_err(|_| {
            format!(
                "--set {kv}: not a valid {} value",
                pspec.value_type().name()
            )
        })?;
        src.set_property_from_value(name, &v);
    }
    Ok(src)
}
