// SPDX-License-Identifier: MPL-2.0

//! `vdoninjasink`: publishes audio and video to VDO.Ninja. Raw input is encoded once and the
//! encoded stream is shared by every viewer, each served by its own webrtcbin.
//!
//! Request pads `video_%u` (raw, H.264, VP8, VP9) and `audio_%u` (raw, Opus); signals and
//! bus messages `viewer-added`, `viewer-removed`; `vdoninja/bitrate-changed` when the encoder
//! follows its viewers' links (`congestion-control`, see `congestion`); what viewers send as `vdoninja/chat` and
//! `vdoninja/data`, and the action signals `send-chat` and `send-data` to answer them
//! (`crate::common::app`).
//!
//! ```sh
//! # publish a test pattern and a tone
//! gst-launch-1.0 videotestsrc is-live=true ! vdoninjasink stream-id=cam1 name=p \
//!     audiotestsrc is-live=true ! p.
//! # publish pre-encoded H.264 (not encoded again) into a room
//! gst-launch-1.0 videotestsrc is-live=true ! x264enc tune=zerolatency ! h264parse ! \
//!     vdoninjasink stream-id=cam1 room=myroom password=secret
//! ```
//!
//! Files: `imp` (the GObject subclass), `input` (input chains: encode once, tee), `viewer`
//! (one viewer's branch), `handler` (what the signaling asks for, on the media thread),
//! `congestion/` (each viewer's link estimate and the encoder's rate).

use gst::glib;
use gst::prelude::*;

pub mod congestion;
mod handler;
mod imp;
mod input;
mod renditions;
mod viewer;

glib::wrapper! {
    pub struct VdoNinjaSink(ObjectSubclass<imp::VdoNinjaSink>) @extends gst::Bin, gst::Element, gst::Object, @implements gst::ChildProxy;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "vdoninjasink",
        gst::Rank::NONE,
        VdoNinjaSink::static_type(),
    )
}
