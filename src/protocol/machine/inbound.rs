// SPDX-License-Identifier: MPL-2.0

//! Dispatch of inbound text: server messages, and peer messages from the server or a data
//! channel.

use std::time::Instant;

use super::{CloseReason, Event, LogLevel, Machine, PeerId, Role};
use crate::protocol::message::{
    Inbound, PeerMessage, SdpType, ServerMessage, get_string, open_candidates, open_description,
    parse_object,
};
use crate::protocol::routing::RoutingMode;

/// Data-channel text longer than this is dropped unread (SCTP's usual message limit; our
/// largest messages, SDP with candidates, are far smaller).
pub const MAX_DATA_CHANNEL_TEXT: usize = 256 * 1024;

/// Where a peer message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    Server,
    DataChannel(PeerId),
}

impl Machine {
    pub(super) fn on_server_text(&mut self, text: &str, now: Instant) {
        let obj = match parse_object(text) {
            Ok(o) => o,
            Err(e) => {
                self.dropped(
                    "a server message that is not a JSON object",
                    format!("server ({e})"),
                );
                return;
            }
        };
        let obj = match self.router.inbound(obj) {
            Ok(o) => o,
            Err(why) => {
                self.log(
                    LogLevel::Debug,
                    format!("fan-out filter dropped a message: {why:?}"),
                );
                return;
            }
        };
        match Inbound::from_object(&obj) {
            Inbound::Server(m) => self.on_server_message(m, now),
            Inbound::Peer(m) => match get_string(&obj, &["UUID", "uuid"]) {
                Some(uuid) => self.on_peer_message(&uuid, Via::Server, *m, now),
                None => self.dropped("a peer message without a source UUID", m.summary()),
            },
        }
    }

    pub(super) fn on_data_channel_text(&mut self, peer: PeerId, text: &str, now: Instant) {
        let Some(uuid) = self.peers.get(peer).map(|p| p.uuid.clone()) else {
            return;
        };
        if let Some(p) = self.peers.get_mut(peer) {
            p.last_heard = now;
        }
        if text.len() > MAX_DATA_CHANNEL_TEXT {
            self.dropped("a data-channel message over 256 KiB", peer);
            return;
        }
        match parse_object(text) {
            Ok(obj) => {
                let m = PeerMessage::from_object(&obj);
                self.on_peer_message(&uuid, Via::DataChannel(peer), m, now);
            }
            Err(e) => self.dropped(
                "data-channel text that is not a JSON object",
                format!("{peer} ({e})"),
            ),
        }
    }

    fn on_server_message(&mut self, m: ServerMessage, now: Instant) {
        match m {
            ServerMessage::OfferRequest { uuid, session } => {
                self.on_offer_request(&uuid, session, now)
            }
            ServerMessage::Listing {
                members,
                transferred,
                ..
            } => {
                if transferred {
                    self.on_transferred(now);
                }
                self.on_listing(members, now)
            }
            ServerMessage::SomeoneJoined { uuid, stream_id } => {
                if let Some(s) = stream_id {
                    self.on_stream_announced(&uuid, &s, now);
                }
            }
            ServerMessage::VideoAdded { uuid, stream_id } => {
                self.on_stream_announced(&uuid, &stream_id, now)
            }
            ServerMessage::VideoRemoved { uuid, stream_id } => self.log(
                LogLevel::Debug,
                format!("server says {uuid:?} removed {stream_id:?}; waiting for the peer to end"),
            ),
            ServerMessage::Alert {
                level,
                message,
                code,
            } => self.on_alert(level, message, code, now),
            ServerMessage::Cleanup { uuid } => {
                for id in self.peers.with_uuid(&uuid) {
                    self.close_peer(id, CloseReason::Bye, false, now);
                }
            }
            // The commands below reach us only from fan-out servers (§1.3B).
            ServerMessage::Seed { uuid, stream_id } => {
                if let (Some(u), Some(s)) = (uuid, stream_id)
                    && self.cfg.mode == RoutingMode::Fanout
                {
                    self.on_stream_announced(&u, &s, now);
                }
            }
            ServerMessage::Play { uuid, stream_id } => {
                if self.cfg.mode == RoutingMode::Fanout
                    && let Some(u) = uuid
                    && stream_id.is_some()
                    && stream_id.as_deref() == self.wire_publish_id()
                {
                    self.on_offer_request(&u, None, now);
                }
            }
            ServerMessage::JoinRoom { uuid, stream_id } => {
                if self.cfg.mode != RoutingMode::Fanout {
                    return;
                }
                let Some(u) = uuid else { return };
                // Every member offers its own stream to a newcomer, and plays the newcomer's.
                if self.publish.is_some() {
                    self.on_offer_request(&u, None, now);
                }
                if let Some(s) = stream_id {
                    self.on_stream_announced(&u, &s, now);
                }
            }
            ServerMessage::Other(request) => self.log(
                LogLevel::Debug,
                format!("ignoring server request {request:?}"),
            ),
        }
    }

    fn on_alert(
        &mut self,
        level: crate::protocol::message::AlertLevel,
        message: String,
        code: Option<String>,
        now: Instant,
    ) {
        let lower = message.to_ascii_lowercase();
        let in_use = lower.contains("already in use") || code.as_deref() == Some("STREAMID_IN_USE");
        if in_use && self.publish.is_some() && !lower.contains("uuid") {
            // Often our own previous socket that the server has not dropped yet (§1.5).
            let delay = match self.reseed_delay {
                Some(d) => (d * 2).min(std::time::Duration::from_secs(60)),
                None => self.cfg.timing.reseed_after,
            };
            self.reseed_delay = Some(delay);
            self.reseed_at = Some(now + delay);
            self.seeded = false;
        }
        self.event(Event::ServerAlert {
            level,
            message,
            code,
        });
    }

    pub(super) fn on_peer_message(
        &mut self,
        uuid: &str,
        via: Via,
        mut m: PeerMessage,
        now: Instant,
    ) {
        if let Some(desc) = &m.description {
            match open_description(desc, &self.cfg.crypto) {
                Ok(sdp) => match sdp.kind {
                    SdpType::Offer => self.on_offer(uuid, &m, sdp, via, now),
                    SdpType::Answer => self.on_answer(uuid, m.session.as_deref(), sdp, via),
                },
                Err(e) => self.undecryptable("description", uuid, &e.to_string()),
            }
        }
        if let Some(c) = &m.candidates {
            match open_candidates(c, &self.cfg.crypto) {
                Ok(cands) => self.on_remote_candidates(uuid, &m, cands, via, now),
                Err(e) => self.undecryptable("candidates", uuid, &e.to_string()),
            }
        }
        let target = self.control_target(uuid, via);
        if m.bye {
            match via {
                Via::DataChannel(p) => self.close_peer(p, CloseReason::Bye, false, now),
                Via::Server => {
                    for id in self.peers.with_uuid(uuid) {
                        self.close_peer(id, CloseReason::Bye, false, now);
                    }
                }
            }
            return;
        }
        let Some(target) = target else { return };
        if let Some(p) = self.peers.get_mut(target) {
            p.last_heard = now;
            if m.pong.is_some() && !p.answers_pings {
                p.answers_pings = true;
                self.log(LogLevel::Debug, format!("{target}: answers our pings"));
            }
        }
        if let Some(token) = &m.ping {
            let mut o = crate::protocol::message::Object::new();
            o.insert("pong".into(), token.clone());
            self.send_control(target, o);
        }
        if !m.app.is_empty() {
            let app = std::mem::take(&mut m.app);
            self.on_app_messages(target, app, now);
        }
        if let Some(info) = &m.info {
            let label = get_string(info, &["label"]);
            self.event(Event::PeerInfo {
                peer: target,
                label,
            });
        }
        if self.peers.get(target).map(|p| p.role) == Some(Role::Publisher) {
            self.on_viewer_control(target, &m, now);
        }
    }

    /// The peer a control message is about: the data channel's peer, or on the server the
    /// publisher-side peer of that UUID if any (controls flow viewer → publisher), else the
    /// viewer-side one.
    fn control_target(&self, uuid: &str, via: Via) -> Option<PeerId> {
        match via {
            Via::DataChannel(p) => Some(p),
            Via::Server => self
                .peers
                .find(uuid, Role::Publisher)
                .or_else(|| self.peers.find(uuid, Role::Viewer)),
        }
    }

    /// A payload we cannot open: a warning on the bus (a wrong password must be seen), at the
    /// 1st, 2nd, 4th, 8th… of a kind, so that a flood does not flood the bus too.
    fn undecryptable(&mut self, what: &'static str, uuid: &str, why: &str) {
        let n = self.drops.entry(what).or_insert(0);
        *n += 1;
        if !n.is_power_of_two() {
            return;
        }
        let n = *n;
        let hint = if self.cfg.crypto.enabled() {
            "the sender's password or salt differs from ours"
        } else {
            "the sender uses a password and ours is disabled"
        };
        let count = if n > 1 {
            format!(" ({n} unreadable so far)")
        } else {
            String::new()
        };
        self.event(Event::Warning(format!(
            "cannot read the {what} from peer {uuid}: {why}; most likely {hint}{count}"
        )));
    }
}
