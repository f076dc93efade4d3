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

/// Packet counters of one viewer's video as its receiver reports give them: (sent, lost),
/// summed over its streams. Read asynchronously: `get-stats` answers on webrtcbin's thread.
#[derive(Default)]
pub struct ReportCounters {
    sent: AtomicU64,
    lost: AtomicU64,
}

impl ReportCounters {
    pub fn get(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.lost.load(Ordering::Relaxed),
        )
    }
}

/// Asks `webrtc` for its statistics; the answer updates `into` when it comes.
pub fn poll_reports(webrtc: &gst::Element, into: Arc<ReportCounters>) {
    let promise = gst::Promise::with_change_func(move |reply| {
        let Ok(Some(stats)) = reply else { return };
        let (mut sent, mut lost) = (0u64, 0u64);
        for (_, value) in stats.iter() {
            let Ok(s) = value.get::<gst::Structure>() else {
                continue;
            };
            // The counters' integer types vary between webrtcbin's structures: read any number.
            let count = |field: &str| {
                crate::peer::stats::number(&s, field).map_or(0, |n| n.max(0.0) as u64)
            };
            match s.name().as_str() {
                "outbound-rtp" => sent += count("packets-sent"),
                "remote-inbound-rtp" => lost += count("packets-lost"),
                _ => {}
            }
        }
        into.sent.store(sent, Ordering::Relaxed);
        into.lost.store(lost, Ordering::Relaxed);
    });
    webrtc.emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, &promise]);
}
