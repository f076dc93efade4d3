// SPDX-License-Identifier: MPL-2.0

//! Small helpers for building and watching the elements' children.

use gst::prelude::*;

use crate::protocol::machine::PeerId;

/// Makes an element, with a clear error when its plugin is not installed.
pub fn make(factory: &str, name: Option<&str>) -> Result<gst::Element, String> {
    let mut b = gst::ElementFactory::make(factory);
    if let Some(n) = name {
        b = b.name(n);
    }
    b.build()
        .map_err(|_| format!("the GStreamer element {factory} is not installed"))
}

/// Pays, off the critical path, what the first connection of a process would otherwise pay:
/// loading webrtcbin's plugins (libnice, DTLS, SRTP) and generating the DTLS certificate,
/// which GStreamer makes once per process for the first `dtlsdec` (an RSA key). Called when
/// an element starts; a worker thread of the runtime does it while signaling connects.
pub fn warm_up_webrtc() {
    static DONE: std::sync::Once = std::sync::Once::new();
    if DONE.is_completed() {
        return;
    }
    crate::runtime::handle().spawn_blocking(|| {
        DONE.call_once(|| {
            for factory in ["webrtcbin", "dtlsdec"] {
                // Made and dropped: their plugins stay loaded, the certificate stays cached.
                let _ = gst::ElementFactory::make(factory).build();
            }
        });
    });
}

/// The peer a bus message's source belongs to: the child bin of `element` it is in, named
/// `peer<N>` or `peer<N>-<what>` (a peer's parts that live outside its own bin).
pub fn peer_of(element: &gst::Element, src: &gst::Object) -> Option<PeerId> {
    let me = element.upcast_ref::<gst::Object>();
    let mut cur = Some(src.clone());
    while let Some(o) = cur {
        let parent = o.parent();
        if parent.as_ref() == Some(me) {
            let name = o.name();
            let n = name.strip_prefix("peer")?;
            let n = n.split_once('-').map_or(n, |(n, _)| n);
            return n.parse().ok().map(PeerId);
        }
        cur = parent;
    }
    None
}

/// If `msg` is an error from inside one of `element`'s peers, posts a warning instead and
/// returns the peer and the error text: one peer's failure is that peer's alone (design §3).
pub fn peer_failure(
    cat: gst::DebugCategory,
    element: &gst::Element,
    msg: &gst::Message,
    what: &str,
) -> Option<(PeerId, String)> {
    let gst::MessageView::Error(e) = msg.view() else {
        return None;
    };
    let peer = peer_of(element, msg.src()?)?;
    let detail = e.debug().map(|d| format!(" ({d})")).unwrap_or_default();
    let text = format!(
        "{what} of {peer} failed and is dropped: {}{detail}",
        e.error()
    );
    super::log::post_warning(cat, element, &text);
    Some((peer, e.error().to_string()))
}

/// Registers the gst-plugins-rs plugins we bundle (once per process), from `gst-plugin-rtp`:
/// `rtpgccbwe` (Google Congestion Control) and `rtpav1pay`/`rtpav1depay` (AV1, which GStreamer
/// 1.22 has no RTP elements for). Users install nothing more; a system copy of the
/// same plugin, if any, is used as it is.
pub fn register_bundled() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if gst::ElementFactory::find("rtpgccbwe").is_none() {
            let _ = gstrsrtp::plugin_register_static();
        }
    });
}

/// Exposes `target` on `bin` as a ghost pad named `name`.
pub fn ghost(bin: &gst::Bin, target: &gst::Pad, name: &str) -> Result<gst::GhostPad, String> {
    let pad = gst::GhostPad::builder_with_target(target)
        .map_err(|e| e.to_string())?
        .name(name)
        .build();
    bin.add_pad(&pad).map_err(|e| e.to_string())?;
    Ok(pad)
}

/// What a pad probe returns to drop the buffer or event it was given. Not
/// `PadProbeReturn::Drop`: gstreamer-rs takes the item out of the probe's info, and on a
/// drop GStreamer 1.22 then unrefs the empty pointer, a GStreamer-CRITICAL for every item
/// (measured for buffers on a sink pad and for events). `Handled` has gstreamer-rs free the
/// item and GStreamer leave it alone.
pub const DROP: gst::PadProbeReturn = gst::PadProbeReturn::Handled;
