// SPDX-License-Identifier: MPL-2.0

//! The Rust example users copy from runs, against our server on 127.0.0.1: `record_room`
//! records a room of two publishers into files that decode, and stops cleanly on Ctrl-C.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::media::*;
use common::run::*;
use gstvdoninja::server::hub::ServerMode;

#[test]
fn record_room_records_every_guest_with_progress() {
    let server = Server::start(ServerMode::Fanout);
    let _a = publisher(&server, "exa", Some("exroom"), None, 0);
    let _b = publisher(&server, "exb", Some("exroom"), None, 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(example("record_room"))
        .args(["--room", "exroom", "--server", &server.url, "--output-dir"])
        .arg(dir.path())
        .args(set_args(&server))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("record_room runs");
    // Its lines as they come (not a terminal: plain lines, no live view).
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let recording = |seen: &[String], sid: &str| {
        seen.iter()
            .any(|l| l.starts_with(&format!("● {sid} recording to")))
    };
    let deadline = std::time::Instant::now() + MEDIA_WAIT;
    while !(recording(&seen, "exa") && recording(&seen, "exb")) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(_) => panic!("both guests were not recorded in time: {seen:#?}"),
        }
    }
    // Some media, then Ctrl-C: every file is finalized, and it says so.
    let first = std::time::Instant::now();
    while first.elapsed() < Duration::from_secs(2) {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.push(l);
        }
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let (ok, err) = finish(child, Duration::from_secs(30));
    seen.extend(rx.try_iter());
    let out = seen.join("\n");
    assert!(ok, "record_room failed:\n{out}\n{err}");
    assert!(
        out.contains("+ exa joined") && out.contains("+ exb joined"),
        "{out}"
    );
    assert!(out.contains("2 file(s) written"), "{out}");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path())
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
