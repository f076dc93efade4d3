// SPDX-License-Identifier: MPL-2.0

//! Network namespaces that a test makes for itself (`ip netns`), with nftables rules on their
//! `lo` to drop, police or count UDP: the network faults of the fault and congestion tests.
//! Needs root, iproute2 and nftables (`.ci/run` runs as root; `scripts/setup.sh` installs them).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

/// A network namespace of this test's own with `lo` up; deleted (with what runs in it) on drop.
pub struct Netns(pub String);

impl Netns {
    pub fn new(what: &str) -> Self {
        let name = format!("vdn-{what}-{}", std::process::id());
        run("ip", &["netns", "add", &name]);
        let ns = Self(name);
        ns.exec("ip", &["link", "set", "lo", "up"]);
        ns
    }

    pub fn exec(&self, cmd: &str, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", &self.0, cmd];
        all.extend_from_slice(args);
        run("ip", &all)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Ok(out) = Command::new("ip").args(["netns", "pids", &self.0]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Runs a command that must succeed (root and nftables are what `.ci/run` provides).
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} {args:?}: {e} (iproute2 and nftables installed?)"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed (this test needs root): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The packet counts of the rules of `table`, in rule order.
pub fn counters(ns: &Netns, table: &str) -> Vec<u64> {
    let listing = ns.exec("nft", &["list", "table", "inet", table]);
    listing
        .split("counter packets ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Adds `rule` (after a counting rule) to lo's output hook in `ns`, as table `table`.
pub fn add_udp_rule(ns: &Netns, table: &str, rule: &str) {
    ns.exec("nft", &["add", "table", "inet", table]);
    ns.exec(
        "nft",
        &[
            "add",
            "chain",
            "inet",
            table,
            "out",
            "{ type filter hook output priority 0; }",
        ],
    );
    ns.exec(
        "nft",
        &[
            "add",
            "rule",
            "inet",
            table,
            "out",
            "meta l4proto udp counter",
        ],
    );
    ns.exec("nft", &["add", "rule", "inet", table, "out", rule]);
}

/// Runs the ignored test `test` of this test binary as a child process inside `ns`, with `key`
/// set to `dir` in its environment; its output (stdout and stderr) comes line by line.
pub fn child_in(ns: &Netns, test: &str, key: &str, dir: &Path) -> (Child, mpsc::Receiver<String>) {
    child_in_env(ns, test, key, dir, &[])
}

/// [`child_in`], with more variables in the child's environment.
pub fn child_in_env(
    ns: &Netns,
    test: &str,
    key: &str,
    dir: &Path,
    env: &[(&str, &str)],
) -> (Child, mpsc::Receiver<String>) {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(exe)
        .args([test, "--exact", "--ignored", "--nocapture"])
        .envs(env.iter().copied())
        .env(key, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the child starts in the namespace");
    let (tx, lines) = mpsc::channel::<String>();
    for out in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    (child, lines)
}
