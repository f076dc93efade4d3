// SPDX-License-Identifier: MPL-2.0

//! The examples users copy from run, against our server on 127.0.0.1: `record_room` records
//! a room of two publishers into files that decode; the Python view example decodes a stream;
//! the Python publish example is viewed by a decoding viewer.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::media::*;
use gstvdoninja::server::hub::ServerMode;

/// `target/<profile>`, from this test binary's `target/<profile>/deps/`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// The element properties that put an example on our loopback server (but `server`, which
/// the examples take as `--server`), as `--set` arguments.
fn set_args(server: &Server) -> Vec<String> {
    shlex::split(&server.props())
        .expect("props")
        .into_iter()
        .filter(|kv| !kv.starts_with("server="))
        .flat_map(|kv| ["--set".to_string(), kv])
        .collect()
}

/// An example binary; `cargo test` builds them all before it runs a test.
fn example(name: &str) -> PathBuf {
    let path = target_dir().join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: run the whole suite (`cargo test`), or `cargo build --examples` first",
        path.display()
    );
    path
}

fn publisher(server: &Server, stream: &str, room: Option<&str>, n: u32) -> gst::Pipeline {
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

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `child` to exit, at most `limit`; its stdout and stderr, and whether it succeeded.
fn finish(mut child: Child, limit: Duration) -> (bool, String) {
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

#[test]
fn record_room_records_every_guest_with_progress() {
    let server = Server::start(ServerMode::Fanout);
    let _a = publisher(&server, "exa", Some("exroom"), 0);
    let _b = publisher(&server, "exb", Some("exroom"), 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let child = Command::new(example("record_room"))
        .args([
            "--room",
            "exroom",
            "--server",
            &server.url,
            "--duration",
            "8",
            "--output-dir",
        ])
        .arg(dir.path())
        .args(set_args(&server))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("record_room runs (cargo test builds the examples)");
    let (ok, out) = finish(child, Duration::from_secs(40));
    assert!(ok, "record_room failed:\n{out}");
    assert!(
        out.contains("+ exa joined") && out.contains("+ exb joined"),
        "{out}"
    );
    assert!(out.contains("2 file(s) written"), "{out}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "mkv"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}\n{out}");
    for f in files {
        let r = inspect_file(&f, "matroskademux");
        assert!(
            r.all_decoded() && r.count("video") == 1 && r.count("audio") == 1,
            "{}: {:?} {:?}",
            f.display(),
            r.streams,
            r.errors
        );
    }
}

#[test]
fn record_room_says_what_is_wrong_with_its_arguments() {
    let run = |args: &[&str]| {
        let out = Command::new(example("record_room"))
            .args(args)
            .output()
            .expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--room"), "{err}");
    let (code, err) = run(&["--room", "r", "--set", "nosuch=1"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no property \"nosuch\""), "{err}");
    let (code, err) = run(&["--room", "r", "--set", "latency=lots"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not a valid"), "{err}");
}

#[test]
fn the_python_view_example_decodes_a_stream() {
    let server = Server::start(ServerMode::Fanout);
    let _p = publisher(&server, "pyview", None, 2);
    let child = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/view.py"))
        .args([
            "pyview",
            "--server",
            &server.url,
            "--headless",
            "--frames",
            "30",
            "--timeout",
            "30",
        ])
        .args(
            set_args(&server)
                .into_iter()
                .filter(|a| !a.starts_with("server=")),
        )
        .env("GST_PLUGIN_PATH", plugin_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let (ok, out) = finish(child, Duration::from_secs(45));
    assert!(ok, "view.py failed:\n{out}");
    assert!(out.contains("video_pyview"), "{out}");
}

#[test]
fn the_python_publish_example_is_viewed() {
    let server = Server::start(ServerMode::Fanout);
    let child = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/publish.py"))
        .args(["pypub", "--server", &server.url, "--duration", "40"])
        .args(
            set_args(&server)
                .into_iter()
                .filter(|a| !a.starts_with("server=")),
        )
        .env("GST_PLUGIN_PATH", plugin_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let child = Killed(child);
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
    let mut child = child;
    let _ = child.0.kill();
    let out = child.0.wait_with_output_lossy();
    assert!(
        decoded,
        "the viewer decoded {vf} video / {af} audio frames\n{out}"
    );
    assert!(out.contains("viewer") && out.contains("added"), "{out}");
}

trait OutputLossy {
    fn wait_with_output_lossy(&mut self) -> String;
}

impl OutputLossy for Child {
    fn wait_with_output_lossy(&mut self) -> String {
        use std::io::Read;
        let _ = self.wait();
        let mut s = String::new();
        if let Some(o) = self.stdout.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        if let Some(e) = self.stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}
