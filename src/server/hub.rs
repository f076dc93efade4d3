// SPDX-License-Identifier: MPL-2.0

//! The handshake server's logic, sans I/O: connections are numbers, messages are text, and
//! every call returns the deliveries to make.
//!
//! * [`ServerMode::Official`] behaves like the official server as spec §1.3A and §2.3 describe
//!   it: server-assigned UUIDs, peer messages relayed only to their destination with `UUID`
//!   rewritten to the sender, `seed`/`play`/`joinroom`, `listing`, `offerSDP`, `someonejoined`,
//!   `videoaddedtoroom`, an `alert` on a duplicate stream ID, and a `play` outside rooms that
//!   waits for its stream to be seeded. Left out: directors (`claim`, `director` in listings)
//!   and `migrate`/`transferred`.
//! * [`ServerMode::Fanout`] is the self-hosted fan-out model of §1.3B.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use rustc_hash::FxHashMap;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::envelope::{Envelope, replace_value};

/// A connection handle, chosen by the I/O side.
pub type ConnId = u64;

/// A message's text: shared, so that one relayed to a whole room is not copied per member.
pub type Text = Utf8Bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerMode {
    #[default]
    Official,
    Fanout,
}

/// What the hub wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this text to that connection.
    Deliver(ConnId, Text),
    /// Something was dropped or refused: log it.
    Log(String),
}

#[derive(Debug, Default)]
struct Conn {
    /// Official: assigned by us. Fan-out: bound from the first `from`.
    uuid: Option<String>,
    stream: Option<String>,
    room: Option<String>,
    /// Official: streams this connection's early `play`s wait for.
    waits_for: Vec<String>,
}

/// The hub's state, indexed so that routing one message costs the same with ten connections
/// as with ten thousand: by UUID, by room, by stream.
#[derive(Debug, Default)]
pub struct Hub {
    mode: ServerMode,
    /// Server-assigned keys: the fast hash is safe (the string-keyed maps keep SipHash).
    conns: FxHashMap<ConnId, Conn>,
    by_uuid: HashMap<String, ConnId>,
    /// Room → members (ordered, so deliveries come in a stable order).
    rooms: HashMap<String, BTreeSet<ConnId>>,
    /// Connections in no room.
    lobby: BTreeSet<ConnId>,
    /// Wire stream ID → its publisher.
    streams: HashMap<String, ConnId>,
    /// Official: wire stream ID → viewers waiting for it to be seeded.
    waiting: HashMap<String, BTreeSet<ConnId>>,
    next_uuid: u64,
}

impl Hub {
    pub fn new(mode: ServerMode) -> Self {
        Self {
            mode,
            ..Default::default()
        }
    }

    pub fn mode(&self) -> ServerMode {
        self.mode
    }

    /// A new connection. Returns its UUID in the official model.
    pub fn connect(&mut self, id: ConnId) -> Option<String> {
        let uuid = (self.mode == ServerMode::Official).then(|| {
            self.next_uuid += 1;
            // Unique and opaque: a counter plus randomness.
            format!(
                "{:x}{}",
                self.next_uuid,
                crate::protocol::routing::random_client_uuid()
            )
        });
        if let Some(u) = &uuid {
            self.by_uuid.insert(u.clone(), id);
        }
        self.conns.insert(
            id,
            Conn {
                uuid: uuid.clone(),
                ..Default::default()
            },
        );
        self.lobby.insert(id);
        uuid
    }

    /// The UUID of a connection (official: assigned; fan-out: once bound).
    pub fn uuid_of(&self, id: ConnId) -> Option<&str> {
        self.conns.get(&id).and_then(|c| c.uuid.as_deref())
    }

    /// A connection closed: everything it held goes. Closing an unknown one does nothing.
    pub fn disconnect(&mut self, id: ConnId) {
        let Some(c) = self.conns.remove(&id) else {
            return;
        };
        if let Some(u) = &c.uuid
            && self.by_uuid.get(u) == Some(&id)
        {
            self.by_uuid.remove(u);
        }
        if let Some(s) = &c.stream
            && self.streams.get(s) == Some(&id)
        {
            self.streams.remove(s);
        }
        self.leave_group(id, c.room.as_deref());
        for s in &c.waits_for {
            if let Some(w) = self.waiting.get_mut(s) {
                w.remove(&id);
                if w.is_empty() {
                    self.waiting.remove(s);
                }
            }
        }
    }

    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// One text frame from connection `id`.
    pub fn message(&mut self, id: ConnId, text: impl Into<Text>) -> Vec<Action> {
        let text = text.into();
        let mut out = Vec::new();
        if !self.conns.contains_key(&id) {
            return out;
        }
        let env = match Envelope::parse(&text) {
            Ok(e) => e,
            Err(e) => {
                out.push(Action::Log(format!("connection {id}: dropped: {e}")));
                return out;
            }
        };
        match self.mode {
            ServerMode::Official => self.official(id, &env, &text, &mut out),
            ServerMode::Fanout => self.fanout(id, &env, &text, &mut out),
        }
        out
    }

    fn official(&mut self, id: ConnId, env: &Envelope, text: &Text, out: &mut Vec<Action>) {
        let Some(me) = self.uuid_of(id).map(str::to_string) else {
            return;
        };
        let Some(request) = env.request() else {
            // A peer message: relay to its destination with UUID = sender.
            let (Some(dest), Some(span)) = (env.uuid(), env.uuid_span(text)) else {
                out.push(Action::Log(format!(
                    "connection {id}: peer message without UUID dropped"
                )));
                return;
            };
            let Some(&dest_id) = self.by_uuid.get(dest.as_ref()) else {
                out.push(Action::Log(format!(
                    "connection {id}: no connection {dest:?}; dropped"
                )));
                return;
            };
            out.push(Action::Deliver(
                dest_id,
                replace_value(text, span, &me).into(),
            ));
            return;
        };
        let stream = env.stream_id().map(|s| s.into_owned());
        match request.as_ref() {
            "seed" => {
                let Some(stream) = stream else { return };
                if let Some(&owner) = self.streams.get(&stream)
                    && owner != id
                {
                    out.push(self.to(
                        id,
                        json!({"request":"alert","message":"Stream ID is already in use."}),
                    ));
                    return;
                }
                let conn = self.conns.entry(id).or_default();
                if let Some(old) = conn.stream.replace(stream.clone())
                    && old != stream
                    && self.streams.get(&old) == Some(&id)
                {
                    self.streams.remove(&old);
                }
                let room = conn.room.clone();
                self.streams.insert(stream.clone(), id);
                if let Some(room) = room {
                    for other in self.room_members(&room, id) {
                        out.push(self.to(
                            other,
                            json!({"request":"videoaddedtoroom","UUID":me,"streamID":stream}),
                        ));
                    }
                }
                for viewer in self.waiting.remove(&stream).unwrap_or_default() {
                    if let Some(v) = self.conns.get_mut(&viewer) {
                        v.waits_for.retain(|s| *s != stream);
                    }
                    if let Some(v) = self.uuid_of(viewer).map(str::to_string) {
                        out.push(self.to(id, json!({"request":"offerSDP","UUID":v})));
                    }
                }
            }
            "play" => {
                let Some(stream) = stream else { return };
                match self.streams.get(&stream) {
                    Some(&publisher) if publisher != id => {
                        out.push(self.to(publisher, json!({"request":"offerSDP","UUID":me})));
                    }
                    Some(_) => {}
                    // Remembered until the seed only outside rooms: in a room the seed's
                    // `videoaddedtoroom` tells the members, who play then (§1.3C).
                    None if self.conns[&id].room.is_none() => self.wait_for(id, stream),
                    None => {}
                }
            }
            "joinroom" => {
                let Some(room) = env.roomid().map(|r| r.into_owned()) else {
                    return;
                };
                let others = self.room_members(&room, id);
                let list: Vec<Value> = others
                    .iter()
                    .filter_map(|o| {
                        let c = &self.conns[o];
                        let mut m = json!({"UUID": c.uuid.as_deref()?});
                        if let Some(s) = &c.stream {
                            m["streamID"] = json!(s);
                        }
                        Some(m)
                    })
                    .collect();
                let mut joined = json!({"request":"someonejoined","UUID":me});
                if let Some(s) = &self.conns[&id].stream {
                    joined["streamID"] = json!(s);
                }
                let joined = Text::from(joined.to_string());
                for other in others {
                    out.push(Action::Deliver(other, joined.clone()));
                }
                self.set_room(id, Some(room));
                out.push(self.to(id, json!({"request":"listing","list":list})));
            }
            other => out.push(Action::Log(format!(
                "connection {id}: request {other:?} ignored"
            ))),
        }
    }

    fn fanout(&mut self, id: ConnId, env: &Envelope, text: &Text, out: &mut Vec<Action>) {
        let Some(from) = env.from() else {
            out.push(self.to(id, json!({"error":"missing from field"})));
            return;
        };
        match self.conns[&id].uuid.as_deref() {
            Some(b) if b != from => {
                out.push(Action::Log(format!(
                    "connection {id}: `from` changed; dropped"
                )));
                return;
            }
            Some(_) => {}
            None => {
                if self.by_uuid.contains_key(from.as_ref()) {
                    out.push(self.to(id, json!({"error":"uuid already in use"})));
                    return;
                }
                self.by_uuid.insert(from.to_string(), id);
                self.conns.entry(id).or_default().uuid = Some(from.into_owned());
            }
        }
        let request = env.request();
        let stream = env.stream_id();
        if matches!(request.as_deref(), Some("seed") | Some("joinroom"))
            && let Some(s) = &stream
        {
            if self.conns[&id]
                .stream
                .as_ref()
                .is_some_and(|c| c != s.as_ref())
            {
                out.push(self.to(id, json!({"error":"can't change sid"})));
                return;
            }
            if self.streams.get(s.as_ref()).is_some_and(|o| *o != id) {
                out.push(self.to(id, json!({"error":"sid already in use"})));
                return;
            }
            self.streams.insert(s.to_string(), id);
            self.conns.entry(id).or_default().stream = Some(s.to_string());
        }
        if request.as_deref() == Some("joinroom")
            && let Some(room) = env.roomid()
        {
            self.set_room(id, Some(room.into_owned()));
        }
        let room = self.conns[&id].room.clone();
        let wanted = match request.as_deref() {
            Some("play") => stream.as_deref(),
            _ => None,
        };
        let same_room = |c: &Conn| c.room == room;
        let wants = |c: &Conn| wanted.is_none() || c.stream.as_deref() == wanted;
        match env.uuid() {
            Some(dest) => {
                if let Some(&to) = self.by_uuid.get(dest.as_ref())
                    && to != id
                    && let Some(c) = self.conns.get(&to)
                    && same_room(c)
                    && wants(c)
                {
                    out.push(Action::Deliver(to, text.clone()));
                }
            }
            None => {
                let group = match &room {
                    Some(r) => self.rooms.get(r),
                    None => Some(&self.lobby),
                };
                for &to in group.into_iter().flatten() {
                    if to != id && self.conns.get(&to).is_some_and(wants) {
                        out.push(Action::Deliver(to, text.clone()));
                    }
                }
            }
        }
    }

    /// `id` played `stream` before it was seeded.
    fn wait_for(&mut self, id: ConnId, stream: String) {
        if self.waiting.entry(stream.clone()).or_default().insert(id) {
            self.conns.entry(id).or_default().waits_for.push(stream);
        }
    }

    /// Members of `room` other than `except`, in a stable order.
    fn room_members(&self, room: &str, except: ConnId) -> Vec<ConnId> {
        self.rooms
            .get(room)
            .into_iter()
            .flatten()
            .copied()
            .filter(|m| *m != except)
            .collect()
    }

    fn set_room(&mut self, id: ConnId, room: Option<String>) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.room == room {
            return;
        }
        let old = std::mem::replace(&mut conn.room, room.clone());
        self.leave_group(id, old.as_deref());
        match room {
            Some(r) => self.rooms.entry(r).or_default().insert(id),
            None => self.lobby.insert(id),
        };
    }

    fn leave_group(&mut self, id: ConnId, room: Option<&str>) {
        match room {
            Some(r) => {
                if let Some(m) = self.rooms.get_mut(r) {
                    m.remove(&id);
                    if m.is_empty() {
                        self.rooms.remove(r);
                    }
                }
            }
            None => {
                self.lobby.remove(&id);
            }
        }
    }

    fn to(&self, id: ConnId, v: Value) -> Action {
        Action::Deliver(id, v.to_string().into())
    }
}

/// How often the I/O side pings every connection (keeps proxies and NATs from dropping idle
/// ones, and finds dead ones).
pub const PING_INTERVAL: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests;
