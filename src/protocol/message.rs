// SPDX-License-Identifier: MPL-2.0

//! The messages of spec §2 and §6.4, in both directions.
//!
//! Inbound parsing is lenient (§8.2): field aliases (`uuid`/`from`, `streamId`, `mid`/`sdpMid`),
//! numbers where strings are expected and the other way round, `session` null or absent, a
//! single `candidate` or bundled `candidates`, plain-text or encrypted payloads. Unknown fields
//! and unknown messages are ignored. Only text that is not a JSON object is an error.
//!
//! Outbound messages are serde types serialised with the canonical field names.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::crypto::{Crypto, DecryptError, to_ascii_json};

/// A JSON object as it came off the wire.
pub type Object = Map<String, Value>;

/// Inbound text larger than this is refused before parsing (the web app itself never sends
/// more than 35 000 characters, §1.2).
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("message of {0} bytes exceeds the {MAX_MESSAGE_LEN}-byte limit")]
    TooLarge(usize),
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a JSON object")]
    NotObject,
}

/// Parses one WebSocket or data-channel text frame.
pub fn parse_object(text: &str) -> Result<Object, ParseError> {
    if text.len() > MAX_MESSAGE_LEN {
        return Err(ParseError::TooLarge(text.len()));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(ParseError::NotObject),
        Err(e) => Err(ParseError::NotJson(e.to_string())),
    }
}

/// A string field, accepting numbers too; the first of `keys` present wins. Empty strings
/// count as absent.
pub fn get_string(obj: &Object, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match obj.get(*k)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// A flag: `true`, non-zero numbers and the strings `"true"`/`"1"` count as set.
pub fn get_flag(obj: &Object, key: &str) -> bool {
    value_as_bool(obj.get(key)).unwrap_or(false)
}

fn value_as_bool(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => Some(n.as_f64().is_some_and(|f| f != 0.0)),
        Value::String(s) => match s.as_str() {
            "true" | "1" => Some(true),
            "false" | "0" | "" => Some(false),
            _ => None,
        },
        Value::Null => None,
        _ => Some(true),
    }
}

fn get_int(obj: &Object, key: &str) -> Option<i64> {
    match obj.get(key)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Which side sent a candidate message (§2.4): `local` from the publisher, `remote` from the viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Local,
    Remote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpType {
    Offer,
    Answer,
}

/// An RTCSessionDescription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDescription {
    #[serde(rename = "type")]
    pub kind: SdpType,
    pub sdp: String,
}

/// An RTCIceCandidateInit. We always send both `sdpMid` and `sdpMLineIndex`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(rename = "sdpMid", skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(rename = "sdpMLineIndex", skip_serializing_if = "Option::is_none")]
    pub sdp_mline_index: Option<u32>,
}

impl IceCandidate {
    /// Lenient: `mid`/`sdpMid` as string or number, `sdpMLineIndex` as number or string. An
    /// empty candidate ("end of candidates") yields `None`.
    pub fn from_value(v: &Value) -> Option<Self> {
        let obj = v.as_object()?;
        let candidate = get_string(obj, &["candidate"])?;
        let sdp_mid = get_string(obj, &["sdpMid", "mid"]);
        let sdp_mline_index = get_int(obj, "sdpMLineIndex").and_then(|i| u32::try_from(i).ok());
        if sdp_mid.is_none() && sdp_mline_index.is_none() {
            // Without either nobody can tell which m-line it belongs to; with bundle it is the first.
            return Some(Self {
                candidate,
                sdp_mid: None,
                sdp_mline_index: Some(0),
            });
        }
        Some(Self {
            candidate,
            sdp_mid,
            sdp_mline_index,
        })
    }
}

/// A payload that may be encrypted (§3.4): `description`, `candidate` or `candidates`.
#[derive(Debug, Clone, PartialEq)]
pub enum Sealed {
    Plain(Value),
    Encrypted { data: String, vector: String },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    #[error("cannot decrypt: {0}")]
    Decrypt(#[from] DecryptError),
    #[error("decrypted payload is not JSON (wrong password or salt?)")]
    NotJson,
    #[error("payload has an unexpected shape")]
    Shape,
}

impl Sealed {
    fn from_field(obj: &Object, key: &str) -> Option<Self> {
        let v = obj.get(key)?;
        match (v, obj.get("vector").and_then(Value::as_str)) {
            (Value::Null, _) => None,
            (Value::String(data), Some(vector)) => Some(Sealed::Encrypted {
                data: data.clone(),
                vector: vector.to_string(),
            }),
            // A string without `vector` may be JSON text someone forgot to parse.
            (Value::String(s), None) => Some(Sealed::Plain(
                serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
            )),
            _ => Some(Sealed::Plain(v.clone())),
        }
    }

    pub fn is_encrypted(&self) -> bool {
        matches!(self, Sealed::Encrypted { .. })
    }

    /// The JSON value, decrypting if needed.
    pub fn open(&self, crypto: &Crypto) -> Result<Value, OpenError> {
        match self {
            Sealed::Plain(v) => Ok(v.clone()),
            Sealed::Encrypted { data, vector } => {
                let text = crypto.decrypt(data, vector)?;
                serde_json::from_str(&text).map_err(|_| OpenError::NotJson)
            }
        }
    }

    /// Seals a value: encrypted when `crypto` has a password, plain otherwise.
    pub fn seal(value: &Value, crypto: &Crypto) -> Self {
        match crypto.encrypt(&to_ascii_json(value)) {
            Some((data, vector)) => Sealed::Encrypted { data, vector },
            None => Sealed::Plain(value.clone()),
        }
    }

    /// Writes the payload into `obj` under `key` (and `vector` when encrypted).
    pub fn write_into(self, obj: &mut Object, key: &str) {
        match self {
            Sealed::Plain(v) => {
                obj.insert(key.into(), v);
            }
            Sealed::Encrypted { data, vector } => {
                obj.insert(key.into(), Value::String(data));
                obj.insert("vector".into(), Value::String(vector));
            }
        }
    }
}

/// Opens a `description` payload.
pub fn open_description(s: &Sealed, crypto: &Crypto) -> Result<SessionDescription, OpenError> {
    serde_json::from_value(s.open(crypto)?).map_err(|_| OpenError::Shape)
}

/// Opens a `candidate` (one object) or `candidates` (array) payload.
pub fn open_candidates(s: &Sealed, crypto: &Crypto) -> Result<Vec<IceCandidate>, OpenError> {
    match s.open(crypto)? {
        Value::Array(items) => Ok(items.iter().filter_map(IceCandidate::from_value).collect()),
        v @ Value::Object(_) => Ok(IceCandidate::from_value(&v).into_iter().collect()),
        _ => Err(OpenError::Shape),
    }
}

/// One member of a room `listing` (§2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub uuid: String,
    /// Wire form; present only for members that have seeded.
    pub stream_id: Option<String>,
}

/// The level of a server `alert`/`error`/`warn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertLevel {
    Alert,
    Error,
    Warn,
}

/// A message with a `request` field, or a fan-out server's `error` (§2.3, §1.3B).
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    /// `offerSDP` (and `sendoffer`): the viewer `uuid` wants our stream.
    OfferRequest {
        uuid: String,
        session: Option<String>,
    },
    /// `listing` (or `transferred`, which lists a new room).
    Listing {
        members: Vec<Member>,
        director: Option<String>,
        transferred: bool,
    },
    SomeoneJoined {
        uuid: String,
        stream_id: Option<String>,
    },
    VideoAdded {
        uuid: String,
        stream_id: String,
    },
    VideoRemoved {
        uuid: Option<String>,
        stream_id: Option<String>,
    },
    Alert {
        level: AlertLevel,
        message: String,
        code: Option<String>,
    },
    /// `cleanup`: close every connection with `uuid`.
    Cleanup {
        uuid: String,
    },
    /// Fan-out servers relay the other clients' commands verbatim.
    Seed {
        uuid: Option<String>,
        stream_id: Option<String>,
    },
    Play {
        uuid: Option<String>,
        stream_id: Option<String>,
    },
    JoinRoom {
        uuid: Option<String>,
        stream_id: Option<String>,
    },
    /// Any other request (`ping`, obsolete `roomclaimed`, …): ignored.
    Other(String),
}

impl ServerMessage {
    /// Classifies an object with a `request` field (or a fan-out `error`). `None` for peer
    /// messages.
    pub fn from_object(obj: &Object) -> Option<Self> {
        let uuid = get_string(obj, &["UUID", "uuid", "from"]);
        let stream_id = get_string(obj, &["streamID", "streamId", "streamid"]);
        let Some(request) = get_string(obj, &["request"]) else {
            // Fan-out servers answer with {"error": "..."} and no request.
            return obj
                .get("error")
                .and_then(Value::as_str)
                .map(|m| ServerMessage::Alert {
                    level: AlertLevel::Error,
                    message: m.to_string(),
                    code: None,
                });
        };
        let message = || get_string(obj, &["message", "msg"]).unwrap_or_default();
        Some(match request.as_str() {
            "offerSDP" | "sendoffer" => match uuid {
                Some(uuid) => ServerMessage::OfferRequest {
                    uuid,
                    session: get_string(obj, &["session"]),
                },
                None => ServerMessage::Other(request),
            },
            "listing" | "transferred" => ServerMessage::Listing {
                members: parse_members(obj.get("list")),
                director: get_string(obj, &["director"]),
                transferred: request == "transferred",
            },
            "someonejoined" => match uuid {
                Some(uuid) => ServerMessage::SomeoneJoined { uuid, stream_id },
                None => ServerMessage::Other(request),
            },
            "videoaddedtoroom" => match (uuid, stream_id) {
                (Some(uuid), Some(stream_id)) => ServerMessage::VideoAdded { uuid, stream_id },
                _ => ServerMessage::Other(request),
            },
            "videoremovedfromroom" => ServerMessage::VideoRemoved { uuid, stream_id },
            "alert" | "error" | "warn" => ServerMessage::Alert {
                level: match request.as_str() {
                    "alert" => AlertLevel::Alert,
                    "error" => AlertLevel::Error,
                    _ => AlertLevel::Warn,
                },
                message: message(),
                code: get_string(obj, &["code"]),
            },
            "cleanup" => match uuid {
                Some(uuid) => ServerMessage::Cleanup { uuid },
                None => ServerMessage::Other(request),
            },
            "seed" => ServerMessage::Seed { uuid, stream_id },
            "play" => ServerMessage::Play { uuid, stream_id },
            "joinroom" => ServerMessage::JoinRoom { uuid, stream_id },
            _ => ServerMessage::Other(request),
        })
    }
}

fn parse_members(list: Option<&Value>) -> Vec<Member> {
    let Some(Value::Array(items)) = list else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|v| match v {
            // Some servers list bare UUIDs (§1.3C).
            Value::String(uuid) if !uuid.is_empty() => Some(Member {
                uuid: uuid.clone(),
                stream_id: None,
            }),
            Value::Object(o) => Some(Member {
                uuid: get_string(o, &["UUID", "uuid"])?,
                stream_id: get_string(o, &["streamID", "streamId", "streamid"]),
            }),
            _ => None,
        })
        .collect()
}

/// What a viewer asks of a publisher on data-channel open (§6.4), or later to change it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaRequest {
    pub audio: Option<bool>,
    pub video: Option<bool>,
}

/// A peer-to-peer message (no `request` field), on the HSS or on the data channel (§2.4, §6.4).
/// Several keys may be combined in one message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerMessage {
    pub session: Option<String>,
    /// As on the wire: hashed on the HSS, raw on the data channel.
    pub stream_id: Option<String>,
    pub direction: Option<Direction>,
    pub description: Option<Sealed>,
    /// From `candidates` (bundle) or `candidate` (single).
    pub candidates: Option<Sealed>,
    pub bye: bool,
    pub ice_restart_request: bool,
    pub ping: Option<Value>,
    pub pong: Option<Value>,
    pub keyframe: bool,
    /// kbps; negative = back to the publisher's own target.
    pub bitrate: Option<i64>,
    pub audio_bitrate: Option<i64>,
    pub request: Option<MediaRequest>,
    pub info: Option<Object>,
    /// `chat` and `pipe` (§6.4).
    pub app: Vec<crate::protocol::machine::app::AppPayload>,
}

impl PeerMessage {
    pub fn from_object(obj: &Object) -> Self {
        let request =
            (obj.contains_key("audio") || obj.contains_key("video")).then(|| MediaRequest {
                audio: value_as_bool(obj.get("audio")),
                video: value_as_bool(obj.get("video")),
            });
        PeerMessage {
            session: get_string(obj, &["session"]),
            stream_id: get_string(obj, &["streamID", "streamId", "streamid"]),
            direction: match obj.get("type").and_then(Value::as_str) {
                Some("local") => Some(Direction::Local),
                Some("remote") => Some(Direction::Remote),
                _ => None,
            },
            description: Sealed::from_field(obj, "description"),
            candidates: Sealed::from_field(obj, "candidates")
                .or_else(|| Sealed::from_field(obj, "candidate")),
            bye: get_flag(obj, "bye") || (get_flag(obj, "hangup") && !obj.contains_key("remote")),
            ice_restart_request: get_flag(obj, "iceRestartRequest"),
            ping: obj.get("ping").filter(|v| !v.is_null()).cloned(),
            pong: obj.get("pong").filter(|v| !v.is_null()).cloned(),
            keyframe: get_flag(obj, "keyframe"),
            bitrate: get_int(obj, "bitrate"),
            audio_bitrate: get_int(obj, "audioBitrate"),
            request,
            info: obj.get("info").and_then(Value::as_object).cloned(),
            app: crate::protocol::machine::app::AppPayload::from_object(obj),
        }
    }

    /// A short label for the message, e.g. for logs: never includes payloads.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if self.description.is_some() {
            parts.push("description");
        }
        if self.candidates.is_some() {
            parts.push("candidates");
        }
        if self.bye {
            parts.push("bye");
        }
        if self.ping.is_some() {
            parts.push("ping");
        }
        if self.pong.is_some() {
            parts.push("pong");
        }
        if self.request.is_some() {
            parts.push("request");
        }
        if self.info.is_some() {
            parts.push("info");
        }
        if !self.app.is_empty() {
            parts.push("app");
        }
        if parts.is_empty() {
            parts.push("other");
        }
        parts.join("+")
    }
}

/// Any inbound message.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Server(ServerMessage),
    Peer(Box<PeerMessage>),
}

impl Inbound {
    pub fn from_object(obj: &Object) -> Self {
        match ServerMessage::from_object(obj) {
            Some(m) => Inbound::Server(m),
            None => Inbound::Peer(Box::new(PeerMessage::from_object(obj))),
        }
    }
}

/// Client → server commands (§2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "request", rename_all = "lowercase")]
pub enum Command {
    Seed {
        #[serde(rename = "streamID")]
        stream_id: String,
    },
    Play {
        #[serde(rename = "streamID")]
        stream_id: String,
    },
    Joinroom {
        roomid: String,
        /// Only on fan-out servers (§1.3B): the joiner's own stream.
        #[serde(rename = "streamID", skip_serializing_if = "Option::is_none")]
        stream_id: Option<String>,
    },
}

impl Command {
    pub fn to_object(&self) -> Object {
        match serde_json::to_value(self) {
            Ok(Value::Object(o)) => o,
            _ => Object::new(),
        }
    }
}

/// The `info` a publisher sends on data-channel open (§6.4).
#[derive(Debug, Clone, Serialize)]
pub struct PublisherInfo {
    pub label: Option<String>,
    pub version: String,
}

/// The request object a viewer sends on data-channel open (§6.4).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewerRequest {
    pub audio: bool,
    pub video: bool,
    #[serde(rename = "allowchunked")]
    pub allow_chunked: bool,
    #[serde(rename = "allowwebp")]
    pub allow_webp: bool,
    #[serde(rename = "allowscreenvideo")]
    pub allow_screen_video: bool,
    #[serde(rename = "allowscreenaudio")]
    pub allow_screen_audio: bool,
    pub guest: bool,
    pub broadcast: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefer_video_codec: Option<String>,
    pub info: ViewerInfo,
}

#[derive(Debug, Clone, Serialize)]
pub struct ViewerInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vb_url: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codec_url: Option<String>,
}

impl ViewerRequest {
    pub fn new(audio: bool, video: bool) -> Self {
        Self {
            audio,
            video,
            allow_chunked: false,
            allow_webp: false,
            allow_screen_video: false,
            allow_screen_audio: false,
            guest: false,
            broadcast: false,
            bitrate: None,
            prefer_video_codec: None,
            info: ViewerInfo {
                label: None,
                version: super::VERSION.to_string(),
                vb_url: None,
                codec_url: None,
            },
        }
    }
}

/// Serialises a serde type to an object (for messages built from typed parts).
pub fn object_of<T: Serialize>(value: &T) -> Object {
    match serde_json::to_value(value) {
        Ok(Value::Object(o)) => o,
        _ => Object::new(),
    }
}

#[cfg(test)]
mod tests;
