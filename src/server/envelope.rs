// SPDX-License-Identifier: MPL-2.0

//! The fields a handshake server routes by, read without building the message: the text is
//! checked to be one JSON object, the five routing fields are borrowed from it, and the rest
//! (an SDP, a candidate, anything a client adds) is skipped unparsed and relayed as it came.

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::protocol::message::MAX_MESSAGE_LEN;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("message of {0} bytes exceeds the {MAX_MESSAGE_LEN}-byte limit")]
    TooLarge(usize),
    #[error("not a JSON object")]
    NotObject,
    #[error("not JSON: {0}")]
    NotJson(String),
}

#[derive(Debug, Default, Deserialize)]
pub struct Envelope<'a> {
    #[serde(borrow, default)]
    request: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "streamID")]
    stream_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    roomid: Option<&'a RawValue>,
    #[serde(borrow, default)]
    from: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "UUID")]
    uuid: Option<&'a RawValue>,
}

impl<'a> Envelope<'a> {
    pub fn parse(text: &'a str) -> Result<Self, EnvelopeError> {
        if text.len() > MAX_MESSAGE_LEN {
            return Err(EnvelopeError::TooLarge(text.len()));
        }
        // A struct would also take a JSON array, field by field.
        if !text.trim_start().starts_with('{') {
            return Err(EnvelopeError::NotObject);
        }
        serde_json::from_str(text).map_err(|e| EnvelopeError::NotJson(e.to_string()))
    }

    pub fn request(&self) -> Option<Cow<'a, str>> {
        string(self.request)
    }

    pub fn stream_id(&self) -> Option<Cow<'a, str>> {
        string(self.stream_id)
    }

    pub fn roomid(&self) -> Option<Cow<'a, str>> {
        string(self.roomid)
    }

    pub fn from(&self) -> Option<Cow<'a, str>> {
        string(self.from)
    }

    pub fn uuid(&self) -> Option<Cow<'a, str>> {
        string(self.uuid)
    }

    /// Where the `UUID` value lies in `text` (the text this envelope was parsed from).
    pub fn uuid_span(&self, text: &str) -> Option<Range<usize>> {
        let raw = self.uuid?.get();
        let start = (raw.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
        (start + raw.len() <= text.len()).then(|| start..start + raw.len())
    }
}

/// A string field, accepting numbers too (as the protocol's parser does); empty strings,
/// `null` and other types count as absent.
fn string(raw: Option<&RawValue>) -> Option<Cow<'_, str>> {
    let raw = raw?.get();
    let value: Cow<str> = match raw.as_bytes().first()? {
        b'"' => match serde_json::from_str::<&str>(raw) {
            Ok(s) => Cow::Borrowed(s),
            // Escapes: unescape into a copy.
            Err(_) => Cow::Owned(serde_json::from_str::<String>(raw).ok()?),
        },
        b'-' | b'0'..=b'9' => Cow::Borrowed(raw),
        _ => return None,
    };
    (!value.is_empty()).then_some(value)
}

/// `text` with the value at `span` replaced by the JSON string `value`.
pub fn replace_value(text: &str, span: Range<usize>, value: &str) -> String {
    let quoted = serde_json::Value::from(value).to_string();
    let mut out = String::with_capacity(text.len() + quoted.len());
    out.push_str(&text[..span.start]);
    out.push_str(&quoted);
    out.push_str(&text[span.end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_routing_fields_and_skips_the_rest() {
        let text = r#"{"request":"play","streamID":"s\u0031","UUID":42,"roomid":"","description":{"sdp":"v=0"},"from":null}"#;
        let e = Envelope::parse(text).unwrap();
        assert_eq!(e.request().as_deref(), Some("play"));
        assert_eq!(e.stream_id().as_deref(), Some("s1"));
        assert_eq!(e.uuid().as_deref(), Some("42"));
        assert_eq!(e.roomid(), None, "empty counts as absent");
        assert_eq!(e.from(), None);
    }

    #[test]
    fn refuses_what_is_not_one_object() {
        assert_eq!(
            Envelope::parse(r#"["play","s"]"#).unwrap_err(),
            EnvelopeError::NotObject
        );
        assert!(matches!(
            Envelope::parse(r#"{"request":"pl"#),
            Err(EnvelopeError::NotJson(_))
        ));
        assert!(matches!(
            Envelope::parse(r#"{"a":1} {"b":2}"#),
            Err(EnvelopeError::NotJson(_))
        ));
        let huge = format!(r#"{{"pad":"{}"}}"#, "x".repeat(MAX_MESSAGE_LEN));
        assert!(matches!(
            Envelope::parse(&huge),
            Err(EnvelopeError::TooLarge(_))
        ));
    }

    #[test]
    fn the_uuid_is_rewritten_in_place() {
        let text = r#"{"UUID" : "dest", "candidate":{"c":"x"}}"#;
        let e = Envelope::parse(text).unwrap();
        let span = e.uuid_span(text).unwrap();
        let out = replace_value(text, span, "me\"quoted");
        assert_eq!(out, r#"{"UUID" : "me\"quoted", "candidate":{"c":"x"}}"#);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["UUID"], "me\"quoted");
    }
}
