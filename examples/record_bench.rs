// SPDX-License-Identifier: MPL-2.0

//! Measures room recording: CPU and memory of a `vdoninjasrc record-location=…` process while
//! it records 1 and 8 participants (pass-through, no transcoding). Each participant is its own
//! `gst-launch-1.0 … ! vdoninjasink` process sending H.264 at about 2.5 Mbit/s; everything runs
//! on loopback against our server.
//!
//! `cargo build --release --lib && cargo run --release --example record_bench [-- 1 8]`
//!
//! `--scale` (issue 13's scale table, e.g. `-- --scale 1 8 16 32`): cheap publishers, so that
//! the recorder is what is measured: H.264 (640x360, ~500 kbit/s) and Opus encoded once into a
//! clip, which each publisher process plays at its rate into up to 8 `vdoninjasink`s through a
//! tee; 30 s recorded; then the longest hole (timestamp step) of any track of any file is read
//! back.

use clap::Parser;
use gst::prelude::*;
use std::process::{Child, Command};
use std::time::Duration;

use gstvdoninja::server::hub::ServerMode;
use gstvdoninja::server::{ServerConfig, serve};

/// Kills its child processes when dropped (also on panic).
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[path = "../tests/common/procstat.rs"]
mod procstat;

/// (busy, total) jiffies of the whole machine, from /proc/stat.
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = f.iter().sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn stat(pid: u32) -> (f64, u64) {
    (procstat::cpu_seconds(pid), procstat::rss_kb(pid))
}

fn launch(desc: &str, plugin_dir: &std::path::Path) -> Child {
    Command::new("gst-launch-1.0")
        // -e: SIGINT sends EOS, so that a recorder finalizes its files.
        .args(["-q", "-e"])
        .args(desc.split(' '))
        .env("GST_PLUGIN_PATH", plugin_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("gst-launch-1.0 runs")
}

/// Recording CPU and memory of vdoninjasrc with 1 and 8 participants (or the counts given).
#[derive(clap::Parser)]
#[command(version)]
struct Args {
    /// Participant counts to measure, one run each [default: 1 8].
    #[arg(value_parser = clap::value_parser!(usize))]
    participants: Vec<usize>,
    /// Cheap publishers (8 per process sharing one encoding), 30 s, holes checked.
    #[arg(long)]
    scale: bool,
}

/// The longest step between consecutive timestamps of any track of `path` (demuxed only), and
/// the seconds of media of its longest track; `None` when nothing could be read.
fn longest_hole(path: &std::path::Path) -> Option<(gst::ClockTime, f64)> {
    use gst::prelude::*;
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! matroskademux name=d",
        path.display()
    ))
    .ok()?
    .downcast::<gst::Pipeline>()
    .ok()?;
    let demux = pipeline.by_name("d")?;
    let worst = std::sync::Arc::new(std::sync::Mutex::new(gst::ClockTime::ZERO));
    let span = std::sync::Arc::new(std::sync::Mutex::new(0.0f64));
    let (p, w, sp) = (pipeline.clone(), worst.clone(), span.clone());
    demux.connect_pad_added(move |_, pad| {
        // async=false: the demuxer feeds both tracks from one thread, and a sink that waited
        // for preroll would hold it before the other track's sink ever got a buffer.
        let Ok(sink) = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("async", false)
            .build()
        else {
            return;
        };
        let _ = p.add(&sink);
        let _ = sink.sync_state_with_parent();
        let _ = pad.link(&sink.static_pad("sink").expect("pad"));
        let (w, sp) = (w.clone(), sp.clone());
        let (first, last) = (
            std::sync::Mutex::new(None::<gst::ClockTime>),
            std::sync::Mutex::new(None::<gst::ClockTime>),
        );
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
                let first = *first.lock().expect("lock").get_or_insert(pts);
                let mut sp = sp.lock().expect("lock");
                *sp = sp.max(pts.saturating_sub(first).nseconds() as f64 / 1e9);
                let mut last = last.lock().expect("lock");
                if let Some(l) = *last {
                    let mut w = w.lock().expect("lock");
                    *w = (*w).max(pts.saturating_sub(l));
                }
                *last = Some(pts);
            }
            gst::PadProbeReturn::Ok
        });
    });
    pipeline.set_state(gst::State::Playing).ok()?;
    let bus = pipeline.bus()?;
    let _ = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(20),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
    let w = *worst.lock().expect("lock");
    let span = *span.lock().expect("lock");
    (span > 0.0).then_some((w, span))
}

/// Seconds of media in the pre-encoded clip: the join time and the 30 s recorded, with margin.
const CLIP_SECONDS: u32 = 60;

/// The cheap publishers' media, encoded once: 640x360@30 H.264 (constrained baseline, as a
/// browser sends, ~500 kbit/s, a key frame a second) and Opus, in Matroska.
fn clip(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("record-bench-clip-640x360.mkv");
    if path.exists() {
        return path;
    }
    let partial = path.with_extension("partial");
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc pattern=snow num-buffers={} ! video/x-raw,format=I420,width=640,height=360,framerate=30/1 ! \
         x264enc speed-preset=ultrafast tune=zerolatency bitrate=500 key-int-max=30 ! \
         video/x-h264,profile=constrained-baseline ! h264parse ! matroskamux name=m ! filesink location={} \
         audiotestsrc num-buffers={} samplesperbuffer=960 ! audio/x-raw,rate=48000,channels=2 ! opusenc ! m.",
        CLIP_SECONDS * 30,
        partial.display(),
        CLIP_SECONDS * 50
    ))
    .expect("the clip's pipeline");
    pipeline.set_state(gst::State::Playing).expect("encodes");
    let bus = pipeline.bus().expect("bus");
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(120),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
    assert!(
        matches!(
            msg.as_ref().map(|m| m.view()),
            Some(gst::MessageView::Eos(_))
        ),
        "the clip was not encoded: {msg:?}"
    );
    std::fs::rename(&partial, &path).expect("clip in place");
    path
}

/// One publisher process: the clip played at its rate (not encoded again), one `vdoninjasink`
/// per stream ID.
fn cheap_publisher(clip: &std::path::Path, ids: &[String], room: &str, props: &str) -> String {
    let mut d = format!(
        "filesrc location={} ! matroskademux name=d \
         d.video_0 ! queue max-size-time=3000000000 ! h264parse ! clocksync ! tee name=v \
         d.audio_0 ! queue max-size-time=3000000000 ! clocksync ! tee name=a",
        clip.display()
    );
    for id in ids {
        d += &format!(
            " vdoninjasink name={id} stream-id={id} room={room} {props} \
             v. ! queue ! {id}.video_%u a. ! queue ! {id}.audio_%u"
        );
    }
    d
}

fn main() {
    let plugin_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().and_then(|d| d.parent()).map(|d| d.to_path_buf()))
        .expect("target dir");
    assert!(
        plugin_dir.join("libgstvdoninja.so").exists(),
        "build the plugin first: cargo build --release --lib"
    );
    let args = Args::parse();
    let scale = args.scale;
    let counts = if args.participants.is_empty() {
        vec![1, 8]
    } else {
        args.participants
    };
    gst::init().expect("GStreamer");
    let rt = gstvdoninja::runtime::handle();
    let mut cfg = ServerConfig::new("127.0.0.1:0".parse().expect("address"));
    cfg.mode = ServerMode::Fanout;
    let server = rt.block_on(serve(cfg)).expect("server");
    let props = format!(
        "server=ws://{} local-address=127.0.0.1 auto-turn=false stun-server=\"\"",
        server.local_addr()
    );
    for n in counts {
        let dir = tempfile::tempdir().expect("tempdir");
        let room = format!("bench{n}");
        let mut procs = Procs(Vec::new());
        if scale {
            let clip = clip(&plugin_dir);
            let ids: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
            for chunk in ids.chunks(8) {
                procs.0.push(launch(
                    &cheap_publisher(&clip, chunk, &room, &props),
                    &plugin_dir,
                ));
            }
        }
        for i in (0..n).filter(|_| !scale) {
            procs.0.push(launch(
                &format!(
                    "videotestsrc is-live=true pattern=snow ! video/x-raw,width=640,height=360,framerate=30/1 ! \
                     vdoninjasink name=s stream-id=p{i} room={room} bitrate=2500 min-bitrate=2500 {props} \
                     audiotestsrc is-live=true ! s."
                ),
                &plugin_dir,
            ));
        }
        let recorder = launch(
            &format!(
                "vdoninjasrc room={room} record-location={}/%s-%t.mkv {props}",
                dir.path().display()
            ),
            &plugin_dir,
        );
        let pid = recorder.id();
        procs.0.push(recorder);
        // Let every participant connect and its recording start.
        std::thread::sleep(Duration::from_secs(if scale { 10 } else { 6 }));
        let (c0, _) = stat(pid);
        let m0 = machine_jiffies();
        let mut peak = 0;
        let seconds = if scale { 30 } else { 10 };
        for _ in 0..seconds {
            std::thread::sleep(Duration::from_secs(1));
            peak = peak.max(stat(pid).1);
        }
        let (c1, rss) = stat(pid);
        let files = std::fs::read_dir(dir.path())
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "mkv"))
                    .count()
            })
            .unwrap_or(0);
        let bytes: u64 = std::fs::read_dir(dir.path())
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        let cpu = (c1 - c0) / seconds as f64 * 100.0;
        let m1 = machine_jiffies();
        let machine = (m1.0 - m0.0) as f64 / (m1.1 - m0.1).max(1) as f64 * 100.0;
        println!(
            "{n} participant(s): recorder CPU {cpu:.1} % of one core ({:.2} % each), RSS {} MB (peak {} MB), {files} file(s), {:.1} MB written; the machine {machine:.0} % busy",
            cpu / n as f64,
            rss / 1024,
            peak / 1024,
            bytes as f64 / 1e6
        );
        if scale {
            // The recorder ends the files (SIGINT → EOS) before they are read back.
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGINT) };
            if let Some(rec) = procs.0.pop() {
                let mut rec = Procs(vec![rec]);
                let deadline = std::time::Instant::now() + Duration::from_secs(20);
                while std::time::Instant::now() < deadline
                    && rec.0[0].try_wait().ok().flatten().is_none()
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            drop(procs);
            let holes: Vec<(gst::ClockTime, f64)> = std::fs::read_dir(dir.path())
                .map(|d| {
                    d.filter_map(Result::ok)
                        .filter(|e| e.path().extension().is_some_and(|x| x == "mkv"))
                        .filter_map(|e| longest_hole(&e.path()))
                        .collect()
                })
                .unwrap_or_default();
            let worst = holes.iter().map(|h| h.0).max().unwrap_or_default();
            let shortest = holes.iter().map(|h| h.1).fold(f64::INFINITY, f64::min);
            println!(
                "    {} file(s) read back: longest hole {} ms, shortest file {shortest:.1} s of media",
                holes.len(),
                worst.mseconds()
            );
        } else {
            drop(procs);
        }
    }
    rt.block_on(server.stop());
}
