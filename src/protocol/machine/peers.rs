// SPDX-License-Identifier: MPL-2.0

//! The peers the state machine knows, keyed by (UUID, role, session) (spec §2.6).

use std::time::Instant;

use crate::protocol::message::{Direction, IceCandidate};

/// A handle for one peer connection, unique for the life of a [`super::Machine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "peer{}", self.0)
    }
}

/// Our role in one peer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We publish to a viewer: we offer.
    Publisher,
    /// We view a publisher: we answer.
    Viewer,
}

impl Role {
    /// The `type` our candidate messages carry (§2.4).
    pub fn outbound_direction(self) -> Direction {
        match self {
            Role::Publisher => Direction::Local,
            Role::Viewer => Direction::Remote,
        }
    }

    /// The `type` the remote side's candidate messages carry.
    pub fn inbound_direction(self) -> Direction {
        match self {
            Role::Publisher => Direction::Remote,
            Role::Viewer => Direction::Local,
        }
    }

    /// Which of our roles a candidate with this `type` is for.
    pub fn for_inbound(direction: Direction) -> Role {
        match direction {
            Direction::Local => Role::Viewer,
            Direction::Remote => Role::Publisher,
        }
    }
}

/// Connection state as the I/O side reports it (webrtcbin's peer-connection state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    Connected,
    Disconnected,
    Failed,
    Closed,
}

/// At most this many own candidates are held back before our SDP is sent.
pub const MAX_HELD_CANDIDATES: usize = 200;

#[derive(Debug)]
pub struct Peer {
    pub id: PeerId,
    pub uuid: String,
    pub role: Role,
    pub session: Option<String>,
    /// Plain stream ID: the one we publish, or the one this peer delivers.
    pub stream_id: Option<String>,
    pub created: Instant,
    /// Our SDP has been handed to the transport; own candidates may flow.
    pub local_sent: bool,
    /// Own candidates waiting for `local_sent`.
    pub held: Vec<IceCandidate>,
    /// The remote description is applied; remote candidates may be added directly.
    pub remote_set: bool,
    pub dc_open: bool,
    pub connected: bool,
    /// When the connection went `disconnected` or `failed`.
    pub trouble_since: Option<(PeerState, Instant)>,
    pub ice_restarted: bool,
    pub last_heard: Instant,
    /// It answered one of our pings (the web app and our elements do; Raspberry Ninja does not).
    pub answers_pings: bool,
    pub last_ping: Instant,
    /// The rate limit of its application messages, from the first one.
    pub app_rate: Option<crate::protocol::rate::TokenBucket>,
    /// The rate limit of what costs us work per message (renegotiation offers, a viewer's
    /// requests: key frames, ICE restarts, media and bitrate changes), from the first one.
    pub control_rate: Option<crate::protocol::rate::TokenBucket>,
}

impl Peer {
    pub fn new(
        id: PeerId,
        uuid: String,
        role: Role,
        session: Option<String>,
        stream_id: Option<String>,
        now: Instant,
    ) -> Self {
        Self {
            id,
            uuid,
            role,
            session,
            stream_id,
            created: now,
            local_sent: false,
            held: Vec::new(),
            remote_set: false,
            dc_open: false,
            connected: false,
            trouble_since: None,
            ice_restarted: false,
            last_heard: now,
            answers_pings: false,
            last_ping: now,
            app_rate: None,
            control_rate: None,
        }
    }

    /// Whether a message with `session` belongs to this peer: only two present, different
    /// sessions conflict (§2.6).
    pub fn session_matches(&self, session: Option<&str>) -> bool {
        match (self.session.as_deref(), session) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }

    /// Whether signaling for this peer should go over its data channel.
    pub fn use_data_channel(&self) -> bool {
        self.dc_open && self.trouble_since.is_none()
    }
}

/// All peers; lookups are linear (a room has tens of peers at most).
#[derive(Debug, Default)]
pub struct PeerTable {
    peers: Vec<Peer>,
}

impl PeerTable {
    pub fn insert(&mut self, peer: Peer) {
        self.peers.push(peer);
    }

    pub fn get(&self, id: PeerId) -> Option<&Peer> {
        self.peers.iter().find(|p| p.id == id)
    }

    pub fn get_mut(&mut self, id: PeerId) -> Option<&mut Peer> {
        self.peers.iter_mut().find(|p| p.id == id)
    }

    pub fn remove(&mut self, id: PeerId) -> Option<Peer> {
        let i = self.peers.iter().position(|p| p.id == id)?;
        Some(self.peers.remove(i))
    }

    pub fn find(&self, uuid: &str, role: Role) -> Option<PeerId> {
        self.peers
            .iter()
            .find(|p| p.uuid == uuid && p.role == role)
            .map(|p| p.id)
    }

    /// Every peer with this UUID.
    pub fn with_uuid(&self, uuid: &str) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|p| p.uuid == uuid)
            .map(|p| p.id)
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Peer> {
        self.peers.iter()
    }

    pub fn ids(&self) -> Vec<PeerId> {
        self.peers.iter().map(|p| p.id).collect()
    }

    pub fn count(&self, role: Role) -> usize {
        self.peers.iter().filter(|p| p.role == role).count()
    }
}
