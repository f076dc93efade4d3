// SPDX-License-Identifier: MPL-2.0

//! One guest's track in its room-stream slot: its bin (a queue, and a transcoder to H.264 for
//! other video), the switch from the placeholder at its first key frame, and back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gst::prelude::*;

use super::guards::drop_until_keyframe;
use super::{Owners, STALL_LIMIT, SlotStream, clock_ms, make, release_slot};
use crate::common::codec::{Codec, best_decoder};
use crate::protocol::machine::PeerId;

/// One participant track in a slot (a clone is a handle on the same track).
#[derive(Clone)]
pub struct TsTrack {
    pub(super) bin: gst::Bin,
    pub(super) source: gst::Pad,
    pub(super) sink: gst::Pad,
    /// Its output, linked to the slot's selector.
    pub(super) out: gst::Pad,
    /// The selector pad it is linked to.
    pub(super) guest: gst::Pad,
    pub(super) stream: Arc<SlotStream>,
    pub(super) slot: usize,
    pub(super) peer: PeerId,
    pub(super) owners: Arc<Mutex<Owners>>,
    pub(super) codec: Codec,
    /// When its last buffer arrived (ms on [`clock_ms`]).
    pub(super) last_buffer: Arc<AtomicU64>,
}

pub(super) type Built = (gst::Bin, gst::Pad, gst::Pad, Arc<AtomicU64>, bool);

/// A track's bin: a queue, and for video other than H.264 a transcoder to it.
pub(super) fn build_track(
    parent: &gst::Bin,
    peer: PeerId,
    codec: Codec,
    n: u32,
) -> Result<Built, String> {
    // Named after its peer: an error inside it fails that peer alone (`peer_of`).
    let bin = gst::Bin::with_name(&format!("{peer}-ts{n}"));
    let queue = make("queue")?;
    queue.set_property("max-size-time", 3_000_000_000u64);
    let mut chain = vec![queue.clone()];
    let transcode = codec.is_video() && codec != Codec::H264;
    if transcode {
        let caps = gst::Caps::new_empty_simple(codec.caps_name());
        let dec = best_decoder(&caps)
            .ok_or_else(|| format!("no {} decoder is installed", codec.encoding_name()))?;
        chain.push(dec.create().build().map_err(|e| e.to_string())?);
        chain.push(make("videoconvert")?);
        let enc = make("x264enc")?;
        enc.set_property_from_str("tune", "zerolatency");
        enc.set_property_from_str("speed-preset", "veryfast");
        enc.set_property("key-int-max", 60u32);
        chain.push(enc);
        let parse = make("h264parse")?;
        crate::peer::shield_parser_from_key_unit_events(&parse);
        chain.push(parse);
        let filter = make("capsfilter")?;
        filter.set_property("caps", crate::common::codec::h264_byte_stream_caps());
        chain.push(filter);
    }
    bin.add_many(&chain).map_err(|e| e.to_string())?;
    gst::Element::link_many(&chain).map_err(|_| "cannot link a TS track")?;
    let qsink = queue.static_pad("sink").ok_or("no sink")?;
    let last_buffer = Arc::new(AtomicU64::new(clock_ms()));
    {
        let last = last_buffer.clone();
        qsink.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |_, _| {
                last.store(clock_ms(), Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            },
        );
    }
    if transcode {
        // The decoder starts at a key frame.
        drop_until_keyframe(&qsink);
    }
    let sink = crate::common::elements::ghost(&bin, &qsink, "sink")?;
    let last = chain
        .last()
        .and_then(|e| e.static_pad("src"))
        .ok_or("no src")?;
    let src = crate::common::elements::ghost(&bin, &last, "src")?;
    parent.add(&bin).map_err(|e| e.to_string())?;
    Ok((bin, sink.upcast(), src.upcast(), last_buffer, transcode))
}

/// The slot takes the guest's media at its first key frame (audio: its first packet); while
/// the guest waits for one, it is asked for one, at most once a second.
pub(super) fn switch_in(
    guest: &gst::Pad,
    stream: &Arc<SlotStream>,
    video: bool,
    slot: usize,
    ask_keyframe: impl Fn() + Send + Sync + 'static,
) {
    let selector = stream.selector.downgrade();
    let last_ask = AtomicU64::new(0);
    guest.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(selector) = selector.upgrade() else {
            return gst::PadProbeReturn::Ok;
        };
        let active = selector.property::<Option<gst::Pad>>("active-pad");
        if active.as_ref() == Some(pad) {
            return gst::PadProbeReturn::Ok;
        }
        let key = info
            .buffer()
            .is_some_and(|b| !b.flags().contains(gst::BufferFlags::DELTA_UNIT));
        if video && !key {
            let now = clock_ms() + 1000;
            if now.saturating_sub(last_ask.load(Ordering::Relaxed)) >= 1000 {
                last_ask.store(now, Ordering::Relaxed);
                ask_keyframe();
            }
            return gst::PadProbeReturn::Ok;
        }
        gst::debug!(
            crate::vdoninjasrc::CAT,
            obj = pad,
            "slot {slot}: the guest's {} is on",
            if video { "video" } else { "audio" }
        );
        selector.set_property("active-pad", Some(pad));
        gst::PadProbeReturn::Ok
    });
}

impl TsTrack {
    /// Takes the track out of its slot (the placeholder goes on) and ends it.
    pub fn finish(&self) {
        let _ = self.source.unlink(&self.sink);
        self.leave_slot();
        self.sink.send_event(gst::event::Eos::new());
    }

    fn leave_slot(&self) {
        let active = self
            .stream
            .selector
            .property::<Option<gst::Pad>>("active-pad");
        if active.as_ref() == Some(&self.guest) {
            self.stream.to_placeholder();
        }
        let _ = self.out.unlink(&self.guest);
        self.stream.selector.release_request_pad(&self.guest);
        release_slot(&self.owners, self.slot);
        gst::debug!(
            crate::vdoninjasrc::CAT,
            "slot {}: {} left it",
            self.slot,
            self.peer
        );
    }

    pub fn bin(&self) -> &gst::Bin {
        &self.bin
    }

    /// Its slot carries it, yet nothing arrived for [`STALL_LIMIT`].
    pub fn stalled(&self) -> bool {
        let on = self
            .stream
            .selector
            .property::<Option<gst::Pad>>("active-pad")
            .is_some_and(|p| p == self.guest);
        let idle = clock_ms().saturating_sub(self.last_buffer.load(Ordering::Relaxed));
        on && idle >= STALL_LIMIT.as_millis() as u64
    }

    /// Gives the slot back to the placeholder until the track's media resumes.
    pub fn rest(&self) {
        self.stream.to_placeholder();
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }
}
