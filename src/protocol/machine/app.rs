// SPDX-License-Identifier: MPL-2.0

//! Application messages (§6.4): chat (`{"chat":"…"}`) and custom data (`{"pipe":<any>}`),
//! sent by the web app's chat and the SDK's `sendData`. What peers send becomes
//! [`Event::AppMessage`], bounded in size ([`MAX_APP_BYTES`]) and in rate per peer
//! ([`APP_RATE`]); what the application sends goes to one peer or to all of them.
//!
//! The other per-peer limits on what peers send live here too: messages that cost us work
//! (renegotiations, a viewer's requests) go through [`CONTROL_RATE`], and every kind of drop
//! is counted and logged at each doubling (`Machine::dropped`).

use std::time::Instant;

use serde_json::Value;

use super::{Event, Input, LogLevel, Machine, PeerId, Role};
use crate::protocol::message::Object;
use crate::protocol::rate::{RateLimit, TokenBucket, Verdict};

/// The largest payload taken or sent (the chat text, or the `pipe` value as JSON text).
pub const MAX_APP_BYTES: usize = 64 * 1024;

/// Application messages taken from one peer: 20 a second, bursts of 60.
pub const APP_RATE: RateLimit = RateLimit {
    per_second: 20.0,
    burst: 60.0,
};

/// Messages that cost us work taken from one peer (renegotiation offers; a viewer's key-frame,
/// ICE-restart, media and bitrate requests): 2 a second, bursts of 10. A browser sends a few
/// at a time; a storm would have webrtcbin renegotiate, or the encoder make key frames, on
/// every message.
pub const CONTROL_RATE: RateLimit = RateLimit {
    per_second: 2.0,
    burst: 10.0,
};

/// What an application message carries.
#[derive(Debug, Clone, PartialEq)]
pub enum AppPayload {
    /// `{"chat": text}`.
    Chat(String),
    /// `{"pipe": value}`: any JSON value.
    Data(Value),
}

/// Why an application message is not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    #[error("the message is {0} bytes; at most {MAX_APP_BYTES} are sent")]
    TooLarge(usize),
    #[error("the data is not JSON: {0}")]
    NotJson(String),
}

impl AppPayload {
    /// Data from the application's JSON text.
    pub fn data_from_json(text: &str) -> Result<Self, AppError> {
        if text.len() > MAX_APP_BYTES {
            return Err(AppError::TooLarge(text.len()));
        }
        serde_json::from_str(text)
            .map(AppPayload::Data)
            .map_err(|e| AppError::NotJson(e.to_string()))
    }

    /// A chat message, if it is small enough.
    pub fn chat(text: &str) -> Result<Self, AppError> {
        if text.len() > MAX_APP_BYTES {
            return Err(AppError::TooLarge(text.len()));
        }
        Ok(AppPayload::Chat(text.to_string()))
    }

    /// The payload as the application sees it: the chat text, or the data as JSON text.
    pub fn text(&self) -> String {
        match self {
            AppPayload::Chat(t) => t.clone(),
            AppPayload::Data(v) => v.to_string(),
        }
    }

    fn len(&self) -> usize {
        match self {
            AppPayload::Chat(t) => t.len(),
            AppPayload::Data(v) => v.to_string().len(),
        }
    }

    fn to_object(&self) -> Object {
        let mut o = Object::new();
        match self {
            AppPayload::Chat(t) => o.insert("chat".into(), Value::String(t.clone())),
            AppPayload::Data(v) => o.insert("pipe".into(), v.clone()),
        };
        o
    }

    /// The application payloads of a peer message object, chat first.
    pub fn from_object(obj: &Object) -> Vec<AppPayload> {
        let mut out = Vec::new();
        match obj.get("chat") {
            Some(Value::String(s)) => out.push(AppPayload::Chat(s.clone())),
            // Lenient: a chat that is not a string is shown as its JSON text.
            Some(Value::Null) | None => {}
            Some(other) => out.push(AppPayload::Chat(other.to_string())),
        }
        if let Some(v) = obj.get("pipe").filter(|v| !v.is_null()) {
            out.push(AppPayload::Data(v.clone()));
        }
        out
    }
}

impl super::Peer {
    /// The stream this peer publishes to us, if we view it.
    fn remote_stream_id(&self) -> Option<&str> {
        (self.role == Role::Viewer)
            .then_some(self.stream_id.as_deref())
            .flatten()
    }
}

impl Machine {
    /// Application payloads a peer sent.
    pub(super) fn on_app_messages(
        &mut self,
        peer: PeerId,
        payloads: Vec<AppPayload>,
        now: Instant,
    ) {
        for payload in payloads {
            let Some(p) = self.peers.get_mut(peer) else {
                return;
            };
            let bucket = p
                .app_rate
                .get_or_insert_with(|| TokenBucket::new(APP_RATE, now));
            if let Verdict::Drop { .. } = bucket.take(now) {
                self.dropped("an application message over the rate limit", peer);
                continue;
            }
            let size = payload.len();
            if size > MAX_APP_BYTES {
                self.dropped("an oversized application message", peer);
                continue;
            }
            let (uuid, stream_id) = (p.uuid.clone(), p.remote_stream_id().map(String::from));
            self.event(Event::AppMessage {
                peer,
                uuid,
                stream_id,
                payload,
            });
        }
    }

    /// [`Input::SendApp`]: to every peer whose UUID or stream ID is `to`, or to all.
    pub(super) fn send_app(&mut self, to: Option<&str>, payload: &AppPayload) {
        let targets: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|p| match to {
                None => true,
                Some(t) => p.uuid == t || p.remote_stream_id() == Some(t),
            })
            .map(|p| p.id)
            .collect();
        let open: Vec<PeerId> = targets
            .iter()
            .copied()
            .filter(|id| self.peers.get(*id).is_some_and(|p| p.dc_open))
            .collect();
        if open.is_empty() {
            let whom = to.map_or("any peer".to_string(), |t| format!("{t:?}"));
            let why = if targets.is_empty() {
                "no such peer"
            } else {
                "its data channel is not open"
            };
            self.log(
                LogLevel::Warning,
                format!("application message for {whom} not sent: {why}"),
            );
            return;
        }
        let obj = payload.to_object();
        for id in open {
            self.send_control(id, obj.clone());
        }
    }

    /// Whether `peer` may have one more message that costs work ([`CONTROL_RATE`]); the drop
    /// is counted as `kind` otherwise.
    pub(super) fn take_control(&mut self, peer: PeerId, kind: &'static str, now: Instant) -> bool {
        let Some(p) = self.peers.get_mut(peer) else {
            return false;
        };
        let bucket = p
            .control_rate
            .get_or_insert_with(|| TokenBucket::new(CONTROL_RATE, now));
        match bucket.take(now) {
            Verdict::Pass => true,
            Verdict::Drop { .. } => {
                self.dropped(kind, peer);
                false
            }
        }
    }

    /// Counts a dropped inbound message by kind; logs the 1st, 2nd, 4th, 8th, … of a kind,
    /// with where the latest came from and why.
    pub(super) fn dropped(&mut self, kind: &'static str, from: impl std::fmt::Display) {
        let n = self.drops.entry(kind).or_insert(0);
        *n += 1;
        if n.is_power_of_two() {
            let n = *n;
            self.log(
                LogLevel::Warning,
                format!("{from}: dropped {kind} ({n} of this kind so far)"),
            );
        }
    }
}

/// For the elements: the input that sends `payload` to `to` (a UUID or stream ID; `None` or
/// empty = every peer).
pub fn send_input(to: Option<&str>, payload: AppPayload) -> Input {
    Input::SendApp {
        to: to.filter(|t| !t.is_empty()).map(String::from),
        payload,
    }
}
