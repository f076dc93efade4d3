// SPDX-License-Identifier: MPL-2.0

//! A pipeline parsed from `gst-launch-1.0` text, as gst-launch and obs-gstreamer run one: its
//! named sinks are watched (each buffer's arrival and running time, caps, EOS), and the
//! `vdoninjasrc` named `s` in it reports `stream-added`/`stream-removed` with their times.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::media::{MEDIA_WAIT, launch, wait_until};

/// How far a buffer's running time may be before the previous one's: a live RTP track's time
/// stamps follow arrival and step back a few milliseconds, and rtpbin's lip-sync moves an audio
/// track's offset once its first sender reports arrive (216 and 456 ms back in two runs, ~1.4 s
/// into a connection: a receiver matter of its own, not of the pads). A new connection whose
/// running time started again would step back by the whole time before it (5 s and more in
/// these tests).
pub const JITTER: gst::ClockTime = gst::ClockTime::from_seconds(1);

/// What reached one named sink: each buffer's arrival and running time, and the caps seen.
#[derive(Default)]
pub struct Seen {
    pub buffers: Vec<(Instant, gst::ClockTime)>,
    /// Buffers whose running time was more than [`JITTER`] before the one of the buffer before
    /// them: (index, running time before, running time).
    pub backwards: Vec<(usize, gst::ClockTime, gst::ClockTime)>,
    pub sizes: Vec<(i32, i32)>,
    pub eos: bool,
}

/// A pipeline parsed from text, its named sinks watched.
pub struct Linked {
    pub pipeline: gst::Pipeline,
    pub seen: HashMap<String, Arc<Mutex<Seen>>>,
    /// `stream-added` of the element named `s`, with when.
    pub added: Arc<Mutex<Vec<(String, Instant)>>>,
    pub removed: Arc<Mutex<Vec<(String, String)>>>,
}

impl Linked {
    pub fn start(desc: &str, sinks: &[&str]) -> Self {
        let pipeline = launch(desc);
        let mut seen = HashMap::new();
        for name in sinks {
            let s: Arc<Mutex<Seen>> = Arc::default();
            let pad = pipeline
                .by_name(name)
                .unwrap_or_else(|| panic!("no {name}"))
                .static_pad("sink")
                .expect("sink pad");
            let w = s.clone();
            pad.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
                move |pad, info| {
                    let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
                    match &info.data {
                        Some(gst::PadProbeData::Buffer(b)) => {
                            let segment =
                                pad.sticky_event::<gst::event::Segment>(0).and_then(|e| {
                                    e.segment().downcast_ref::<gst::ClockTime>().cloned()
                                });
                            let rt = match (segment, b.pts()) {
                                (Some(seg), Some(pts)) => seg.to_running_time(pts),
                                _ => None,
                            };
                            if let Some(rt) = rt {
                                if let Some(&(_, last)) = w.buffers.last()
                                    && rt + JITTER < last
                                {
                                    let i = w.buffers.len();
                                    w.backwards.push((i, last, rt));
                                }
                                w.buffers.push((Instant::now(), rt));
                            }
                        }
                        Some(gst::PadProbeData::Event(e)) => match e.view() {
                            gst::EventView::Caps(c) => {
                                if let Some(s) = c.caps().structure(0)
                                    && let (Ok(wd), Ok(h)) =
                                        (s.get::<i32>("width"), s.get::<i32>("height"))
                                {
                                    w.sizes.push((wd, h));
                                }
                            }
                            gst::EventView::Eos(_) => w.eos = true,
                            _ => {}
                        },
                        _ => {}
                    }
                    gst::PadProbeReturn::Ok
                },
            );
            seen.insert(name.to_string(), s);
        }
        let added: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let removed: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let src = pipeline.by_name("s").expect("vdoninjasrc named s");
        let a = added.clone();
        src.connect("stream-added", false, move |args| {
            let id = args[1].get::<String>().expect("id");
            a.lock().expect("lock").push((id, Instant::now()));
            None
        });
        let r = removed.clone();
        src.connect("stream-removed", false, move |args| {
            let id = args[1].get::<String>().expect("id");
            let why = args[2].get::<String>().expect("reason");
            r.lock().expect("lock").push((id, why));
            None
        });
        pipeline.set_state(gst::State::Playing).expect("plays");
        Self {
            pipeline,
            seen,
            added,
            removed,
        }
    }

    /// Buffers that reached `sink` in `from..to`, and the frozen time (gaps over `freeze`)
    /// that ended in it.
    pub fn pictures(
        &self,
        sink: &str,
        from: Instant,
        to: Instant,
        freeze: Duration,
    ) -> (usize, Duration) {
        let seen = self.seen[sink].lock().unwrap_or_else(|e| e.into_inner());
        let mut frames = 0;
        let mut frozen = Duration::ZERO;
        let mut prev: Option<Instant> = None;
        for (at, _) in seen.buffers.iter() {
            if *at > from && *at <= to {
                frames += 1;
                if let Some(p) = prev
                    && *at - p > freeze
                {
                    frozen += *at - p;
                }
            }
            prev = Some(*at);
        }
        (frames, frozen)
    }

    pub fn count(&self, sink: &str) -> usize {
        self.seen[sink].lock().expect("lock").buffers.len()
    }

    /// Buffers that reached `sink` after `t`, and when the first of them did.
    pub fn after(&self, sink: &str, t: Instant) -> (usize, Option<Duration>) {
        let s = self.seen[sink].lock().expect("lock");
        let later: Vec<_> = s.buffers.iter().filter(|(at, _)| *at > t).collect();
        (later.len(), later.first().map(|(at, _)| *at - t))
    }

    /// The longest wait between two buffers of `sink`, in running time.
    pub fn longest_gap(&self, sink: &str) -> gst::ClockTime {
        let s = self.seen[sink].lock().expect("lock");
        s.buffers
            .windows(2)
            .map(|w| w[1].1.saturating_sub(w[0].1))
            .max()
            .unwrap_or_default()
    }

    pub fn added_count(&self, id: &str) -> usize {
        self.added
            .lock()
            .expect("lock")
            .iter()
            .filter(|(s, _)| s == id)
            .count()
    }

    /// When `id` was announced the `n`th time (from 1).
    pub fn wait_added(&self, id: &str, n: usize) -> Instant {
        self.wait_added_within(id, n, MEDIA_WAIT)
    }

    /// [`Self::wait_added`], waiting at most `limit`.
    pub fn wait_added_within(&self, id: &str, n: usize, limit: Duration) -> Instant {
        assert!(
            wait_until(limit, || self.added_count(id) >= n),
            "stream-added #{n} of {id}: {:?}",
            self.added.lock().expect("lock")
        );
        self.added
            .lock()
            .expect("lock")
            .iter()
            .filter(|(s, _)| s == id)
            .nth(n - 1)
            .map(|(_, t)| *t)
            .expect("announced")
    }

    pub fn wait_removed(&self, id: &str) {
        assert!(
            wait_until(MEDIA_WAIT, || self
                .removed
                .lock()
                .expect("lock")
                .iter()
                .any(|(s, _)| s == id)),
            "stream-removed of {id}"
        );
    }

    /// Errors and EOS messages on the bus so far.
    pub fn trouble(&self) -> Vec<String> {
        let bus = self.pipeline.bus().expect("bus");
        let mut out = Vec::new();
        while let Some(m) = bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Eos]) {
            out.push(format!("{m:?}"));
        }
        out
    }

    pub fn report(&self, sink: &str) -> String {
        let s = self.seen[sink].lock().expect("lock");
        format!(
            "{sink}: {} buffers, backwards {:?}, sizes {:?}, eos {}",
            s.buffers.len(),
            s.backwards,
            s.sizes,
            s.eos
        )
    }
}

impl Drop for Linked {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
