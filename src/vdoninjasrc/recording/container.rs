// SPDX-License-Identifier: MPL-2.0

//! The file format of a recording, chosen by `record-location`'s extension, and what each
//! track needs on its way into it.
//!
//! * **Matroska** (`.mkv`, and any other extension): every codec, as it came.
//! * **MP4** (`.mp4`, `.m4v`, `.mov`), for video editors (Premiere, Final Cut, iMovie, Resolve),
//!   which do not open Matroska: fragmented MP4 from GStreamer's `mp4mux` (a fragment a
//!   second, so a killed recorder leaves a file that plays to its last fragment; at the end
//!   the header gets the duration). gst-plugins-rs' `isofmp4mux` would be the field's
//!   choice, but its crate (`gst-plugin-isobmff` 0.15) needs GStreamer 1.26.
//!   H.264 goes in as it came; audio is transcoded from Opus to AAC, the audio codec those
//!   editors take in MP4 (none of them takes Opus in MP4). A guest whose video is not H.264
//!   (VP8, VP9, AV1) is recorded as Matroska instead, with a warning.

use std::path::{Path, PathBuf};

use gst::prelude::*;

use crate::common::codec::Codec;

/// AAC bit rate of MP4 recordings (per guest; stereo speech and music).
const AAC_BITRATE: i32 = 128_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Matroska,
    Mp4,
}

impl Container {
    /// The format `path`'s extension asks for.
    pub fn of(path: &Path) -> Self {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("mp4" | "m4v" | "mov") => Self::Mp4,
            _ => Self::Matroska,
        }
    }

    /// Whether tracks of `codecs` can all go into this format.
    pub fn takes(self, codecs: &[Codec]) -> bool {
        match self {
            Self::Matroska => true,
            Self::Mp4 => codecs
                .iter()
                .all(|c| matches!(c, Codec::H264 | Codec::Opus)),
        }
    }

    /// `path` with this format's extension.
    pub fn path(self, path: &Path) -> PathBuf {
        match self {
            Self::Matroska => path.with_extension("mkv"),
            Self::Mp4 => path.to_path_buf(),
        }
    }

    /// The muxer, set to write a file that plays if the recorder is killed.
    pub fn muxer(self) -> Result<gst::Element, String> {
        let mux = match self {
            Self::Matroska => {
                let mux = make("matroskamux")?;
                // A cluster at least every second: a killed recording loses at most that much.
                if mux.find_property("max-cluster-duration").is_some() {
                    mux.set_property("max-cluster-duration", 1_000_000_000i64);
                }
                mux
            }
            Self::Mp4 => {
                let mux = make("mp4mux")?;
                // Milliseconds: a moof a second after the first moov.
                mux.set_property("fragment-duration", 1000u32);
                mux
            }
        };
        Ok(mux)
    }

    /// The elements a track of `codec` passes between its queue and the muxer.
    pub fn track_chain(self, codec: Codec) -> Result<Vec<gst::Element>, String> {
        Ok(match (self, codec) {
            (_, Codec::H264) => {
                let parse = make("h264parse")?; // byte-stream → avc for the file
                crate::peer::shield_parser_from_key_unit_events(&parse);
                vec![parse]
            }
            (Self::Mp4, Codec::Opus) => {
                let decode = make("opusdec")?;
                let convert = make("audioconvert")?;
                let resample = make("audioresample")?;
                let encode = make("avenc_aac")?;
                encode.set_property("bitrate", AAC_BITRATE);
                let parse = make("aacparse")?;
                vec![decode, convert, resample, encode, parse]
            }
            _ => Vec::new(),
        })
    }

    /// The muxer's request-pad template for a track (both muxers name them alike).
    pub fn pad_template(video: bool) -> &'static str {
        if video { "video_%u" } else { "audio_%u" }
    }
}

fn make(factory: &str) -> Result<gst::Element, String> {
    crate::common::elements::make(factory, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_decides() {
        assert_eq!(Container::of(Path::new("rec/a-1.mp4")), Container::Mp4);
        assert_eq!(Container::of(Path::new("rec/a-1.MOV")), Container::Mp4);
        assert_eq!(Container::of(Path::new("rec/a-1.mkv")), Container::Matroska);
        assert_eq!(Container::of(Path::new("rec/a-1")), Container::Matroska);
        assert_eq!(
            Container::of(Path::new("rec/a-1.webm")),
            Container::Matroska
        );
    }

    #[test]
    fn mp4_takes_h264_and_opus_only() {
        assert!(Container::Mp4.takes(&[Codec::H264, Codec::Opus]));
        assert!(!Container::Mp4.takes(&[Codec::Vp8, Codec::Opus]));
        assert!(Container::Matroska.takes(&[Codec::Vp8, Codec::Opus]));
        assert_eq!(
            Container::Mp4.path(Path::new("r/a.mp4")),
            PathBuf::from("r/a.mp4")
        );
        assert_eq!(
            Container::Matroska.path(Path::new("r/a.mp4")),
            PathBuf::from("r/a.mkv")
        );
    }
}
