// SPDX-License-Identifier: MPL-2.0

//! The publisher side: one peer per viewer, offers, answers and the viewers' control messages
//! (spec §2.5(a), §6.4).

use std::time::{Duration, Instant};

use super::inbound::Via;
use super::{CloseReason, Event, LogLevel, Machine, Output, Peer, PeerId, Role};
use crate::protocol::message::{PeerMessage, SessionDescription};
use crate::protocol::routing::random_session;

/// A viewer's repeated request for a peer that is still connecting is ignored this long (§2.5(a).3).
const RECONNECT_PATIENCE: Duration = Duration::from_secs(3);

impl Machine {
    /// `offerSDP` (or its fan-out equivalents): viewer `uuid` wants our stream.
    pub(super) fn on_offer_request(&mut self, uuid: &str, session: Option<String>, now: Instant) {
        let Some((plain, _)) = self.publish.clone() else {
            self.log(
                LogLevel::Debug,
                format!("ignoring an offer request from {uuid}: we do not publish"),
            );
            return;
        };
        if let Some(id) = self.peers.find(uuid, Role::Publisher)
            && let Some(p) = self.peers.get(id)
        {
            if p.connected && p.trouble_since.is_none() {
                self.log(
                    LogLevel::Debug,
                    format!("{id}: already connected to {uuid}"),
                );
                return;
            }
            if now.saturating_duration_since(p.created) < RECONNECT_PATIENCE {
                self.log(LogLevel::Debug, format!("{id}: still connecting to {uuid}"));
                return;
            }
            self.close_peer(id, CloseReason::Replaced, true, now);
        }
        if let Some(max) = self.cfg.max_viewers
            && self.peers.count(Role::Publisher) >= max
        {
            self.log(
                LogLevel::Info,
                format!("refusing viewer {uuid}: max-viewers ({max}) reached"),
            );
            self.event(Event::ViewerRefused {
                uuid: uuid.to_string(),
            });
            return;
        }
        let id = self.new_peer_id();
        let session = Some(session.unwrap_or_else(random_session));
        self.peers.insert(Peer::new(
            id,
            uuid.to_string(),
            Role::Publisher,
            session.clone(),
            Some(plain.clone()),
            now,
        ));
        self.out.push(Output::CreatePeer {
            peer: id,
            role: Role::Publisher,
            uuid: uuid.to_string(),
            session,
            stream_id: Some(plain),
        });
        self.out.push(Output::CreateOffer {
            peer: id,
            ice_restart: false,
        });
    }

    /// An answer to one of our offers (§2.5(a).7): applied only with a matching session.
    pub(super) fn on_answer(
        &mut self,
        uuid: &str,
        session: Option<&str>,
        sdp: SessionDescription,
        via: Via,
    ) {
        let id = match via {
            Via::DataChannel(p) => Some(p),
            Via::Server => self.peers.find(uuid, Role::Publisher),
        };
        let Some(peer) = id.and_then(|id| self.peers.get(id)) else {
            self.log(
                LogLevel::Info,
                format!("dropping an answer from {uuid}: no offer of ours is pending"),
            );
            return;
        };
        if peer.role != Role::Publisher || !peer.session_matches(session) {
            self.log(
                LogLevel::Info,
                format!("dropping an answer from {uuid}: its session does not match our offer"),
            );
            return;
        }
        let id = peer.id;
        self.out
            .push(Output::SetRemoteDescription { peer: id, sdp });
    }

    /// Controls a viewer sends us (§6.4, §6.5).
    pub(super) fn on_viewer_control(&mut self, peer: PeerId, m: &PeerMessage, now: Instant) {
        let costly = m.request.is_some()
            || m.bitrate.is_some()
            || m.audio_bitrate.is_some()
            || m.keyframe
            || m.ice_restart_request;
        if costly && !self.take_control(peer, "a viewer request over the rate limit", now) {
            return;
        }
        if let Some(r) = &m.request {
            self.event(Event::MediaRequest {
                peer,
                audio: r.audio,
                video: r.video,
            });
        }
        if let Some(b) = m.bitrate {
            self.event(Event::VideoBitrateRequest {
                peer,
                kbps: u32::try_from(b).ok(),
            });
        }
        if let Some(b) = m.audio_bitrate {
            self.event(Event::AudioBitrateRequest {
                peer,
                kbps: u32::try_from(b).ok(),
            });
        }
        if m.keyframe {
            self.event(Event::KeyframeRequest { peer });
        }
        if m.ice_restart_request {
            self.restart_ice(peer);
        }
    }

    /// Re-offers with an ICE restart, keeping the session (§6.1).
    pub(super) fn restart_ice(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        if p.role != Role::Publisher {
            return;
        }
        p.ice_restarted = true;
        p.local_sent = false;
        self.out.push(Output::CreateOffer {
            peer,
            ice_restart: true,
        });
    }
}
