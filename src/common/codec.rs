// SPDX-License-Identifier: MPL-2.0

//! The codecs VDO.Ninja peers exchange, with the GStreamer elements for each.

use gst::glib;

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstVdoNinjaVideoCodec")]
pub enum VideoCodec {
    #[default]
    #[enum_value(name = "H.264 (constrained baseline)", nick = "h264")]
    H264,
    #[enum_value(name = "VP8", nick = "vp8")]
    Vp8,
    #[enum_value(name = "VP9", nick = "vp9")]
    Vp9,
    #[enum_value(name = "AV1", nick = "av1")]
    Av1,
}

/// A codec on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    H264,
    Vp8,
    Vp9,
    Av1,
    Opus,
}

impl From<VideoCodec> for Codec {
    fn from(v: VideoCodec) -> Self {
        match v {
            VideoCodec::H264 => Codec::H264,
            VideoCodec::Vp8 => Codec::Vp8,
            VideoCodec::Vp9 => Codec::Vp9,
            VideoCodec::Av1 => Codec::Av1,
        }
    }
}

impl Codec {
    pub fn is_video(self) -> bool {
        self != Codec::Opus
    }

    /// From encoded caps (`video/x-h264`, …).
    pub fn from_caps_name(name: &str) -> Option<Self> {
        Some(match name {
            "video/x-h264" => Codec::H264,
            "video/x-vp8" => Codec::Vp8,
            "video/x-vp9" => Codec::Vp9,
            "video/x-av1" => Codec::Av1,
            "audio/x-opus" => Codec::Opus,
            _ => return None,
        })
    }

    /// From an RTP `encoding-name`.
    pub fn from_encoding_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().as_str() {
            "H264" => Codec::H264,
            "VP8" => Codec::Vp8,
            "VP9" => Codec::Vp9,
            "AV1" | "AV1X" => Codec::Av1,
            "OPUS" => Codec::Opus,
            _ => return None,
        })
    }

    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::H264 => "H264",
            Codec::Vp8 => "VP8",
            Codec::Vp9 => "VP9",
            Codec::Av1 => "AV1",
            Codec::Opus => "OPUS",
        }
    }

    /// The name VDO.Ninja uses in `preferVideoCodec` / `codec_url`.
    pub fn nick(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::Vp8 => "vp8",
            Codec::Vp9 => "vp9",
            Codec::Av1 => "av1",
            Codec::Opus => "opus",
        }
    }

    pub fn caps_name(self) -> &'static str {
        match self {
            Codec::H264 => "video/x-h264",
            Codec::Vp8 => "video/x-vp8",
            Codec::Vp9 => "video/x-vp9",
            Codec::Av1 => "video/x-av1",
            Codec::Opus => "audio/x-opus",
        }
    }

    pub fn payloader(self) -> &'static str {
        match self {
            Codec::H264 => "rtph264pay",
            Codec::Vp8 => "rtpvp8pay",
            Codec::Vp9 => "rtpvp9pay",
            Codec::Av1 => "rtpav1pay",
            Codec::Opus => "rtpopuspay",
        }
    }

    pub fn depayloader(self) -> &'static str {
        match self {
            Codec::H264 => "rtph264depay",
            Codec::Vp8 => "rtpvp8depay",
            Codec::Vp9 => "rtpvp9depay",
            Codec::Av1 => "rtpav1depay",
            Codec::Opus => "rtpopusdepay",
        }
    }

    /// Parser after the depayloader (or before the payloader), if one is useful.
    pub fn parser(self) -> Option<&'static str> {
        match self {
            Codec::H264 => Some("h264parse"),
            Codec::Vp9 => Some("vp9parse"),
            Codec::Av1 => Some("av1parse"),
            Codec::Opus => Some("opusparse"),
            Codec::Vp8 => None,
        }
    }

    /// Payload type we give it in offers (distinct per media under BUNDLE).
    pub fn payload_type(self) -> u32 {
        match self {
            Codec::H264 => 102,
            Codec::Vp8 => 96,
            Codec::Vp9 => 98,
            Codec::Av1 => 35,
            Codec::Opus => 111,
        }
    }

    /// Encoders for raw input, hardware first, then software by preference.
    pub fn encoders(self) -> &'static [&'static str] {
        match self {
            Codec::H264 => &[
                "nvh264enc",
                "vah264enc",
                "vaapih264enc",
                "qsvh264enc",
                "v4l2h264enc",
                "x264enc",
                "openh264enc",
            ],
            Codec::Vp8 => &["vavp8enc", "vaapivp8enc", "vp8enc"],
            Codec::Vp9 => &["vavp9enc", "vaapivp9enc", "vp9enc"],
            Codec::Av1 => &["nvav1enc", "vaav1enc", "svtav1enc", "rav1enc", "av1enc"],
            Codec::Opus => &["opusenc"],
        }
    }
}

/// The video codec a viewer asks publishers for (§6.2), or none.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstVdoNinjaVideoCodecPreference")]
pub enum VideoCodecPreference {
    #[default]
    #[enum_value(name = "Any: whatever the publisher sends", nick = "any")]
    Any,
    #[enum_value(name = "H.264", nick = "h264")]
    H264,
    #[enum_value(name = "VP8", nick = "vp8")]
    Vp8,
    #[enum_value(name = "VP9", nick = "vp9")]
    Vp9,
    #[enum_value(name = "AV1", nick = "av1")]
    Av1,
}

impl VideoCodecPreference {
    pub fn codec(self) -> Option<Codec> {
        match self {
            Self::Any => None,
            Self::H264 => Some(Codec::H264),
            Self::Vp8 => Some(Codec::Vp8),
            Self::Vp9 => Some(Codec::Vp9),
            Self::Av1 => Some(Codec::Av1),
        }
    }
}

/// H.264 as every consumer inside the elements takes it: Annex B, one access unit per buffer.
pub fn h264_byte_stream_caps() -> gst::Caps {
    gst::Caps::builder("video/x-h264")
        .field("stream-format", "byte-stream")
        .field("alignment", "au")
        .build()
}

/// Whether `buf` starts a key frame. H.264 is judged by its NAL units (Annex B): depayloaders
/// and parsers do not always flag delta units. Opus frames are all key frames.
pub fn is_key_frame(codec: Codec, buf: &gst::BufferRef) -> bool {
    match codec {
        Codec::H264 => buf
            .map_readable()
            .is_ok_and(|m| h264_key_frame(m.as_slice()) == Some(true)),
        Codec::Opus => true,
        _ => !buf.flags().contains(gst::BufferFlags::DELTA_UNIT),
    }
}

/// Reads the start of an H.264 access unit (Annex B) up to its first slice: `Some(true)` for a
/// key frame (an IDR slice, or parameter sets, which only come with one), `Some(false)` for
/// another slice, `None` when `data` holds neither.
pub fn h264_key_frame(data: &[u8]) -> Option<bool> {
    let mut i = 0;
    while i + 3 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            match data[i + 3] & 0x1f {
                5 | 7 => return Some(true),
                1..=4 => return Some(false),
                _ => {}
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    None
}

/// The highest-ranked installed decoder for `caps` (hardware decoders rank above software).
pub fn best_decoder(caps: &gst::Caps) -> Option<gst::ElementFactory> {
    use gst::prelude::*;
    let mut list: Vec<gst::ElementFactory> = gst::ElementFactory::factories_with_type(
        gst::ElementFactoryType::DECODER,
        gst::Rank::MARGINAL,
    )
    .into_iter()
    .filter(|f| f.can_sink_any_caps(caps))
    // vp8alphadecodebin / vp9alphadecodebin outrank the plain decoders but only take streams
    // with an alpha channel (`codec-alpha=true`).
    .filter(|f| !f.name().contains("alpha"))
    .collect();
    list.sort_by_key(|f| std::cmp::Reverse(f.rank()));
    list.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::h264_key_frame;

    #[test]
    fn key_frames_are_told_by_their_first_slice() {
        // AUD, SPS, PPS, IDR with 4- and 3-byte start codes.
        let idr = [
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65,
        ];
        assert_eq!(h264_key_frame(&idr), Some(true));
        assert_eq!(h264_key_frame(&[0, 0, 1, 0x65, 7]), Some(true), "IDR alone");
        assert_eq!(
            h264_key_frame(&[0, 0, 0, 1, 0x09, 0, 0, 1, 0x41, 1]),
            Some(false)
        );
        // A delta frame whose later bytes happen to look like an IDR start code.
        assert_eq!(h264_key_frame(&[0, 0, 1, 0x41, 0, 0, 1, 0x65]), Some(false));
        assert_eq!(h264_key_frame(&[0, 0, 1, 0x09, 0xf0]), None);
        assert_eq!(h264_key_frame(&[0, 0, 1]), None);
        assert_eq!(h264_key_frame(&[]), None);
    }
}
