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

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::protocol::message::{Object, get_string, parse_object};

/// A connection handle, chosen by the I/O side.
pub type ConnId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerMode {
    #[default]
    Official,
    Fanout,
}

/// Per-connection message rate limit: a token bucket.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Messages per second, sustained.
    pub per_second: f64,
    /// Burst size.
    pub burst: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: 100.0,
            burst: 400.0,
        }
    }
}

/// What the hub wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this text to that connection.
    Deliver(ConnId, String),
    /// Something was dropped or refused: log it.
    Log(String),
}

#[derive(Debug)]
struct Conn {
    /// Official: assigned by us. Fan-out: bound from the first `from`.
    uuid: Option<String>,
    stream: Option<String>,
    room: Option<String>,
    tokens: f64,
    refilled: Instant,
    dropped: u64,
}

#[derive(Debug, Default)]
pub struct Hub {
    mode: ServerMode,
    rate: RateLimit,
    conns: HashMap<ConnId, Conn>,
    /// Official: wire stream ID → publisher connection.
    streams: HashMap<String, ConnId>,
    /// Official: wire stream ID → viewers waiting for it to be seeded.
    waiting: HashMap<String, HashSet<ConnId>>,
    next_uuid: u64,
}

impl Hub {
    pub fn new(mode: ServerMode, rate: RateLimit) -> Self {
        Self {
            mode,
            rate,
            ..Default::default()
        }
    }

    pub fn mode(&self) -> ServerMode {
        self.mode
    }

    /// A new connection. Returns its UUID in the official model.
    pub fn connect(&mut self, id: ConnId, now: Instant) -> Option<String> {
        let uuid = (self.mode == ServerMode::Official).then(|| {
            self.next_uuid += 1;
            // Unique and opaque: a counter plus randomness.
            format!(
                "{:x}{}",
                self.next_uuid,
                crate::protocol::routing::random_client_uuid()
            )
        });
        self.conns.insert(
            id,
            Conn {
                uuid: uuid.clone(),
                stream: None,
                room: None,
                tokens: self.rate.burst,
                refilled: now,
                dropped: 0,
            },
        );
        uuid
    }

    /// The UUID of a connection (official: assigned; fan-out: once bound).
    pub fn uuid_of(&self, id: ConnId) -> Option<&str> {
        self.conns.get(&id).and_then(|c| c.uuid.as_deref())
    }

    /// A connection closed: everything it held goes.
    pub fn disconnect(&mut self, id: ConnId) {
        if let Some(c) = self.conns.remove(&id)
            && let Some(s) = c.stream
            && self.streams.get(&s) == Some(&id)
        {
            self.streams.remove(&s);
        }
        for viewers in self.waiting.values_mut() {
            viewers.remove(&id);
        }
        self.waiting.retain(|_, v| !v.is_empty());
    }

    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// One text frame from connection `id`.
    pub fn message(&mut self, id: ConnId, text: &str, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(conn) = self.conns.get_mut(&id) else {
            return out;
        };
        // Token bucket.
        let elapsed = now.saturating_duration_since(conn.refilled).as_secs_f64();
        conn.tokens = (conn.tokens + elapsed * self.rate.per_second).min(self.rate.burst);
        conn.refilled = now;
        if conn.tokens < 1.0 {
            conn.dropped += 1;
            if conn.dropped.is_power_of_two() {
                out.push(Action::Log(format!(
                    "connection {id}: rate limit exceeded, {} message(s) dropped",
                    conn.dropped
                )));
            }
            return out;
        }
        conn.tokens -= 1.0;
        let obj = match parse_object(text) {
            Ok(o) => o,
            Err(e) => {
                out.push(Action::Log(format!("connection {id}: dropped: {e}")));
                return out;
            }
        };
        match self.mode {
            ServerMode::Official => self.official(id, obj, &mut out),
            ServerMode::Fanout => self.fanout(id, obj, &mut out),
        }
        out
    }

    fn official(&mut self, id: ConnId, mut obj: Object, out: &mut Vec<Action>) {
        let Some(me) = self.uuid_of(id).map(str::to_string) else {
            return;
        };
        let Some(request) = get_string(&obj, &["request"]) else {
            // A peer message: relay to its destination with UUID = sender.
            let Some(dest) = get_string(&obj, &["UUID"]) else {
                out.push(Action::Log(format!(
                    "connection {id}: peer message without UUID dropped"
                )));
                return;
            };
            let Some(dest_id) = self.conn_by_uuid(&dest) else {
                out.push(Action::Log(format!(
                    "connection {id}: no connection {dest:?}; dropped"
                )));
                return;
            };
            obj.insert("UUID".into(), Value::String(me));
            out.push(Action::Deliver(dest_id, Value::Object(obj).to_string()));
            return;
        };
        let stream = get_string(&obj, &["streamID"]);
        match request.as_str() {
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
                if let Some(conn) = self.conns.get_mut(&id)
                    && let Some(old) = conn.stream.replace(stream.clone())
                    && old != stream
                {
                    self.streams.remove(&old);
                }
                self.streams.insert(stream.clone(), id);
                let room = self.conns[&id].room.clone();
                if let Some(room) = room {
                    for other in self.room_members(&room, id) {
                        out.push(self.to(
                            other,
                            json!({"request":"videoaddedtoroom","UUID":me,"streamID":stream}),
                        ));
                    }
                }
                for viewer in self.waiting.remove(&stream).unwrap_or_default() {
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
                    None if self.conns[&id].room.is_none() => {
                        self.waiting.entry(stream).or_default().insert(id);
                    }
                    None => {}
                }
            }
            "joinroom" => {
                let Some(room) = get_string(&obj, &["roomid"]) else {
                    return;
                };
                let list: Vec<Value> = self
                    .room_members(&room, id)
                    .into_iter()
                    .filter_map(|o| {
                        let c = &self.conns[&o];
                        let mut m = json!({"UUID": c.uuid.as_deref()?});
                        if let Some(s) = &c.stream {
                            m["streamID"] = json!(s);
                        }
                        Some(m)
                    })
                    .collect();
                let my_stream = self.conns[&id].stream.clone();
                for other in self.room_members(&room, id) {
                    let mut j = json!({"request":"someonejoined","UUID":me});
                    if let Some(s) = &my_stream {
                        j["streamID"] = json!(s);
                    }
                    out.push(self.to(other, j));
                }
                if let Some(c) = self.conns.get_mut(&id) {
                    c.room = Some(room);
                }
                out.push(self.to(id, json!({"request":"listing","list":list})));
            }
            other => out.push(Action::Log(format!(
                "connection {id}: request {other:?} ignored"
            ))),
        }
    }

    fn fanout(&mut self, id: ConnId, obj: Object, out: &mut Vec<Action>) {
        let Some(from) = get_string(&obj, &["from"]) else {
            out.push(self.to(id, json!({"error":"missing from field"})));
            return;
        };
        let bound = self.conns[&id].uuid.clone();
        match bound {
            Some(b) if b != from => {
                out.push(Action::Log(format!(
                    "connection {id}: `from` changed; dropped"
                )));
                return;
            }
            Some(_) => {}
            None => {
                if self.conn_by_uuid(&from).is_some() {
                    out.push(self.to(id, json!({"error":"uuid already in use"})));
                    return;
                }
                if let Some(c) = self.conns.get_mut(&id) {
                    c.uuid = Some(from.clone());
                }
            }
        }
        let request = get_string(&obj, &["request"]);
        let stream = get_string(&obj, &["streamID"]);
        if matches!(request.as_deref(), Some("seed") | Some("joinroom"))
            && let Some(s) = &stream
        {
            let current = self.conns[&id].stream.clone();
            if current.as_ref().is_some_and(|c| c != s) {
                out.push(self.to(id, json!({"error":"can't change sid"})));
                return;
            }
            let taken = self
                .conns
                .iter()
                .any(|(o, c)| *o != id && c.stream.as_deref() == Some(s.as_str()));
            if taken {
                out.push(self.to(id, json!({"error":"sid already in use"})));
                return;
            }
            if let Some(c) = self.conns.get_mut(&id) {
                c.stream = Some(s.clone());
            }
        }
        if request.as_deref() == Some("joinroom")
            && let Some(room) = get_string(&obj, &["roomid"])
            && let Some(c) = self.conns.get_mut(&id)
        {
            c.room = Some(room);
        }
        let dest = get_string(&obj, &["UUID"]);
        let sender_room = self.conns[&id].room.clone();
        let text = Value::Object(obj).to_string();
        let mut targets: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(o, c)| {
                if **o == id {
                    return false;
                }
                if let Some(d) = &dest
                    && c.uuid.as_deref() != Some(d.as_str())
                {
                    return false;
                }
                if sender_room.is_some() != c.room.is_some() || sender_room != c.room {
                    return false;
                }
                if request.as_deref() == Some("play") && stream.is_some() && c.stream != stream {
                    return false;
                }
                true
            })
            .map(|(o, _)| *o)
            .collect();
        targets.sort_unstable();
        for t in targets {
            out.push(Action::Deliver(t, text.clone()));
        }
    }

    fn conn_by_uuid(&self, uuid: &str) -> Option<ConnId> {
        self.conns
            .iter()
            .find(|(_, c)| c.uuid.as_deref() == Some(uuid))
            .map(|(id, _)| *id)
    }

    /// Members of `room` other than `except`, in a stable order.
    fn room_members(&self, room: &str, except: ConnId) -> Vec<ConnId> {
        let mut v: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(id, c)| **id != except && c.room.as_deref() == Some(room))
            .map(|(id, _)| *id)
            .collect();
        v.sort_unstable();
        v
    }

    fn to(&self, id: ConnId, v: Value) -> Action {
        Action::Deliver(id, v.to_string())
    }
}

/// How long an idle connection may stay silent before the I/O side pings it.
pub const PING_INTERVAL: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests;
