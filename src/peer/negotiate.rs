// SPDX-License-Identifier: MPL-2.0

//! Offer/answer on one webrtcbin, one step at a time: a renegotiation offer that arrives while
//! an earlier exchange is still running waits for it (webrtcbin takes offers only in `stable`,
//! §6.1).

use std::collections::VecDeque;
use std::sync::Arc;

use gst::prelude::*;
use gst_webrtc::{WebRTCSDPType, WebRTCSessionDescription};

use super::{Shared, sdp};
use crate::protocol::machine::Input;
use crate::protocol::message::{SdpType, SessionDescription};

/// SDP edits applied to our own descriptions.
#[derive(Debug, Clone, Default)]
pub struct Munging {
    /// Offers: advertise H.264 as constrained baseline 42e01f, pm=1 (§6.2).
    pub h264_baseline: bool,
    /// Remote offers: put this video codec first, so that webrtcbin answers with it (§6.2).
    pub prefer_video_codec: Option<String>,
}

pub(super) enum Op {
    Offer { ice_restart: bool },
    Remote(SessionDescription),
}

#[derive(Default)]
pub(super) struct Ops {
    queue: VecDeque<Op>,
    busy: bool,
}

pub(super) fn push(shared: &Arc<Shared>, op: Op) {
    if let Ok(mut ops) = shared.ops.lock() {
        ops.queue.push_back(op);
    }
    pump(shared);
}

fn pump(shared: &Arc<Shared>) {
    let op = {
        let Ok(mut ops) = shared.ops.lock() else {
            return;
        };
        if ops.busy {
            return;
        }
        let Some(op) = ops.queue.pop_front() else {
            return;
        };
        ops.busy = true;
        op
    };
    match op {
        Op::Offer { ice_restart } => offer(shared, ice_restart),
        Op::Remote(sdp) => remote(shared, sdp),
    }
}

fn done(shared: &Arc<Shared>) {
    if let Ok(mut ops) = shared.ops.lock() {
        ops.busy = false;
    }
    pump(shared);
}

fn failed(shared: &Arc<Shared>, message: String) {
    shared.fail(message);
    done(shared);
}

type Reply<'a> = Result<Option<&'a gst::StructureRef>, gst::PromiseError>;

/// The error a webrtcbin promise reply carries, if any.
fn reply_error(reply: &Reply) -> Option<String> {
    match reply {
        Err(e) => Some(format!("webrtcbin did not answer ({e:?})")),
        Ok(Some(s)) if s.has_field("error") => Some(
            s.get::<glib::Error>("error")
                .map(|e| e.to_string())
                .unwrap_or_else(|_| "unknown webrtcbin error".into()),
        ),
        Ok(_) => None,
    }
}

use gst::glib;

fn description(reply: &Reply, field: &str) -> Result<WebRTCSessionDescription, String> {
    if let Some(e) = reply_error(reply) {
        return Err(e);
    }
    match reply {
        Ok(Some(s)) => s
            .get::<WebRTCSessionDescription>(field)
            .map_err(|_| format!("webrtcbin gave no {field}")),
        _ => Err(format!("webrtcbin gave no {field}")),
    }
}

fn offer(shared: &Arc<Shared>, ice_restart: bool) {
    let Some(webrtc) = shared.webrtc.upgrade() else {
        return;
    };
    let s = shared.clone();
    let promise = gst::Promise::with_change_func(move |reply| match description(&reply, "offer") {
        Ok(desc) => set_local(&s, desc),
        Err(e) => failed(&s, format!("creating the offer failed: {e}")),
    });
    let opts = gst::Structure::builder("options")
        .field("ice-restart", ice_restart)
        .build();
    webrtc.emit_by_name::<()>("create-offer", &[&opts, &promise]);
}

fn set_local(shared: &Arc<Shared>, desc: WebRTCSessionDescription) {
    let Some(webrtc) = shared.webrtc.upgrade() else {
        return;
    };
    let (kind, gst_kind) = match desc.type_() {
        WebRTCSDPType::Offer => (SdpType::Offer, WebRTCSDPType::Offer),
        _ => (SdpType::Answer, WebRTCSDPType::Answer),
    };
    let mut msg = desc.sdp().to_owned();
    match kind {
        SdpType::Offer if shared.munging.h264_baseline => sdp::advertise_h264_baseline(&mut msg),
        SdpType::Answer => {
            // An answer follows the remote offer, the last remote description.
            if let Ok(offer) = shared.remote.lock()
                && let Some(offer) = offer.as_ref()
            {
                sdp::mirror_h264_profiles(&mut msg, offer);
                sdp::mirror_twcc(&mut msg, offer);
            }
        }
        _ => {}
    }
    let Ok(text) = msg.as_text() else {
        return failed(
            shared,
            "webrtcbin produced an SDP that cannot be printed".into(),
        );
    };
    if let Ok(mut m) = shared.mids.lock() {
        *m = sdp::mids(&msg);
    }
    let desc = WebRTCSessionDescription::new(gst_kind, msg);
    let s = shared.clone();
    let promise = gst::Promise::with_change_func(move |reply| {
        if let Some(e) = reply_error(&reply) {
            return failed(&s, format!("setting our {kind:?} failed: {e}"));
        }
        s.input(Input::LocalDescription {
            peer: s.id,
            sdp: SessionDescription { kind, sdp: text },
        });
        done(&s);
    });
    webrtc.emit_by_name::<()>("set-local-description", &[&desc, &promise]);
}

fn remote(shared: &Arc<Shared>, desc: SessionDescription) {
    let Some(webrtc) = shared.webrtc.upgrade() else {
        return;
    };
    let is_offer = desc.kind == SdpType::Offer;
    let Some(mut msg) = sdp::parse(&desc.sdp) else {
        return failed(shared, "the remote SDP does not parse".into());
    };
    if is_offer {
        if let Some(codec) = &shared.munging.prefer_video_codec {
            sdp::prefer_video_codec(&mut msg, codec);
        }
        if sdp::unsafe_for_webrtcbin(&msg) {
            return failed(
                shared,
                "the offer's first m-line is the data channel and its media announce no SSRC \
                 (a=ssrc), which GStreamer 1.22's webrtcbin cannot receive; refused"
                    .into(),
            );
        }
    }
    if let Ok(mut r) = shared.remote.lock() {
        *r = Some(msg.clone());
    }
    let gst_kind = if is_offer {
        WebRTCSDPType::Offer
    } else {
        WebRTCSDPType::Answer
    };
    let s = shared.clone();
    let promise = gst::Promise::with_change_func(move |reply| {
        if let Some(e) = reply_error(&reply) {
            return failed(&s, format!("the remote description was refused: {e}"));
        }
        s.input(Input::RemoteDescriptionApplied { peer: s.id });
        if is_offer {
            answer(&s);
        } else {
            done(&s);
        }
    });
    webrtc.emit_by_name::<()>(
        "set-remote-description",
        &[&WebRTCSessionDescription::new(gst_kind, msg), &promise],
    );
}

fn answer(shared: &Arc<Shared>) {
    let Some(webrtc) = shared.webrtc.upgrade() else {
        return;
    };
    let s = shared.clone();
    let promise =
        gst::Promise::with_change_func(move |reply| match description(&reply, "answer") {
            Ok(desc) => set_local(&s, desc),
            Err(e) => failed(&s, format!("creating the answer failed: {e}")),
        });
    webrtc.emit_by_name::<()>("create-answer", &[&None::<gst::Structure>, &promise]);
}
