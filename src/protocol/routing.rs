// SPDX-License-Identifier: MPL-2.0

//! The two routing models of spec §1.3.
//!
//! * **Official**: the server rewrites `UUID` to the sender. Outbound `UUID` is the destination,
//!   inbound `UUID` the source; no `from`.
//! * **Fan-out**: the server forwards verbatim, so the client adds `from` (and `roomid` when in
//!   a room) to everything it sends and filters what it receives itself.
//!
//! [`Router`] turns both into one view: outbound objects get what the server needs, and inbound
//! objects come out with `UUID` = source, or are dropped.

use serde_json::Value;

use super::message::{Object, get_string};

/// Which routing the handshake server does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RoutingMode {
    /// The official server (and our own `vdoninja-server` without `--fanout`).
    #[default]
    Official,
    /// Self-hosted fan-out servers.
    Fanout,
}

/// Hosts that speak the official model (§1.1).
const OFFICIAL_HOSTS: &[&str] = &["wss.vdo.ninja", "apibackup.vdo.ninja", "proxywss.rtc.ninja"];

impl RoutingMode {
    /// The `auto` choice: official routing for `*.vdo.ninja`/`*.rtc.ninja` handshake hosts,
    /// fan-out for every other host.
    pub fn for_server_host(host: &str) -> Self {
        let host = host.to_ascii_lowercase();
        if OFFICIAL_HOSTS.contains(&host.as_str())
            || host.ends_with(".vdo.ninja")
            || host.ends_with(".rtc.ninja")
        {
            RoutingMode::Official
        } else {
            RoutingMode::Fanout
        }
    }
}

/// Why an inbound message was dropped by the fan-out filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// Our own message, echoed.
    FromSelf,
    /// Addressed to somebody else.
    NotForUs,
    /// From another room.
    OtherRoom,
    /// A peer message whose source is unknown.
    NoSource,
}

/// Applies the routing model to messages in both directions.
#[derive(Debug, Clone)]
pub struct Router {
    mode: RoutingMode,
    /// Our client UUID (fan-out only; the official server never tells us ours).
    my_uuid: String,
    /// Hashed room while in one.
    room: Option<String>,
}

impl Router {
    pub fn new(mode: RoutingMode, my_uuid: impl Into<String>) -> Self {
        Self {
            mode,
            my_uuid: my_uuid.into(),
            room: None,
        }
    }

    pub fn mode(&self) -> RoutingMode {
        self.mode
    }

    pub fn my_uuid(&self) -> &str {
        &self.my_uuid
    }

    /// Sets the (hashed) room we are in.
    pub fn set_room(&mut self, room: Option<String>) {
        self.room = room;
    }

    /// Prepares an object for the server. `dest` is the destination UUID of a peer message.
    pub fn outbound(&self, mut obj: Object, dest: Option<&str>) -> String {
        if let Some(dest) = dest {
            obj.insert("UUID".into(), Value::String(dest.to_string()));
        }
        if self.mode == RoutingMode::Fanout {
            obj.insert("from".into(), Value::String(self.my_uuid.clone()));
            if let Some(room) = &self.room
                && !obj.contains_key("roomid")
            {
                obj.insert("roomid".into(), Value::String(room.clone()));
            }
        }
        Value::Object(obj).to_string()
    }

    /// Normalises an inbound object so that `UUID` names its source, or drops it.
    /// Messages with a `request` and no source (server replies) pass through.
    pub fn inbound(&self, mut obj: Object) -> Result<Object, Drop> {
        if self.mode == RoutingMode::Official {
            return Ok(obj);
        }
        let from = get_string(&obj, &["from"]);
        if from.as_deref() == Some(self.my_uuid.as_str()) {
            return Err(Drop::FromSelf);
        }
        if let Some(dest) = get_string(&obj, &["UUID", "uuid"])
            && dest != self.my_uuid
        {
            return Err(Drop::NotForUs);
        }
        if let Some(room) = get_string(&obj, &["roomid"])
            && self.room.as_deref() != Some(room.as_str())
        {
            return Err(Drop::OtherRoom);
        }
        obj.remove("uuid");
        match from {
            Some(from) => {
                obj.insert("UUID".into(), Value::String(from));
                Ok(obj)
            }
            None if obj.contains_key("request") || obj.contains_key("error") => {
                obj.remove("UUID");
                Ok(obj)
            }
            None => Err(Drop::NoSource),
        }
    }
}

/// The web app's alphabet for generated IDs (no look-alike characters).
const ID_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";

/// A fan-out client UUID: 20 characters, like the web app's (§2.6).
pub fn random_client_uuid() -> String {
    random_id(20)
}

/// A peer-connection session: 10 characters, like the web app's (§2.6).
pub fn random_session() -> String {
    random_id(10)
}

fn random_id(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn auto_mode() {
        assert_eq!(
            RoutingMode::for_server_host("wss.vdo.ninja"),
            RoutingMode::Official
        );
        assert_eq!(
            RoutingMode::for_server_host("apibackup.vdo.ninja"),
            RoutingMode::Official
        );
        assert_eq!(
            RoutingMode::for_server_host("127.0.0.1"),
            RoutingMode::Fanout
        );
        assert_eq!(
            RoutingMode::for_server_host("example.com"),
            RoutingMode::Fanout
        );
    }

    #[test]
    fn official_passes_through() {
        let r = Router::new(RoutingMode::Official, "me");
        let out = r.outbound(obj(json!({"session":"s"})), Some("peer"));
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v, json!({"session":"s","UUID":"peer"}));
        let inb = r.inbound(obj(json!({"UUID":"src","x":1}))).unwrap();
        assert_eq!(inb["UUID"], json!("src"));
    }

    #[test]
    fn fanout_rules() {
        let mut r = Router::new(RoutingMode::Fanout, "me");
        r.set_room(Some("R".into()));
        let out: Value =
            serde_json::from_str(&r.outbound(obj(json!({"request":"play"})), None)).unwrap();
        assert_eq!(out, json!({"request":"play","from":"me","roomid":"R"}));

        assert_eq!(r.inbound(obj(json!({"from":"me"}))), Err(Drop::FromSelf));
        assert_eq!(
            r.inbound(obj(json!({"from":"a","UUID":"b"}))),
            Err(Drop::NotForUs)
        );
        assert_eq!(
            r.inbound(obj(json!({"from":"a","roomid":"other"}))),
            Err(Drop::OtherRoom)
        );
        assert_eq!(r.inbound(obj(json!({"bye":true}))), Err(Drop::NoSource));
        let m = r
            .inbound(obj(json!({"from":"a","UUID":"me","roomid":"R","bye":true})))
            .unwrap();
        assert_eq!(m["UUID"], json!("a"));
        let m = r
            .inbound(obj(json!({"error":"uuid already in use"})))
            .unwrap();
        assert!(m.contains_key("error"));
    }

    #[test]
    fn random_ids() {
        assert_eq!(random_client_uuid().len(), 20);
        assert_eq!(random_session().len(), 10);
        assert_ne!(random_session(), random_session());
    }
}
