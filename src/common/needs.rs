// SPDX-License-Identifier: MPL-2.0

//! What a codec the user asked for needs on this machine, checked when an element starts
//! (READY→PAUSED), and which Debian 12 package holds each element. A codec that cannot be
//! sent or received here is one clear error at start that names the element and its package,
//! instead of every guest being dropped later, one warning at a time.

use crate::common::codec::{Codec, best_decoder};

/// The Debian 12 package that holds a GStreamer element (the elements this plugin uses).
pub fn package_of(factory: &str) -> &'static str {
    match factory {
        // Bundled in this plugin (gst-plugins-rs' gst-plugin-rtp), registered at start.
        "rtpav1pay" | "rtpav1depay" | "rtpgccbwe" => "this plugin (gst-plugin-rtp, bundled)",
        "x264enc" => "gstreamer1.0-plugins-ugly",
        f if f.starts_with("avdec_") || f.starts_with("avenc_") => "gstreamer1.0-libav",
        "opusenc" | "opusdec" | "videoconvert" | "audioconvert" | "audioresample" => {
            "gstreamer1.0-plugins-base"
        }
        "av1enc" | "av1dec" | "av1parse" | "h264parse" | "vp9parse" | "opusparse" | "mpegtsmux"
        | "webrtcbin" | "openh264enc" | "openh264dec" => "gstreamer1.0-plugins-bad",
        "nicesrc" | "nicesink" => "gstreamer1.0-nice",
        _ => "gstreamer1.0-plugins-good",
    }
}

/// The software decoder Debian 12 has for `codec` (what to install when none is found).
fn debian_decoder(codec: Codec) -> &'static str {
    match codec {
        Codec::H264 => "avdec_h264",
        Codec::Vp8 => "vp8dec",
        Codec::Vp9 => "vp9dec",
        Codec::Av1 => "av1dec",
        Codec::Opus => "opusdec",
    }
}

/// The error for a missing element.
fn missing(what: &str, factory: &str) -> String {
    format!(
        "{what}: the GStreamer element {factory} is not installed (Debian package {})",
        package_of(factory)
    )
}

fn element(what: &str, factory: &str) -> Result<(), String> {
    match gst::ElementFactory::find(factory) {
        Some(_) => Ok(()),
        None => Err(missing(what, factory)),
    }
}

fn decoder(what: &str, codec: Codec) -> Result<(), String> {
    match best_decoder(&gst::Caps::new_empty_simple(codec.caps_name())) {
        Some(_) => Ok(()),
        None => Err(missing(what, debian_decoder(codec))),
    }
}

/// What `vdoninjasrc` does with the video it receives.
#[derive(Debug, Default, Clone, Copy)]
pub struct Receiving {
    /// Decoded on the element's pads (`decode=true`) or in the room mix.
    pub decoded: bool,
    /// The room's MPEG-TS stream, which carries H.264 (other codecs are transcoded).
    pub ts: bool,
}

/// Can `codec`, asked of publishers, be received as `how` says?
pub fn check_receive(codec: Codec, how: Receiving) -> Result<(), String> {
    let what = format!("video-codec={} cannot be received", codec.nick());
    element(&what, codec.depayloader())?;
    if let Some(p) = codec.parser() {
        element(&what, p)?;
    }
    if how.decoded || (how.ts && codec != Codec::H264) {
        decoder(&what, codec)?;
    }
    if how.ts && codec != Codec::H264 {
        let what = format!(
            "the room's MPEG-TS stream cannot carry video-codec={} (it is transcoded to H.264)",
            codec.nick()
        );
        element(&what, "x264enc")?;
        element(&what, "h264parse")?;
    }
    Ok(())
}

/// Can `codec` be sent? `raw` when the input is raw video (encoded here).
pub fn check_send(codec: Codec, raw: bool) -> Result<(), String> {
    let what = format!("video-codec={} cannot be sent", codec.nick());
    element(&what, codec.payloader())?;
    if let Some(p) = codec.parser() {
        element(&what, p)?;
    }
    if raw && codec.encoders().iter().all(|f| element("", f).is_err()) {
        // The software encoder Debian 12 has is the last in the list.
        let factory = codec.encoders().last().copied().unwrap_or("x264enc");
        let factory = if codec == Codec::H264 {
            "x264enc"
        } else {
            factory
        };
        return Err(missing(&what, factory));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_are_named_for_what_a_user_installs() {
        assert_eq!(package_of("av1enc"), "gstreamer1.0-plugins-bad");
        assert_eq!(package_of("avdec_h264"), "gstreamer1.0-libav");
        assert_eq!(package_of("rtpvp8depay"), "gstreamer1.0-plugins-good");
        assert_eq!(package_of("x264enc"), "gstreamer1.0-plugins-ugly");
        assert!(missing("x", "av1dec").contains("Debian package gstreamer1.0-plugins-bad"));
    }
}
