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

pub fn publisher(server: &Server, stream: &str, room: Option<&str>, n: u32) -> gst::Pipeline {
    let room = room.map(|r| format!("room={r}")).unwrap_or_default();
    let p = launch(&format!(
        "videotestsrc is-live=true pattern={n} ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         vdoninjasink name=s stream-id={stream} {room} {} \
         audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! s.",
        server.props()
    ));
    gst::prelude::ElementExt::set_state(&p, gst::State::Playing).expect("publisher plays");
    p
}

pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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
