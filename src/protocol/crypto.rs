// SPDX-License-Identifier: MPL-2.0

//! Passwords, salts, wire IDs and payload encryption (spec §3).
//!
//! Everything here is deterministic except [`Crypto::encrypt`], which draws a fresh IV per
//! message; [`Crypto::encrypt_with_iv`] exists for the test vectors.

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// VDO.Ninja's default password: every page without `&password` still hashes and encrypts with it.
pub const DEFAULT_PASSWORD: &str = "someEncryptionKey123";
/// The salt of the official deployment.
pub const DEFAULT_SALT: &str = "vdo.ninja";
/// The web app cuts raw stream IDs to this length before adding the hash suffix (§2.1).
pub const MAX_STREAM_ID_LEN: usize = 44;
/// Room names are capped at 30 characters (§3.3).
pub const MAX_ROOM_LEN: usize = 30;
/// Length of the hash suffix of wire stream IDs.
pub const STREAM_SUFFIX_LEN: usize = 6;

/// The characters JavaScript's `encodeURIComponent` leaves alone: `A-Z a-z 0-9 - _ . ! ~ * ' ( )`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// Why a payload could not be decrypted. With AES-CBC and no MAC a wrong password shows up as
/// a padding or JSON error: callers report these as "wrong password or salt?".
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecryptError {
    #[error("the IV (`vector`) is not 32 hex digits")]
    BadVector,
    #[error("the ciphertext is not hex")]
    NotHex,
    #[error("the ciphertext is not a whole number of AES blocks")]
    BadLength,
    #[error("bad padding after decryption (wrong password or salt?)")]
    BadPadding,
    #[error("the decrypted text is not UTF-8 (wrong password or salt?)")]
    NotUtf8,
}

/// JavaScript's `encodeURIComponent` (UTF-8, uppercase hex).
pub fn encode_uri_component(text: &str) -> String {
    utf8_percent_encode(text, URI_COMPONENT).to_string()
}

/// `true` for the tokens that disable the password: `false`, `0`, `off`, `no` (any case,
/// surrounding white space ignored) (§3.1).
pub fn is_password_disabled_token(text: &str) -> bool {
    matches!(
        text.trim().to_ascii_lowercase().as_str(),
        "false" | "0" | "off" | "no"
    )
}

/// Turns what a user typed as password into the effective password (§3.1): `None` disables
/// hashing and encryption; an empty value means the default password; anything else is
/// trimmed and `encodeURIComponent`-ed.
pub fn effective_password(input: Option<&str>) -> Option<String> {
    match input {
        None => Some(DEFAULT_PASSWORD.to_string()),
        Some(p) if is_password_disabled_token(p) => None,
        Some(p) if p.trim().is_empty() => Some(DEFAULT_PASSWORD.to_string()),
        Some(p) => Some(encode_uri_component(p.trim())),
    }
}

/// The salt a browser on the page host `host` uses (§3.2).
pub fn salt_for_host(host: &str) -> String {
    let host = host
        .trim()
        .trim_end_matches('.')
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if host.is_empty()
        || host == "localhost"
        || host == "steveseguin.github.io"
        || host.parse::<std::net::IpAddr>().is_ok()
    {
        return DEFAULT_SALT.to_string();
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() >= 2 {
        let last_two = labels[labels.len() - 2..].join(".");
        if matches!(
            last_two.as_str(),
            "vdo.ninja" | "rtc.ninja" | "versus.cam" | "socialstream.ninja"
        ) {
            return last_two;
        }
    }
    host
}

/// Lowercase hex of SHA-256(`text`), cut to `n` hex digits (§3.3).
pub fn hash_hex(text: &str, n: usize) -> String {
    let mut h = hex::encode(Sha256::digest(text.as_bytes()));
    h.truncate(n);
    h
}

/// Replaces every run of characters outside `[A-Za-z0-9_]` by one `_`, after trimming.
fn collapse_non_word(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_run = false;
    for c in text.trim().chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    out
}

/// Stream-ID sanitisation (§3.3): trim, runs of non-word characters become `_`, at most
/// [`MAX_STREAM_ID_LEN`] characters. Returns `None` for an empty result.
pub fn sanitize_stream_id(raw: &str) -> Option<String> {
    let mut id = collapse_non_word(raw);
    id.truncate(MAX_STREAM_ID_LEN);
    (!id.is_empty()).then_some(id)
}

/// Room-name sanitisation (§3.3): as stream IDs, at most [`MAX_ROOM_LEN`] characters.
pub fn sanitize_room(raw: &str) -> Option<String> {
    let mut id = collapse_non_word(raw);
    id.truncate(MAX_ROOM_LEN);
    (!id.is_empty()).then_some(id)
}

/// Hashing and encryption for one effective password and salt. `Crypto` with no password
/// (see [`Crypto::disabled`]) leaves IDs raw and payloads in plain text.
#[derive(Clone)]
pub struct Crypto {
    /// (effective password, salt, key) when enabled.
    inner: Option<Enabled>,
}

#[derive(Clone)]
struct Enabled {
    password: String,
    salt: String,
    key: [u8; 32],
    suffix: String,
}

impl std::fmt::Debug for Crypto {
    // Never print the password or the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            None => f.write_str("Crypto(disabled)"),
            Some(e) => write!(f, "Crypto(salt={:?}, password=<hidden>)", e.salt),
        }
    }
}

impl Crypto {
    /// From a user's password input (see [`effective_password`]) and salt.
    pub fn new(password_input: Option<&str>, salt: &str) -> Self {
        match effective_password(password_input) {
            Some(p) => Self::from_effective(&p, salt),
            None => Self::disabled(),
        }
    }

    /// From an already effective (normalised) password.
    pub fn from_effective(password: &str, salt: &str) -> Self {
        let phrase = format!("{password}{salt}");
        let key: [u8; 32] = Sha256::digest(phrase.as_bytes()).into();
        Self {
            inner: Some(Enabled {
                password: password.to_string(),
                salt: salt.to_string(),
                key,
                suffix: hex::encode(&key[..3]),
            }),
        }
    }

    /// No password: raw IDs, plain-text payloads.
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The 6-hex suffix of wire stream IDs, if a password is active.
    pub fn stream_suffix(&self) -> Option<&str> {
        self.inner.as_ref().map(|e| e.suffix.as_str())
    }

    /// Wire form of a stream ID (§3.3). `None` if the ID is empty after sanitising.
    pub fn wire_stream_id(&self, raw: &str) -> Option<String> {
        let id = sanitize_stream_id(raw)?;
        Some(match &self.inner {
            Some(e) => format!("{id}{}", e.suffix),
            None => id,
        })
    }

    /// Plain stream ID from its wire form: strips our hash suffix when a password is active and
    /// the suffix matches. A wire ID that does not carry our suffix is returned as it is.
    pub fn plain_stream_id(&self, wire: &str) -> String {
        if let Some(e) = &self.inner
            && let Some(plain) = wire.strip_suffix(e.suffix.as_str())
            && !plain.is_empty()
        {
            return plain.to_string();
        }
        wire.to_string()
    }

    /// Wire form of a room name (§3.3). `None` if the name is empty after sanitising.
    pub fn wire_room_id(&self, raw: &str) -> Option<String> {
        let room = sanitize_room(raw)?;
        Some(match &self.inner {
            Some(e) => hash_hex(&format!("{room}{}{}", e.password, e.salt), 16),
            None => room,
        })
    }

    /// Encrypts `plaintext` with a fresh random IV: `(ciphertext hex, iv hex)`.
    /// `None` when no password is active.
    pub fn encrypt(&self, plaintext: &str) -> Option<(String, String)> {
        let iv: [u8; 16] = rand::random();
        self.encrypt_with_iv(plaintext, &iv)
    }

    /// Encrypts with a given IV. Only tests should choose the IV.
    pub fn encrypt_with_iv(&self, plaintext: &str, iv: &[u8; 16]) -> Option<(String, String)> {
        let e = self.inner.as_ref()?;
        let ct = Aes256CbcEnc::new(&e.key.into(), iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext.as_bytes());
        Some((hex::encode(ct), hex::encode(iv)))
    }

    /// Decrypts a hex ciphertext with a hex IV. With no password active this fails as
    /// [`DecryptError::BadPadding`] would: the peer encrypted with a password we do not have.
    pub fn decrypt(&self, ciphertext_hex: &str, iv_hex: &str) -> Result<String, DecryptError> {
        let mut iv = [0u8; 16];
        hex::decode_to_slice(iv_hex.trim(), &mut iv).map_err(|_| DecryptError::BadVector)?;
        let ct = hex::decode(ciphertext_hex.trim()).map_err(|_| DecryptError::NotHex)?;
        if ct.is_empty() || ct.len() % 16 != 0 {
            return Err(DecryptError::BadLength);
        }
        let Some(e) = &self.inner else {
            return Err(DecryptError::BadPadding);
        };
        let pt = Aes256CbcDec::new(&e.key.into(), &iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(&ct)
            .map_err(|_| DecryptError::BadPadding)?;
        String::from_utf8(pt).map_err(|_| DecryptError::NotUtf8)
    }
}

/// Serialises JSON with every non-ASCII character escaped as `\uXXXX`, as the web app's
/// byte-per-code-unit encryption needs (§3.4).
pub fn to_ascii_json(value: &serde_json::Value) -> String {
    let plain = value.to_string();
    if plain.is_ascii() {
        return plain;
    }
    // Non-ASCII characters can only occur inside JSON strings, where `\uXXXX` is valid.
    let mut out = String::with_capacity(plain.len() + 16);
    for c in plain.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
