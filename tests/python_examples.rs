// SPDX-License-Identifier: MPL-2.0

//! The Python (PyGObject) examples run, against our server on 127.0.0.1: `view.py` decodes a
//! stream, `publish.py` is viewed by a decoding viewer. A test binary of their own: the first
//! builds `libgstvdoninja.so`, which should not slow other tests down.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::media::*;
use common::run::*;
use gstvdoninja::server::hub::ServerMode;

fn python() -> &'static str {
    // Debian's interpreter has PyGObject (python3-gi); a python3 earlier on PATH may not.
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// The folder of `libgstvdoninja.so`, for Python's GStreamer. `cargo test` builds the
/// library only as the Rust library the tests link; the shared object is built here, once per
/// test binary (cargo holds no lock while tests run, and the build is incremental).
fn plugin_dir() -> PathBuf {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let dir = target_dir();
    let built = BUILT.get_or_init(|| {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--lib", "--locked"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if dir.file_name().is_some_and(|p| p == "release") {
            cmd.arg("--release");
        }
        let child = cmd.spawn().map_err(|e| format!("cargo: {e}"))?;
        let (ok, out) = finish(child, Duration::from_secs(600));
        if ok { Ok(()) } else { Err(out) }
    });
    if let Err(e) = built {
        panic!("cargo build --lib failed: {e}");
    }
    assert!(
        dir.join("libgstvdoninja.so").exists(),
        "no libgstvdoninja.so in {}",
        dir.display()
    );
    dir
}

/// `examples/python/<script>` on our server, output captured.
fn python_example(script: &str, server: &Server, args: &[&str]) -> Child {
    Command::new(python())
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("examples/python")
                .join(script),
        )
        .args(args)
        .args(["--server", &server.url])
        .args(set_args(server))
        .env("GST_PLUGIN_PATH", plugin_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs")
}

#[test]
fn the_python_view_example_decodes_a_stream() {
    let server = Server::start(ServerMode::Fanout);
    let _p = publisher(&server, "pyview", None, None, 2);
    let child = python_example(
        "view.py",
        &server,
        &["pyview", "--headless", "--frames", "30", "--timeout", "30"],
    );
    let (ok, out) = finish(child, Duration::from_secs(45));
    assert!(ok, "view.py failed:\n{out}");
    assert!(out.contains("video_pyview"), "{out}");
}

#[test]
fn the_python_publish_example_is_viewed() {
    let server = Server::start(ServerMode::Fanout);
    let child = Killed::new(python_example(
        "publish.py",
        &server,
        &["pypub", "--duration", "40"],
    ));
    let v = TestViewer::start(
        &server,
        ViewerOptions {
            stream_id: "pypub",
            room: None,
            password: None,
        },
    );
    let decoded = v.wait_frames(30, 20);
    let (vf, af) = (v.video_frames(), v.audio_frames());
    v.stop();
    let out = child.kill_and_read();
    assert!(
        decoded,
        "the viewer decoded {vf} video / {af} audio frames\n{out}"
    );
    assert!(out.contains("viewer") && out.contains("added"), "{out}");
}
