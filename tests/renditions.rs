// SPDX-License-Identifier: MPL-2.0

//! `vdoninjasink renditions=2` with two viewers, one of them on a narrow link (issue 25, item
//! 3): the narrow one must get a picture it can decode, the free one must keep its quality.
//!
//! A child process in a network namespace this test makes runs our server, the publisher
//! (640x360 `videotestsrc pattern=snow`, 30 fps) and two `vdoninjasrc` viewers that decode:
//! `free` on 127.0.0.1 and `narrow` on 127.0.0.2. An nftables policer on what goes to
//! 127.0.0.2 (`ip daddr 127.0.0.2 … limit rate over 75 kbytes/second … drop`: 600 kbit/s) is
//! that viewer's own link; the free viewer's traffic never meets it. Every second the child
//! prints what each viewer received and decoded.
//!
//! `renditions_bench` (ignored) runs the same with `renditions=1` and `=2` and prints both, the
//! figures of BENCHMARKS.md.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::linked::Linked;
use common::media::*;
use common::netns::{Netns, add_udp_rule, child_in_env, counters};
use gst::prelude::*;
use gstvdoninja::server::hub::ServerMode;

const CHILD: &str = "VDONINJA_TEST_RENDITIONS_CHILD";
const RENDITIONS: &str = "VDONINJA_TEST_RENDITIONS";
/// A gap between two decoded pictures longer than this counts as frozen, all of it.
const FREEZE: Duration = Duration::from_millis(200);

fn viewer(server: &Server, address: &str) -> Linked {
    Linked::start(
        &format!(
            "vdoninjasrc name=s stream-id=two decode=true {} local-address={address} \
             s.video_two ! queue ! fakesink name=video sync=false async=false",
            server.props()
        ),
        &["video"],
    )
}

/// Not a test: the publisher and both viewers inside the namespace. Prints `READY` once both
/// decode, then `SEC …` every second until the file `stop` appears in its directory.
#[test]
#[ignore = "run as a child process inside a network namespace by the tests of this file"]
fn child_two_viewers() {
    let Ok(dir) = std::env::var(CHILD) else {
        return;
    };
    let renditions: u32 = std::env::var(RENDITIONS)
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2);
    let dir = PathBuf::from(dir);
    let server = Server::start(ServerMode::Official);
    let publisher = launch(&format!(
        "videotestsrc is-live=true pattern=snow ! video/x-raw,width=640,height=360,framerate=30/1 ! \
         vdoninjasink name=p stream-id=two renditions={renditions} {props} \
         audiotestsrc is-live=true wave=ticks ! audio/x-raw,rate=48000,channels=2 ! p.",
        props = server.props()
    ));
    publisher.set_state(gst::State::Playing).expect("plays");
    let free = viewer(&server, "127.0.0.1");
    let narrow = viewer(&server, "127.0.0.2");
    let ready = wait_until(Duration::from_secs(30), || {
        free.count("video") >= 30 && narrow.count("video") >= 30
    });
    assert!(
        ready,
        "both decode: {} / {}",
        free.report("video"),
        narrow.report("video")
    );
    println!("READY");
    let _ = std::io::stdout().flush();
    let sink = publisher.by_name("p").expect("sink");
    let srcs = [&free, &narrow].map(|v| v.pipeline.by_name("s").expect("src"));
    let stop = dir.join("stop");
    let start = Instant::now();
    let mut last = srcs.each_ref().map(bytes_received);
    let mut n = 0u64;
    while !stop.exists() && start.elapsed() < Duration::from_secs(180) {
        n += 1;
        let tick = start + Duration::from_secs(n);
        std::thread::sleep(tick.saturating_duration_since(Instant::now()));
        let since = tick - Duration::from_secs(1);
        let stats = sink.property::<gst::Structure>("stats");
        let ladder = stats
            .get::<gst::Array>("renditions")
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.get::<String>().ok())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_else(|_| format!("1:{}", stats.get::<u32>("video-bitrate").unwrap_or(0)));
        let mut line = format!("SEC t={n} ladder={ladder}");
        let views = [("free", &free), ("narrow", &narrow)];
        for (i, (src, (name, view))) in srcs.iter().zip(views).enumerate() {
            let bytes = bytes_received(src);
            let (frames, frozen) = view.pictures("video", since, tick, FREEZE);
            line += &format!(
                " {name}_kbps={} {name}_frames={frames} {name}_frozen_ms={}",
                bytes.saturating_sub(last[i]) * 8 / 1000,
                frozen.as_millis(),
            );
            last[i] = bytes;
        }
        println!("{line}");
        let _ = std::io::stdout().flush();
    }
    let _ = publisher.set_state(gst::State::Null);
    println!(
        "RESULT trouble={:?}",
        [&free, &narrow]
            .iter()
            .flat_map(|v| v.trouble())
            .collect::<Vec<_>>()
    );
}

/// One second of the child's report: per viewer (free, narrow) kbit/s, frames, frozen ms.
#[derive(Debug, Clone, Default)]
struct Second {
    limited: bool,
    /// Both viewers watch rendition 0.
    both_on_top: bool,
    kbps: [u64; 2],
    frames: [u64; 2],
    frozen_ms: [u64; 2],
    line: String,
}

impl Second {
    fn parse(line: &str, limited: bool) -> Option<Self> {
        let rest = line.strip_prefix("SEC ")?;
        let field = |k: &str| -> u64 {
            rest.split_whitespace()
                .find_map(|w| w.strip_prefix(k)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let ladder = rest
            .split_whitespace()
            .find_map(|w| w.strip_prefix("ladder="))
            .unwrap_or_default();
        Some(Self {
            limited,
            both_on_top: ladder.split(',').next().is_some_and(|l| l.ends_with("/2")),
            kbps: [field("free_kbps"), field("narrow_kbps")],
            frames: [field("free_frames"), field("narrow_frames")],
            frozen_ms: [field("free_frozen_ms"), field("narrow_frozen_ms")],
            line: line.to_string(),
        })
    }
}

/// Runs [`child_two_viewers`] with `renditions`: `free` seconds with both links free, then
/// `limited` seconds with the narrow viewer's link at 600 kbit/s. Every second it reported.
fn two_viewers(
    what: &str,
    renditions: u32,
    free: Duration,
    limited: Duration,
    freed: Duration,
) -> Vec<Second> {
    let ns = Netns::new(what);
    let dir = tempfile::tempdir().expect("tempdir");
    let r = renditions.to_string();
    let (mut child, lines) = child_in_env(
        &ns,
        "child_two_viewers",
        CHILD,
        dir.path(),
        &[(RENDITIONS, &r)],
    );
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ready = false;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = lines.recv_timeout(left) else {
            break;
        };
        ready = line.starts_with("READY");
        log.push(line);
        if ready {
            break;
        }
    }
    assert!(
        ready,
        "the child decodes before the fault: {}",
        log.join("\n")
    );
    let mut seconds = Vec::new();
    for (i, (limited, length)) in [(false, free), (true, limited), (false, freed)]
        .into_iter()
        .enumerate()
    {
        if i == 2 {
            eprintln!(
                "packets counted {:?} (all UDP, dropped to the narrow viewer)",
                counters(&ns, "narrow")
            );
            ns.exec("nft", &["delete", "table", "inet", "narrow"]);
        }
        if limited {
            add_udp_rule(
                &ns,
                "narrow",
                "ip daddr 127.0.0.2 meta l4proto udp limit rate over 75 kbytes/second burst 19 kbytes drop",
            );
        }
        let until = Instant::now() + length;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            if let Ok(line) = lines.recv_timeout(left)
                && let Some(s) = Second::parse(&line, limited)
            {
                eprintln!("renditions={renditions} limited={limited:<5} | {}", s.line);
                seconds.push(s);
            }
        }
    }
    std::fs::write(dir.path().join("stop"), b"").expect("stop file");
    let result = (0..20)
        .find_map(|_| {
            let line = lines.recv_timeout(Duration::from_secs(1)).ok()?;
            line.starts_with("RESULT").then_some(line)
        })
        .unwrap_or_default();
    let _ = child.wait();
    assert!(result.contains("trouble=[]"), "the viewers: {result}");
    seconds
}

/// What the run gave: (free viewer's kbit/s before, and under the limit (last 20 s); narrow
/// viewer's frames a second and frozen share under the limit (last 20 s)).
fn judge(seconds: &[Second]) -> (f64, f64, f64, f64) {
    let mean = |xs: Vec<u64>| xs.iter().sum::<u64>() as f64 / xs.len().max(1) as f64;
    // Alone: the last 4 s before the limit (both links free, the encoder settled).
    let free: Vec<&Second> = seconds.iter().take_while(|s| !s.limited).collect();
    let before = &free[free.len().saturating_sub(4)..];
    let under: Vec<&Second> = seconds.iter().filter(|s| s.limited).collect();
    let settled = &under[under.len().saturating_sub(20)..];
    let free_before = mean(before.iter().map(|s| s.kbps[0]).collect());
    let free_under = mean(settled.iter().map(|s| s.kbps[0]).collect());
    let narrow_fps = mean(settled.iter().map(|s| s.frames[1]).collect());
    let narrow_frozen = settled.iter().map(|s| s.frozen_ms[1]).sum::<u64>() as f64
        / (settled.len().max(1) as f64 * 1000.0);
    (free_before, free_under, narrow_fps, narrow_frozen)
}

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn one_narrow_viewer_does_not_set_the_free_viewers_picture() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let seconds = two_viewers(
        "rend2",
        2,
        Duration::from_secs(10),
        Duration::from_secs(35),
        Duration::from_secs(30),
    );
    let (before, under, fps, frozen) = judge(&seconds);
    eprintln!(
        "renditions=2: free viewer {before:.0} kbit/s alone, {under:.0} kbit/s beside the narrow \
         one ({:.0} %); narrow viewer {fps:.1} fps decoded, frozen {:.1} %",
        under / before.max(1.0) * 100.0,
        frozen * 100.0
    );
    assert!(
        under >= 0.8 * before,
        "the free viewer keeps 80 % of its bitrate: {under:.0} of {before:.0} kbit/s"
    );
    assert!(
        fps >= 0.8 * 30.0,
        "the narrow viewer decodes 80 % of the frames: {fps:.1} fps"
    );
    // Its link freed, the narrow viewer climbs back to the full picture by itself.
    let after: Vec<&Second> = seconds
        .iter()
        .skip_while(|s| !s.limited)
        .skip_while(|s| s.limited)
        .collect();
    let back = after.iter().position(|s| s.both_on_top);
    eprintln!("back on rendition 0 {back:?} s after the limit went");
    assert!(
        back.is_some(),
        "the narrow viewer is back on rendition 0 within {} s",
        after.len()
    );
}

/// The benchmark: one rendition, then two, the same schedule; prints both summaries.
#[test]
#[ignore = "a benchmark: cargo test --test renditions -- --ignored renditions_bench --nocapture"]
fn renditions_bench() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for r in [1, 2] {
        let seconds = two_viewers(
            &format!("bench{r}"),
            r,
            Duration::from_secs(10),
            Duration::from_secs(35),
            Duration::from_secs(20),
        );
        let (before, under, fps, frozen) = judge(&seconds);
        println!(
            "renditions={r}: free viewer {before:.0} kbit/s alone, {under:.0} kbit/s beside the \
             narrow one ({:.0} %); narrow viewer {fps:.1} fps decoded, frozen {:.1} %",
            under / before.max(1.0) * 100.0,
            frozen * 100.0
        );
    }
}
