// SPDX-License-Identifier: MPL-2.0

//! TURN servers (spec §4): user-given `turn(s)://user:pass@host:port` URLs, VDO.Ninja's TURN
//! list (fetched JSON or the built-in fallback table) and the timezone-based selection.
//!
//! The fetch is I/O and lives in the signaling layer; this module only parses and chooses.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use serde::Deserialize;
use serde_json::Value;

/// STUN servers the web app uses by default (§4.1), in webrtcbin's `stun://` form.
pub const DEFAULT_STUN: &str = "stun://stun.l.google.com:19302";

/// Characters escaped in the user-info part of a webrtcbin TURN URI.
const USERINFO: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b':')
    .add(b'@')
    .add(b'/')
    .add(b'?')
    .add(b'#')
    .add(b'%')
    .add(b'[')
    .add(b']');

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnScheme {
    Turn,
    Turns,
}

/// One TURN server with credentials. `Debug` never shows the credential.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnServer {
    pub scheme: TurnScheme,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub credential: String,
    /// `?transport=tcp` was given.
    pub tcp: bool,
}

impl std::fmt::Debug for TurnServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.redacted())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TurnParseError {
    #[error("a TURN URL must start with turn: or turns:")]
    Scheme,
    #[error("the TURN URL has no host")]
    NoHost,
    #[error("the TURN URL's port is not a number from 1 to 65535")]
    Port,
    #[error("the TURN URL has no user name and password (turn://user:pass@host:port)")]
    NoCredentials,
}

impl TurnServer {
    /// Parses `turn://user:pass@host:port`, `turns://…`, or the browser form `turn:host:port`
    /// (credentials then come from `username`/`credential`). Credentials may be percent-escaped.
    pub fn parse(
        url: &str,
        username: Option<&str>,
        credential: Option<&str>,
    ) -> Result<Self, TurnParseError> {
        let url = url.trim();
        let (scheme, rest) = if let Some(r) = url.strip_prefix("turns:") {
            (TurnScheme::Turns, r)
        } else if let Some(r) = url.strip_prefix("turn:") {
            (TurnScheme::Turn, r)
        } else {
            return Err(TurnParseError::Scheme);
        };
        let rest = rest.trim_start_matches("//");
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let tcp = query
            .split('&')
            .any(|kv| kv.eq_ignore_ascii_case("transport=tcp"));
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (user, pass) = match userinfo {
            Some(u) => {
                let (a, b) = u.split_once(':').unwrap_or((u, ""));
                (decode(a), decode(b))
            }
            None => (
                username.unwrap_or_default().to_string(),
                credential.unwrap_or_default().to_string(),
            ),
        };
        if user.is_empty() {
            return Err(TurnParseError::NoCredentials);
        }
        let hostport = hostport.trim_end_matches('/');
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, p) = v6.split_once(']').ok_or(TurnParseError::NoHost)?;
            (format!("[{h}]"), p.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err(TurnParseError::NoHost);
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or(TurnParseError::Port)?,
            None if scheme == TurnScheme::Turns => 443,
            None => 3478,
        };
        Ok(Self {
            scheme,
            host,
            port,
            username: user,
            credential: pass,
            tcp,
        })
    }

    /// The URI webrtcbin's `add-turn-server` takes, with escaped credentials.
    pub fn to_webrtcbin_uri(&self) -> String {
        let scheme = match self.scheme {
            TurnScheme::Turn => "turn",
            TurnScheme::Turns => "turns",
        };
        let mut s = format!(
            "{scheme}://{}:{}@{}:{}",
            utf8_percent_encode(&self.username, USERINFO),
            utf8_percent_encode(&self.credential, USERINFO),
            self.host,
            self.port
        );
        if self.tcp {
            s.push_str("?transport=tcp");
        }
        s
    }

    /// For logs: the URI without the credential.
    pub fn redacted(&self) -> String {
        let scheme = match self.scheme {
            TurnScheme::Turn => "turn",
            TurnScheme::Turns => "turns",
        };
        // The user name is half of a static credential pair: hidden too.
        format!("{scheme}://***:***@{}:{}", self.host, self.port)
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// One entry of VDO.Ninja's TURN list (§4.2).
#[derive(Debug, Clone, PartialEq)]
pub struct TurnEntry {
    pub server: TurnServer,
    /// Minutes west of UTC, as JavaScript's `getTimezoneOffset`.
    pub tz: i32,
    /// UDP (`true`) or TCP/TLS (`false`).
    pub udp: bool,
    pub locale: String,
}

#[derive(Deserialize)]
struct RawList {
    #[serde(default)]
    servers: Vec<Value>,
}

/// Parses the fetched list `{"servers":[{"username","credential","urls":[…],"tz","udp","locale"}]}`.
/// Entries that do not parse are skipped; each URL of an entry becomes its own [`TurnEntry`].
pub fn parse_turn_list(json: &str) -> Vec<TurnEntry> {
    let Ok(raw) = serde_json::from_str::<RawList>(json) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for s in &raw.servers {
        let Some(o) = s.as_object() else { continue };
        let user = o.get("username").and_then(Value::as_str);
        let cred = o.get("credential").and_then(Value::as_str);
        let urls: Vec<&str> = match o.get("urls").or_else(|| o.get("url")) {
            Some(Value::String(u)) => vec![u.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => continue,
        };
        let tz = o
            .get("tz")
            .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
            .unwrap_or(0) as i32;
        for url in urls {
            let Ok(server) = TurnServer::parse(url, user, cred) else {
                continue;
            };
            let udp = o
                .get("udp")
                .and_then(Value::as_bool)
                .unwrap_or(server.scheme == TurnScheme::Turn && !server.tcp);
            out.push(TurnEntry {
                server,
                tz,
                udp,
                locale: o
                    .get("locale")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            });
        }
    }
    out
}

/// The web app's built-in list, used when the fetch fails (§4.2). These credentials are the
/// public shared ones the web app itself ships.
pub fn fallback_turn_list() -> Vec<TurnEntry> {
    const TABLE: &[(&str, &str, &str, i32, bool, &str)] = &[
        (
            "turns:www.turn.obs.ninja:443",
            "steve",
            "setupYourOwnPlease",
            300,
            false,
            "cae1",
        ),
        (
            "turn:turn-cae1.vdo.ninja:3478",
            "steve",
            "setupYourOwnPlease",
            300,
            true,
            "cae1",
        ),
        (
            "turn:turn-usw2.vdo.ninja:3478",
            "vdoninja",
            "theyBeSharksHere",
            480,
            true,
            "usw2",
        ),
        (
            "turn:turn-eu4.vdo.ninja:3478",
            "vdoninja",
            "PolandPirat",
            -70,
            true,
            "pol1",
        ),
        (
            "turn:turn-eu2.obs.ninja:3478",
            "obsninja",
            "tabernac",
            -60,
            true,
            "fr1",
        ),
        (
            "turns:turn.obs.ninja:443",
            "steve",
            "setupYourOwnPlease",
            -60,
            false,
            "de1",
        ),
        (
            "turn:turn-eu1.vdo.ninja:3478",
            "steve",
            "setupYourOwnPlease",
            -60,
            true,
            "de1",
        ),
        (
            "turn:www.turn.vdo.ninja:3478",
            "vdoninja",
            "IchBinSteveDerNinja",
            -60,
            true,
            "de2",
        ),
        (
            "turns:www.turn.vdo.ninja:443",
            "vdoninja",
            "IchBinSteveDerNinja",
            -60,
            false,
            "de2",
        ),
        (
            "turn:turn-use1.vdo.ninja:3478",
            "vdoninja",
            "EastSideRepresentZ",
            300,
            true,
            "use1",
        ),
    ];
    TABLE
        .iter()
        .filter_map(|(url, user, cred, tz, udp, locale)| {
            Some(TurnEntry {
                server: TurnServer::parse(url, Some(user), Some(cred)).ok()?,
                tz: *tz,
                udp: *udp,
                locale: locale.to_string(),
            })
        })
        .collect()
}

/// The web app's choice (§4.2): sort by timezone distance (wrapping around the day) from
/// `client_tz` (minutes west of UTC, standard time), then take the first two UDP entries and
/// the first TCP/TLS entry.
pub fn select_turn(list: &[TurnEntry], client_tz: i32) -> Vec<TurnEntry> {
    let distance = |e: &TurnEntry| {
        let d = (e.tz - client_tz).abs();
        d.min((d - 1440).abs())
    };
    let mut sorted: Vec<&TurnEntry> = list.iter().collect();
    sorted.sort_by_key(|e| distance(e));
    let udp = sorted.iter().filter(|e| e.udp).take(2);
    let tcp = sorted.iter().filter(|e| !e.udp).take(1);
    udp.chain(tcp).map(|e| (*e).clone()).collect()
}

#[cfg(test)]
mod tests;
