// SPDX-License-Identifier: MPL-2.0

//! One viewer of the sink: a peer bin with, per input, `queue ! valve ! payloader` into its
//! webrtcbin, fed from that input's tee. A new branch drops delta frames until the first key
//! frame, so every viewer starts on one.

use std::time::Instant;

use gst::prelude::*;
use gst_webrtc::{WebRTCRTPTransceiver, WebRTCRTPTransceiverDirection};

use super::input::{Chain, set_if_present};
use crate::common::codec::Codec;
use crate::peer::Peer;

pub struct Branch {
    pub video: bool,
    pub tee: gst::Element,
    pub tee_pad: gst::Pad,
    pub valve: gst::Element,
    /// The branch's entrance on the peer bin (what the tee pad is linked to).
    ghost: gst::GhostPad,
    /// The queue's sink pad, where delta frames are dropped until a key frame.
    entry: gst::Pad,
}

pub struct Viewer {
    pub peer: Peer,
    pub uuid: String,
    pub branches: Vec<Branch>,
    pub want_audio: bool,
    pub want_video: bool,
    /// The viewer's video bitrate request (kbps); `Some(0)` pauses its video.
    pub video_kbps: Option<u32>,
    pub audio_kbps: Option<u32>,
    pub created: Instant,
    /// Its link's estimate (see `congestion`).
    pub link: super::congestion::Link,
    /// Our payloaders carry transport-wide sequence numbers and our offer the extension.
    pub twcc: bool,
    /// The rendition its video comes from (see `renditions`).
    pub placement: super::renditions::ladder::Placement,
}

fn make(factory: &str, name: String) -> Result<gst::Element, String> {
    crate::common::elements::make(factory, Some(&name))
}

impl Viewer {
    pub fn new(peer: Peer, uuid: String, link: super::congestion::Link, twcc: bool) -> Self {
        Self {
            peer,
            uuid,
            branches: Vec::new(),
            want_audio: true,
            want_video: true,
            video_kbps: None,
            audio_kbps: None,
            created: Instant::now(),
            link,
            twcc,
            placement: Default::default(),
        }
    }

    /// Adds a branch for the input `index`. The peer bin must already be in its parent.
    pub fn attach(&mut self, index: usize, chain: &Chain) -> Result<(), String> {
        let bin = &self.peer.bin;
        let codec = chain.codec;
        let n = |what: &str| format!("{}-in{index}-{what}", self.peer.id);
        let queue = make("queue", n("queue"))?;
        queue.set_property("max-size-buffers", 0u32);
        queue.set_property("max-size-bytes", 0u32);
        queue.set_property("max-size-time", 2_000_000_000u64);
        set_if_present(&queue, "leaky", "downstream");
        let valve = make("valve", n("valve"))?;
        let pay = make(codec.payloader(), n("pay"))?;
        pay.set_property("pt", codec.payload_type());
        match codec {
            Codec::H264 => {
                // SPS/PPS are already in every key frame (the input's h264parse puts them
                // there); the payloader's own insertion would put them before every IDR
                // slice, splitting multi-slice key frames in two on the receiving side.
                set_if_present(&pay, "aggregate-mode", "zero-latency");
            }
            Codec::Vp8 | Codec::Vp9 => set_if_present(&pay, "picture-id-mode", "15-bit"),
            _ => {}
        }
        if self.twcc {
            super::congestion::gcc::add_twcc_extension(&pay)?;
        }
        let elements = [&queue, &valve, &pay];
        bin.add_many(elements).map_err(|e| e.to_string())?;
        gst::Element::link_many(elements).map_err(|_| "cannot link a viewer branch")?;
        let wsink = self
            .peer
            .webrtc
            .request_pad_simple("sink_%u")
            .ok_or("webrtcbin gave no sink pad")?;
        let trans = wsink.property::<WebRTCRTPTransceiver>("transceiver");
        trans.set_property("direction", WebRTCRTPTransceiverDirection::Sendonly);
        // The offer may be made before any caps reach webrtcbin: say what we will send.
        trans.set_codec_preferences(Some(&rtp_caps(codec, self.twcc)));
        if trans.find_property("do-nack").is_some() {
            // Retransmission for video (as browsers); the peer turned it on for all.
            trans.set_property("do-nack", codec.is_video());
        }
        let pay_src = pay.static_pad("src").ok_or("payloader without src pad")?;
        if codec.is_video() {
            // What NACKs are measured against: our receivers ask again for video only.
            count_sent(&pay_src, self.link.reports.clone());
        }
        pay_src
            .link(&wsink)
            .map_err(|e| format!("cannot link the payloader to webrtcbin: {e:?}"))?;

        let qsink = queue.static_pad("sink").ok_or("queue without sink pad")?;
        let ghost = gst::GhostPad::builder_with_target(&qsink)
            .map_err(|e| e.to_string())?
            .name(format!("in{index}"))
            .build();
        bin.add_pad(&ghost).map_err(|e| e.to_string())?;
        answer_serialized_queries(&qsink);
        if codec.is_video() {
            gate_until_keyframe(&qsink);
        }
        for e in elements {
            let _ = e.sync_state_with_parent();
        }
        let level = if codec.is_video() {
            self.placement.level
        } else {
            0
        };
        let tee = chain.tee_at(level);
        let tee_pad = tee
            .request_pad_simple("src_%u")
            .ok_or("the tee gave no pad")?;
        tee_pad
            .link(&ghost)
            .map_err(|e| format!("cannot link a viewer to the input: {e:?}"))?;
        self.branches.push(Branch {
            video: codec.is_video(),
            tee: tee.clone(),
            tee_pad,
            valve,
            ghost,
            entry: qsink,
        });
        if codec.is_video() {
            chain.request_keyframe_at(level);
        }
        self.apply_gates();
        Ok(())
    }

    /// Moves the video branch to rendition `level` of `chain`: off the old tee, onto the new
    /// one, its pictures dropped until the new rendition's next key frame (asked for at once).
    /// The payloader stays, so the viewer's RTP stream goes on; the new caps travel ahead of
    /// the first picture, and the viewer's decoder takes the new size from its key frame.
    pub fn switch_video(&mut self, chain: &Chain, level: usize) -> Result<(), String> {
        let Some(b) = self.branches.iter_mut().find(|b| b.video) else {
            return Ok(());
        };
        let tee = chain.tee_at(level);
        if tee == &b.tee {
            return Ok(());
        }
        let pad = tee
            .request_pad_simple("src_%u")
            .ok_or("the tee gave no pad")?;
        gate_until_keyframe(&b.entry);
        let _ = b.tee_pad.unlink(&b.ghost);
        b.tee.release_request_pad(&b.tee_pad);
        pad.link(&b.ghost)
            .map_err(|e| format!("cannot move to rendition {level}: {e:?}"))?;
        b.tee = tee.clone();
        b.tee_pad = pad;
        chain.request_keyframe_at(level);
        Ok(())
    }

    /// Opens or closes each branch's valve per the viewer's request (§6.4: `audio`/`video`,
    /// and `bitrate: 0` pauses video).
    pub fn apply_gates(&self) {
        for b in &self.branches {
            let open = if b.video {
                self.want_video && self.video_kbps != Some(0)
            } else {
                self.want_audio && self.audio_kbps != Some(0)
            };
            b.valve.set_property("drop", !open);
        }
    }

    /// Unhooks the branches from the tees (before the peer bin goes away).
    pub fn detach(&mut self) {
        for b in self.branches.drain(..) {
            if let Some(peer) = b.tee_pad.peer() {
                let _ = b.tee_pad.unlink(&peer);
            }
            b.tee.release_request_pad(&b.tee_pad);
        }
    }
}

/// The RTP caps of what a branch sends (the SDP's H.264 fmtp is set when offering, §6.2), with
/// the transport-wide-cc header extension if `twcc`.
fn rtp_caps(codec: Codec, twcc: bool) -> gst::Caps {
    let mut b = gst::Caps::builder("application/x-rtp")
        .field("media", if codec.is_video() { "video" } else { "audio" })
        .field("encoding-name", codec.encoding_name())
        .field("payload", codec.payload_type() as i32);
    if twcc {
        b = b.field(
            format!("extmap-{}", super::congestion::gcc::TWCC_ID),
            super::congestion::TWCC_URI,
        );
    }
    match codec {
        Codec::Opus => b
            .field("clock-rate", 48000i32)
            .field("encoding-params", "2")
            .build(),
        Codec::H264 => b
            .field("clock-rate", 90000i32)
            .field("packetization-mode", "1")
            .build(),
        _ => b.field("clock-rate", 90000i32).build(),
    }
}

/// Answers allocation and drain queries at the branch's entrance. A queue holds serialized
/// queries until it is empty, and a viewer whose transport is not up yet (or never comes up)
/// blocks its queue: the query would stall the shared encoder, and with it every viewer.
fn answer_serialized_queries(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::QUERY_DOWNSTREAM, |_, info| {
        match info.query().map(|q| q.view()) {
            Some(gst::QueryView::Allocation(_)) | Some(gst::QueryView::Drain(_)) => {
                gst::PadProbeReturn::Handled
            }
            _ => gst::PadProbeReturn::Ok,
        }
    });
}

/// Counts the RTP packets sent to the viewer on `pad` (for its loss, see `congestion`).
fn count_sent(pad: &gst::Pad, into: std::sync::Arc<super::congestion::gcc::ReportCounters>) {
    use std::sync::atomic::Ordering;
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let n = match &info.data {
                Some(gst::PadProbeData::BufferList(l)) => l.len() as u64,
                _ => 1,
            };
            into.sent.fetch_add(n, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        },
    );
}

/// Drops delta units on `pad` until a key frame passes. (Dropping is done by returning
/// `Handled`: the binding then releases the buffer; `Drop` would make GStreamer 1.22 unref a
/// null pointer.)
fn gate_until_keyframe(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::BUFFER, |_, info| {
        let Some(buf) = info.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        if buf.flags().contains(gst::BufferFlags::DELTA_UNIT) {
            gst::PadProbeReturn::Handled
        } else {
            gst::PadProbeReturn::Remove
        }
    });
}
