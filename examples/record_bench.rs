// SPDX-License-Identifier: MPL-2.0

//! Measures room recording: CPU and memory of a `vdoninjasrc record-location=…` process while
//! it records 1 and 8 participants (pass-through, no transcoding). Each participant is its own
//! `gst-launch-1.0 … ! vdoninjasink` process sending H.264 at about 2.5 Mbit/s; everything runs
//! on loopback against our server.
//!
//! `cargo build --release --lib && cargo run --release --example record_bench [-- 1 8]`

use clap::Parser;
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

fn stat(pid: u32) -> (f64, u64) {
    (procstat::cpu_seconds(pid), procstat::rss_kb(pid))
}

fn launch(desc: &str, plugin_dir: &std::path::Path) -> Child {
    Command::new("gst-launch-1.0")
        .arg("-q")
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
    let counts = {
        let args = Args::parse();
        if args.participants.is_empty() {
            vec![1, 8]
        } else {
            args.participants
        }
    };
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
        for i in 0..n {
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
        std::thread::sleep(Duration::from_secs(6));
        let (c0, _) = stat(pid);
        let mut peak = 0;
        for _ in 0..10 {
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
        println!(
            "{n} participant(s): recorder CPU {:.1} % of one core, RSS {} MB (peak {} MB), {files} file(s), {:.1} MB written in ~16 s",
            (c1 - c0) / 10.0 * 100.0,
            rss / 1024,
            peak / 1024,
            bytes as f64 / 1e6
        );
        drop(procs);
    }
    rt.block_on(server.stop());
}
