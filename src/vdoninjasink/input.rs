// SPDX-License-Identifier: MPL-2.0

//! One input of the sink: raw media is encoded once, encoded media is parsed; either way it
//! ends in a `tee` that every viewer's branch hangs off.

use gst::prelude::*;

use crate::common::codec::Codec;

/// The elements behind one request pad.
#[derive(Debug)]
pub struct Chain {
    pub codec: Codec,
    /// In stream order; the first one's sink pad is the ghost pad's target.
    pub elements: Vec<gst::Element>,
    /// Our encoder, when the input was raw.
    pub encoder: Option<gst::Element>,
    pub tee: gst::Element,
    /// Lower renditions of raw video (`renditions` > 1), rendition 1 first; their elements are
    /// also in `elements`, after the chain's own.
    pub renditions: Vec<super::renditions::Rendition>,
}

impl Chain {
    pub fn sink_pad(&self) -> Option<gst::Pad> {
        self.elements.first().and_then(|e| e.static_pad("sink"))
    }

    /// Asks rendition `level`'s encoder (ours, or the one upstream of encoded input) for a
    /// key frame.
    pub fn request_keyframe_at(&self, level: usize) {
        if let Some(pad) = self.tee_at(level).static_pad("sink").and_then(|p| p.peer()) {
            pad.send_event(crate::peer::force_key_unit());
        }
    }

    /// The tee of rendition `level` (0: the chain's own; the lowest there is, if fewer).
    pub fn tee_at(&self, level: usize) -> &gst::Element {
        match level.checked_sub(1) {
            Some(i) => self
                .renditions
                .get(i)
                .or(self.renditions.last())
                .map_or(&self.tee, |r| &r.tee),
            None => &self.tee,
        }
    }

    /// How many renditions it has (1 without lower ones).
    pub fn levels(&self) -> usize {
        1 + self.renditions.len()
    }
}

#[derive(Debug, Clone)]
pub struct Params {
    pub video_codec: Codec,
    pub video_kbps: u32,
    pub audio_kbps: u32,
    /// Renditions of raw video (1: only the input's own size).
    pub renditions: usize,
    /// The lowest video rate (kbit/s), for the lower renditions.
    pub min_kbps: u32,
}

fn make(factory: &str, name: String) -> Result<gst::Element, String> {
    crate::common::elements::make(factory, Some(&name))
}

/// Sets a property if the element has it, converting from a string (enums, numbers).
pub fn set_if_present(e: &gst::Element, name: &str, value: &str) {
    if e.find_property(name).is_some() {
        e.set_property_from_str(name, value);
    }
}

/// Sets an encoder's bitrate; each encoder family has its own property and unit.
pub fn set_bitrate(encoder: &gst::Element, kbps: u32) {
    let factory = encoder
        .factory()
        .map(|f| f.name().to_string())
        .unwrap_or_default();
    let (prop, value) = match factory.as_str() {
        "vp8enc" | "vp9enc" => ("target-bitrate", kbps as u64 * 1000),
        "av1enc" => ("target-bitrate", kbps as u64),
        "openh264enc" | "opusenc" => ("bitrate", kbps as u64 * 1000),
        _ if encoder.find_property("bitrate").is_some() => ("bitrate", kbps as u64),
        _ => return,
    };
    set_if_present(encoder, prop, &value.to_string());
}

/// The first encoder for `codec` that exists and can start on this machine.
fn pick_encoder(codec: Codec, name: String) -> Result<gst::Element, String> {
    for factory in codec.encoders() {
        let Ok(e) = gst::ElementFactory::make(factory)
            .name(name.as_str())
            .build()
        else {
            continue;
        };
        // Hardware encoders exist as elements without a device behind them: try to open one.
        if e.set_state(gst::State::Ready).is_ok() {
            let _ = e.set_state(gst::State::Null);
            return Ok(e);
        }
        let _ = e.set_state(gst::State::Null);
    }
    Err(format!(
        "no {} encoder is installed (tried {})",
        codec.encoding_name(),
        codec.encoders().join(", ")
    ))
}

/// Low-latency settings (no B-frames, zero-latency tuning, a key frame at least every 2 s).
fn configure_encoder(e: &gst::Element, params: &Params, codec: Codec) {
    let factory = e
        .factory()
        .map(|f| f.name().to_string())
        .unwrap_or_default();
    match factory.as_str() {
        "x264enc" => {
            set_if_present(e, "tune", "zerolatency");
            set_if_present(e, "speed-preset", "superfast");
            set_if_present(e, "bframes", "0");
            set_if_present(e, "key-int-max", "60");
            // A quarter second of rate in the encoder's buffer (x264enc's default: 600 ms):
            // a key frame is at most that much more than the rate allows, and a policed link
            // holds about that much (the first key frame for a new viewer at 2,500 kbit/s
            // was 126 KB with the default, 55 KB with this).
            set_if_present(e, "vbv-buf-capacity", "250");
        }
        "openh264enc" => {
            set_if_present(e, "rate-control", "bitrate");
            set_if_present(e, "gop-size", "60");
            set_if_present(e, "usage-type", "camera");
        }
        "vp8enc" | "vp9enc" => {
            set_if_present(e, "deadline", "1");
            set_if_present(e, "cpu-used", if codec == Codec::Vp9 { "7" } else { "8" });
            set_if_present(e, "end-usage", "cbr");
            set_if_present(e, "keyframe-max-dist", "60");
            set_if_present(e, "lag-in-frames", "0");
            set_if_present(e, "error-resilient", "default");
            set_if_present(e, "threads", "2");
            set_if_present(e, "row-mt", "true");
        }
        "av1enc" => {
            // libaom's real-time mode, as WebRTC uses it: constant bitrate with room to move,
            // no look-ahead. The quantizer range must be set: av1enc's default (0..0) is
            // lossless (75 Mbit/s for 640x360 noise).
            set_if_present(e, "usage-profile", "realtime");
            set_if_present(e, "cpu-used", "9");
            set_if_present(e, "end-usage", "cbr");
            set_if_present(e, "min-quantizer", "10");
            set_if_present(e, "max-quantizer", "63");
            set_if_present(e, "undershoot-pct", "50");
            set_if_present(e, "overshoot-pct", "50");
            set_if_present(e, "buf-sz", "1000");
            set_if_present(e, "buf-initial-sz", "600");
            set_if_present(e, "buf-optimal-sz", "600");
            // GStreamer 1.22's av1enc ignores key-frame requests (measured: none honoured in
            // 3 s), so a new viewer and a PLI wait for the next periodic key frame: one a
            // second, not every two.
            set_if_present(e, "keyframe-max-dist", "30");
            set_if_present(e, "lag-in-frames", "0");
            set_if_present(e, "row-mt", "true");
        }
        "opusenc" => {
            set_if_present(e, "inband-fec", "true");
            set_if_present(e, "frame-size", "20");
        }
        _ => {
            // Hardware encoders: the common names for the same settings.
            set_if_present(e, "zerolatency", "true");
            set_if_present(e, "bframes", "0");
            set_if_present(e, "b-frames", "0");
            set_if_present(e, "gop-size", "60");
            set_if_present(e, "key-int-max", "60");
        }
    }
    let kbps = if codec == Codec::Opus {
        params.audio_kbps
    } else {
        params.video_kbps
    };
    set_bitrate(e, kbps);
}

/// Builds the chain for input with these caps and adds it to `bin` (not yet synced to its state).
pub fn build(
    bin: &gst::Bin,
    pad_name: &str,
    caps: &gst::CapsRef,
    params: &Params,
) -> Result<Chain, String> {
    let s = caps.structure(0).ok_or("the input has empty caps")?;
    let name = s.name().as_str();
    let n = |what: &str| format!("{pad_name}-{what}");
    let mut elements = vec![make("queue", n("queue"))?];
    let mut encoder = None;
    let mut raw_tee = None;
    let codec = match name {
        "video/x-raw" | "audio/x-raw" => {
            let video = name == "video/x-raw";
            let codec = if video {
                params.video_codec
            } else {
                Codec::Opus
            };
            if video {
                elements.push(make("videoconvert", n("convert"))?);
                if params.renditions > 1 {
                    // The raw picture goes to every rendition's encoder, each on its own thread.
                    let raw = make("tee", n("raw"))?;
                    raw.set_property("allow-not-linked", true);
                    raw_tee = Some(raw.clone());
                    elements.push(raw);
                    elements.push(make("queue", n("queue0"))?);
                }
            } else {
                elements.push(make("audioconvert", n("convert"))?);
                elements.push(make("audioresample", n("resample"))?);
            }
            let (enc, filters) = encode(codec, pad_name, params)?;
            elements.push(enc.clone());
            elements.extend(filters);
            encoder = Some(enc);
            codec
        }
        other => Codec::from_caps_name(other)
            .ok_or_else(|| format!("vdoninjasink cannot send {other}"))?,
    };
    let (tail, tee) = parse_to_tee(codec, pad_name)?;
    elements.extend(tail);

    bin.add_many(&elements).map_err(|e| e.to_string())?;
    gst::Element::link_many(&elements)
        .map_err(|_| format!("cannot link the {pad_name} chain for {name}"))?;
    let renditions = match &raw_tee {
        Some(raw) => super::renditions::build(bin, raw, pad_name, s, codec, params)?,
        None => Vec::new(),
    };
    elements.extend(renditions.iter().flat_map(|r| r.elements.iter().cloned()));
    Ok(Chain {
        codec,
        elements,
        encoder,
        tee,
        renditions,
    })
}

/// `encoder ! (profile filter)` for raw input of `codec` at `params`' rates; the encoder
/// and what follows it. Element names start with `prefix`.
pub(super) fn encode(
    codec: Codec,
    prefix: &str,
    params: &Params,
) -> Result<(gst::Element, Vec<gst::Element>), String> {
    let n = |what: &str| format!("{prefix}-{what}");
    let enc = pick_encoder(codec, n("encoder"))?;
    configure_encoder(&enc, params, codec);
    let mut filters = Vec::new();
    if codec == Codec::H264 {
        let filter = make("capsfilter", n("profile"))?;
        filter.set_property(
            "caps",
            gst::Caps::builder("video/x-h264")
                .field("profile", "constrained-baseline")
                .build(),
        );
        filters.push(filter);
    }
    Ok((enc, filters))
}

/// `parse ! (byte-stream filter) ! tee` after an encoder or for encoded input: the elements
/// and the tee (the last of them).
pub(super) fn parse_to_tee(
    codec: Codec,
    prefix: &str,
) -> Result<(Vec<gst::Element>, gst::Element), String> {
    let n = |what: &str| format!("{prefix}-{what}");
    let mut elements = Vec::new();
    if let Some(parser) = codec.parser() {
        let p = make(parser, n("parse"))?;
        set_if_present(&p, "config-interval", "-1");
        crate::peer::shield_parser_from_key_unit_events(&p);
        elements.push(p);
    }
    if codec == Codec::H264 {
        let filter = make("capsfilter", n("bytestream"))?;
        filter.set_property("caps", crate::common::codec::h264_byte_stream_caps());
        elements.push(filter);
    }
    let tee = make("tee", n("tee"))?;
    tee.set_property("allow-not-linked", true);
    elements.push(tee.clone());
    Ok((elements, tee))
}
