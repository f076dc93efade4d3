// SPDX-License-Identifier: MPL-2.0

//! Measures the room mix: CPU and memory of a `vdoninjasrc mix=true` process composing a room
//! of guests into one picture and one sound, once into `fakesink` (receive, decode, compose,
//! mix) and once encoded to MP4 (x264enc and AAC, as in the README). Each guest is its own
//! `gst-launch-1.0 … ! vdoninjasink` process (a moving 640x360 test picture and a tone), on
//! loopback against our server.
//!
//! `cargo build --release --lib && cargo run --release --example mix_bench [-- --guests 4]`

use clap::Parser;
use std::process::{Child, Command};
use std::time::Duration;

use gstvdoninja::server::hub::ServerMode;
use gstvdoninja::server::{ServerConfig, serve};

#[path = "../tests/common/procstat.rs"]
mod procstat;

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

fn launch(desc: &str, plugin_dir: &std::path::Path) -> Child {
    Command::new("gst-launch-1.0")
        .arg("-q")
        .args(desc.split_whitespace())
        .env("GST_PLUGIN_PATH", plugin_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("gst-launch-1.0 runs")
}

/// CPU and memory of the room mix.
#[derive(clap::Parser)]
#[command(version)]
struct Args {
    /// Guests in the room.
    #[arg(long, default_value_t = 4)]
    guests: usize,
    /// The mix's size and frame rate.
    #[arg(long, default_value_t = 1280)]
    width: u32,
    #[arg(long, default_value_t = 720)]
    height: u32,
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Seconds measured (after 6 s for the guests to join).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

fn main() {
    let args = Args::parse();
    let plugin_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().and_then(|d| d.parent()).map(|d| d.to_path_buf()))
        .expect("target dir");
    assert!(
        plugin_dir.join("libgstvdoninja.so").exists(),
        "build the plugin first: cargo build --release --lib"
    );
    let rt = gstvdoninja::runtime::handle();
    let mut cfg = ServerConfig::new("127.0.0.1:0".parse().expect("address"));
    cfg.mode = ServerMode::Fanout;
    let server = rt.block_on(serve(cfg)).expect("server");
    let props = format!(
        "server=ws://{} local-address=127.0.0.1 auto-turn=false stun-server=\"\"",
        server.local_addr()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mix = format!(
        "mix=true mix-width={} mix-height={} mix-framerate={}/1",
        args.width, args.height, args.fps
    );
    let outputs = [
        (
            "compose only (fakesink)",
            "s.video_mix ! queue ! fakesink s.audio_mix ! queue ! fakesink".to_string(),
        ),
        (
            "encoded to MP4 (x264enc tune=zerolatency, avenc_aac)",
            format!(
                "s.video_mix ! queue ! x264enc tune=zerolatency ! mp4mux name=m ! \
                 filesink location={}/room.mp4 s.audio_mix ! queue ! audioconvert ! avenc_aac ! m.",
                dir.path().display()
            ),
        ),
    ];
    for (i, (what, tail)) in outputs.iter().enumerate() {
        let room = format!("mixbench{i}");
        let mut procs = Procs(Vec::new());
        for g in 0..args.guests {
            procs.0.push(launch(
                &format!(
                    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 ! \
                     vdoninjasink name=s stream-id=g{g} room={room} label=guest{g} {props} \
                     audiotestsrc is-live=true freq={} volume=0.2 ! s.",
                    300 + 200 * g
                ),
                &plugin_dir,
            ));
        }
        let mixer = launch(
            &format!("vdoninjasrc name=s room={room} {mix} {props} {tail}"),
            &plugin_dir,
        );
        let pid = mixer.id();
        procs.0.push(mixer);
        std::thread::sleep(Duration::from_secs(6));
        let c0 = procstat::cpu_seconds(pid);
        let mut peak = 0;
        for _ in 0..args.seconds {
            std::thread::sleep(Duration::from_secs(1));
            peak = peak.max(procstat::rss_kb(pid));
        }
        let c1 = procstat::cpu_seconds(pid);
        println!(
            "{} guests, {}x{}@{} mix, {what}: CPU {:.1} % of one core, RSS peak {} MB",
            args.guests,
            args.width,
            args.height,
            args.fps,
            (c1 - c0) / args.seconds as f64 * 100.0,
            peak / 1024
        );
        drop(procs);
    }
    rt.block_on(server.stop());
}
