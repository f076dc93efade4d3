// SPDX-License-Identifier: MPL-2.0

//! GStreamer elements for VDO.Ninja.
//!
//! The protocol itself lives in [`protocol`]: pure types and state machines that need neither
//! sockets nor GStreamer, so that tests can drive them directly.

pub mod common;
pub mod peer;
pub mod protocol;
pub mod runtime;
pub mod server;
pub mod signaling;
pub mod tls;
pub mod vdoninjasink;
pub mod vdoninjasrc;

use gst::glib;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    vdoninjasink::register(plugin)?;
    vdoninjasrc::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    vdoninja,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
