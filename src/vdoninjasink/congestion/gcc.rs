// SPDX-License-Identifier: MPL-2.0

//! The I/O of congestion control on one viewer's webrtcbin: Google Congestion Control
//! (`rtpgccbwe` from gst-plugins-rs, the estimator `webrtcsink` uses) as webrtcbin's auxiliary
//! sender, reading the viewer's transport-wide feedback; the transport-wide sequence-number
//! header extension on our payloaders and in our offer; and, for viewers that send no such
//! feedback, the loss in their RTCP receiver reports, read with `get-stats`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use gst::prelude::*;
use gst_rtp::prelude::*;

use super::TWCC_URI;

/// The header-extension ID we give transport-wide-cc (nothing else we offer has one).
pub const TWCC_ID: u32 = 1;

/// Bits per second in our element's kbit/s.
fn bps(kbps: u32) -> u32 {
    kbps.saturating_mul(1000)
}

/// Puts `rtpgccbwe` on `webrtc`'s send path (its `request-aux-sender`, before the first
/// negotiation). Its estimate, in kbit/s, is kept in `estimate` (0 until it has one); a fall of
/// more than a tenth calls `on_fall` at once (from a streaming thread: it must only queue work),
/// so that a link that fills is relieved without waiting for the next tick.
pub fn attach(
    webrtc: &gst::Element,
    start: u32,
    min: u32,
    max: u32,
    estimate: Arc<AtomicU32>,
    on_fall: impl Fn() + Send + Sync + 'static,
) {
    let on_fall = Arc::new(on_fall);
    webrtc.connect("request-aux-sender", false, move |_| {
        let bwe = gst::ElementFactory::make("rtpgccbwe").build().ok()?;
        bwe.set_property("min-bitrate", bps(min.min(max)));
        bwe.set_property("max-bitrate", bps(max));
        bwe.set_property("estimated-bitrate", bps(start));
        let estimate = estimate.clone();
        let on_fall = on_fall.clone();
        bwe.connect_notify(Some("estimated-bitrate"), move |e, _| {
            let kbps = e.property::<u32>("estimated-bitrate") / 1000;
            let before = estimate.swap(kbps, Ordering::Relaxed);
            if u64::from(kbps) * 10 < u64::from(before) * 9 {
                on_fall();
            }
        });
        Some(bwe.to_value())
    });
}

/// Adds the transport-wide-cc header extension to a payloader (GStreamer 1.22's payloaders
/// take it through their `add-extension` action signal).
pub fn add_twcc_extension(pay: &gst::Element) -> Result<(), String> {
    let ext = gst_rtp::RTPHeaderExtension::create_from_uri(TWCC_URI)
        .ok_or("no transport-wide-cc RTP header extension (rtphdrexttwcc) is installed")?;
    ext.set_id(TWCC_ID);
    pay.emit_by_name::<()>("add-extension", &[&ext]);
    Ok(())
}

/// Whether an SDP (the viewer's answer) takes transport-wide-cc.
pub fn sdp_has_twcc(sdp: &str) -> bool {
    sdp.lines()
        .any(|l| l.starts_with("a=extmap:") && l.contains(TWCC_URI))
}

/// The loss one viewer's receiver reports give: the highest `fraction-lost` of the
/// `remote-inbound-rtp` entries of its webrtcbin's statistics, in thousandths, and whether any
/// was seen. Read asynchronously: `get-stats` answers on webrtcbin's thread.
///
/// Not the cumulative packet counts: in GStreamer 1.22 only one of a viewer's streams gets a
/// `remote-inbound-rtp` (rtpsource keeps the last report block of a receiver report, and a
/// viewer reports on audio and video in one), and its `packets-lost` is -1 once retransmissions
/// arrive (more packets than expected). A report's fraction lost since the previous one is
/// sound, and a link drops audio and video packets alike, so either stream's tells the link's.
#[derive(Default)]
pub struct ReportCounters {
    permille: AtomicU64,
    seen: std::sync::atomic::AtomicBool,
}

impl ReportCounters {
    /// The last fraction of packets lost (0.0–1.0), once a report has come.
    pub fn loss(&self) -> Option<f64> {
        self.seen
            .load(Ordering::Relaxed)
            .then(|| self.permille.load(Ordering::Relaxed) as f64 / 1000.0)
    }
}

/// Asks `webrtc` for its statistics; the answer updates `into` when it comes.
pub fn poll_reports(webrtc: &gst::Element, into: Arc<ReportCounters>) {
    let promise = gst::Promise::with_change_func(move |reply| {
        let Ok(Some(stats)) = reply else { return };
        let mut loss: Option<f64> = None;
        for (_, value) in stats.iter() {
            let Ok(s) = value.get::<gst::Structure>() else {
                continue;
            };
            if s.name() == "remote-inbound-rtp"
                && let Some(f) = crate::peer::stats::number(&s, "fraction-lost")
            {
                loss = Some(loss.map_or(f, |l| l.max(f)));
            }
        }
        if let Some(l) = loss {
            let permille = (l.clamp(0.0, 1.0) * 1000.0).round() as u64;
            into.permille.store(permille, Ordering::Relaxed);
            into.seen.store(true, Ordering::Relaxed);
        }
    });
    webrtc.emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, &promise]);
}
