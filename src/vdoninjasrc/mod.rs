// SPDX-License-Identifier: MPL-2.0

//! `vdoninjasrc`: views one VDO.Ninja stream, or joins a room and receives every stream in it
//! (one webrtcbin per publisher, one signaling socket for all).
//!
//! Each publisher's media comes out on sometimes pads `video_<stream-id>` and
//! `audio_<stream-id>` (parsed encoded media; raw with `decode=true`), made when its media first
//! arrives. They outlive its connections (`lasting`): a publisher that reloads, vanishes or
//! reconnects continues on the same pads (a key frame first, new caps where the format
//! changed), so a pipeline that linked them once keeps its picture; a room guest's pads end
//! (EOS) when it stays away longer than `rejoin-grace`. `record-location` writes one Matroska
//! file per publisher ([`recording`]), and `record-audio=wav|flac` adds one aligned audio file
//! per stream ID for DAWs ([`lanes`]); the always `src` pad, when linked, carries the whole
//! room as MPEG-TS (`ts`). `mix=true` adds `video_mix` and `audio_mix`: the whole room as one
//! picture and one sound ([`mix`]). Bus messages: `vdoninja/stream-added`,
//! `vdoninja/stream-removed`, `vdoninja/recording-started`, `vdoninja/recording-finished`, and
//! what peers send, `vdoninja/chat` and `vdoninja/data`; the action signals `send-chat` and
//! `send-data` send to them (`crate::common::app`).
//!
//! ```sh
//! # watch one stream
//! gst-launch-1.0 vdoninjasrc stream-id=cam1 decode=true name=s \
//!     s.video_cam1 ! queue ! videoconvert ! autovideosink  s.audio_cam1 ! queue ! autoaudiosink
//! # record every guest of a room, one file each
//! gst-launch-1.0 -e vdoninjasrc room=myroom password=secret record-location='rec/%s-%t.mkv'
//! # ... and each guest's audio in one FLAC file, all aligned at the recording's start
//! gst-launch-1.0 -e vdoninjasrc room=myroom record-location='rec/%s-%t.mkv' record-audio=flac
//! # the whole room as MPEG-TS
//! gst-launch-1.0 -e vdoninjasrc room=myroom password=secret ! filesink location=room.ts
//! # the whole room as one picture and one sound, to MP4
//! gst-launch-1.0 -e vdoninjasrc room=myroom mix=true name=s \
//!     s.video_mix ! queue ! x264enc tune=zerolatency ! mp4mux name=m ! filesink location=room.mp4 \
//!     s.audio_mix ! queue ! audioconvert ! avenc_aac ! m.
//! ```
//!
//! Files: `imp` (the GObject subclass: properties, pads, state changes), `state` (what it
//! holds), `handler` (what the signaling asks for, on the media thread), `receive` (one
//! publisher's receive chains), `lasting` (the pads that outlive connections), `recording/`,
//! `ts/`, `mix/`, `lanes/`.

use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;

mod frametimes;
mod handler;
mod imp;
pub mod lanes;
mod lasting;
mod loss;
pub mod mix;
mod receive;
pub mod recording;
#[cfg(test)]
mod rtp_testing;
mod stall;
mod state;
mod ts;

/// The element's debug category (`GST_DEBUG=vdoninjasrc:6`), for every file of it.
pub(crate) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "vdoninjasrc",
        gst::DebugColorFlags::empty(),
        Some("VDO.Ninja viewer and room receiver"),
    )
});

glib::wrapper! {
    pub struct VdoNinjaSrc(ObjectSubclass<imp::VdoNinjaSrc>) @extends gst::Bin, gst::Element, gst::Object, @implements gst::ChildProxy;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "vdoninjasrc",
        gst::Rank::NONE,
        VdoNinjaSrc::static_type(),
    )
}
