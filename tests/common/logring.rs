// SPDX-License-Identifier: MPL-2.0

//! The last lines of the GStreamer debug log, kept in memory and printed only when the test
//! fails: a failure that happens once in many CI runs can then be read, without a test log
//! that prints megabytes every time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use gst::prelude::*;

/// How many lines are kept.
const LINES: usize = 20_000;

/// While alive, the debug messages of `spec` (a `GST_DEBUG` string) are kept; on drop during
/// a panic they go to stderr (which the test harness shows for a failed test).
pub struct LogRing {
    lines: Arc<Mutex<VecDeque<String>>>,
    function: Option<gst::log::DebugLogFunction>,
    start: std::time::Instant,
}

/// Keeps `spec`'s messages, e.g. `"vdoninja*:5,webrtcbin:4"`. A `GST_DEBUG` the user set
/// wins: then GStreamer prints as asked and nothing is kept.
pub fn keep(spec: &str) -> LogRing {
    super::media::init();
    let lines: Arc<Mutex<VecDeque<String>>> = Arc::default();
    let start = std::time::Instant::now();
    if std::env::var_os("GST_DEBUG").is_some() {
        return LogRing {
            lines,
            function: None,
            start,
        };
    }
    gst::log::remove_default_log_function();
    gst::log::set_threshold_from_string(spec, true);
    let kept = lines.clone();
    let function = gst::log::add_log_function(move |cat, level, _file, func, line, obj, msg| {
        let Some(text) = msg.get() else { return };
        let obj = obj.map(|o| o.to_string()).unwrap_or_default();
        let t = start.elapsed().as_secs_f64();
        let entry = format!(
            "{t:9.3} {level:?} {} {func}:{line} {obj} {text}",
            cat.name()
        );
        if let Ok(mut l) = kept.lock() {
            if l.len() == LINES {
                l.pop_front();
            }
            l.push_back(entry);
        }
    });
    LogRing {
        lines,
        function: Some(function),
        start,
    }
}

impl LogRing {
    /// A line of the test's own in the same log (what it waits for, what it saw).
    pub fn note(&self, text: &str) {
        let t = self.start.elapsed().as_secs_f64();
        if let Ok(mut l) = self.lines.lock() {
            l.push_back(format!("{t:9.3} TEST {text}"));
        }
    }

    /// Keeps the messages waiting on `pipeline`'s bus (errors, warnings, element messages,
    /// state changes of the pipeline itself), as lines of `who`.
    pub fn bus(&self, pipeline: &gst::Pipeline, who: &str) {
        let Some(bus) = pipeline.bus() else { return };
        while let Some(m) = bus.pop() {
            use gst::MessageView::*;
            let text = match m.view() {
                Error(e) => format!("error {} ({:?})", e.error(), e.debug()),
                Warning(w) => format!("warning {} ({:?})", w.error(), w.debug()),
                Element(e) => format!("element {:?}", e.structure()),
                StateChanged(s) if m.src() == Some(pipeline.upcast_ref()) => {
                    format!("state {:?} -> {:?}", s.old(), s.current())
                }
                _ => continue,
            };
            self.note(&format!("{who}: {text}"));
        }
    }

    /// The kept lines, oldest first.
    pub fn dump(&self) -> String {
        self.lines
            .lock()
            .map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }
}

impl Drop for LogRing {
    fn drop(&mut self) {
        if let Some(f) = self.function.take() {
            gst::log::remove_log_function(f);
        }
        if std::thread::panicking() {
            eprintln!("--- the last GStreamer debug lines before the failure ---");
            eprintln!("{}", self.dump());
            eprintln!("--- end of the debug lines ---");
        }
    }
}
