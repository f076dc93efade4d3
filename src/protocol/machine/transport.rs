// SPDX-License-Identifier: MPL-2.0

//! Per-peer signaling: sending SDP and candidates in the order of spec §5.2, the ICE queue,
//! data-channel greetings, connection-state timers and closing.

use std::time::Instant;

use serde_json::Value;

use super::inbound::Via;
use super::peers::MAX_HELD_CANDIDATES;
use super::{CloseReason, LogLevel, Machine, Output, PeerId, PeerState, Role};
use crate::protocol::message::{
    IceCandidate, Object, PeerMessage, PublisherInfo, Sealed, SessionDescription, ViewerRequest,
    object_of,
};

impl Machine {
    /// Sends a peer message over the peer's data channel when usable, else over the server
    /// (with `UUID` = the peer). `streamID` is added in the form each transport wants.
    fn send_peer(&mut self, peer: PeerId, mut obj: Object, with_stream: bool) {
        let Some(p) = self.peers.get(peer) else {
            return;
        };
        let dc = p.use_data_channel();
        if with_stream && p.role == Role::Publisher {
            let stream = if dc {
                self.publish.as_ref().map(|(plain, _)| plain.clone())
            } else {
                self.publish.as_ref().map(|(_, wire)| wire.clone())
            };
            if let Some(s) = stream {
                obj.insert("streamID".into(), Value::String(s));
            }
        }
        if dc {
            self.out.push(Output::SendData {
                peer,
                text: Value::Object(obj).to_string(),
            });
        } else {
            let uuid = p.uuid.clone();
            let text = self.router.outbound(obj, Some(&uuid));
            self.out.push(Output::Send(text));
        }
    }

    /// A control message (ping, pong, keyframe, bye, the request object…): on the data channel
    /// only. The web app ignores them from the server, and a `bye` from the server makes it
    /// close every connection with our UUID, the new ones too (§1.3C). Without an open data
    /// channel it is dropped.
    pub(super) fn send_control(&mut self, peer: PeerId, obj: Object) {
        match self.peers.get(peer) {
            Some(p) if p.dc_open => self.out.push(Output::SendData {
                peer,
                text: Value::Object(obj).to_string(),
            }),
            Some(_) => self.log(
                LogLevel::Debug,
                format!("{peer}: no data channel for a control message; not sent"),
            ),
            None => {}
        }
    }

    fn session_object(&self, peer: PeerId) -> Object {
        let mut o = Object::new();
        if let Some(s) = self.peers.get(peer).and_then(|p| p.session.clone()) {
            o.insert("session".into(), Value::String(s));
        }
        o
    }

    /// Our offer/answer is set locally: send it, then release held candidates (§5.2 outbound).
    pub(super) fn on_local_description(&mut self, peer: PeerId, sdp: SessionDescription) {
        if self.peers.get(peer).is_none() {
            return;
        }
        let mut o = self.session_object(peer);
        let value = serde_json::to_value(&sdp).unwrap_or(Value::Null);
        Sealed::seal(&value, &self.cfg.crypto).write_into(&mut o, "description");
        self.send_peer(peer, o, true);
        let held = match self.peers.get_mut(peer) {
            Some(p) => {
                p.local_sent = true;
                std::mem::take(&mut p.held)
            }
            None => return,
        };
        if !held.is_empty() {
            self.send_candidates(peer, &held);
        }
    }

    pub(super) fn on_local_candidate(&mut self, peer: PeerId, candidate: IceCandidate) {
        if candidate.candidate.trim().is_empty() {
            return; // end of candidates: browsers ignore it (§2.4)
        }
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        if !p.local_sent {
            if p.held.len() < MAX_HELD_CANDIDATES {
                p.held.push(candidate);
            }
            return;
        }
        self.send_candidates(peer, &[candidate]);
    }

    fn send_candidates(&mut self, peer: PeerId, candidates: &[IceCandidate]) {
        let Some(role) = self.peers.get(peer).map(|p| p.role) else {
            return;
        };
        let mut o = self.session_object(peer);
        o.insert(
            "type".into(),
            serde_json::to_value(role.outbound_direction()).unwrap_or(Value::Null),
        );
        let value = serde_json::to_value(candidates).unwrap_or(Value::Null);
        Sealed::seal(&value, &self.cfg.crypto).write_into(&mut o, "candidates");
        self.send_peer(peer, o, false);
    }

    /// Remote candidates: to their peer if it has a remote description, else to the queue.
    pub(super) fn on_remote_candidates(
        &mut self,
        uuid: &str,
        m: &PeerMessage,
        candidates: Vec<IceCandidate>,
        via: Via,
        now: Instant,
    ) {
        let session = m.session.as_deref();
        let target = match (via, m.direction) {
            (Via::DataChannel(p), _) => Some(p),
            (Via::Server, Some(d)) => self.peers.find(uuid, Role::for_inbound(d)),
            (Via::Server, None) => {
                let all = self.peers.with_uuid(uuid);
                (all.len() == 1).then(|| all[0])
            }
        };
        let target = target.and_then(|id| self.peers.get(id));
        if let Some(p) = target
            && !p.session_matches(session)
        {
            self.log(
                LogLevel::Debug,
                format!("{}: dropping candidates of another session", p.id),
            );
            return;
        }
        if let Some(p) = target
            && p.remote_set
        {
            let peer = p.id;
            self.out.push(Output::AddCandidates { peer, candidates });
            return;
        }
        // Which queue: the message's own `type`, else the role of the peer it would go to, else
        // the role we can have at all.
        let direction = m
            .direction
            .or(target.map(|p| p.role.inbound_direction()))
            .unwrap_or(if self.is_viewing() {
                Role::Viewer.inbound_direction()
            } else {
                Role::Publisher.inbound_direction()
            });
        let mut refused = 0;
        for c in candidates {
            let key = (uuid.to_string(), direction);
            if self.ice.push(key, m.session.clone(), c, now).is_err() {
                refused += 1;
            }
        }
        if refused > 0 {
            // A flood for unknown peers would log a line per message: count them instead.
            self.dropped("early candidates over the candidate queue's caps", uuid);
        }
    }

    /// The remote description is applied: drain what was queued for this peer (§5.2 inbound 4).
    pub(super) fn on_remote_applied(&mut self, peer: PeerId, now: Instant) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        p.remote_set = true;
        let key = (p.uuid.clone(), p.role.inbound_direction());
        let session = p.session.clone();
        let candidates = self.ice.drain(&key, session.as_deref(), now);
        if !candidates.is_empty() {
            self.out.push(Output::AddCandidates { peer, candidates });
        }
    }

    /// Data channel open: the publisher introduces itself, the viewer asks for media (§6.4).
    pub(super) fn on_data_channel_open(&mut self, peer: PeerId, now: Instant) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        if p.dc_open {
            return; // webrtcbin may say so twice (on-data-channel and on-open): greet once
        }
        p.dc_open = true;
        p.last_heard = now;
        p.last_ping = now;
        let obj = match p.role {
            Role::Publisher => {
                let info = PublisherInfo {
                    label: self.cfg.label.clone(),
                    version: crate::protocol::VERSION.to_string(),
                };
                let mut o = Object::new();
                o.insert("info".into(), Value::Object(object_of(&info)));
                o
            }
            Role::Viewer => {
                let opts = &self.cfg.view_options;
                let mut r = ViewerRequest::new(opts.audio, opts.video);
                r.bitrate = opts.bitrate;
                // No `preferVideoCodec`: the web app then reorders our answer itself, and its
                // edit joins a one-codec `m=video` line with the next line, which throws in its
                // bitrate code and stops the negotiation (seen with v26.1). The codec is chosen
                // by our answer instead (the offer's codecs are reordered before webrtcbin
                // answers), which every publisher follows.
                r.info.label = self.cfg.label.clone();
                r.info.vb_url = opts.bitrate;
                r.info.codec_url = opts.video_codec.clone();
                object_of(&r)
            }
        };
        self.send_control(peer, obj);
        // At once, not a second later: until it answers one, a peer is given the longer
        // silence limit, and a guest that goes in its first second must be noticed as fast.
        self.ping(peer, now);
    }

    pub(super) fn on_peer_state(&mut self, peer: PeerId, state: PeerState, now: Instant) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        match state {
            PeerState::Connected => {
                p.connected = true;
                p.trouble_since = None;
            }
            PeerState::Disconnected => {
                p.trouble_since.get_or_insert((state, now));
            }
            PeerState::Failed => {
                let restart = p.role == Role::Publisher && !p.ice_restarted;
                p.trouble_since = Some((state, now));
                if restart {
                    self.restart_ice(peer);
                }
            }
            PeerState::Closed => self.close_peer(peer, CloseReason::ConnectionLost, false, now),
        }
    }

    /// Timers: candidate TTL, re-plays, re-seeds, heartbeats and connection grace periods.
    pub(super) fn on_tick(&mut self, now: Instant) {
        self.ice.expire(now);
        self.tick_join(now);
        self.tick_wants(now);
        if self.reseed_at.is_some_and(|at| now >= at)
            && self.connected
            && (self.wire_room.is_none() || self.in_room)
        {
            self.reseed_at = None;
            self.seed();
        }
        let t = self.cfg.timing.clone();
        let mut close = Vec::new();
        let mut ping = Vec::new();
        for p in self.peers.iter() {
            let grace = p.trouble_since.map(|(state, _)| t.grace(p.role, state));
            if let (Some(g), Some((_, since))) = (grace, p.trouble_since)
                && now.saturating_duration_since(since) >= g
            {
                close.push((p.id, CloseReason::ConnectionLost));
            } else if !p.connected && now.saturating_duration_since(p.created) >= t.connect_timeout
            {
                close.push((p.id, CloseReason::ConnectTimeout));
            } else if p.dc_open && now.saturating_duration_since(p.last_heard) >= t.silence(p) {
                close.push((p.id, CloseReason::Vanished));
            } else if p.dc_open && now.saturating_duration_since(p.last_ping) >= t.ping_interval {
                ping.push(p.id);
            }
        }
        for (id, why) in close {
            self.close_peer(id, why, true, now);
        }
        for id in ping {
            self.ping(id, now);
        }
    }

    /// A data-channel ping (§6.6): every peer that answers is judged by the short silence limit
    /// (see [`super::Timing::silence`]).
    fn ping(&mut self, peer: PeerId, now: Instant) {
        self.ping_seq += 1;
        let mut o = Object::new();
        o.insert("ping".into(), Value::String(self.ping_seq.to_string()));
        if let Some(p) = self.peers.get_mut(peer) {
            p.last_ping = now;
        }
        self.send_control(peer, o);
    }

    /// Closes one peer: `bye` first if asked, then [`Output::ClosePeer`]; its queued candidates
    /// go; a stream we still want is asked for again.
    pub(super) fn close_peer(
        &mut self,
        peer: PeerId,
        reason: CloseReason,
        bye: bool,
        now: Instant,
    ) {
        if self.peers.get(peer).is_none() {
            return;
        }
        if bye {
            let mut o = Object::new();
            o.insert("bye".into(), Value::Bool(true));
            self.send_control(peer, o);
        }
        let Some(p) = self.peers.remove(peer) else {
            return;
        };
        let key = (p.uuid.clone(), p.role.inbound_direction());
        let _ = self.ice.drain(&key, None, now);
        self.log(LogLevel::Info, format!("{peer}: closing ({reason:?})"));
        self.out.push(Output::ClosePeer { peer, reason });
        if p.role == Role::Viewer
            && let Some(s) = &p.stream_id
        {
            self.rearm_want(s, now);
        }
    }
}
