// SPDX-License-Identifier: MPL-2.0

//! The signaling state machine.
//!
//! One [`Machine`] serves one signaling socket: a publisher (`vdoninjasink`), a viewer of one
//! stream, or a room recorder (`vdoninjasrc`), or several of these at once. It is fed
//! [`Input`]s (text from the server or from a peer's data channel, and local events reported by
//! the webrtcbin side) and answers with [`Output`]s: text to send, actions on peers, events for
//! the application. It never does I/O and never reads the clock: every call gets `now`.
//!
//! Contract with the I/O side, per peer:
//! * [`Output::CreatePeer`]: create a webrtcbin. For [`Role::Publisher`] create the data channel
//!   `sendChannel` before the offer.
//! * [`Output::CreateOffer`]: create an offer (with ICE restart if asked), set it as local
//!   description, then report [`Input::LocalDescription`].
//! * [`Output::SetRemoteDescription`]: apply it and report [`Input::RemoteDescriptionApplied`]; if
//!   it was an offer, then also create the answer, set it locally and report
//!   [`Input::LocalDescription`].
//! * report every gathered candidate ([`Input::LocalCandidate`]), data-channel open and text
//!   ([`Input::DataChannelOpen`], [`Input::DataChannelText`]) and connection state changes
//!   ([`Input::PeerState`]); feed [`Input::Tick`] about once a second.

pub mod app;
mod inbound;
mod peers;
mod publisher;
mod transport;
mod viewer;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::protocol::crypto::{Crypto, sanitize_room, sanitize_stream_id};
use crate::protocol::ice_queue::{IceQueue, IceQueueLimits};
use crate::protocol::message::{AlertLevel, IceCandidate, Object, SessionDescription};
use crate::protocol::routing::{Router, RoutingMode, random_client_uuid};

pub use peers::{Peer, PeerId, PeerState, Role};

/// What to view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum View {
    #[default]
    Nothing,
    /// One stream (plain ID).
    Stream(String),
    /// Every stream of the configured room; `Some` filters by plain stream ID.
    Room(Option<Vec<String>>),
}

/// How a viewer asks for media (§6.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewOptions {
    pub audio: bool,
    pub video: bool,
    /// kbps.
    pub bitrate: Option<u32>,
    pub video_codec: Option<String>,
}

impl Default for ViewOptions {
    fn default() -> Self {
        Self {
            audio: true,
            video: true,
            bitrate: None,
            video_codec: None,
        }
    }
}

/// Timers (§2.5(b), §2.5(d), §6.6). The defaults follow the reference clients.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Delays between re-`play`s while no offer arrives: the last one repeats.
    pub play_retry: Vec<Duration>,
    /// Re-`play` this long after a wanted stream's peer closed.
    pub replay_after_close: Duration,
    /// Our data-channel ping period (every peer answers a ping with a pong, §6.6).
    pub ping_interval: Duration,
    /// A peer with an open data channel from which nothing was heard this long (no message
    /// on its data channel, no media reported by [`Input::MediaSeen`]) has vanished: a killed
    /// process or a network that went away says no `bye`. Closed then.
    pub silence_timeout: Duration,
    /// The same for a peer that has not answered a ping yet (Raspberry Ninja never does): all
    /// we hear from such a viewer is its RTCP, whose receiver reports come every 2.5–7.5 s
    /// (RFC 3550's 5 s, randomized by 0.5–1.5), so 4 s of silence dropped live Raspberry Ninja
    /// viewers 4–13 s into a run. Publishers send media all the time, whatever they answer.
    pub quiet_timeout: Duration,
    /// A peer that never connects is closed after this long.
    pub connect_timeout: Duration,
    /// Grace for `disconnected` before closing (publisher; viewers use half).
    pub disconnected_grace: Duration,
    /// Grace for `failed` (after an ICE restart on the publisher side).
    pub failed_grace: Duration,
    /// Re-`seed` after an "already in use" alert this long later (doubling).
    pub reseed_after: Duration,
    /// No `listing` this long after `joinroom` (official servers): join again (doubling).
    pub listing_timeout: Duration,
}

impl Timing {
    /// How long `peer` may stay silent before it counts as vanished: by what it sends. A peer
    /// that answers our pings (the web app, our elements) is heard every second; one that never
    /// did is heard only through its RTCP and media.
    pub(crate) fn silence(&self, peer: &peers::Peer) -> Duration {
        if peer.answers_pings {
            self.silence_timeout
        } else {
            self.quiet_timeout.max(self.silence_timeout)
        }
    }

    /// How long a peer may stay `disconnected`/`failed` before it is closed (§8.6: the web app's
    /// publisher waits 10 s, its viewer 5 s).
    pub fn grace(&self, role: Role, state: PeerState) -> Duration {
        match (role, state) {
            (Role::Publisher, PeerState::Failed) => self.failed_grace,
            (Role::Publisher, _) => self.disconnected_grace,
            (Role::Viewer, _) => self.disconnected_grace / 2,
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            play_retry: vec![
                Duration::from_secs(15),
                Duration::from_secs(45),
                Duration::from_secs(180),
            ],
            replay_after_close: Duration::from_secs(5),
            // A ping a second and 4 s of silence: a vanished peer is noticed within 5 s (the
            // tick is once a second).
            ping_interval: Duration::from_secs(1),
            silence_timeout: Duration::from_secs(4),
            // Over the longest gap between two receiver reports (7.5 s), with room for one lost.
            quiet_timeout: Duration::from_secs(12),
            connect_timeout: Duration::from_secs(40),
            disconnected_grace: Duration::from_secs(10),
            failed_grace: Duration::from_secs(10),
            reseed_after: Duration::from_secs(5),
            listing_timeout: Duration::from_secs(10),
        }
    }
}

/// Everything a [`Machine`] needs to know up front.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: RoutingMode,
    pub crypto: Crypto,
    /// Room name as the user gave it.
    pub room: Option<String>,
    /// Stream ID to publish, as the user gave it.
    pub publish: Option<String>,
    pub view: View,
    pub view_options: ViewOptions,
    /// Our label, sent in `info`.
    pub label: Option<String>,
    /// Viewers beyond this many are refused.
    pub max_viewers: Option<usize>,
    /// Our UUID on fan-out servers; random when `None`.
    pub client_uuid: Option<String>,
    pub ice_limits: IceQueueLimits,
    pub timing: Timing,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mode: RoutingMode::Official,
            crypto: Crypto::new(None, crate::protocol::crypto::DEFAULT_SALT),
            room: None,
            publish: None,
            view: View::Nothing,
            view_options: ViewOptions::default(),
            label: None,
            max_viewers: None,
            client_uuid: None,
            ice_limits: IceQueueLimits::default(),
            timing: Timing::default(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("the stream ID {0:?} has no usable characters (A-Z, a-z, 0-9, _)")]
    BadStreamId(String),
    #[error("the room name {0:?} has no usable characters (A-Z, a-z, 0-9, _)")]
    BadRoom(String),
    #[error("receiving a whole room needs a room name")]
    RoomViewWithoutRoom,
    #[error("nothing to do: neither a stream to publish nor anything to view")]
    NothingToDo,
}

/// What the machine is told.
#[derive(Debug, Clone)]
pub enum Input {
    /// The signaling socket is (again) open.
    Connected,
    /// The signaling socket closed; peers live on.
    Disconnected,
    /// A text frame from the signaling server.
    ServerText(String),
    /// A text message on a peer's data channel.
    DataChannelText {
        peer: PeerId,
        text: String,
    },
    DataChannelOpen {
        peer: PeerId,
    },
    DataChannelClosed {
        peer: PeerId,
    },
    /// Our offer or answer is set as local description.
    LocalDescription {
        peer: PeerId,
        sdp: SessionDescription,
    },
    LocalCandidate {
        peer: PeerId,
        candidate: IceCandidate,
    },
    RemoteDescriptionApplied {
        peer: PeerId,
    },
    PeerState {
        peer: PeerId,
        state: PeerState,
    },
    /// Something on the media side failed for this peer: close it alone.
    PeerError {
        peer: PeerId,
        message: String,
    },
    /// Send an application message to the peers whose UUID or stream ID is `to`, or to all
    /// (see [`app`]).
    SendApp {
        to: Option<String>,
        payload: app::AppPayload,
    },
    /// Media arrived from this peer (the I/O side says so at most a few times a second): it
    /// is alive even when its data channel is busy or slow.
    MediaSeen {
        peer: PeerId,
    },
    /// Ask the publisher of a peer for a key frame (viewer side).
    RequestKeyframe {
        peer: PeerId,
    },
    /// Timers.
    Tick,
    /// Say goodbye to every peer.
    Shutdown,
}

/// Why a peer is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The remote side said `bye` (or the server sent `cleanup`).
    Bye,
    /// A newer connection for the same viewer or stream replaced it.
    Replaced,
    /// ICE/DTLS failed or stayed disconnected.
    ConnectionLost,
    /// Nothing heard from it (data channel, media) for `silence_timeout`: it vanished.
    Vanished,
    /// It never connected.
    ConnectTimeout,
    /// Its negotiation was cut by the loss of the handshake server: what the other side sent
    /// meanwhile is lost, so it starts again after the reconnection.
    Interrupted,
    /// Its media elements failed.
    Error(String),
    /// We shut down.
    Shutdown,
}

/// Log levels of [`Output::Log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
}

/// Application-facing events.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A viewer asked for media (`audio`/`video` gate what it gets; absent = unchanged).
    MediaRequest {
        peer: PeerId,
        audio: Option<bool>,
        video: Option<bool>,
    },
    /// A viewer's bitrate cap in kbps; `None` = back to our own target.
    VideoBitrateRequest {
        peer: PeerId,
        kbps: Option<u32>,
    },
    AudioBitrateRequest {
        peer: PeerId,
        kbps: Option<u32>,
    },
    KeyframeRequest {
        peer: PeerId,
    },
    /// The remote side's `info` (label and whatever else it sent).
    PeerInfo {
        peer: PeerId,
        label: Option<String>,
    },
    /// A peer's chat or data (§6.4), within the size and rate limits.
    AppMessage {
        peer: PeerId,
        uuid: String,
        /// The stream the peer publishes, if it is one we view.
        stream_id: Option<String>,
        payload: app::AppPayload,
    },
    /// A viewer was refused because of `max_viewers`.
    ViewerRefused {
        uuid: String,
    },
    /// An `alert`/`error`/`warn` from the server.
    ServerAlert {
        level: AlertLevel,
        message: String,
        code: Option<String>,
    },
    /// Something the user should know and can fix (e.g. a wrong password).
    Warning(String),
}

/// What the machine asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A text frame for the signaling server.
    Send(String),
    /// A text message for a peer's data channel.
    SendData {
        peer: PeerId,
        text: String,
    },
    CreatePeer {
        peer: PeerId,
        role: Role,
        uuid: String,
        session: Option<String>,
        /// Plain stream ID (ours as publisher, the remote one as viewer).
        stream_id: Option<String>,
    },
    CreateOffer {
        peer: PeerId,
        ice_restart: bool,
    },
    SetRemoteDescription {
        peer: PeerId,
        sdp: SessionDescription,
    },
    AddCandidates {
        peer: PeerId,
        candidates: Vec<IceCandidate>,
    },
    ClosePeer {
        peer: PeerId,
        reason: CloseReason,
    },
    Event(Event),
    Log {
        level: LogLevel,
        message: String,
    },
}

/// A stream we want to view, keyed by its wire ID.
#[derive(Debug, Clone)]
struct Want {
    plain: String,
    /// Asked for by name (retry until it comes), rather than found in a room.
    explicit: bool,
    next_play: Option<Instant>,
    attempts: usize,
    warned: bool,
    /// When we last sent `play` for it (a play this recent is still pending), and for which
    /// announced publisher UUID, if any.
    last_play: Option<(Instant, Option<String>)>,
}

/// A `play` this recent is still pending: no second one (each extra `play` becomes an
/// `offerSDP` that makes the web app rebuild its connection, §1.3C).
const PLAY_PENDING: Duration = Duration::from_secs(5);

/// (plain, wire) forms of a user-given stream ID.
fn stream_ids(crypto: &Crypto, raw: &str) -> Result<(String, String), ConfigError> {
    let bad = || ConfigError::BadStreamId(raw.to_string());
    let plain = sanitize_stream_id(raw).ok_or_else(bad)?;
    let wire = crypto.wire_stream_id(&plain).ok_or_else(bad)?;
    Ok((plain, wire))
}

/// The state machine. See the module documentation.
#[derive(Debug)]
pub struct Machine {
    cfg: Config,
    router: Router,
    wire_room: Option<String>,
    /// (plain, wire) stream ID we publish.
    publish: Option<(String, String)>,
    connected: bool,
    in_room: bool,
    seeded: bool,
    /// After an "already in use" alert: when to seed again, and the delay used.
    reseed_at: Option<Instant>,
    reseed_delay: Option<Duration>,
    /// Official servers: when we sent `joinroom` without a `listing` yet, and the wait used.
    joined_at: Option<Instant>,
    join_wait: Duration,
    peers: peers::PeerTable,
    ice: IceQueue,
    wants: HashMap<String, Want>,
    /// Plain stream IDs of UUIDs seen in listings and announcements.
    uuid_streams: HashMap<String, String>,
    next_peer: u64,
    ping_seq: u64,
    /// Dropped inbound messages by kind (each kind is logged at 1, 2, 4, 8, …).
    drops: HashMap<&'static str, u64>,
    out: Vec<Output>,
}

impl Machine {
    pub fn new(cfg: Config) -> Result<Self, ConfigError> {
        let wire_room = match &cfg.room {
            Some(r) => Some(
                cfg.crypto
                    .wire_room_id(r)
                    .ok_or_else(|| ConfigError::BadRoom(r.clone()))?,
            ),
            None => None,
        };
        let publish = match &cfg.publish {
            Some(s) => Some(stream_ids(&cfg.crypto, s)?),
            None => None,
        };
        let mut wants = HashMap::new();
        match &cfg.view {
            View::Nothing if publish.is_none() => return Err(ConfigError::NothingToDo),
            View::Nothing => {}
            View::Stream(s) => {
                let (plain, wire) = stream_ids(&cfg.crypto, s)?;
                wants.insert(
                    wire,
                    Want {
                        plain,
                        explicit: true,
                        next_play: None,
                        attempts: 0,
                        warned: false,
                        last_play: None,
                    },
                );
            }
            View::Room(_) if wire_room.is_none() => return Err(ConfigError::RoomViewWithoutRoom),
            View::Room(_) => {}
        }
        let uuid = cfg.client_uuid.clone().unwrap_or_else(random_client_uuid);
        let mut router = Router::new(cfg.mode, uuid);
        router.set_room(wire_room.clone());
        let ice = IceQueue::new(cfg.ice_limits);
        Ok(Self {
            cfg,
            router,
            wire_room,
            publish,
            connected: false,
            in_room: false,
            seeded: false,
            reseed_at: None,
            reseed_delay: None,
            joined_at: None,
            join_wait: Duration::ZERO,
            peers: peers::PeerTable::default(),
            ice,
            wants,
            uuid_streams: HashMap::new(),
            next_peer: 1,
            ping_seq: 0,
            drops: HashMap::new(),
            out: Vec::new(),
        })
    }

    /// Feeds one input; returns what to do, in order.
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Output> {
        match input {
            Input::Connected => self.on_connected(now),
            Input::Disconnected => {
                self.connected = false;
                self.in_room = false;
                self.seeded = false;
            }
            Input::ServerText(text) => self.on_server_text(&text, now),
            Input::DataChannelText { peer, text } => self.on_data_channel_text(peer, &text, now),
            Input::DataChannelOpen { peer } => self.on_data_channel_open(peer, now),
            Input::DataChannelClosed { peer } => {
                if let Some(p) = self.peers.get_mut(peer) {
                    p.dc_open = false;
                }
            }
            Input::LocalDescription { peer, sdp } => self.on_local_description(peer, sdp),
            Input::LocalCandidate { peer, candidate } => self.on_local_candidate(peer, candidate),
            Input::RemoteDescriptionApplied { peer } => self.on_remote_applied(peer, now),
            Input::PeerState { peer, state } => self.on_peer_state(peer, state, now),
            Input::PeerError { peer, message } => {
                self.close_peer(peer, CloseReason::Error(message), true, now)
            }
            Input::SendApp { to, payload } => self.send_app(to.as_deref(), &payload),
            Input::MediaSeen { peer } => {
                if let Some(p) = self.peers.get_mut(peer) {
                    p.last_heard = now;
                }
            }
            Input::RequestKeyframe { peer } => {
                let mut o = Object::new();
                o.insert("keyframe".into(), true.into());
                self.send_control(peer, o);
            }
            Input::Tick => self.on_tick(now),
            Input::Shutdown => {
                // Every `bye` first, then the closes: the goodbyes leave together instead of
                // each waiting for the previous peer's teardown.
                let ids = self.peers.ids();
                for &id in &ids {
                    let mut o = Object::new();
                    o.insert("bye".into(), true.into());
                    self.send_control(id, o);
                }
                for id in ids {
                    self.close_peer(id, CloseReason::Shutdown, false, now);
                }
            }
        }
        std::mem::take(&mut self.out)
    }

    /// Our client UUID (meaningful on fan-out servers only).
    pub fn client_uuid(&self) -> &str {
        self.router.my_uuid()
    }

    /// The hashed room, if any.
    pub fn wire_room(&self) -> Option<&str> {
        self.wire_room.as_deref()
    }

    /// The wire stream ID we publish, if any.
    pub fn wire_publish_id(&self) -> Option<&str> {
        self.publish.as_ref().map(|(_, w)| w.as_str())
    }

    pub fn peer(&self, id: PeerId) -> Option<&Peer> {
        self.peers.get(id)
    }

    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.peers.iter()
    }

    /// Remote candidates waiting for their peer.
    pub fn queued_candidates(&self) -> usize {
        self.ice.len()
    }

    /// Bytes held by the candidate queue.
    pub fn queued_candidate_bytes(&self) -> usize {
        self.ice.bytes()
    }

    fn log(&mut self, level: LogLevel, message: impl Into<String>) {
        self.out.push(Output::Log {
            level,
            message: message.into(),
        });
    }

    fn event(&mut self, e: Event) {
        self.out.push(Output::Event(e));
    }

    fn new_peer_id(&mut self) -> PeerId {
        let id = PeerId(self.next_peer);
        self.next_peer += 1;
        id
    }

    fn is_viewing(&self) -> bool {
        self.cfg.view != View::Nothing
    }

    /// Socket open: say who we are again (§1.5: joinroom → seed → play).
    fn on_connected(&mut self, now: Instant) {
        // Negotiations the lost socket cut: the other side's messages of the meantime are
        // gone (a peer waited out the 40 s connect timeout). Connected peers need no server.
        let cut: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|p| !p.connected && !p.dc_open)
            .map(|p| p.id)
            .collect();
        for id in cut {
            self.close_peer(id, CloseReason::Interrupted, false, now);
        }
        self.connected = true;
        self.in_room = false;
        self.seeded = false;
        // Plays sent on an earlier socket went with it.
        for w in self.wants.values_mut() {
            w.last_play = None;
        }
        if self.wire_room.is_some() {
            self.join_wait = self.cfg.timing.listing_timeout;
            self.join_room(now);
            if self.cfg.mode == RoutingMode::Fanout {
                // No listing will come: we are in as soon as we said so.
                self.in_room = true;
                self.seeded = self.publish.is_some();
                self.play_explicit_wants(now);
            }
        } else {
            self.seed();
            self.play_explicit_wants(now);
        }
    }

    fn join_room(&mut self, now: Instant) {
        let Some(room) = self.wire_room.clone() else {
            return;
        };
        // Only fan-out servers need our stream in `joinroom` (§2.2).
        let stream_id = match self.cfg.mode {
            RoutingMode::Fanout => self.publish.as_ref().map(|(_, w)| w.clone()),
            RoutingMode::Official => None,
        };
        self.send_command(crate::protocol::message::Command::Joinroom {
            roomid: room,
            stream_id,
        });
        self.joined_at = (self.cfg.mode == RoutingMode::Official).then_some(now);
    }

    /// Official servers answer `joinroom` with a `listing`; without one we are not in the room
    /// (the web app seeds and plays only after it): join again, waiting longer each time.
    fn tick_join(&mut self, now: Instant) {
        let Some(at) = self.joined_at else { return };
        if !self.connected || self.in_room || now.saturating_duration_since(at) < self.join_wait {
            return;
        }
        let waited = self.join_wait;
        self.join_wait = (self.join_wait * 2).min(Duration::from_secs(60));
        self.event(Event::Warning(format!(
            "no room listing {} s after joining the room: joining again (is the server one that \
             routes like the official one? signaling-mode=fanout is for self-hosted servers)",
            waited.as_secs()
        )));
        self.join_room(now);
    }

    fn send_command(&mut self, cmd: crate::protocol::message::Command) {
        let text = self.router.outbound(cmd.to_object(), None);
        self.out.push(Output::Send(text));
    }

    fn seed(&mut self) {
        if let Some((_, wire)) = self.publish.clone() {
            self.send_command(crate::protocol::message::Command::Seed { stream_id: wire });
            self.seeded = true;
        }
    }

    /// Sanitised form of a room name, for display.
    pub fn room_name(&self) -> Option<String> {
        self.cfg.room.as_deref().and_then(sanitize_room)
    }
}
