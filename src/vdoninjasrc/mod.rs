// SPDX-License-Identifier: MPL-2.0

//! `vdoninjasrc`: views one VDO.Ninja stream, or joins a room and receives every stream in it
//! (one webrtcbin per publisher, one signaling socket for all).

use gst::glib;
use gst::prelude::*;

mod handler;
mod imp;
pub mod location;
mod manifest;
mod receive;
mod record;
mod recording;
mod tsadmit;
mod tsgate;
mod tsmux;
mod tsread;

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
