// SPDX-License-Identifier: MPL-2.0

//! SDP text edits (spec §6.2, §6.3): plain functions over the SDP text, no GStreamer.

/// The H.264 parameters advertised in offers (§6.2: what browsers, OBS and RN agree on).
pub const H264_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

fn lines(sdp: &str) -> impl Iterator<Item = &str> {
    sdp.split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty())
}

fn join(lines: Vec<String>) -> String {
    let mut s = lines.join("\r\n");
    s.push_str("\r\n");
    s
}

/// `(payload type, encoding name)` of an `a=rtpmap:` line.
fn rtpmap(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix("a=rtpmap:")?;
    let (pt, enc) = rest.split_once(' ')?;
    Some((pt, enc.split('/').next().unwrap_or_default()))
}

/// The `a=mid:` values, in m-line order (`None` for an m-line without one).
pub fn mids(sdp: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for l in lines(sdp) {
        if l.starts_with("m=") {
            out.push(None);
        } else if let Some(mid) = l.strip_prefix("a=mid:")
            && let Some(last) = out.last_mut()
        {
            *last = Some(mid.to_string());
        }
    }
    out
}

/// Payload types whose encoding is `codec` (case-insensitive).
fn payload_types<'a>(sdp: &'a str, codec: &str) -> Vec<&'a str> {
    lines(sdp)
        .filter_map(rtpmap)
        .filter(|(_, enc)| enc.eq_ignore_ascii_case(codec))
        .map(|(pt, _)| pt)
        .collect()
}

/// Rewrites every H.264 `a=fmtp` line to [`H264_FMTP`] (keeping other parameters), and adds
/// one where an H.264 payload type has none.
pub fn advertise_h264_baseline(sdp: &str) -> String {
    let h264 = payload_types(sdp, "H264");
    if h264.is_empty() {
        return sdp.to_string();
    }
    let mut has_fmtp: Vec<&str> = Vec::new();
    let mut out: Vec<String> = Vec::new();
    for l in lines(sdp) {
        if let Some(rest) = l.strip_prefix("a=fmtp:")
            && let Some((pt, params)) = rest.split_once(' ')
            && h264.contains(&pt)
        {
            has_fmtp.push(pt);
            let kept: Vec<&str> = params
                .split(';')
                .map(str::trim)
                .filter(|p| {
                    let key = p.split('=').next().unwrap_or_default();
                    !p.is_empty()
                        && !matches!(
                            key,
                            "profile-level-id" | "packetization-mode" | "level-asymmetry-allowed"
                        )
                })
                .collect();
            let mut params = H264_FMTP.to_string();
            for k in kept {
                params.push(';');
                params.push_str(k);
            }
            out.push(format!("a=fmtp:{pt} {params}"));
        } else {
            out.push(l.to_string());
        }
    }
    // Payload types without an fmtp line get one right after their rtpmap.
    let mut result = Vec::with_capacity(out.len() + h264.len());
    for l in out {
        let missing = rtpmap(&l)
            .filter(|(pt, enc)| enc.eq_ignore_ascii_case("H264") && !has_fmtp.contains(pt))
            .map(|(pt, _)| pt.to_string());
        result.push(l);
        if let Some(pt) = missing {
            result.push(format!("a=fmtp:{pt} {H264_FMTP}"));
        }
    }
    join(result)
}

/// The `a=fmtp:` parameters of every payload type, as `(payload type, parameters)`.
fn fmtps(sdp: &str) -> Vec<(&str, &str)> {
    lines(sdp)
        .filter_map(|l| l.strip_prefix("a=fmtp:")?.split_once(' '))
        .collect()
}

/// The value of `key` in an fmtp parameter list (`a=1;b=2`).
fn fmtp_param<'a>(params: &'a str, key: &str) -> Option<&'a str> {
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k == key).then_some(v)
    })
}

/// Moves the payload types of `codec` to the front of every `m=video` line (the answerer's way
/// of choosing the codec, §6.2); among H.264 ones, `packetization-mode=1` first (mode 0 cannot
/// fragment large frames). Applied to a remote offer, it makes webrtcbin answer with that codec.
/// Unknown codecs leave the SDP unchanged.
pub fn prefer_video_codec(sdp: &str, codec: &str) -> String {
    let mut preferred = payload_types(sdp, codec);
    if preferred.is_empty() {
        return sdp.to_string();
    }
    let params = fmtps(sdp);
    let fragmenting = |pt: &&str| {
        params
            .iter()
            .any(|(p, f)| p == pt && fmtp_param(f, "packetization-mode") == Some("1"))
    };
    preferred.sort_by_key(|pt| !fragmenting(pt));
    let out = lines(sdp)
        .map(|l| {
            let Some(rest) = l.strip_prefix("m=video ") else {
                return l.to_string();
            };
            let mut parts: Vec<&str> = rest.split(' ').collect();
            if parts.len() <= 3 {
                return l.to_string();
            }
            let fmts = parts.split_off(2);
            let others = fmts.iter().filter(|pt| !preferred.contains(pt));
            let first = preferred.iter().filter(|pt| fmts.contains(pt));
            parts.extend(first.chain(others).copied().collect::<Vec<_>>());
            format!("m=video {}", parts.join(" "))
        })
        .collect();
    join(out)
}

/// Gives every H.264 payload type of our answer whose fmtp names no `profile-level-id` the one
/// the offer gave it. webrtcbin 1.22 leaves it out; browsers then assume baseline level 1.0
/// (RN mirrors the offer's profile for the same reason, §6.2).
pub fn mirror_h264_profiles(answer: &str, offer: &str) -> String {
    let offered = fmtps(offer);
    let profile_of = |pt: &str| {
        offered
            .iter()
            .find(|(p, _)| *p == pt)
            .and_then(|(_, f)| fmtp_param(f, "profile-level-id"))
    };
    let h264 = payload_types(answer, "H264");
    if h264.is_empty() {
        return answer.to_string();
    }
    let out = lines(answer)
        .map(|l| {
            if let Some((pt, params)) = l.strip_prefix("a=fmtp:").and_then(|r| r.split_once(' '))
                && h264.contains(&pt)
                && fmtp_param(params, "profile-level-id").is_none()
                && let Some(profile) = profile_of(pt)
            {
                format!("a=fmtp:{pt} {params};profile-level-id={profile}")
            } else {
                l.to_string()
            }
        })
        .collect();
    join(out)
}

/// The encoding names of the `m=` section `kind` (`video`/`audio`), in order of preference.
pub fn codecs_of(sdp: &str, kind: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_section = false;
    let mut order: Vec<String> = Vec::new();
    let mut names: Vec<(String, String)> = Vec::new();
    for l in lines(sdp) {
        if let Some(rest) = l.strip_prefix("m=") {
            in_section = rest.starts_with(kind);
            if in_section {
                order = rest.split(' ').skip(3).map(String::from).collect();
            }
        } else if in_section && let Some((pt, enc)) = rtpmap(l) {
            names.push((pt.to_string(), enc.to_string()));
        }
    }
    for pt in order {
        if let Some((_, enc)) = names.iter().find(|(p, _)| *p == pt)
            && !out.contains(enc)
        {
            out.push(enc.clone());
        }
    }
    out
}

/// Whether GStreamer 1.22's webrtcbin would crash receiving this offer: with BUNDLE it maps
/// incoming RTP to a transceiver by the SSRCs the offer announces (`a=ssrc:`), and falls back
/// to the first m-line; when that one is the data channel (a browser's first, data-only offer
/// puts it there) and a sending media section announces no SSRC, webrtcbin dereferences a
/// missing transceiver. Browsers announce SSRCs; this guards against the others.
pub fn unsafe_for_webrtcbin(sdp: &str) -> bool {
    let mut first_kind: Option<String> = None;
    let mut in_media = false;
    let mut sends = true;
    let mut has_ssrc = false;
    let mut bad = false;
    let close = |in_media: bool, sends: bool, has_ssrc: bool| in_media && sends && !has_ssrc;
    for l in lines(sdp) {
        if let Some(rest) = l.strip_prefix("m=") {
            bad |= close(in_media, sends, has_ssrc);
            let kind = rest.split(' ').next().unwrap_or_default().to_string();
            in_media = kind == "audio" || kind == "video";
            first_kind.get_or_insert(kind);
            sends = true;
            has_ssrc = false;
        } else if matches!(l, "a=recvonly" | "a=inactive") {
            sends = false;
        } else if l.starts_with("a=ssrc:") {
            has_ssrc = true;
        }
    }
    bad |= close(in_media, sends, has_ssrc);
    bad && first_kind.as_deref() == Some("application")
}

/// How many audio/video sections of an offer the offerer sends in (not `recvonly`/`inactive`).
/// The port says nothing here: with BUNDLE, every section but the first has port 0
/// (`a=bundle-only`).
pub fn sending_media_count(sdp: &str) -> usize {
    let mut count = 0;
    let mut current: Option<bool> = None;
    for l in lines(sdp) {
        if let Some(rest) = l.strip_prefix("m=") {
            count += usize::from(current == Some(true));
            let mut parts = rest.split(' ');
            let kind = parts.next().unwrap_or_default();
            current = Some(kind == "audio" || kind == "video");
        } else if matches!(l, "a=recvonly" | "a=inactive") && current.is_some() {
            current = Some(false);
        }
    }
    count + usize::from(current == Some(true))
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

    #[test]
    fn h264_fmtp_is_rewritten_and_added() {
        let s = advertise_h264_baseline(OFFER);
        assert!(s.contains(
            "a=fmtp:97 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f;sprop-parameter-sets=Z0I=\r\n"
        ));
        assert!(s.contains("a=rtpmap:98 H264/90000\r\na=fmtp:98 level-asymmetry-allowed=1"));
        assert!(!s.contains("640028"));
        assert!(s.contains("a=rtpmap:96 VP8/90000\r\na=rtpmap:97"));
    }

    #[test]
    fn codec_preference_reorders_video_only() {
        let s = prefer_video_codec(OFFER, "h264");
        assert!(s.contains("m=video 9 UDP/TLS/RTP/SAVPF 97 98 96\r\n"));
        assert!(s.contains("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"));
        assert_eq!(prefer_video_codec(OFFER, "AV1"), OFFER);
        assert_eq!(codecs_of(&s, "video"), ["H264", "VP8"]);
        assert_eq!(codecs_of(&s, "audio"), ["OPUS"]);
    }

    #[test]
    fn h264_with_fragmentation_goes_first() {
        let offer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 100 102 103\r\n\
            a=rtpmap:96 VP8/90000\r\na=rtpmap:100 H264/90000\r\n\
            a=fmtp:100 packetization-mode=0;profile-level-id=42001f\r\n\
            a=rtpmap:102 H264/90000\r\n\
            a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
            a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\n";
        let s = prefer_video_codec(offer, "h264");
        assert!(
            s.contains("m=video 9 UDP/TLS/RTP/SAVPF 102 100 96 103\r\n"),
            "{s}"
        );
    }

    /// The answer webrtcbin 1.22 gave the web app's H.264 offer (trimmed).
    #[test]
    fn answers_get_the_offered_h264_profile() {
        let offer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102 96\r\na=rtpmap:102 H264/90000\r\n\
            a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
            a=rtpmap:96 VP8/90000\r\n";
        let answer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=rtpmap:102 H264/90000\r\n\
            a=fmtp:102 packetization-mode=1;level-asymmetry-allowed=1\r\na=recvonly\r\n";
        let s = mirror_h264_profiles(answer, offer);
        assert!(s.contains(
            "a=fmtp:102 packetization-mode=1;level-asymmetry-allowed=1;profile-level-id=42001f\r\n"
        ));
        assert_eq!(
            mirror_h264_profiles(&s, offer),
            s,
            "a profile is never added twice"
        );
        assert_eq!(mirror_h264_profiles(OFFER, offer), OFFER);
    }

    #[test]
    fn data_first_offers_need_ssrcs() {
        let data_first = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n";
        assert!(unsafe_for_webrtcbin(data_first));
        let with_ssrc = format!("{data_first}a=ssrc:1234 cname:x\r\n");
        assert!(!unsafe_for_webrtcbin(&with_ssrc));
        assert!(!unsafe_for_webrtcbin(OFFER), "media first is fine");
        let recvonly = data_first.replace("a=sendonly", "a=recvonly");
        assert!(!unsafe_for_webrtcbin(&recvonly));
    }

    #[test]
    fn sending_media_are_counted() {
        assert_eq!(sending_media_count(OFFER), 2);
        let one = OFFER.replace("a=mid:audio1", "a=mid:audio1\r\na=recvonly");
        assert_eq!(sending_media_count(&one), 1);
        assert_eq!(
            sending_media_count("v=0\r\nm=application 9 UDP/DTLS/SCTP x\r\n"),
            0
        );
        let bundled = OFFER
            .replace("m=audio 9", "m=audio 0")
            .replace("a=mid:audio1", "a=mid:audio1\r\na=bundle-only");
        assert_eq!(sending_media_count(&bundled), 2);
    }

    #[test]
    fn mids_follow_m_lines() {
        assert_eq!(
            mids(OFFER),
            [Some("video0".into()), Some("audio1".into()), None]
        );
    }
}
