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
//! Files: `rate`, `loss`, `cap`, `retransmit`, `reports` and `share` (sans-IO, unit-tested), `gcc`
//! (webrtcbin, rtpgccbwe, the viewer's RTCP as it arrives).

pub mod cap;
pub mod gcc;
pub mod loss;
pub mod rate;
pub mod reports;
pub mod retransmit;
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

/// How often a viewer's RTCP is turned into an estimate (a second, less a margin for the
/// ticks' jitter: the window is not stretched to the next tick, a second and a half). NACKs come at once; a
/// window with packets sent and none asked for again is one without loss, for a viewer known
/// to send NACKs. Receiver reports come every second or few: a window without one (and
/// without NACKs from such a viewer) leaves the estimate where it is.
const LOSS_WINDOW: Duration = Duration::from_millis(950);

/// A GCC viewer's window closes early, at a tick this far into it, when the transport-wide
/// feedback so far shows the link collapsing ([`EARLY_LOSS`] of at least [`EARLY_PACKETS`]
/// packets lost): every half second more at the old rate floods the link with media and
/// retransmissions (the start of the narrow-link case: 3,400 kbit/s into 1,000, 58 % lost,
/// in the window after the one where the loss began).
const EARLY_AFTER: Duration = Duration::from_millis(400);
const EARLY_LOSS: f64 = 0.25;
/// (Random loss of 5 % shows a quarter of 30 packets lost once in about 12,000 windows.)
const EARLY_PACKETS: usize = 30;

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
    pub cap: cap::LossCap,
    /// The packets the last window's NACKs asked for: asked again (a receiver retries), they
    /// are not counted again.
    last_nacked: std::collections::HashSet<(u32, u16)>,
    /// Its retransmissions' budget.
    pub rtx: Arc<retransmit::Limiter>,
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
            last_nacked: Default::default(),
            rtx: Arc::default(),
            pacer: gcc::Pacer::default(),
            bounds: (min, max),
        }
    }

    /// What its rtpgccbwe is to share with it.
    pub fn taps(&self) -> gcc::Taps {
        gcc::Taps {
            estimate: self.gcc.clone(),
            reports: self.reports.clone(),
            rtx: self.rtx.clone(),
            pacer: self.pacer.clone(),
        }
    }

    /// The viewer's answer is in: transport-wide feedback if it took the extension (and `gcc`
    /// is asked for), else its receiver reports; and the payload types of its retransmissions.
    pub fn negotiated(&mut self, answer: &str, cc: CongestionControl) {
        self.rtx
            .set_payload_types(&retransmit::rtx_payload_types(answer));
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
        if let Some(w) = &window {
            self.loss_fraction = w.loss;
            if self.mode == LinkMode::Gcc
                && let Some((sent, received)) = w.link
            {
                self.cap.on_window(w.loss, sent, Some(received));
                // Paced at half as much again as the link showed it carries.
                let pace = self.cap.cap().map(|c| c.saturating_mul(3) / 2);
                self.pacer
                    .limit(pace, self.bounds.0, self.bounds.1, &self.gcc);
            }
            gst::debug!(
                CAT,
                "{} link: loss {:.1} %, sent/received {:?} kbit/s, retransmitted/held back \
                 {:?} kbit/s, GCC {} kbit/s, ceiling {:?} (the link carried {:?})",
                self.mode.nick(),
                w.loss * 100.0,
                w.link,
                w.rtx,
                self.gcc.load(Ordering::Relaxed),
                self.cap.cap(),
                self.cap.carried(),
            );
        }
        match self.mode {
            LinkMode::Pending => {}
            LinkMode::Gcc => {
                let e = self.gcc.load(Ordering::Relaxed);
                if e > 0 {
                    self.estimate = Some(e);
                    let link = self.cap.cap().map_or(e, |c| c.min(e));
                    self.rtx.link_kbps.store(link, Ordering::Relaxed);
                    self.video = Some(share::video_share(link, audio));
                }
            }
            LinkMode::Loss => {
                if let Some(w) = window {
                    self.estimate = Some(self.loss.on_report(w.loss));
                    self.video = self.estimate;
                }
            }
        }
    }

    /// Once every [`LOSS_WINDOW`], what the viewer's RTCP told in it; `None` when it told
    /// nothing (no feedback, no report, and no NACKs from a viewer that sends them).
    fn loss_window(&mut self, now: Instant) -> Option<Window> {
        let since = self.window;
        if since.is_some_and(|s| {
            let age = now.saturating_duration_since(s);
            age < LOSS_WINDOW && !(age >= EARLY_AFTER && self.collapsing_now())
        }) {
            return None;
        }
        self.window = Some(now);
        let secs = since
            .map(|s| now.saturating_duration_since(s).as_secs_f64())
            .filter(|secs| *secs > 0.0);
        let kbps = |bytes: u64| secs.map(|s| (bytes as f64 * 8.0 / s / 1000.0) as u32);
        let r = &self.reports;
        let reported = r.take();
        let sent = r.sent.swap(0, Ordering::Relaxed);
        let asked_now = {
            let mut set = r.nacked.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut *set)
        };
        let nacked = asked_now.difference(&self.last_nacked).count() as u64;
        self.last_nacked = asked_now;
        let nacks = r.sends_nacks.load(Ordering::Relaxed);
        let asked = (nacks && sent > 0).then(|| (nacked as f64 / sent as f64).min(1.0));
        let told = std::mem::take(&mut *r.feedback.lock().unwrap_or_else(|e| e.into_inner()));
        let link_sent = r.link_sent_bytes.swap(0, Ordering::Relaxed);
        let lost = told.values().filter(|(_, arrived)| !arrived).count() as u64;
        let arrived_bytes: u64 = told
            .values()
            .filter(|(_, arrived)| *arrived)
            .map(|(size, _)| u64::from(*size))
            .sum();
        let feedback = (!told.is_empty()).then(|| lost as f64 / told.len() as f64);
        gst::trace!(
            CAT,
            "loss window: reports {reported:?}, NACKs {nacked} of {sent} packets ({asked:?}), \
             transport-wide feedback {lost} lost of {}",
            told.len()
        );
        // The transport-wide feedback tells the window's own loss, packet by packet; receiver
        // reports and NACKs (for viewers without it) come later and cover other intervals.
        let loss = feedback.or_else(|| [reported, asked].into_iter().flatten().reduce(f64::max))?;
        let link = feedback.and(kbps(link_sent)).zip(kbps(arrived_bytes));
        let rtx = kbps(self.rtx.sent_bytes.swap(0, Ordering::Relaxed))
            .zip(kbps(self.rtx.dropped_bytes.swap(0, Ordering::Relaxed)));
        Some(Window { loss, link, rtx })
    }

    /// The feedback of the window so far shows a collapse that is not yet being told.
    fn collapsing_now(&self) -> bool {
        if self.mode != LinkMode::Gcc || self.cap.collapsing() {
            return false;
        }
        let told = self
            .reports
            .feedback
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let lost = told.values().filter(|(_, arrived)| !arrived).count();
        told.len() >= EARLY_PACKETS && lost as f64 > EARLY_LOSS * told.len() as f64
    }
}

/// What one loss window told of a viewer's link.
struct Window {
    /// The fraction of packets lost (0.0–1.0): what the viewer's transport-wide feedback said
    /// of each packet, or else the worst of its receiver reports' blocks and of the packets its
    /// NACKs asked for, each once, against the video packets sent.
    loss: f64,
    /// With transport-wide feedback: the kbit/s sent to the viewer, and the kbit/s the
    /// feedback says arrived (audio and video, RTP headers and payload).
    link: Option<(u32, u32)>,
    /// The kbit/s retransmitted to it, and held back over their budget.
    rtx: Option<(u32, u32)>,
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
