// SPDX-License-Identifier: MPL-2.0

//! `vdoninjasink`: publishes audio and video to VDO.Ninja. Raw input is encoded once and the
//! encoded stream is shared by every viewer, each served by its own webrtcbin.

use gst::glib;
use gst::prelude::*;

mod handler;
mod imp;
mod input;
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
