// SPDX-License-Identifier: MPL-2.0

//! Application messages on the elements' side: the `send-chat` and `send-data` action signals,
//! and the `vdoninja/chat` and `vdoninja/data` bus messages for what peers send
//! ([`crate::protocol::machine::app`] bounds and routes them).

use gst::glib;
use gst::prelude::*;

use crate::protocol::machine::Input;
use crate::protocol::machine::app::{AppPayload, send_input};

/// Hands an input to the element's signaling; false when it is not running.
pub type SendInput = fn(&gst::Element, Input) -> bool;

/// `send-chat (to, text) -> gboolean` and `send-data (to, json) -> gboolean`: `to` is a peer's
/// stream ID or UUID, or NULL/"" for every peer. FALSE when the element is not running or the
/// message is not valid (data that is not JSON, more than 64 KiB); a `to` that matches no
/// peer with an open data channel is logged.
pub fn action_signals(cat: gst::DebugCategory, send: SendInput) -> Vec<glib::subclass::Signal> {
    let signal = |name: &'static str, make: fn(&str) -> Result<AppPayload, _>| {
        glib::subclass::Signal::builder(name)
            .param_types([String::static_type(), String::static_type()])
            .return_type::<bool>()
            .action()
            .class_handler(move |args| {
                let obj = args.first()?.get::<gst::Element>().ok()?;
                let to = args.get(1)?.get::<Option<String>>().ok().flatten();
                let body = args
                    .get(2)?
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let sent = match make(&body) {
                    Ok(payload) => send(&obj, send_input(to.as_deref(), payload)),
                    Err(e) => {
                        gst::warning!(cat, obj = &obj, "{name}: not sent: {e}");
                        false
                    }
                };
                Some(sent.to_value())
            })
            .build()
    };
    vec![
        signal("send-chat", AppPayload::chat),
        signal("send-data", AppPayload::data_from_json),
    ]
}

/// Posts what a peer sent: `vdoninja/chat` (`text`) or `vdoninja/data` (`data`, JSON text),
/// with the peer's `stream-id` ("" for a viewer) and `uuid`.
pub fn post_received(
    obj: &gst::Element,
    uuid: &str,
    stream_id: Option<&str>,
    payload: &AppPayload,
) {
    let (name, field) = match payload {
        AppPayload::Chat(_) => ("vdoninja/chat", "text"),
        AppPayload::Data(_) => ("vdoninja/data", "data"),
    };
    let s = gst::Structure::builder(name)
        .field("stream-id", stream_id.unwrap_or_default())
        .field("uuid", uuid)
        .field(field, payload.text())
        .build();
    super::log::post_element_message(obj, s);
}
