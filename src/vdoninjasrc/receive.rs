// SPDX-License-Identifier: MPL-2.0

//! The receiving chain of one webrtcbin pad: `depay ! parse ! tee`, inside the peer's bin. The
//! tee feeds whatever wants the track: the element's pad (decoded with `decode=true`), the
//! participant's recording, the room's MPEG-TS stream. Each consumer gets its own ghost pad on
//! the peer bin.

use std::sync::atomic::{AtomicU32, Ordering};

use gst::prelude::*;

use crate::common::codec::{Codec, best_decoder};

/// One received track.
#[derive(Debug, Clone)]
pub struct Track {
    pub codec: Codec,
    pub tee: gst::Element,
    /// The depayloader (key-frame requests go upstream from it, around the parser).
    pub depay: gst::Element,
    /// The peer bin it lives in.
    pub bin: gst::Bin,
}

fn make(factory: &str) -> Result<gst::Element, String> {
    crate::common::elements::make(factory, None)
}

/// The codec of an RTP pad, from its caps.
pub fn rtp_codec(pad: &gst::Pad) -> Option<Codec> {
    let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)))?;
    let s = caps.structure(0)?;
    Codec::from_encoding_name(s.get::<&str>("encoding-name").ok()?)
}

/// Builds `depay ! parse ! tee` for `pad` inside `bin`.
pub fn build(bin: &gst::Bin, pad: &gst::Pad) -> Result<Track, String> {
    let codec = rtp_codec(pad).ok_or("media with an unknown codec")?;
    let depay = make(codec.depayloader())?;
    if codec.is_video() && depay.find_property("request-keyframe").is_some() {
        // A frame lost to the network (after the jitter buffer's retransmission requests) leaves
        // the pictures after it undecodable until the next key frame, up to the publisher's key
        // frame interval: ask for one at once, as browsers do (an RTCP PLI).
        depay.set_property("request-keyframe", true);
    }
    super::frametimes::attach(&depay);
    if codec == Codec::Av1 {
        super::loss::attach(&depay);
    }
    let mut elements = vec![depay];
    if let Some(p) = codec.parser() {
        let parser = make(p)?;
        // No config-interval: the parameter sets are already in every key frame, and in 1.22
        // h264parse's insertion before an access unit that starts with an AUD splits it,
        // leaving the key frame without a time stamp.
        crate::peer::shield_parser_from_key_unit_events(&parser);
        elements.push(parser);
    }
    if codec == Codec::H264 {
        // One format for every consumer; each converts as it needs.
        let filter = make("capsfilter")?;
        filter.set_property("caps", crate::common::codec::h264_byte_stream_caps());
        elements.push(filter);
    }
    let tee = make("tee")?;
    tee.set_property("allow-not-linked", true);
    elements.push(tee.clone());
    bin.add_many(&elements).map_err(|e| e.to_string())?;
    gst::Element::link_many(&elements).map_err(|_| "cannot link the receive chain")?;
    for e in &elements {
        let _ = e.sync_state_with_parent();
    }
    let sink = elements[0].static_pad("sink").ok_or("no sink pad")?;
    pad.link(&sink)
        .map_err(|e| format!("cannot link webrtcbin's pad: {e:?}"))?;
    Ok(Track {
        codec,
        tee,
        depay: elements[0].clone(),
        bin: bin.clone(),
    })
}

/// Tells the signaling, at most twice a second, that media arrives on this track: a peer that
/// sends media is alive even when its data channel is slow (see `Timing::silence_timeout`).
pub fn report_media(
    track: &Track,
    peer: crate::protocol::machine::PeerId,
    tx: tokio::sync::mpsc::UnboundedSender<crate::protocol::machine::Input>,
) {
    let Some(pad) = track.depay.static_pad("sink") else {
        return;
    };
    let start = std::time::Instant::now();
    let last = std::sync::atomic::AtomicU64::new(0);
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, _| {
            let ms = start.elapsed().as_millis() as u64 + 500;
            if ms.saturating_sub(last.load(Ordering::Relaxed)) >= 500 {
                last.store(ms, Ordering::Relaxed);
                let _ = tx.send(crate::protocol::machine::Input::MediaSeen { peer });
            }
            gst::PadProbeReturn::Ok
        },
    );
}

impl Track {
    /// Asks the publisher for a key frame with an RTCP PLI (the upstream force-key-unit event
    /// travels to webrtcbin's jitter buffer and session). It starts at the depayloader: a
    /// parser that sees the request holds it and, in GStreamer 1.22, splits the key frame's
    /// parameter sets from its IDR slices, so that downstream never sees a key frame.
    pub fn request_keyframe(&self) {
        if self.codec.is_video()
            && let Some(pad) = self.depay.static_pad("src")
        {
            pad.send_event(crate::peer::force_key_unit());
        }
    }

    /// A new ghost pad on the peer bin carrying this track, decoded to raw if `decode`.
    pub fn branch(&self, decode: bool) -> Result<gst::GhostPad, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let tee_pad = self
            .tee
            .request_pad_simple("src_%u")
            .ok_or("the tee gave no pad")?;
        let target = if decode {
            let caps = gst::Caps::new_empty_simple(self.codec.caps_name());
            let factory = best_decoder(&caps)
                .ok_or_else(|| format!("no {} decoder is installed", self.codec.encoding_name()))?;
            let mut elements = vec![make("queue")?];
            elements.push(factory.create().build().map_err(|e| e.to_string())?);
            if self.codec.is_video() {
                elements.push(make("videoconvert")?);
            } else {
                elements.push(make("audioconvert")?);
                elements.push(make("audioresample")?);
            }
            self.bin.add_many(&elements).map_err(|e| e.to_string())?;
            gst::Element::link_many(&elements).map_err(|_| "cannot link the decoder")?;
            for e in &elements {
                let _ = e.sync_state_with_parent();
            }
            let sink = elements[0].static_pad("sink").ok_or("no sink pad")?;
            tee_pad
                .link(&sink)
                .map_err(|e| format!("cannot link the decoder: {e:?}"))?;
            elements
                .last()
                .and_then(|e| e.static_pad("src"))
                .ok_or("no src pad")?
        } else {
            tee_pad
        };
        // Active before it is linked: data already flows out of the tee, and a push into an
        // inactive pad is refused (flushing), which stops the whole receive path.
        let ghost = gst::GhostPad::builder(gst::PadDirection::Src)
            .name(format!("out_{}", N.fetch_add(1, Ordering::Relaxed)))
            .build();
        let _ = ghost.set_active(true);
        self.bin.add_pad(&ghost).map_err(|e| e.to_string())?;
        ghost
            .set_target(Some(&target))
            .map_err(|e| format!("cannot expose a track: {e}"))?;
        Ok(ghost)
    }
}
