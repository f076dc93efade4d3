// SPDX-License-Identifier: MPL-2.0

//! Maps the state machine's log lines and warnings onto an element's debug category and bus.

use gst::prelude::*;

use crate::protocol::machine::{CloseReason, Event, LogLevel};
use crate::protocol::message::AlertLevel;

/// Logs a machine [`LogLevel`] line in `cat`, on behalf of `obj`.
pub fn machine_log(cat: gst::DebugCategory, obj: &gst::Element, level: LogLevel, message: &str) {
    match level {
        LogLevel::Debug => gst::debug!(cat, obj = obj, "{message}"),
        LogLevel::Info => gst::info!(cat, obj = obj, "{message}"),
        LogLevel::Warning => gst::warning!(cat, obj = obj, "{message}"),
    }
}

/// Posts an element warning with `text` (shown by gst-launch-1.0) and logs it.
pub fn post_warning(cat: gst::DebugCategory, obj: &gst::Element, text: &str) {
    gst::warning!(cat, obj = obj, "{text}");
    let msg = gst::message::Warning::builder(gst::ResourceError::Read, text)
        .src(obj)
        .build();
    let _ = obj.post_message(msg);
}

/// Handles the events both elements treat alike; returns the event back if it is not one.
pub fn common_event(cat: gst::DebugCategory, obj: &gst::Element, event: Event) -> Option<Event> {
    match event {
        Event::Warning(text) => post_warning(cat, obj, &text),
        Event::ServerAlert {
            level,
            message,
            code,
        } => {
            let text = match code {
                Some(c) => format!("handshake server says ({c}): {message}"),
                None => format!("handshake server says: {message}"),
            };
            if level != AlertLevel::Warn {
                post_warning(cat, obj, &text);
            } else {
                gst::info!(cat, obj = obj, "{text}");
            }
        }
        Event::AppMessage {
            peer,
            uuid,
            stream_id,
            payload,
        } => {
            gst::debug!(cat, obj = obj, "{peer}: application message");
            super::app::post_received(obj, &uuid, stream_id.as_deref(), &payload);
        }
        Event::PeerInfo { peer, label } => {
            gst::info!(
                cat,
                obj = obj,
                "{peer} is {:?}",
                label.as_deref().unwrap_or("unlabelled")
            );
        }
        other => return Some(other),
    }
    None
}

/// Posts an element message `vdoninja/<name>` with `fields`.
pub fn post_element_message(obj: &gst::Element, s: gst::Structure) {
    let _ = obj.post_message(gst::message::Element::builder(s).src(obj).build());
}

/// Why a peer went, in words for signals and bus messages.
pub fn close_reason_text(reason: &CloseReason) -> String {
    match reason {
        CloseReason::Bye => "bye".into(),
        CloseReason::Replaced => "replaced".into(),
        CloseReason::ConnectionLost => "connection lost".into(),
        CloseReason::Vanished => "vanished".into(),
        CloseReason::ConnectTimeout => "never connected".into(),
        CloseReason::Interrupted => "negotiation interrupted".into(),
        CloseReason::Error(e) => format!("error: {e}"),
        CloseReason::Shutdown => "shutdown".into(),
    }
}

/// Logs the ICE servers in use (credentials never appear) and why the fetched list was not used.
pub fn ice_config(
    cat: gst::DebugCategory,
    obj: &gst::Element,
    ice: &crate::common::settings::IceConfig,
    err: Option<&str>,
) {
    if let Some(e) = err {
        gst::info!(
            cat,
            obj = obj,
            "VDO.Ninja TURN list not fetched ({e}); using the built-in table"
        );
    }
    let names: Vec<String> = ice.turn.iter().map(|t| t.redacted()).collect();
    gst::info!(cat, obj = obj, "TURN servers: {names:?}");
}
