// SPDX-License-Identifier: MPL-2.0

//! The I/O of congestion control on one viewer's webrtcbin: Google Congestion Control
//! (`rtpgccbwe` from gst-plugins-rs, the estimator `webrtcsink` uses) as webrtcbin's auxiliary
//! sender, reading the viewer's transport-wide feedback; the transport-wide sequence-number
//! header extension on our payloaders and in our offer; and, for viewers that send no such
//! feedback, the loss in their RTCP receiver reports, read as they arrive.

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
    taps: Taps,
    on_fall: impl Fn() + Send + Sync + 'static,
) {
    let on_fall = Arc::new(on_fall);
    webrtc.connect("request-aux-sender", false, move |_| {
        let bwe = gst::ElementFactory::make("rtpgccbwe").build().ok()?;
        if let (Some(sink), Some(src)) = (bwe.static_pad("sink"), bwe.static_pad("src")) {
            watch_sent(&sink, taps.reports.clone(), taps.rtx.clone());
            count_feedback(&src, taps.reports.clone());
        }
        taps.pacer.hold(&bwe);
        bwe.set_property("min-bitrate", bps(min.min(max)));
        bwe.set_property("max-bitrate", bps(max));
        bwe.set_property("estimated-bitrate", bps(start));
        let estimate = taps.estimate.clone();
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

/// What a viewer's `rtpgccbwe` shares with its [`super::Link`].
#[derive(Clone)]
pub struct Taps {
    /// Its estimate (kbit/s; 0 until it has one).
    pub estimate: Arc<AtomicU32>,
    pub reports: Arc<ReportCounters>,
    pub rtx: Arc<super::retransmit::Limiter>,
    pub pacer: Pacer,
}

/// A handle on a viewer's `rtpgccbwe`, which paces what goes to the viewer at its estimate:
/// [`Pacer::limit`] bounds that estimate near what the link is known to carry. On a link that
/// shows no queueing delay (a policer) GCC's estimate runs to `max-bitrate`, and a key frame or
/// a burst of retransmissions left in one burst, which the policer dropped.
#[derive(Clone, Default)]
pub struct Pacer(Arc<std::sync::Mutex<PacerState>>);

#[derive(Default)]
struct PacerState {
    element: gst::glib::WeakRef<gst::Element>,
    limit: Option<u32>,
}

impl Pacer {
    fn hold(&self, bwe: &gst::Element) {
        if let Ok(mut p) = self.0.lock() {
            p.element = bwe.downgrade();
        }
    }

    /// Bounds the estimate at `kbps` (`None`: `max`), within `min`..`max`; `estimate` is the
    /// viewer's. A bound that moves less than 5 % is not moved. An estimate that sat at the
    /// old bound (it wanted more) is moved to the new one at once: GCC would otherwise climb
    /// to it at its own pace, 8 % a second.
    pub fn limit(&self, kbps: Option<u32>, min: u32, max: u32, estimate: &AtomicU32) {
        let Ok(mut p) = self.0.lock() else { return };
        let want = kbps.map_or(max, |k| k.clamp(min.min(max), max));
        let old = p.limit.unwrap_or(max);
        if old.abs_diff(want) * 20 < old {
            return;
        }
        let Some(bwe) = p.element.upgrade() else {
            return;
        };
        p.limit = Some(want);
        let now = estimate.load(Ordering::Relaxed);
        bwe.set_property("max-bitrate", bps(want));
        let pinned = u64::from(now) * 100 >= u64::from(old) * 95;
        if now > want || (want > old && pinned) {
            bwe.set_property("estimated-bitrate", bps(want));
            estimate.store(want, Ordering::Relaxed);
        }
    }
}

/// Counts what the transport-wide feedback says of each packet, from the event in which the
/// RTP session hands it to `rtpgccbwe` (upstream on `pad`, its source pad): the session has
/// matched it to the packets sent, with their sizes. The feedback comes every 50–100 ms about
/// packets sent a round trip before, so the loss and the rate it tells are those of the
/// moment (a receiver report covers its own interval, a second or more, and comes late under
/// loss).
fn count_feedback(pad: &gst::Pad, into: Arc<ReportCounters>) {
    pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
        let Some(gst::PadProbeData::Event(event)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(packets) = event
            .structure()
            .filter(|s| s.name() == "RTPTWCCPackets")
            .and_then(|s| s.get::<gst::glib::ValueArray>("packets").ok())
        else {
            return gst::PadProbeReturn::Ok;
        };
        let mut seen = into.feedback.lock().unwrap_or_else(|e| e.into_inner());
        for packet in packets
            .iter()
            .filter_map(|v| v.get::<gst::Structure>().ok())
        {
            let (Ok(seqnum), Ok(size)) = (packet.get::<u32>("seqnum"), packet.get::<u32>("size"))
            else {
                continue;
            };
            let arrived = !packet.get::<bool>("lost").unwrap_or(false);
            // Bounded: a window's packets, and the sequence numbers are 16-bit.
            let entry = seen.entry(seqnum).or_insert((size, false));
            entry.1 |= arrived;
        }
        gst::PadProbeReturn::Ok
    });
}

/// Counts the bytes of the RTP packets that go to the viewer (`pad`: rtpgccbwe's sink pad,
/// after webrtcbin's retransmitter), and drops the retransmissions over `rtx`'s budget.
fn watch_sent(pad: &gst::Pad, into: Arc<ReportCounters>, rtx: Arc<super::retransmit::Limiter>) {
    let allow = move |b: &gst::BufferRef, now| {
        b.map_readable()
            .map_or(true, |m| rtx.allow(m.as_slice(), now))
    };
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let now = std::time::Instant::now();
            let mut bytes = 0u64;
            let mut keep = gst::PadProbeReturn::Ok;
            match &mut info.data {
                Some(gst::PadProbeData::BufferList(l)) => {
                    // Each packet judged once, in one pass; a list loses only what is over.
                    let mut over = Vec::new();
                    for (i, b) in l.iter().enumerate() {
                        if allow(b, now) {
                            bytes += b.size() as u64;
                        } else {
                            over.push(i);
                        }
                    }
                    if !over.is_empty() {
                        l.make_mut().foreach_mut(|b, i| {
                            std::ops::ControlFlow::Continue((!over.contains(&i)).then_some(b))
                        });
                    }
                }
                Some(gst::PadProbeData::Buffer(b)) => {
                    if allow(b, now) {
                        bytes = b.size() as u64;
                    } else {
                        keep = crate::common::elements::DROP;
                    }
                }
                _ => {}
            }
            into.link_sent_bytes.fetch_add(bytes, Ordering::Relaxed);
            keep
        },
    );
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

/// The loss one viewer's RTCP tells: the highest fraction lost of the report blocks that came
/// since it was last taken, in thousandths; the packets it asked for again against the
/// packets sent to it; and what its transport-wide feedback said arrived.
#[derive(Default)]
pub struct ReportCounters {
    permille: AtomicU64,
    seen: std::sync::atomic::AtomicBool,
    /// Packets the viewer asked for again (generic NACKs), each once, and RTP packets sent to
    /// it, since the last window.
    pub nacked: std::sync::Mutex<std::collections::HashSet<(u32, u16)>>,
    pub sent: AtomicU64,
    /// The viewer has sent a NACK: its silence between them means no loss.
    pub sends_nacks: std::sync::atomic::AtomicBool,
    /// What the viewer's transport-wide feedback said of the packets sent to it (audio and
    /// video) since the last window, as the RTP session matched it to them: by transport-wide
    /// sequence number, the packet's size and whether it arrived (a packet is told of again
    /// while it is missing; once arrived, it counts as arrived).
    pub feedback: std::sync::Mutex<std::collections::HashMap<u32, (u32, bool)>>,
    /// The bytes of all the RTP packets sent to the viewer (audio and video).
    pub link_sent_bytes: AtomicU64,
}

impl ReportCounters {
    /// The highest fraction of packets lost (0.0–1.0) the reports since the last call gave, or
    /// none if no report came.
    pub fn take(&self) -> Option<f64> {
        self.seen
            .swap(false, Ordering::Relaxed)
            .then(|| self.permille.swap(0, Ordering::Relaxed) as f64 / 1000.0)
    }

    fn add(&self, loss: f64) {
        let permille = (loss.clamp(0.0, 1.0) * 1000.0).round() as u64;
        self.permille.fetch_max(permille, Ordering::Relaxed);
        self.seen.store(true, Ordering::Relaxed);
    }
}

/// Reads the report blocks of the RTCP `webrtc` receives from its viewer as it arrives (each
/// RTP session's `on-receiving-rtcp`, on the session's thread: a parse and an atomic store).
pub fn listen_to_reports(webrtc: &gst::Element, into: Arc<ReportCounters>) {
    crate::peer::on_rtp_session(webrtc, move |element| {
        let session = element.property::<gst::glib::Object>("internal-session");
        let into = into.clone();
        session.connect("on-receiving-rtcp", false, move |args| {
            let buffer = args.get(1).and_then(|v| v.get::<gst::Buffer>().ok())?;
            let map = buffer.map_readable().ok()?;
            for block in super::reports::report_blocks(map.as_slice()) {
                into.add(block.loss());
            }
            let mut nacked = super::reports::nacked(map.as_slice()).peekable();
            if nacked.peek().is_some() {
                into.sends_nacks.store(true, Ordering::Relaxed);
                let mut seen = into.nacked.lock().unwrap_or_else(|e| e.into_inner());
                // Bounded: far more than a window's packets on any link we serve.
                if seen.len() < 100_000 {
                    seen.extend(nacked);
                }
            }
            None
        });
    });
}
