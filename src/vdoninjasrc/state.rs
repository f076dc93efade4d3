// SPDX-License-Identifier: MPL-2.0

//! What `vdoninjasrc` holds, apart from GObject: its settings, one [`Remote`] per publisher
//! it receives, and the element-wide [`State`] (signaling driver, recordings, room stream).

use std::collections::BTreeMap;

use super::mix::{MixTrack, RoomMix};
use super::recording::location::Pattern;
use super::recording::manifest::Manifest;
use super::recording::record::Recorder;
use super::ts::TsTrack;
use crate::common::codec::VideoCodecPreference;
use crate::common::driver::Driver;
use crate::common::settings::{CommonSettings, IceConfig};
use crate::peer::Peer;
use crate::protocol::machine::PeerId;

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub common: CommonSettings,
    pub stream_id: Option<String>,
    pub streams: Option<String>,
    pub decode: bool,
    pub video_codec: VideoCodecPreference,
    pub audio: bool,
    pub video: bool,
    pub bitrate: u32,
    pub latency: u32,
    pub record_location: Option<String>,
    pub mix: bool,
    pub mix_width: u32,
    pub mix_height: u32,
    pub mix_framerate: gst::Fraction,
    pub mix_labels: bool,
    /// Seconds a room guest's pads wait for it to come back (`rejoin-grace`).
    pub rejoin_grace: u32,
    /// Aligned per-guest audio files (`record-audio`).
    pub record_audio: super::lanes::AudioFormat,
    /// Guest slots of the room's MPEG-TS stream (`ts-slots`).
    pub ts_slots: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            common: CommonSettings::default(),
            stream_id: None,
            streams: None,
            decode: false,
            video_codec: VideoCodecPreference::Any,
            audio: true,
            video: true,
            bitrate: 0,
            latency: 200,
            record_location: None,
            mix: false,
            mix_width: 1280,
            mix_height: 720,
            mix_framerate: gst::Fraction::new(30, 1),
            mix_labels: true,
            rejoin_grace: 30,
            record_audio: super::lanes::AudioFormat::None,
            ts_slots: 4,
        }
    }
}

impl Settings {
    /// The stream IDs named in `streams`, if it is set.
    pub fn named_streams(&self) -> Option<Vec<String>> {
        self.streams.as_ref().map(|s| {
            s.split([',', ' '])
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect()
        })
    }
}

/// One remote publisher we receive.
pub(crate) struct Remote {
    pub peer: Peer,
    pub uuid: String,
    pub stream_id: String,
    pub label: Option<String>,
    /// The element's pads this publisher's media is on now (see `lasting`).
    pub pads: Vec<gst::GhostPad>,
    pub announced: bool,
    /// Received tracks (each ends in a tee).
    pub tracks: Vec<super::receive::Track>,
    /// Media sections the publisher's offer sends (how many tracks to wait for).
    pub expected: usize,
    pub recorder: Option<Recorder>,
    pub ts_tracks: Vec<TsTrack>,
    pub mix_tracks: Vec<MixTrack>,
    /// Its audio into its stream ID's aligned file (`record-audio`).
    pub lane_inputs: Vec<super::lanes::LaneInput>,
}

#[derive(Default)]
pub(crate) struct State {
    pub driver: Option<Driver>,
    pub remotes: BTreeMap<PeerId, Remote>,
    /// The element's `video_<id>`/`audio_<id>` pads, fed or waiting (see `lasting`).
    pub lasting: Vec<super::lasting::LastingPad>,
    pub ice: IceConfig,
    pub pattern: Option<Pattern>,
    pub manifest: Option<Manifest>,
    /// Recorders whose EOS is on its way to the file.
    pub finishing: Vec<Recorder>,
    /// Ended TS tracks, removed when the element stops.
    pub ts_finished: Vec<TsTrack>,
    /// The room's MPEG-TS muxer, when `src` is linked.
    pub tsmux: Option<super::ts::RoomMux>,
    /// Takes stalled tracks out of the room stream (see `stall`).
    pub stall_watch: Option<tokio::task::JoinHandle<()>>,
    /// The room mix, when `mix` is on and a mix pad is linked.
    pub mix: Option<RoomMix>,
    /// Mix tracks ended by EOS, removed when the element stops.
    pub mix_finished: Vec<MixTrack>,
    /// The aligned audio files (`record-audio`).
    pub lanes: Option<super::lanes::Lanes>,
    /// EOS was asked for: post ours once every file is final.
    pub eos: bool,
    /// The video codec asked of publishers (`video-codec`, or H.264 for the MPEG-TS path).
    pub video_codec: Option<crate::common::codec::Codec>,
}
