// SPDX-License-Identifier: MPL-2.0

//! Running the examples as users do: as processes, against the in-process server.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use super::media::{Server, launch, wait_until};

/// `target/<profile>`, from this test binary's `target/<profile>/deps/`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// The element properties that put an example on our loopback server (but `server`, which
/// the examples take as `--server`), as `--set` arguments.
pub fn set_args(server: &Server) -> Vec<String> {
    shlex::split(&server.props())
        .expect("props")
        .into_iter()
        .filter(|kv| !kv.starts_with("server="))
        .flat_map(|kv| ["--set".to_string(), kv])
        .collect()
}

/// An example binary; `cargo test` builds them all before it runs a test.
pub fn example(name: &str) -> PathBuf {
    let path = target_dir().join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: run the whole suite (`cargo test`), or `cargo build --examples` first",
        path.display()
    );
    path
}

/// A `vdoninjasink` publisher of a test pattern (`n` picks pattern and tone), in `room` with
/// `password` when given. Its congestion control is off: these publishers stand for guests
/// whose recording is under test (holes under loss, breaks), and rtpgccbwe's pacing left a
/// 0.78 s video hole under 5 % random loss in 1 of 2 runs (0.07–0.26 s without it); the
/// sink's own rate control is tested in `tests/congestion.rs`.
pub fn publisher(
    server: &Server,
    stream: &str,
    room: Option<&str>,
    password: Option<&str>,
    n: u32,
) -> gst::Pipeline {
    let mut extra = String::new();
    if let Some(r) = room {
        extra += &format!(" room={r}");
    }
    if let Some(p) = password {
        extra += &format!(" password={p}");
    }
    let p = launch(&format!(
        "videotestsrc is-live=true pattern={n} ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         vdoninjasink name=s stream-id={stream} {} {extra} congestion-control=disabled \
         audiotestsrc is-live=true freq={} ! audio/x-raw,rate=48000,channels=2 ! s.",
        server.props(),
        300 + 100 * n
    ));
    gst::prelude::ElementExt::set_state(&p, gst::State::Playing).expect("publisher plays");
    p
}

/// A child process that is killed if the test ends (or panics) before it does.
pub struct Killed(Option<Child>);

impl Killed {
    pub fn new(child: Child) -> Self {
        Self(Some(child))
    }

    /// Kills it now; its stdout and stderr.
    pub fn kill_and_read(mut self) -> String {
        let mut child = self.0.take().expect("still there");
        let _ = child.kill();
        finish(child, Duration::from_secs(10)).1
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits for `child` to exit, at most `limit`; its stdout and stderr, and whether it succeeded.
pub fn finish(mut child: Child, limit: Duration) -> (bool, String) {
    let ok = wait_until(limit, || child.try_wait().ok().flatten().is_some());
    if !ok {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (ok && out.status.success(), text)
}
