// SPDX-License-Identifier: MPL-2.0

//! The properties both elements share (design §2): server, routing, room, password, TLS, ICE.

use gst::glib;
use gst::prelude::*;

use crate::protocol::crypto::{Crypto, DEFAULT_SALT};
use crate::protocol::machine::Config;
use crate::protocol::routing::RoutingMode;
use crate::protocol::turn::{DEFAULT_STUN, TurnServer};
use crate::signaling::client::ClientConfig;

pub const DEFAULT_SERVER: &str = "wss://wss.vdo.ninja:443";

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstVdoNinjaSignalingMode")]
pub enum SignalingMode {
    #[default]
    #[enum_value(
        name = "Auto: official routing for *.vdo.ninja, fan-out otherwise",
        nick = "auto"
    )]
    Auto,
    #[enum_value(
        name = "Official: the server routes by stream and UUID",
        nick = "official"
    )]
    Official,
    #[enum_value(
        name = "Fan-out: the server relays to everyone, clients filter",
        nick = "fanout"
    )]
    Fanout,
}

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstVdoNinjaIceTransportPolicy")]
pub enum IceTransportPolicy {
    #[default]
    #[enum_value(
        name = "All: host, server-reflexive and relay candidates",
        nick = "all"
    )]
    All,
    #[enum_value(name = "Relay: TURN relay candidates only", nick = "relay")]
    Relay,
}

/// Values of the shared properties.
#[derive(Debug, Clone)]
pub struct CommonSettings {
    pub server: String,
    pub signaling_mode: SignalingMode,
    pub room: Option<String>,
    /// `None`: VDO.Ninja's default password.
    pub password: Option<String>,
    pub salt: String,
    pub insecure_tls: bool,
    pub tls_ca_file: Option<String>,
    pub label: Option<String>,
    pub stun_server: Option<String>,
    pub turn_servers: Option<String>,
    pub auto_turn: bool,
    pub ice_transport_policy: IceTransportPolicy,
    pub local_address: Option<String>,
}

impl Default for CommonSettings {
    fn default() -> Self {
        Self {
            server: DEFAULT_SERVER.into(),
            signaling_mode: SignalingMode::Auto,
            room: None,
            password: None,
            salt: DEFAULT_SALT.into(),
            insecure_tls: false,
            tls_ca_file: None,
            label: None,
            stun_server: Some(DEFAULT_STUN.into()),
            turn_servers: None,
            auto_turn: true,
            ice_transport_policy: IceTransportPolicy::All,
            local_address: None,
        }
    }
}

/// The ICE configuration a peer's webrtcbin gets.
#[derive(Debug, Clone, Default)]
pub struct IceConfig {
    pub stun: Option<String>,
    pub turn: Vec<TurnServer>,
    pub relay_only: bool,
    /// Host candidates only from this address (opt-in; libnice ignores loopback otherwise).
    pub local_address: Option<String>,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

impl CommonSettings {
    /// The shared property specs, in the order `gst-inspect-1.0` shows them.
    pub fn properties() -> Vec<glib::ParamSpec> {
        vec![
            glib::ParamSpecString::builder("server")
                .nick("Handshake server")
                .blurb("VDO.Ninja handshake (signaling) server URL: wss://host[:port][/path] or ws://… for a local server")
                .default_value(Some(DEFAULT_SERVER))
                .mutable_ready()
                .build(),
            glib::ParamSpecEnum::builder_with_default("signaling-mode", SignalingMode::Auto)
                .nick("Signaling mode")
                .blurb("Message routing of the server: official VDO.Ninja routing, or a self-hosted fan-out server")
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("room")
                .nick("Room")
                .blurb("Room name (hashed with the password before it is sent)")
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("password")
                .nick("Password")
                .blurb("Password for hashing IDs and end-to-end encrypting SDP/ICE; unset or empty = VDO.Ninja's default; \"false\", \"0\", \"off\" or \"no\" disable it")
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("salt")
                .nick("Salt")
                .blurb("Salt for hashing and encryption (the web app's host name)")
                .default_value(Some(DEFAULT_SALT))
                .mutable_ready()
                .build(),
            glib::ParamSpecBoolean::builder("insecure-tls")
                .nick("Insecure TLS")
                .blurb("Do not verify the server's TLS certificate (wss:// only; for testing)")
                .default_value(false)
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("tls-ca-file")
                .nick("TLS CA file")
                .blurb("PEM file of extra trusted certificate authorities for wss://")
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("label")
                .nick("Label")
                .blurb("Our display label, sent to peers in the 'info' message")
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("stun-server")
                .nick("STUN server")
                .blurb("STUN server as stun://host:port; empty for none")
                .default_value(Some(DEFAULT_STUN))
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("turn-servers")
                .nick("TURN servers")
                .blurb("TURN servers, comma-separated, as turn(s)://user:pass@host:port; setting any turns auto-turn off")
                .mutable_ready()
                .build(),
            glib::ParamSpecBoolean::builder("auto-turn")
                .nick("Automatic TURN")
                .blurb("Use VDO.Ninja's TURN servers (fetched list or built-in table, chosen by timezone); ignored when turn-servers is set")
                .default_value(true)
                .mutable_ready()
                .build(),
            glib::ParamSpecEnum::builder_with_default("ice-transport-policy", IceTransportPolicy::All)
                .nick("ICE transport policy")
                .blurb("Which ICE candidates to use: all, or TURN relay only")
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("local-address")
                .nick("Local address")
                .blurb("Gather host candidates only on this IP address (e.g. 127.0.0.1 for loopback tests, which libnice skips otherwise); unset = all interfaces")
                .mutable_ready()
                .build(),
        ]
    }

    /// Sets a shared property; `false` if `name` is not one of them.
    pub fn set(&mut self, name: &str, value: &glib::Value) -> bool {
        let string = || value.get::<Option<String>>().ok().flatten();
        match name {
            "server" => self.server = string().unwrap_or_else(|| DEFAULT_SERVER.into()),
            "signaling-mode" => self.signaling_mode = value.get().unwrap_or_default(),
            "room" => self.room = non_empty(string()),
            "password" => self.password = string(),
            "salt" => self.salt = string().unwrap_or_else(|| DEFAULT_SALT.into()),
            "insecure-tls" => self.insecure_tls = value.get().unwrap_or(false),
            "tls-ca-file" => self.tls_ca_file = non_empty(string()),
            "label" => self.label = non_empty(string()),
            "stun-server" => self.stun_server = non_empty(string()),
            "turn-servers" => self.turn_servers = non_empty(string()),
            "auto-turn" => self.auto_turn = value.get().unwrap_or(true),
            "ice-transport-policy" => self.ice_transport_policy = value.get().unwrap_or_default(),
            "local-address" => self.local_address = non_empty(string()),
            _ => return false,
        }
        true
    }

    /// Reads a shared property; `None` if `name` is not one of them.
    pub fn get(&self, name: &str) -> Option<glib::Value> {
        Some(match name {
            "server" => self.server.to_value(),
            "signaling-mode" => self.signaling_mode.to_value(),
            "room" => self.room.to_value(),
            "password" => self.password.to_value(),
            "salt" => self.salt.to_value(),
            "insecure-tls" => self.insecure_tls.to_value(),
            "tls-ca-file" => self.tls_ca_file.to_value(),
            "label" => self.label.to_value(),
            "stun-server" => self.stun_server.to_value(),
            "turn-servers" => self.turn_servers.to_value(),
            "auto-turn" => self.auto_turn.to_value(),
            "ice-transport-policy" => self.ice_transport_policy.to_value(),
            "local-address" => self.local_address.to_value(),
            _ => return None,
        })
    }

    /// The routing model for the configured server.
    pub fn routing_mode(&self) -> RoutingMode {
        match self.signaling_mode {
            SignalingMode::Official => RoutingMode::Official,
            SignalingMode::Fanout => RoutingMode::Fanout,
            SignalingMode::Auto => {
                let url = crate::signaling::client::normalize_url(&self.server).ok();
                let host = url.as_ref().and_then(|u| u.host_str()).unwrap_or_default();
                RoutingMode::for_server_host(host)
            }
        }
    }

    /// The machine configuration for these settings (role-specific fields left default).
    pub fn machine_config(&self) -> Config {
        Config {
            mode: self.routing_mode(),
            crypto: Crypto::new(self.password.as_deref(), &self.salt),
            room: self.room.clone(),
            label: self.label.clone(),
            ..Config::default()
        }
    }

    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(self.server.clone());
        c.insecure_tls = self.insecure_tls;
        c.tls_ca_file = self.tls_ca_file.clone().map(Into::into);
        c
    }

    /// Explicit TURN servers, or an error naming the bad entry (the credential never appears).
    pub fn explicit_turn(&self) -> Result<Vec<TurnServer>, String> {
        let Some(list) = &self.turn_servers else {
            return Ok(Vec::new());
        };
        list.split([',', ' ', '\n'])
            .filter(|s| !s.is_empty())
            .enumerate()
            .map(|(i, s)| {
                TurnServer::parse(s, None, None)
                    .map_err(|e| format!("turn-servers entry {}: {e}", i + 1))
            })
            .collect()
    }

    /// The ICE configuration without automatic TURN (that one is fetched asynchronously).
    pub fn base_ice_config(&self) -> Result<IceConfig, String> {
        Ok(IceConfig {
            stun: self.stun_server.clone(),
            turn: self.explicit_turn()?,
            relay_only: self.ice_transport_policy == IceTransportPolicy::Relay,
            local_address: self.local_address.clone(),
        })
    }

    /// Whether the VDO.Ninja TURN list should be fetched.
    pub fn wants_auto_turn(&self) -> bool {
        self.auto_turn && self.turn_servers.is_none()
    }
}
