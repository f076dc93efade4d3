// SPDX-License-Identifier: MPL-2.0

//! A recording `vdoninjasrc` pipeline and what its bus says, for the recording tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gst::prelude::*;

use super::media::{MEDIA_WAIT, launch, wait_until};

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Messages a recorder pipeline posted, collected as they come.
pub struct Recorder {
    pub pipeline: gst::Pipeline,
    pub started: Vec<(String, PathBuf)>,
    /// `vdoninja/stream-added`: stream IDs.
    pub added: Vec<String>,
    pub finished: Vec<(String, PathBuf, gst::ClockTime, u64)>,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
}

impl Recorder {
    pub fn start(desc: &str) -> Self {
        let pipeline = launch(desc);
        pipeline
            .set_state(gst::State::Playing)
            .expect("recorder plays");
        Self {
            pipeline,
            started: Vec::new(),
            added: Vec::new(),
            finished: Vec::new(),
            warnings: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Drains the bus; true on EOS.
    pub fn poll(&mut self) -> bool {
        let bus = self.pipeline.bus().expect("bus");
        let mut eos = false;
        while let Some(msg) = bus.pop() {
            match msg.view() {
                gst::MessageView::Element(e) => {
                    let Some(s) = e.structure() else { continue };
                    let sid = s.get::<String>("stream-id").unwrap_or_default();
                    let loc = PathBuf::from(s.get::<String>("location").unwrap_or_default());
                    match s.name().as_str() {
                        "vdoninja/recording-started" => self.started.push((sid, loc)),
                        "vdoninja/stream-added" => self.added.push(sid),
                        "vdoninja/recording-finished" => self.finished.push((
                            sid,
                            loc,
                            s.get::<gst::ClockTime>("duration").unwrap_or_default(),
                            s.get::<u64>("bytes").unwrap_or_default(),
                        )),
                        _ => {}
                    }
                }
                gst::MessageView::Warning(w) => self.warnings.push(w.error().to_string()),
                gst::MessageView::Error(e) => self.errors.push(e.error().to_string()),
                gst::MessageView::Eos(_) => eos = true,
                _ => {}
            }
        }
        eos
    }

    pub fn wait(&mut self, what: &str, mut cond: impl FnMut(&Self) -> bool) {
        let ok = wait_until(MEDIA_WAIT, || {
            self.poll();
            cond(self)
        });
        assert!(
            ok,
            "{what}: added {:?} started {:?} finished {:?} warnings {:?} errors {:?}",
            self.added, self.started, self.finished, self.warnings, self.errors
        );
    }

    /// One line per webrtcbin (each transceiver's `do-nack`) and per jitter buffer (what it
    /// received, lost for good, asked for again and got back): for a test to check and print.
    pub fn rtp_stats(&self) -> Vec<String> {
        const FIELDS: [&str; 7] = [
            "num-pushed",
            "num-lost",
            "num-late",
            "num-duplicates",
            "rtx-count",
            "rtx-success-count",
            "rtx-rtt",
        ];
        let mut lines = Vec::new();
        let mut it = self.pipeline.iterate_recurse();
        while let Ok(Some(e)) = it.next() {
            let factory = e
                .factory()
                .map(|f| f.name().to_string())
                .unwrap_or_default();
            if factory == "webrtcbin" {
                let nacks: Vec<String> = (0..)
                    .map_while(|i: i32| {
                        e.emit_by_name::<Option<gst::glib::Object>>("get-transceiver", &[&i])
                    })
                    .map(|t| {
                        format!(
                            "{}:{}",
                            t.property::<u32>("mlineindex"),
                            t.property::<bool>("do-nack")
                        )
                    })
                    .collect();
                lines.push(format!(
                    "{} transceivers(mline:do-nack) {}",
                    e.path_string(),
                    nacks.join(" ")
                ));
                continue;
            }
            if factory != "rtpjitterbuffer" {
                continue;
            }
            let Some(s) = e
                .find_property("stats")
                .map(|_| e.property::<gst::Structure>("stats"))
            else {
                continue;
            };
            let fields: Vec<String> = FIELDS
                .iter()
                .filter_map(|f| s.get::<u64>(*f).ok().map(|v| format!("{f}={v}")))
                .collect();
            lines.push(format!(
                "{} do-retransmission={} {}",
                e.path_string(),
                e.property::<bool>("do-retransmission"),
                fields.join(" ")
            ));
        }
        lines
    }

    /// Sends EOS like `gst-launch-1.0 -e` on Ctrl-C and waits for the pipeline's EOS.
    pub fn end(mut self) -> Self {
        self.pipeline.send_event(gst::event::Eos::new());
        let mut eos = false;
        let ok = wait_until(MEDIA_WAIT, || {
            eos |= self.poll();
            eos
        });
        assert!(
            ok,
            "the pipeline ends after EOS (finished {:?})",
            self.finished
        );
        let _ = self.pipeline.set_state(gst::State::Null);
        self
    }
}

/// Waits until `path` holds some media (a recording starts at a key frame, so growth means
/// frames are being written), then lets it record `more`.
pub fn record_some(path: &Path, more: Duration) {
    let grown = wait_until(MEDIA_WAIT, || file_size(path) > 20_000);
    assert!(grown, "{path:?} receives media");
    std::thread::sleep(more);
}

pub fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Set in a child test process: the recorder pipeline it runs until it is killed.
pub const CHILD_RECORDER: &str = "VDONINJA_TEST_CHILD_RECORDER";

/// The body of a test binary's `child_recorder` entry point: plays the pipeline the parent put
/// in [`CHILD_RECORDER`] until the parent kills the process (nothing when run by hand).
pub fn run_child_recorder() {
    let Ok(desc) = std::env::var(CHILD_RECORDER) else {
        return;
    };
    let p = launch(&desc);
    p.set_state(gst::State::Playing).expect("recorder plays");
    // Killed long before this.
    std::thread::sleep(Duration::from_secs(120));
}

/// Starts this test binary's `child_recorder` entry point running `desc` (to be SIGKILLed).
pub fn spawn_child_recorder(desc: &str) -> super::run::Killed {
    let child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["child_recorder", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_RECORDER, desc)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("recorder process");
    super::run::Killed::new(child)
}
