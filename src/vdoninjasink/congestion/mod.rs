// SPDX-License-Identifier: MPL-2.0

//! Congestion control of `vdoninjasink`: fits the shared encoder to its viewers' links.
//!
//! Owns each viewer's [`Link`] estimate (Google Congestion Control on the viewer's
//! transport-wide feedback, `gcc`, or the loss in its RTCP receiver reports, `loss`, for viewers
//! that send no such feedback) and the encoder's rate ([`rate::RateController`]): the lowest
//! estimate of the viewers that watch video, and any explicit `bitrate` request, within
//! `min-bitrate`..`max-bitrate`. It runs on the media thread every [`TICK`]; a moved target is
//! logged and posted as `vdoninja/bitrate-changed`.
//!
//! Files: `rate`, `loss`, `cap`, `reports` and `share` (sans-IO, unit-tested), `gcc`
//! (webrtcbin, rtpgccbwe, the viewer's RTCP as it arrives).

pub mod cap;
pub mod gcc;
pub mod loss;
pub mod rate;
pub mod reports;
pub mod share;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::imp::{CAT, VdoNinjaSink};
use crate::common::log;

pub use crate::peer::sdp::TWCC_URI;

/// How often the estimates are read and the encoder moved.
pub const TICK: Duration = Duration::from_millis(500);

/// How often a loss-judged viewer's RTCP is turned into an estimate. NACKs come at once; a
/// window with packets sent and none asked for again is one without loss, for a viewer known
/// to send NACKs. Receiver reports come every second or few: a window without one (and
/// without NACKs from such a viewer) leaves the estimate where it is.
const LOSS_WINDOW: Duration = Duration::from_secs(1);

/// The `congestion-control` property.
#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstVdoNinjaCongestionControl")]
pub enum CongestionControl {
    #[default]
    #[enum_value(
        name = "Google Congestion Control on transport-wide feedback (loss for viewers without it)",
        nick = "gcc"
    )]
    Gcc,
    #[enum_value(name = "The loss in the viewers' RTCP receiver reports", nick = "loss")]
    Loss,
    #[enum_value(
        name = "None: the encoder moves only on explicit bitrate requests",
        nick = "disabled"
    )]
    Disabled,
}

/// How a viewer's link is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkMode {
    /// Not negotiated yet.
    Pending,
    Gcc,
    Loss,
}

impl LinkMode {
    pub fn nick(self) -> &'static str {
        match self {
            LinkMode::Pending => "pending",
            LinkMode::Gcc => "gcc",
            LinkMode::Loss => "loss",
        }
    }
}

/// One viewer's link estimate.
pub struct Link {
    pub mode: LinkMode,
    /// rtpgccbwe's estimate (kbit/s; 0: none yet).
    pub gcc: Arc<AtomicU32>,
    pub reports: Arc<gcc::ReportCounters>,
    /// When the loss was last turned into an estimate.
    window: Option<Instant>,
    loss: loss::LossEstimator,
    /// The last estimate (kbit/s) and loss fraction seen.
    pub estimate: Option<u32>,
    pub loss_fraction: f64,
    /// What of the estimate the video encoder may send (kbit/s): GCC's estimate is the whole
    /// link's ([`share::video_share`]), under the ceiling its loss shows ([`cap::LossCap`]);
    /// the loss estimate is the video's already.
    pub video: Option<u32>,
    cap: cap::LossCap,
    /// Its rtpgccbwe's pace, held near what the link showed it carries.
    pub pacer: gcc::Pacer,
    /// `min-bitrate`..`max-bitrate` (kbit/s).
    bounds: (u32, u32),
}

impl Link {
    pub fn new(start: u32, min: u32, max: u32) -> Self {
        Self {
            mode: LinkMode::Pending,
            gcc: Arc::new(AtomicU32::new(0)),
            reports: Arc::default(),
            window: None,
            loss: loss::LossEstimator::new(start, min, max),
            estimate: None,
            loss_fraction: 0.0,
            video: None,
            cap: cap::LossCap::new(max),
            pacer: gcc::Pacer::default(),
            bounds: (min, max),
        }
    }

    /// The viewer's answer is in: transport-wide feedback if it took the extension (and `gcc`
    /// is asked for), else its receiver reports.
    pub fn negotiated(&mut self, answer: &str, cc: CongestionControl) {
        self.mode = match cc {
            CongestionControl::Gcc if gcc::sdp_has_twcc(answer) => LinkMode::Gcc,
            CongestionControl::Disabled => LinkMode::Pending,
            _ => LinkMode::Loss,
        };
    }

    /// Reads what came in since the last tick into `estimate` and `video`; `audio`: the
    /// kbit/s of audio that go to this viewer along with the video.
    fn tick(&mut self, now: Instant, audio: u32) {
        if self.mode == LinkMode::Pending {
            return;
        }
        let window = self.loss_window(now);
        if let Some((loss, sent)) = window {
            self.loss_fraction = loss;
            gst::debug!(
                CAT,
                "{} link: loss {:.1} %, video sent {sent:?} kbit/s, GCC {} kbit/s, ceiling {:?}",
                self.mode.nick(),
                loss * 100.0,
                self.gcc.load(Ordering::Relaxed),
                self.cap.cap()
            );
        }
        match self.mode {
            LinkMode::Pending => {}
            LinkMode::Gcc => {
                if let Some((loss, Some(sent_kbps))) = window {
                    self.cap.on_window(loss, sent_kbps);
                    // Paced at half as much again as the link showed it carries.
                    let pace = self
                        .cap
                        .cap()
                        .map(|c| share::link_for(c, audio).saturating_mul(3) / 2);
                    self.pacer.limit(pace, self.bounds.0, self.bounds.1);
                }
                let e = self.gcc.load(Ordering::Relaxed);
                if e > 0 {
                    self.estimate = Some(e);
                    let share = share::video_share(e, audio);
                    self.video = Some(self.cap.cap().map_or(share, |c| c.min(share)));
                }
            }
            LinkMode::Loss => {
                if let Some((loss, _)) = window {
                    self.estimate = Some(self.loss.on_report(loss));
                    self.video = self.estimate;
                }
            }
        }
    }

    /// Once every [`LOSS_WINDOW`]: the fraction of packets lost in it (the worst of its
    /// receiver reports' blocks and of the packets its NACKs asked for, each once, against
    /// what was sent) and the video rate sent (kbit/s, known from the second window on);
    /// `None` when the window told nothing.
    fn loss_window(&mut self, now: Instant) -> Option<(f64, Option<u32>)> {
        let since = self.window;
        if since.is_some_and(|s| now.saturating_duration_since(s) < LOSS_WINDOW) {
            return None;
        }
        self.window = Some(now);
        let reported = self.reports.take();
        let sent = self.reports.sent.swap(0, Ordering::Relaxed);
        let bytes = self.reports.sent_bytes.swap(0, Ordering::Relaxed);
        let nacked = {
            let mut set = self
                .reports
                .nacked
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut *set).len() as u64
        };
        let nacks = self.reports.sends_nacks.load(Ordering::Relaxed);
        let asked = (nacks && sent > 0).then(|| (nacked as f64 / sent as f64).min(1.0));
        gst::trace!(
            CAT,
            "loss window: reports {reported:?}, NACKs {nacked} of {sent} packets ({asked:?})"
        );
        let loss = [reported, asked].into_iter().flatten().reduce(f64::max)?;
        let kbps = since
            .map(|s| now.saturating_duration_since(s).as_secs_f64())
            .filter(|secs| *secs > 0.0)
            .map(|secs| (bytes as f64 * 8.0 / secs / 1000.0) as u32);
        Some((loss, kbps))
    }
}

impl VdoNinjaSink {
    /// Starts the periodic tick (with the signaling); it ends with the element.
    pub(super) fn start_congestion_control(&self) -> Option<tokio::task::JoinHandle<()>> {
        if self.settings().congestion_control == CongestionControl::Disabled {
            return None;
        }
        Some(crate::common::driver::every(
            &*self.obj(),
            TICK,
            |obj: &super::VdoNinjaSink| obj.imp().runner(),
            |obj: &super::VdoNinjaSink| obj.imp().congestion_tick(),
        ))
    }

    /// What a viewer's estimator calls when its estimate falls: a tick at once, on the media
    /// thread. (It holds no handle to the media thread's queue: the estimator lives as long as
    /// its webrtcbin, and a queue handle there kept each stopped sink's media thread waiting.)
    pub(super) fn tick_soon(&self) -> impl Fn() + Send + Sync + 'static {
        let weak = self.obj().downgrade();
        move || {
            if let Some(obj) = weak.upgrade() {
                crate::common::driver::after(
                    &obj,
                    Duration::ZERO,
                    |obj: &super::VdoNinjaSink| obj.imp().runner(),
                    |obj: &super::VdoNinjaSink| obj.imp().congestion_tick(),
                );
            }
        }
    }

    /// Media thread: reads every viewer's estimate and moves the encoder.
    fn congestion_tick(&self) {
        let now = Instant::now();
        let audio_bitrate = self.settings().audio_bitrate;
        let mut st = self.state();
        let sends_audio = st
            .tracks
            .iter()
            .any(|t| t.chain.as_ref().is_some_and(|c| !c.codec.is_video()));
        for v in st.viewers.values_mut() {
            let audio = if sends_audio && v.want_audio {
                v.audio_kbps.unwrap_or(audio_bitrate)
            } else {
                0
            };
            v.link.tick(now, audio);
        }
        drop(st);
        self.update_video_bitrate();
    }

    /// Moves the shared video encoder: the lowest of the viewers' explicit requests (or
    /// `bitrate`) and of their links' estimates (`lowest`, with the viewer that sets it),
    /// through the rate controller.
    pub(super) fn move_encoder(&self, lowest: Option<(u32, String)>, now: Instant) {
        let settings = self.settings().clone();
        let mut st = self.state();
        let ceiling = settings.effective_video_kbps(st.viewers.values().map(|v| v.video_kbps));
        let estimate = match settings.congestion_control {
            CongestionControl::Disabled => None,
            _ => lowest.as_ref().map(|(e, _)| *e),
        };
        st.rate
            .set_limits(settings.min_bitrate, settings.max_bitrate);
        let Some(kbps) = st.rate.update(ceiling, estimate, now) else {
            return;
        };
        st.video_kbps = kbps;
        let mut encoders = 0;
        for t in &st.tracks {
            if let Some(c) = &t.chain
                && c.codec.is_video()
                && let Some(enc) = &c.encoder
            {
                super::input::set_bitrate(enc, kbps);
                encoders += 1;
            }
        }
        let warn_preencoded = encoders == 0
            && kbps < ceiling
            && st.tracks.iter().any(|t| {
                t.chain
                    .as_ref()
                    .is_some_and(|c| c.codec.is_video() && c.encoder.is_none())
            })
            && !std::mem::replace(&mut st.warned_preencoded, true);
        drop(st);
        let by = lowest
            .filter(|_| estimate.is_some_and(|e| e < ceiling))
            .map(|(_, uuid)| uuid)
            .unwrap_or_default();
        gst::info!(
            CAT,
            imp = self,
            "video target now {kbps} kbit/s (ceiling {ceiling}, lowest link estimate {estimate:?}{})",
            if by.is_empty() {
                String::new()
            } else {
                format!(" from viewer {by}")
            }
        );
        let obj = self.obj();
        log::post_element_message(
            obj.upcast_ref(),
            gst::Structure::builder("vdoninja/bitrate-changed")
                .field("bitrate", kbps)
                .field("estimate", estimate.map_or(-1i64, i64::from))
                .field("viewer-id", by)
                .build(),
        );
        if warn_preencoded {
            log::post_warning(
                *CAT,
                obj.upcast_ref(),
                &format!(
                    "a viewer's link carries about {kbps} kbit/s, but the video input is already \
                     encoded and cannot be re-rated: give vdoninjasink raw video (it encodes \
                     once for every viewer) or encode at a lower bitrate upstream"
                ),
            );
        }
    }
}
