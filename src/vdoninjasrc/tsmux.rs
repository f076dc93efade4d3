// SPDX-License-Identifier: MPL-2.0

//! The room as one stream on the `src` pad: every participant's tracks into one `mpegtsmux`,
//! added as they join (MPEG-TS takes new streams while playing; a new PMT announces them).
//! H.264 and Opus go in as they are; other video is transcoded to H.264.

use std::sync::atomic::{AtomicU32, Ordering};

use gst::prelude::*;

use crate::common::codec::{Codec, best_decoder};

/// One participant track feeding the mux.
pub struct TsTrack {
    bin: gst::Bin,
    source: gst::Pad,
    sink: gst::Pad,
}

fn make(factory: &str) -> Result<gst::Element, String> {
    crate::common::elements::make(factory, None)
}

/// Creates the muxer inside `parent`.
pub fn create_mux(parent: &gst::Bin) -> Result<gst::Element, String> {
    let mux = gst::ElementFactory::make("mpegtsmux")
        .name("roommux")
        .build()
        .map_err(|_| "the GStreamer element mpegtsmux is not installed")?;
    parent.add(&mux).map_err(|e| e.to_string())?;
    Ok(mux)
}

/// Adds a track (from a peer-bin pad) to the mux. Returns whether it had to be transcoded.
pub fn add_track(
    parent: &gst::Bin,
    mux: &gst::Element,
    codec: Codec,
    source: &gst::Pad,
) -> Result<(TsTrack, bool), String> {
    static N: AtomicU32 = AtomicU32::new(0);
    let bin = gst::Bin::with_name(&format!("ts{}", N.fetch_add(1, Ordering::Relaxed)));
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
    }
    bin.add_many(&chain).map_err(|e| e.to_string())?;
    gst::Element::link_many(&chain).map_err(|_| "cannot link a TS track")?;
    let qsink = queue.static_pad("sink").ok_or("no sink")?;
    if codec.is_video() {
        drop_until_keyframe(&qsink);
    }
    let sink = gst::GhostPad::builder_with_target(&qsink)
        .map_err(|e| e.to_string())?
        .name("sink")
        .build();
    bin.add_pad(&sink).map_err(|e| e.to_string())?;
    let last = chain
        .last()
        .and_then(|e| e.static_pad("src"))
        .ok_or("no src")?;
    keep_time_monotonic(&last);
    let src = gst::GhostPad::builder_with_target(&last)
        .map_err(|e| e.to_string())?
        .name("src")
        .build();
    bin.add_pad(&src).map_err(|e| e.to_string())?;
    parent.add(&bin).map_err(|e| e.to_string())?;
    let mux_pad = mux
        .request_pad_simple("sink_%d")
        .ok_or("mpegtsmux gave no pad")?;
    src.link(&mux_pad)
        .map_err(|e| format!("mpegtsmux refused {}: {e:?}", codec.encoding_name()))?;
    bin.sync_state_with_parent()
        .map_err(|_| "cannot start a TS track")?;
    source
        .link(&sink)
        .map_err(|e| format!("cannot feed the TS track: {e:?}"))?;
    Ok((
        TsTrack {
            bin,
            source: source.clone(),
            sink: sink.upcast(),
        },
        transcode,
    ))
}

impl TsTrack {
    /// Unhooks the track from its participant and ends it (the mux goes on with the others).
    pub fn finish(&self) {
        let _ = self.source.unlink(&self.sink);
        self.sink.send_event(gst::event::Eos::new());
    }

    pub fn bin(&self) -> &gst::Bin {
        &self.bin
    }
}

fn drop_until_keyframe(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::BUFFER, |_, info| match info.buffer() {
        Some(b) if b.flags().contains(gst::BufferFlags::DELTA_UNIT) => gst::PadProbeReturn::Handled,
        Some(_) => gst::PadProbeReturn::Remove,
        None => gst::PadProbeReturn::Ok,
    });
}

/// MPEG-TS muxing drops buffers whose time stamps go back; a receiver's lip-sync correction
/// (when the first RTCP sender reports arrive) moves a stream's time back. Hold such buffers
/// at the last time stamp until the stream's clock catches up.
fn keep_time_monotonic(pad: &gst::Pad) {
    let last = std::sync::Mutex::new(None::<gst::ClockTime>);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Ok(mut last) = last.lock() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(buf) = info.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(ts) = buf.pts().or(buf.dts()) else {
            return gst::PadProbeReturn::Ok;
        };
        match *last {
            Some(l) if ts <= l => {
                let fixed = l + gst::ClockTime::from_nseconds(1);
                let b = buf.make_mut();
                b.set_pts(fixed);
                b.set_dts(fixed);
                *last = Some(fixed);
            }
            _ => *last = Some(ts),
        }
        gst::PadProbeReturn::Ok
    });
}
