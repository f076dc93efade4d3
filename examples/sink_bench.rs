// SPDX-License-Identifier: MPL-2.0

//! Measures `vdoninjasink`: time from a viewer's `play` to its first decoded frame, and the
//! publisher's CPU with 1 and 3 viewers (and 10, with `--ten`).
//!
//! The publisher runs as its own `gst-launch-1.0` process so that its CPU time is its own;
//! the viewers (webrtcbin + the protocol core, decoding) run in this process.
//!
//! `cargo build --release --lib && cargo run --release --example sink_bench [-- --ten]
//! [--congestion-control gcc|loss|disabled] [--video-codec h264|vp8|vp9|av1] [--size 1280x720]
//! [--renditions 1|2|3]`

use clap::Parser;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

#[path = "../tests/common/media.rs"]
#[allow(dead_code)]
mod media;

use gstvdoninja::server::hub::ServerMode;
#[path = "../tests/common/procstat.rs"]
#[allow(dead_code)]
mod procstat;

use media::{Server, TestViewer, ViewerOptions, wait_until};
use procstat::cpu_seconds;

fn publisher(server: &Server, args: &Args) -> Publisher {
    let plugin_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().and_then(|d| d.parent()).map(|d| d.to_path_buf()))
        .expect("target dir");
    assert!(
        plugin_dir.join("libgstvdoninja.so").exists(),
        "build the plugin first: cargo build --release --lib"
    );
    let desc = format!(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width={w},height={h},framerate=30/1 ! \
         vdoninjasink name=s stream-id=bench congestion-control={cc} video-codec={codec} \
         renditions={renditions} {} \
         audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! s.",
        server.props(),
        w = args.width(),
        h = args.height(),
        cc = args.congestion_control,
        codec = args.video_codec,
        renditions = args.renditions,
    );
    Publisher(
        Command::new("gst-launch-1.0")
            .arg("-q")
            .args(desc.split(' '))
            .env("GST_PLUGIN_PATH", plugin_dir)
            .spawn()
            .expect("gst-launch-1.0 runs"),
    )
}

fn measure(server: &Server, pid: u32, viewers: usize) -> (Vec<f64>, f64) {
    let mut first = Vec::new();
    let mut vs = Vec::new();
    for _ in 0..viewers {
        let v = TestViewer::start(
            server,
            ViewerOptions {
                stream_id: "bench",
                room: None,
                password: None,
            },
        );
        let ok = wait_until(Duration::from_secs(20), || v.video_frames() > 0);
        assert!(ok, "a viewer got no frame");
        let at = v
            .counters
            .first_video
            .lock()
            .expect("lock")
            .expect("first frame");
        first.push(at.duration_since(v.started).as_secs_f64() * 1000.0);
        vs.push(v);
    }
    std::thread::sleep(Duration::from_secs(2));
    let c0 = cpu_seconds(pid);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let cpu = (cpu_seconds(pid) - c0) / t0.elapsed().as_secs_f64() * 100.0;
    for v in vs {
        v.stop();
    }
    (first, cpu)
}

/// Time to first frame and publisher CPU of vdoninjasink for 1 and 3 viewers (10 with --ten).
#[derive(clap::Parser)]
#[command(version)]
struct Args {
    /// Also measure 10 viewers.
    #[arg(long)]
    ten: bool,
    /// Also measure 30 viewers (their 30 decoders run in this process, on the same cores).
    #[arg(long)]
    thirty: bool,
    /// The sink's congestion-control (gcc, loss, disabled): its cost per viewer.
    #[arg(long, default_value = "gcc")]
    congestion_control: String,
    /// The sink's video-codec (raw input encoded by the sink): what encoding costs.
    #[arg(long, default_value = "h264")]
    video_codec: String,
    /// The input's picture size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720")]
    size: String,
    /// The sink's renditions: what each extra encoding costs.
    #[arg(long, default_value_t = 1)]
    renditions: u32,
}

impl Args {
    fn dimension(&self, i: usize) -> u32 {
        self.size
            .split('x')
            .nth(i)
            .and_then(|v| v.parse().ok())
            .expect("--size WIDTHxHEIGHT")
    }
    fn width(&self) -> u32 {
        self.dimension(0)
    }
    fn height(&self) -> u32 {
        self.dimension(1)
    }
}

fn main() {
    let args = Args::parse();
    media::init();
    // The viewers here stand for browsers, whose WebRTC stack and decoders are loaded before
    // they ask: this process's own first-connection costs (plugins, the DTLS key, ~400 ms of
    // decoder loading) are paid before timing, or the first figure would be this process's.
    gstvdoninja::common::elements::warm_up_webrtc();
    for f in [
        "avdec_h264",
        "av1dec",
        "av1parse",
        "rtpav1depay",
        "vp8dec",
        "h264parse",
        "rtph264depay",
        "opusdec",
        "rtpopusdepay",
    ] {
        let _ = gst::ElementFactory::make(f).build();
    }
    let server = Server::start(ServerMode::Official);
    let child = publisher(&server, &args);
    // Let the publisher start and settle.
    std::thread::sleep(Duration::from_secs(2));
    let pid = child.id();
    let idle0 = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(5));
    let idle = (cpu_seconds(pid) - idle0) / 5.0 * 100.0;
    println!(
        "publisher {}@30 {} + Opus, congestion-control={}, renditions={}, no viewer: {idle:.1} % of one core",
        args.size, args.video_codec, args.congestion_control, args.renditions
    );
    let mut rounds = vec![1, 3];
    if args.ten {
        rounds.push(10);
    }
    if args.thirty {
        rounds.push(30);
    }
    for n in rounds {
        let (first, cpu) = measure(&server, pid, n);
        let ms: Vec<String> = first.iter().map(|f| format!("{f:.0}")).collect();
        println!(
            "{n} viewer(s): play -> first decoded frame {} ms; publisher CPU {cpu:.1} % of one core",
            ms.join(", ")
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    drop(child);
}

/// Kills the publisher when dropped, also when a measurement panics.
struct Publisher(Child);

impl Publisher {
    fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
