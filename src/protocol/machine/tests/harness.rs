// SPDX-License-Identifier: MPL-2.0

//! A simulated network for the state machine: real [`Hub`] routing (official or fan-out), real
//! encryption, and fake webrtcbins that produce SDP and candidates and "connect" matched peers
//! so that their data channels carry text.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::protocol::machine::{
    CloseReason, Config, Event, Input, Machine, Output, PeerId, PeerState, Role,
};
use crate::protocol::message::{IceCandidate, SdpType, SessionDescription};
use crate::server::hub::{Action, Hub, ServerMode};

#[derive(Debug, Default)]
pub struct FakePeer {
    pub role: Option<Role>,
    pub stream_id: Option<String>,
    pub remote: Vec<SessionDescription>,
    pub local: Vec<SessionDescription>,
    pub added: Vec<IceCandidate>,
    /// (node, peer) at the other end, once connected.
    pub link: Option<(usize, PeerId)>,
    pub closed: Option<CloseReason>,
}

pub struct Node {
    pub m: Machine,
    pub online: bool,
    pub peers: HashMap<PeerId, FakePeer>,
    pub events: Vec<Event>,
    pub sent: Vec<String>,
    /// Peers that produce no media-side callbacks (to hold things mid-flight).
    pub frozen: bool,
}

pub struct Net {
    pub hub: Hub,
    pub nodes: Vec<Node>,
    pub now: Instant,
    queue: VecDeque<(usize, Input)>,
}

fn cand(node: usize, peer: PeerId, n: u32) -> IceCandidate {
    IceCandidate {
        candidate: format!(
            "candidate:{n} 1 UDP 2122252543 10.0.{node}.{} 5000{n} typ host",
            peer.0
        ),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
    }
}

/// The fake SDP names its author so the other side can "connect" to it.
fn fake_sdp(kind: SdpType, node: usize, peer: PeerId, note: &str) -> SessionDescription {
    SessionDescription {
        kind,
        sdp: format!(
            "v=0\r\no=fake {node} {} IN IP4 0.0.0.0\r\na=note:{note}\r\n",
            peer.0
        ),
    }
}

fn author(sdp: &SessionDescription) -> Option<(usize, PeerId)> {
    let line = sdp.sdp.lines().find(|l| l.starts_with("o=fake "))?;
    let mut it = line.split(' ').skip(1);
    let node = it.next()?.parse().ok()?;
    let peer = it.next()?.parse().ok()?;
    Some((node, PeerId(peer)))
}

impl Net {
    pub fn new(mode: ServerMode) -> Self {
        Self {
            hub: Hub::new(mode),
            nodes: Vec::new(),
            now: Instant::now(),
            queue: VecDeque::new(),
        }
    }

    pub fn add(&mut self, cfg: Config) -> usize {
        let m = Machine::new(cfg).expect("valid test config");
        self.nodes.push(Node {
            m,
            online: false,
            peers: HashMap::new(),
            events: Vec::new(),
            sent: Vec::new(),
            frozen: false,
        });
        self.nodes.len() - 1
    }

    pub fn connect(&mut self, n: usize) {
        self.hub.connect(n as u64);
        self.nodes[n].online = true;
        self.queue.push_back((n, Input::Connected));
        self.run();
    }

    pub fn disconnect(&mut self, n: usize) {
        self.hub.disconnect(n as u64);
        self.nodes[n].online = false;
        self.queue.push_back((n, Input::Disconnected));
        self.run();
    }

    pub fn input(&mut self, n: usize, input: Input) {
        self.queue.push_back((n, input));
        self.run();
    }

    /// Advances the clock and ticks every node, a second at a time (as the elements tick).
    pub fn advance(&mut self, d: Duration) {
        let mut left = d;
        while !left.is_zero() {
            let step = left.min(Duration::from_secs(1));
            left -= step;
            self.now += step;
            for n in 0..self.nodes.len() {
                self.queue.push_back((n, Input::Tick));
            }
            self.run();
        }
    }

    /// Live peers of node `n`.
    pub fn live(&self, n: usize) -> Vec<(&PeerId, &FakePeer)> {
        let mut v: Vec<_> = self.nodes[n]
            .peers
            .iter()
            .filter(|(_, p)| p.closed.is_none())
            .collect();
        v.sort_by_key(|(id, _)| **id);
        v
    }

    pub fn connected_streams(&self, n: usize) -> Vec<String> {
        let mut v: Vec<String> = self
            .live(n)
            .iter()
            .filter(|(_, p)| p.link.is_some() && p.role == Some(Role::Viewer))
            .filter_map(|(_, p)| p.stream_id.clone())
            .collect();
        v.sort();
        v
    }

    fn run(&mut self) {
        let mut steps = 0;
        while let Some((n, input)) = self.queue.pop_front() {
            steps += 1;
            assert!(steps < 100_000, "the simulated network does not settle");
            let outs = self.nodes[n].m.handle(input, self.now);
            for o in outs {
                self.apply(n, o);
            }
        }
    }

    fn apply(&mut self, n: usize, o: Output) {
        match o {
            Output::Send(text) => {
                self.nodes[n].sent.push(text.clone());
                if !self.nodes[n].online {
                    return;
                }
                for a in self.hub.message(n as u64, &text) {
                    if let Action::Deliver(to, t) = a {
                        self.queue
                            .push_back((to as usize, Input::ServerText(t.to_string())));
                    }
                }
            }
            Output::SendData { peer, text } => {
                if let Some((other, op)) = self.nodes[n].peers.get(&peer).and_then(|p| p.link) {
                    let open = self.nodes[other]
                        .peers
                        .get(&op)
                        .is_some_and(|p| p.closed.is_none());
                    if open {
                        self.queue
                            .push_back((other, Input::DataChannelText { peer: op, text }));
                    }
                }
            }
            Output::CreatePeer {
                peer,
                role,
                stream_id,
                ..
            } => {
                self.nodes[n].peers.insert(
                    peer,
                    FakePeer {
                        role: Some(role),
                        stream_id,
                        ..Default::default()
                    },
                );
            }
            Output::CreateOffer { peer, ice_restart } => {
                if self.nodes[n].frozen {
                    return;
                }
                let note = if ice_restart { "restart" } else { "initial" };
                let sdp = fake_sdp(SdpType::Offer, n, peer, note);
                if let Some(p) = self.nodes[n].peers.get_mut(&peer) {
                    p.local.push(sdp.clone());
                }
                // A candidate before the SDP is sent must be held back (§5.2).
                self.queue.push_back((
                    n,
                    Input::LocalCandidate {
                        peer,
                        candidate: cand(n, peer, 1),
                    },
                ));
                self.queue
                    .push_back((n, Input::LocalDescription { peer, sdp }));
                self.queue.push_back((
                    n,
                    Input::LocalCandidate {
                        peer,
                        candidate: cand(n, peer, 2),
                    },
                ));
            }
            Output::SetRemoteDescription { peer, sdp } => {
                if self.nodes[n].frozen {
                    return;
                }
                let Some(p) = self.nodes[n].peers.get_mut(&peer) else {
                    return;
                };
                p.remote.push(sdp.clone());
                self.queue
                    .push_back((n, Input::RemoteDescriptionApplied { peer }));
                match sdp.kind {
                    SdpType::Offer => {
                        let answer = fake_sdp(SdpType::Answer, n, peer, "answer");
                        p.local.push(answer.clone());
                        self.queue.push_back((
                            n,
                            Input::LocalCandidate {
                                peer,
                                candidate: cand(n, peer, 1),
                            },
                        ));
                        self.queue
                            .push_back((n, Input::LocalDescription { peer, sdp: answer }));
                        self.queue.push_back((
                            n,
                            Input::LocalCandidate {
                                peer,
                                candidate: cand(n, peer, 2),
                            },
                        ));
                    }
                    SdpType::Answer => {
                        // The publisher got its answer: "connect" both ends.
                        if let Some((other, op)) = author(&sdp) {
                            let first = p.link.is_none();
                            p.link = Some((other, op));
                            if let Some(q) = self.nodes[other].peers.get_mut(&op) {
                                q.link = Some((n, peer));
                            }
                            if first {
                                for (node, id) in [(n, peer), (other, op)] {
                                    self.queue.push_back((
                                        node,
                                        Input::PeerState {
                                            peer: id,
                                            state: PeerState::Connected,
                                        },
                                    ));
                                    self.queue
                                        .push_back((node, Input::DataChannelOpen { peer: id }));
                                }
                            }
                        }
                    }
                }
            }
            Output::AddCandidates { peer, candidates } => {
                if let Some(p) = self.nodes[n].peers.get_mut(&peer) {
                    p.added.extend(candidates);
                }
            }
            Output::ClosePeer { peer, reason } => {
                if let Some(p) = self.nodes[n].peers.get_mut(&peer) {
                    p.closed = Some(reason);
                    // The far end sees its data channel close and then the connection.
                    if let Some((other, op)) = p.link {
                        self.queue
                            .push_back((other, Input::DataChannelClosed { peer: op }));
                    }
                }
            }
            Output::Event(e) => self.nodes[n].events.push(e),
            Output::Log { .. } => {}
        }
    }
}
