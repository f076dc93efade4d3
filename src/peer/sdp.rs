// SPDX-License-Identifier: MPL-2.0

//! SDP edits and questions (spec §6.2, §6.3), on messages parsed by `gstreamer-sdp`: codec
//! order, H.264 parameters, mids, and the checks that keep webrtcbin 1.22 out of trouble.

use gst_sdp::{SDPAttribute, SDPMediaRef, SDPMessage, SDPMessageRef};

/// The H.264 parameters advertised in offers (§6.2: what browsers, OBS and RN agree on).
pub const H264_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

/// Parses SDP text (`None` if `gstreamer-sdp` cannot).
pub fn parse(text: &str) -> Option<SDPMessage> {
    SDPMessage::parse_buffer(text.as_bytes()).ok()
}

/// `(payload type, encoding name)` of every `a=rtpmap` of `media`.
fn rtpmaps(media: &SDPMediaRef) -> Vec<(String, String)> {
    media
        .attributes()
        .filter(|a| a.key() == "rtpmap")
        .filter_map(|a| {
            let (pt, enc) = a.value()?.split_once(' ')?;
            Some((pt.to_string(), enc.split('/').next()?.to_string()))
        })
        .collect()
}

/// Payload types of `media` whose encoding is `codec` (case-insensitive).
fn payload_types(media: &SDPMediaRef, codec: &str) -> Vec<String> {
    rtpmaps(media)
        .into_iter()
        .filter(|(_, enc)| enc.eq_ignore_ascii_case(codec))
        .map(|(pt, _)| pt)
        .collect()
}

/// The `a=fmtp` parameters of payload type `pt` in `media`.
fn fmtp<'a>(media: &'a SDPMediaRef, pt: &str) -> Option<&'a str> {
    media
        .attributes()
        .filter(|a| a.key() == "fmtp")
        .find_map(|a| a.value()?.strip_prefix(pt)?.strip_prefix(' '))
}

/// The value of `key` in an fmtp parameter list (`a=1;b=2`).
fn fmtp_param<'a>(params: &'a str, key: &str) -> Option<&'a str> {
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k == key).then_some(v)
    })
}

/// Replaces attribute `idx` of `media` with `key:value`.
fn replace(media: &mut SDPMediaRef, idx: u32, key: &str, value: &str) {
    let _ = media.replace_attribute(idx, SDPAttribute::new(key, Some(value)));
}

/// Rewrites every H.264 `a=fmtp` to [`H264_FMTP`] (keeping other parameters), and adds one
/// where an H.264 payload type has none.
pub fn advertise_h264_baseline(msg: &mut SDPMessageRef) {
    for m in 0..msg.medias_len() {
        let Some(media) = msg.media_mut(m) else {
            continue;
        };
        let h264 = payload_types(media, "H264");
        let mut has_fmtp = Vec::new();
        for idx in 0..media.attributes_len() {
            let Some((pt, params)) = media
                .attribute(idx)
                .filter(|a| a.key() == "fmtp")
                .and_then(|a| a.value()?.split_once(' '))
                .filter(|(pt, _)| h264.iter().any(|h| h == pt))
                .map(|(pt, params)| (pt.to_string(), params.to_string()))
            else {
                continue;
            };
            let mut value = format!("{pt} {H264_FMTP}");
            for p in params.split(';').map(str::trim).filter(|p| {
                let key = p.split('=').next().unwrap_or_default();
                !p.is_empty()
                    && !matches!(
                        key,
                        "profile-level-id" | "packetization-mode" | "level-asymmetry-allowed"
                    )
            }) {
                value.push(';');
                value.push_str(p);
            }
            replace(media, idx, "fmtp", &value);
            has_fmtp.push(pt);
        }
        // Payload types without an fmtp get one right after their rtpmap.
        let mut idx = 0;
        while idx < media.attributes_len() {
            let missing = media
                .attribute(idx)
                .filter(|a| a.key() == "rtpmap")
                .and_then(|a| a.value()?.split_once(' '))
                .filter(|(pt, enc)| {
                    enc.to_ascii_uppercase().starts_with("H264/")
                        && !has_fmtp.iter().any(|h| h == pt)
                })
                .map(|(pt, _)| pt.to_string());
            idx += 1;
            if let Some(pt) = missing {
                let attr = SDPAttribute::new("fmtp", Some(&format!("{pt} {H264_FMTP}")));
                if idx < media.attributes_len() {
                    let _ = media.insert_attribute(Some(idx), attr);
                } else {
                    let _ = media.insert_attribute(None, attr);
                }
                has_fmtp.push(pt);
                idx += 1;
            }
        }
    }
}

/// Moves the payload types of `codec` to the front of every video section (the answerer's way
/// of choosing the codec, §6.2); among H.264 ones, `packetization-mode=1` first (mode 0
/// cannot fragment large frames). Applied to a remote offer, it makes webrtcbin answer with
/// that codec. Returns whether anything moved.
pub fn prefer_video_codec(msg: &mut SDPMessageRef, codec: &str) -> bool {
    let mut changed = false;
    for m in 0..msg.medias_len() {
        let Some(media) = msg.media_mut(m) else {
            continue;
        };
        if media.media() != Some("video") {
            continue;
        }
        let mut preferred = payload_types(media, codec);
        preferred.sort_by_key(|pt| {
            fmtp(media, pt).and_then(|f| fmtp_param(f, "packetization-mode")) != Some("1")
        });
        let formats: Vec<String> = media.formats().map(str::to_string).collect();
        let (mut order, others): (Vec<String>, Vec<String>) = (
            preferred
                .iter()
                .filter(|pt| formats.contains(pt))
                .cloned()
                .collect(),
            formats
                .iter()
                .filter(|pt| !preferred.contains(pt))
                .cloned()
                .collect(),
        );
        order.extend(others);
        if order == formats {
            continue;
        }
        for (idx, pt) in order.iter().enumerate() {
            let _ = media.replace_format(idx as u32, pt);
        }
        changed = true;
    }
    changed
}

/// Gives every H.264 payload type of our answer whose fmtp names no `profile-level-id` the
/// one the offer gave it. webrtcbin 1.22 leaves it out; browsers then assume baseline level
/// 1.0 (RN mirrors the offer's profile for the same reason, §6.2).
pub fn mirror_h264_profiles(answer: &mut SDPMessageRef, offer: &SDPMessageRef) {
    for m in 0..answer.medias_len() {
        let Some(offered) = offer.media(m) else {
            continue;
        };
        let profiles: Vec<(String, String)> = payload_types(offered, "H264")
            .into_iter()
            .filter_map(|pt| {
                let profile = fmtp(offered, &pt).and_then(|f| fmtp_param(f, "profile-level-id"))?;
                Some((pt.clone(), profile.to_string()))
            })
            .collect();
        let Some(media) = answer.media_mut(m) else {
            continue;
        };
        let h264 = payload_types(media, "H264");
        for idx in 0..media.attributes_len() {
            let Some(value) = media
                .attribute(idx)
                .filter(|a| a.key() == "fmtp")
                .and_then(|a| a.value())
                .and_then(|v| {
                    let (pt, params) = v.split_once(' ')?;
                    if !h264.iter().any(|h| h == pt)
                        || fmtp_param(params, "profile-level-id").is_some()
                    {
                        return None;
                    }
                    let (_, profile) = profiles.iter().find(|(p, _)| p == pt)?;
                    Some(format!("{v};profile-level-id={profile}"))
                })
            else {
                continue;
            };
            replace(media, idx, "fmtp", &value);
        }
    }
}

/// The transport-wide congestion control RTP header extension (draft-holmer-rmcat).
pub const TWCC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// Takes the offer's transport-wide-cc header extension into our answer, section by section,
/// under the offer's ID. webrtcbin 1.22 leaves it out of an answer to a remote offer; with it,
/// our receiving side sends transport-wide feedback and the sender (a browser, our sink) can
/// fit its rate to the link.
pub fn mirror_twcc(answer: &mut SDPMessageRef, offer: &SDPMessageRef) {
    for m in 0..answer.medias_len() {
        let Some(id) = offer.media(m).and_then(|o| {
            (0..o.attributes_len()).find_map(|i| {
                let a = o.attribute(i).filter(|a| a.key() == "extmap")?;
                let (id, uri) = a.value()?.split_once(' ')?;
                (uri.trim() == TWCC_URI).then(|| id.split('/').next().unwrap_or(id).to_string())
            })
        }) else {
            continue;
        };
        let Some(media) = answer.media_mut(m) else {
            continue;
        };
        if media.port() == 0 {
            continue;
        }
        let has = (0..media.attributes_len()).any(|i| {
            media
                .attribute(i)
                .and_then(|a| a.value())
                .is_some_and(|v| v.contains(TWCC_URI))
        });
        if !has {
            media.add_attribute("extmap", Some(&format!("{id} {TWCC_URI}")));
        }
    }
}

/// The `a=mid` values, in m-line order (`None` for a section without one).
pub fn mids(msg: &SDPMessageRef) -> Vec<Option<String>> {
    msg.medias()
        .map(|m| m.attribute_val("mid").map(str::to_string))
        .collect()
}

/// The encoding names of the first `kind` (`video`/`audio`) section, in order of preference.
pub fn codecs_of(msg: &SDPMessageRef, kind: &str) -> Vec<String> {
    let Some(media) = msg.medias().find(|m| m.media() == Some(kind)) else {
        return Vec::new();
    };
    let names = rtpmaps(media);
    let mut out: Vec<String> = Vec::new();
    for pt in media.formats() {
        if let Some((_, enc)) = names.iter().find(|(p, _)| p == pt)
            && !out.contains(enc)
        {
            out.push(enc.clone());
        }
    }
    out
}

/// The media (`audio`, `video`) of the section whose formats hold payload type `pt` (with
/// BUNDLE every payload type names one section).
pub fn media_of_payload_type(msg: &SDPMessageRef, pt: u8) -> Option<String> {
    let pt = pt.to_string();
    msg.medias()
        .find(|m| m.formats().any(|f| f == pt))
        .and_then(|m| m.media().map(str::to_string))
}

/// Whether an audio/video section sends (is not `recvonly`/`inactive`). The port says
/// nothing: with BUNDLE, every section but the first may have port 0 (`a=bundle-only`).
fn sends(media: &SDPMediaRef) -> bool {
    matches!(media.media(), Some("audio" | "video"))
        && !media
            .attributes()
            .any(|a| matches!(a.key(), "recvonly" | "inactive"))
}

/// Whether GStreamer 1.22's webrtcbin would crash receiving this offer: with BUNDLE it maps
/// incoming RTP to a transceiver by the SSRCs the offer announces (`a=ssrc`), and falls back
/// to the first m-line; when that one is the data channel (a browser's first, data-only offer
/// puts it there) and a sending media section announces no SSRC, webrtcbin dereferences a
/// missing transceiver. Browsers announce SSRCs; this guards against the others.
pub fn unsafe_for_webrtcbin(msg: &SDPMessageRef) -> bool {
    let data_first = msg.medias().next().and_then(|m| m.media()) == Some("application");
    data_first
        && msg
            .medias()
            .any(|m| sends(m) && !m.attributes().any(|a| a.key() == "ssrc"))
}

/// How many audio/video sections of an offer the offerer sends in.
pub fn sending_media_count(msg: &SDPMessageRef) -> usize {
    msg.medias().filter(|m| sends(m)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 97 98\r\na=mid:video0\r\n\
        a=rtpmap:96 VP8/90000\r\na=rtpmap:97 H264/90000\r\n\
        a=fmtp:97 packetization-mode=1;profile-level-id=640028;sprop-parameter-sets=Z0I=\r\n\
        a=rtpmap:98 H264/90000\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:audio1\r\na=rtpmap:111 OPUS/48000/2\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";

    /// The web app's (v26.1, Chromium 156) media offer after its data-only first offer, as the
    /// real-peer suite sees it (candidates and keys left out).
    const WEBAPP_OFFER: &str = include_str!("sdp/webapp-offer.sdp");

    fn sdp(text: &str) -> SDPMessage {
        gst::init().expect("GStreamer initialises");
        parse(text).expect("parses")
    }

    fn text(msg: &SDPMessageRef) -> String {
        msg.as_text().expect("prints")
    }

    #[test]
    fn h264_fmtp_is_rewritten_and_added() {
        let mut m = sdp(OFFER);
        advertise_h264_baseline(&mut m);
        let s = text(&m);
        assert!(s.contains(
            "a=fmtp:97 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f;sprop-parameter-sets=Z0I=\r\n"
        ));
        assert!(s.contains("a=rtpmap:98 H264/90000\r\na=fmtp:98 level-asymmetry-allowed=1"));
        assert!(!s.contains("640028"));
        assert!(s.contains("a=rtpmap:96 VP8/90000\r\na=rtpmap:97"));
        assert_eq!(s.matches("a=fmtp:").count(), 2, "{s}");
    }

    #[test]
    fn codec_preference_reorders_video_only() {
        let mut m = sdp(OFFER);
        assert!(prefer_video_codec(&mut m, "h264"));
        let s = text(&m);
        assert!(
            s.contains("m=video 9 UDP/TLS/RTP/SAVPF 97 98 96\r\n"),
            "{s}"
        );
        assert!(s.contains("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"));
        assert!(!prefer_video_codec(&mut sdp(OFFER), "AV1"));
        assert_eq!(codecs_of(&m, "video"), ["H264", "VP8"]);
        assert_eq!(codecs_of(&m, "audio"), ["OPUS"]);
    }

    #[test]
    fn h264_with_fragmentation_goes_first() {
        let offer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 100 102 103\r\n\
            a=rtpmap:96 VP8/90000\r\na=rtpmap:100 H264/90000\r\n\
            a=fmtp:100 packetization-mode=0;profile-level-id=42001f\r\n\
            a=rtpmap:102 H264/90000\r\n\
            a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
            a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\n";
        let mut m = sdp(offer);
        prefer_video_codec(&mut m, "h264");
        let formats: Vec<&str> = m.media(0).unwrap().formats().collect();
        assert_eq!(formats, ["102", "100", "96", "103"]);
    }

    #[test]
    fn payload_types_name_their_media() {
        let m = sdp(WEBAPP_OFFER);
        // VP8, its RTX, Opus; a payload type the offer does not list is unknown.
        assert_eq!(media_of_payload_type(&m, 96).as_deref(), Some("video"));
        assert_eq!(media_of_payload_type(&m, 97).as_deref(), Some("video"));
        assert_eq!(media_of_payload_type(&m, 111).as_deref(), Some("audio"));
        assert_eq!(media_of_payload_type(&m, 127), None);
    }

    #[test]
    fn the_web_apps_offer_prefers_h264_when_asked() {
        let mut m = sdp(WEBAPP_OFFER);
        assert_eq!(codecs_of(&m, "video")[0], "VP8", "the app offers VP8 first");
        assert!(prefer_video_codec(&mut m, "h264"));
        let video = m.medias().find(|x| x.media() == Some("video")).unwrap();
        let first = video.formats().next().unwrap().to_string();
        let params = fmtp(video, &first).unwrap();
        assert_eq!(
            fmtp_param(params, "packetization-mode"),
            Some("1"),
            "{params}"
        );
        assert_eq!(codecs_of(&m, "video")[0], "H264");
        // Nothing else moved: audio and the data channel are as they were.
        assert_eq!(
            codecs_of(&m, "audio"),
            codecs_of(&sdp(WEBAPP_OFFER), "audio")
        );
        assert_eq!(mids(&m), mids(&sdp(WEBAPP_OFFER)));
        assert_eq!(sending_media_count(&m), 2);
        assert!(!unsafe_for_webrtcbin(&m), "the app announces its SSRCs");
    }

    /// The answer webrtcbin 1.22 gave the web app's H.264 offer (trimmed).
    #[test]
    fn answers_get_the_offered_h264_profile() {
        let offer = sdp(
            "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102 96\r\na=rtpmap:102 H264/90000\r\n\
            a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
            a=rtpmap:96 VP8/90000\r\n",
        );
        let mut answer = sdp(
            "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=rtpmap:102 H264/90000\r\n\
            a=fmtp:102 packetization-mode=1;level-asymmetry-allowed=1\r\na=recvonly\r\n",
        );
        mirror_h264_profiles(&mut answer, &offer);
        let s = text(&answer);
        assert!(s.contains(
            "a=fmtp:102 packetization-mode=1;level-asymmetry-allowed=1;profile-level-id=42001f\r\n"
        ));
        mirror_h264_profiles(&mut answer, &offer);
        assert_eq!(text(&answer), s, "a profile is never added twice");
        let mut other = sdp(OFFER);
        mirror_h264_profiles(&mut other, &offer);
        assert_eq!(text(&other), text(&sdp(OFFER)));
    }

    #[test]
    fn data_first_offers_need_ssrcs() {
        let data_first = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n";
        assert!(unsafe_for_webrtcbin(&sdp(data_first)));
        let with_ssrc = format!("{data_first}a=ssrc:1234 cname:x\r\n");
        assert!(!unsafe_for_webrtcbin(&sdp(&with_ssrc)));
        assert!(!unsafe_for_webrtcbin(&sdp(OFFER)), "media first is fine");
        let recvonly = data_first.replace("a=sendonly", "a=recvonly");
        assert!(!unsafe_for_webrtcbin(&sdp(&recvonly)));
    }

    #[test]
    fn sending_media_are_counted() {
        assert_eq!(sending_media_count(&sdp(OFFER)), 2);
        let one = OFFER.replace("a=mid:audio1", "a=mid:audio1\r\na=recvonly");
        assert_eq!(sending_media_count(&sdp(&one)), 1);
        let data = sdp("v=0\r\nm=application 9 UDP/DTLS/SCTP x\r\n");
        assert_eq!(sending_media_count(&data), 0);
        let bundled = OFFER
            .replace("m=audio 9", "m=audio 0")
            .replace("a=mid:audio1", "a=mid:audio1\r\na=bundle-only");
        assert_eq!(sending_media_count(&sdp(&bundled)), 2);
    }

    #[test]
    fn mids_follow_m_lines() {
        assert_eq!(
            mids(&sdp(OFFER)),
            [Some("video0".into()), Some("audio1".into()), None]
        );
    }
}
