// SPDX-License-Identifier: MPL-2.0

//! The receiving chain of one webrtcbin pad: depayload and parse (and decode with
//! `decode=true`), ending in a ghost pad on the peer's bin.

use gst::prelude::*;

use crate::common::codec::{Codec, best_decoder};

/// What one webrtcbin src pad became.
pub struct Track {
    pub codec: Codec,
    /// The ghost pad on the peer bin.
    pub pad: gst::GhostPad,
}

fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| format!("the GStreamer element {factory} is not installed"))
}

/// The codec of an RTP pad, from its caps.
pub fn rtp_codec(pad: &gst::Pad) -> Option<Codec> {
    let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)))?;
    let s = caps.structure(0)?;
    Codec::from_encoding_name(s.get::<&str>("encoding-name").ok()?)
}

/// Builds `depay ! parse [! decode ! convert]` for `pad` inside `bin`.
pub fn build(bin: &gst::Bin, pad: &gst::Pad, decode: bool, name: &str) -> Result<Track, String> {
    let codec = rtp_codec(pad).ok_or("media with an unknown codec")?;
    let mut elements = vec![make(codec.depayloader())?];
    if let Some(p) = codec.parser() {
        elements.push(make(p)?);
    }
    if decode {
        let caps = gst::Caps::new_empty_simple(codec.caps_name());
        let factory = best_decoder(&caps)
            .ok_or_else(|| format!("no {} decoder is installed", codec.encoding_name()))?;
        elements.push(factory.create().build().map_err(|e| e.to_string())?);
        if codec.is_video() {
            elements.push(make("videoconvert")?);
        } else {
            elements.push(make("audioconvert")?);
            elements.push(make("audioresample")?);
        }
    }
    bin.add_many(&elements).map_err(|e| e.to_string())?;
    gst::Element::link_many(&elements).map_err(|_| "cannot link the receive chain")?;
    let last = elements
        .last()
        .and_then(|e| e.static_pad("src"))
        .ok_or("no src pad")?;
    let ghost = gst::GhostPad::builder_with_target(&last)
        .map_err(|e| e.to_string())?
        .name(name)
        .build();
    let _ = ghost.set_active(true);
    bin.add_pad(&ghost).map_err(|e| e.to_string())?;
    for e in &elements {
        let _ = e.sync_state_with_parent();
    }
    let sink = elements[0].static_pad("sink").ok_or("no sink pad")?;
    pad.link(&sink)
        .map_err(|e| format!("cannot link webrtcbin's pad: {e:?}"))?;
    Ok(Track { codec, pad: ghost })
}
