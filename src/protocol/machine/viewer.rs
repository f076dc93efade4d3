// SPDX-License-Identifier: MPL-2.0

//! The viewer and room-recorder side: finding streams, `play`, answering offers
//! (spec §2.5(b), (c), (d)).

use std::time::Instant;

use super::inbound::Via;
use super::{CloseReason, Event, LogLevel, Machine, Output, Peer, Role, View, Want};
use crate::protocol::crypto::sanitize_stream_id;
use crate::protocol::message::{Command, Member, PeerMessage, SessionDescription};
use crate::protocol::routing::RoutingMode;

impl Machine {
    /// `listing`: we are in the room. Seed if we publish, play what we view.
    pub(super) fn on_listing(&mut self, members: Vec<Member>, now: Instant) {
        if self.wire_room.is_none() {
            self.log(LogLevel::Debug, "ignoring a listing: we joined no room");
            return;
        }
        self.in_room = true;
        self.joined_at = None;
        if !self.seeded {
            self.seed();
        }
        for m in members {
            if let Some(s) = m.stream_id {
                self.on_stream_announced(&m.uuid, &s, now);
            }
        }
        self.play_explicit_wants(now);
    }

    /// `transferred`: a director moved us to another room. The old room's peers go first (the
    /// web app does the same); the list that came with it is then handled as a `listing`.
    pub(super) fn on_transferred(&mut self, now: Instant) {
        self.log(
            LogLevel::Info,
            "moved to another room: closing the old room's peers",
        );
        for id in self.peers.ids() {
            self.close_peer(id, CloseReason::Replaced, true, now);
        }
        self.uuid_streams.clear();
        self.wants.retain(|_, w| w.explicit);
        for w in self.wants.values_mut() {
            w.last_play = None;
        }
    }

    /// A stream (wire ID as announced) exists at `uuid`: play it if we want it.
    pub(super) fn on_stream_announced(&mut self, uuid: &str, wire: &str, now: Instant) {
        if Some(wire) == self.wire_publish_id() {
            return;
        }
        let plain = self.cfg.crypto.plain_stream_id(wire);
        self.uuid_streams.insert(uuid.to_string(), plain.clone());
        if !self.wants_stream(&plain) {
            self.log(
                LogLevel::Debug,
                format!("not viewing stream {plain:?} (filtered)"),
            );
            return;
        }
        if self.delivered(&plain) {
            // A live peer already delivers it: a second `play` would only make the publisher
            // rebuild its connection. If that peer is stale, its close asks again.
            self.log(
                LogLevel::Debug,
                format!("stream {plain:?} announced again; a live peer delivers it"),
            );
            return;
        }
        let explicit = matches!(&self.cfg.view, View::Stream(_));
        self.wants.entry(wire.to_string()).or_insert(Want {
            plain,
            explicit,
            next_play: None,
            attempts: 0,
            warned: false,
            last_play: None,
        });
        self.play(wire, Some(uuid), now);
    }

    /// Whether a live viewer-side peer delivers the stream `plain`.
    fn delivered(&self, plain: &str) -> bool {
        self.peers
            .iter()
            .any(|p| p.role == Role::Viewer && p.stream_id.as_deref() == Some(plain))
    }

    /// The plain stream IDs our live viewer-side peers deliver: a want is satisfied exactly
    /// when its stream is among them (derived, never stored).
    fn delivered_streams(&self) -> Vec<String> {
        self.peers
            .iter()
            .filter(|p| p.role == Role::Viewer)
            .filter_map(|p| p.stream_id.clone())
            .collect()
    }

    fn wants_stream(&self, plain: &str) -> bool {
        match &self.cfg.view {
            View::Nothing => false,
            View::Stream(s) => sanitize_stream_id(s).as_deref() == Some(plain),
            View::Room(None) => true,
            View::Room(Some(filter)) => filter
                .iter()
                .any(|f| sanitize_stream_id(f).as_deref() == Some(plain)),
        }
    }

    /// Sends `play` for every explicitly wanted stream that has no peer, once we may.
    pub(super) fn play_explicit_wants(&mut self, now: Instant) {
        if self.wire_room.is_some() && !self.in_room {
            return; // after the listing
        }
        let delivered = self.delivered_streams();
        let wires: Vec<String> = self
            .wants
            .iter()
            .filter(|(_, w)| w.explicit && !delivered.contains(&w.plain))
            .map(|(k, _)| k.clone())
            .collect();
        for wire in wires {
            self.play(&wire, None, now);
        }
    }

    /// Sends `play` for `wire`, unless one is still pending: any recent one when `announced`
    /// is `None` (our own retries), else a recent one for that same publisher UUID (a new
    /// publisher of the stream did not get the earlier one).
    fn play(&mut self, wire: &str, announced: Option<&str>, now: Instant) {
        if !self.connected {
            return;
        }
        let first = self
            .cfg
            .timing
            .play_retry
            .first()
            .copied()
            .unwrap_or_default();
        if let Some(w) = self.wants.get_mut(wire) {
            let pending = w.last_play.as_ref().is_some_and(|(t, to)| {
                now.saturating_duration_since(*t) < super::PLAY_PENDING
                    && (announced.is_none() || announced == to.as_deref())
            });
            if pending {
                return;
            }
            w.next_play = w.explicit.then_some(now + first);
            w.attempts = 1;
            w.last_play = Some((now, announced.map(str::to_string)));
        }
        self.send_command(Command::Play {
            stream_id: wire.to_string(),
        });
    }

    /// Re-`play`s explicitly wanted streams on the retry schedule (§2.5(b).6).
    pub(super) fn tick_wants(&mut self, now: Instant) {
        if !self.connected || (self.wire_room.is_some() && !self.in_room) {
            return;
        }
        let retry = self.cfg.timing.play_retry.clone();
        let mut sends = Vec::new();
        let mut warnings = Vec::new();
        let delivered = self.delivered_streams();
        for (wire, w) in self.wants.iter_mut() {
            if w.next_play.is_none_or(|t| now < t) || delivered.contains(&w.plain) {
                continue;
            }
            w.last_play = Some((now, None));
            sends.push(wire.clone());
            if !w.explicit {
                // A room member's stream: asked for once more after its peer closed.
                w.next_play = None;
                continue;
            }
            let delay = retry
                .get(w.attempts)
                .or(retry.last())
                .copied()
                .unwrap_or_default();
            w.attempts += 1;
            w.next_play = Some(now + delay);
            if !w.warned {
                w.warned = true;
                warnings.push(w.plain.clone());
            }
        }
        for plain in warnings {
            let why = if self.cfg.crypto.enabled() {
                "is it being published, with the same password and salt as ours (they change the stream's wire ID)?"
            } else {
                "is it being published, with its password disabled as ours is?"
            };
            self.event(Event::Warning(format!(
                "no offer for stream {plain:?} yet: {why}"
            )));
        }
        for wire in sends {
            self.send_command(Command::Play { stream_id: wire });
        }
    }

    /// An offer from `uuid` (§2.5(b).2): a renegotiation of its live peer, or a new peer.
    pub(super) fn on_offer(
        &mut self,
        uuid: &str,
        m: &PeerMessage,
        sdp: SessionDescription,
        via: Via,
        now: Instant,
    ) {
        if !self.is_viewing() {
            self.dropped("an offer (we only publish)", uuid);
            return;
        }
        let session = m.session.as_deref();
        // Over a data channel the stream ID is raw, on the server it is hashed (§2.1).
        let plain = match (via, m.stream_id.as_deref()) {
            (Via::Server, Some(w)) => Some(self.cfg.crypto.plain_stream_id(w)),
            (Via::DataChannel(_), Some(raw)) => Some(raw.to_string()),
            (_, None) => None,
        }
        .or_else(|| self.uuid_streams.get(uuid).cloned());

        let existing = match via {
            Via::DataChannel(p) => Some(p),
            Via::Server => self.peers.find(uuid, Role::Viewer),
        };
        if let Some(id) = existing
            && let Some(p) = self.peers.get(id)
            && p.role == Role::Viewer
            && p.session_matches(session)
        {
            if !self.take_control(id, "a renegotiation offer over the rate limit", now) {
                return;
            }
            self.log(LogLevel::Debug, format!("{id}: renegotiation offer"));
            self.out
                .push(Output::SetRemoteDescription { peer: id, sdp });
            return;
        }
        if let Some(p) = &plain
            && !self.wants_stream(p)
        {
            self.log(
                LogLevel::Info,
                format!("ignoring an offer of unwanted stream {p:?}"),
            );
            return;
        }
        if let Some(old) = self.peers.find(uuid, Role::Viewer) {
            self.close_peer(old, CloseReason::Replaced, true, now);
        }
        if let Some(p) = &plain {
            let same_stream: Vec<_> = self
                .peers
                .iter()
                .filter(|q| q.role == Role::Viewer && q.stream_id.as_deref() == Some(p.as_str()))
                .map(|q| q.id)
                .collect();
            for old in same_stream {
                self.close_peer(old, CloseReason::Replaced, true, now);
            }
        }
        let id = self.new_peer_id();
        let stream_id = plain.or_else(|| match self.cfg.mode {
            // Fan-out room members offer before we know their stream: name them by UUID.
            RoutingMode::Fanout => Some(uuid.to_string()),
            RoutingMode::Official => None,
        });
        let session = m.session.clone();
        self.peers.insert(Peer::new(
            id,
            uuid.to_string(),
            Role::Viewer,
            session.clone(),
            stream_id.clone(),
            now,
        ));
        self.out.push(Output::CreatePeer {
            peer: id,
            role: Role::Viewer,
            uuid: uuid.to_string(),
            session,
            stream_id,
        });
        self.out
            .push(Output::SetRemoteDescription { peer: id, sdp });
    }

    /// A wanted stream's peer is gone: ask for it again soon.
    pub(super) fn rearm_want(&mut self, stream: &str, now: Instant) {
        let after = self.cfg.timing.replay_after_close;
        for w in self.wants.values_mut().filter(|w| w.plain == stream) {
            w.next_play = Some(now + after);
            w.attempts = 0;
        }
    }
}
