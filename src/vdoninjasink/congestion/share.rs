// SPDX-License-Identifier: MPL-2.0

//! The video encoder's share of a link estimate (sans-IO).
//!
//! Google Congestion Control estimates what the whole link carries: every packet that goes to
//! the viewer, audio and video, with their RTP, SRTP, UDP and IP headers. The video encoder's
//! rate is only its payload, so it gets what the audio and the headers leave (as libwebrtc's
//! bitrate allocator gives audio its share of the estimate first). Giving the encoder the whole
//! estimate overran a 1,000 kbit/s link by ~10 % (64 kbit/s of Opus and ~60 of headers), and
//! the web app's picture froze about once every 10 s.

/// Bytes of headers on every packet: IPv4 (20), UDP (8), RTP (12), the transport-wide
/// sequence-number extension (8) and SRTP's authentication tag (10).
pub const HEADER_BYTES: u32 = 58;
/// Payload of a full video packet (our payloaders' MTU, minus the headers).
pub const VIDEO_PAYLOAD_BYTES: u32 = 1142;
/// Opus packets a second (20 ms frames).
pub const AUDIO_PACKETS: u32 = 50;

/// What the video encoder may send (kbit/s) on a link that carries `estimate` (kbit/s) in all,
/// when `audio` (kbit/s of Opus, 0 for none) goes along.
pub fn video_share(estimate: u32, audio: u32) -> u32 {
    let audio_on_wire = if audio == 0 {
        0
    } else {
        audio + HEADER_BYTES * 8 * AUDIO_PACKETS / 1000
    };
    let left = u64::from(estimate.saturating_sub(audio_on_wire));
    let payload = u64::from(VIDEO_PAYLOAD_BYTES);
    (left * payload / (payload + u64::from(HEADER_BYTES))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_and_headers_come_off_the_estimate() {
        // 1,000 kbit/s with 64 kbit/s of Opus: 64 + 23 of audio, and 5 % of headers on the rest.
        assert_eq!(video_share(1000, 64), 868);
        // No audio: the headers only.
        assert_eq!(video_share(1000, 0), 951);
        // A link narrower than the audio leaves nothing (the rate controller's floor applies).
        assert_eq!(video_share(50, 64), 0);
        // Share grows with the estimate, by the payload's part of each packet.
        assert!(video_share(4000, 64) > 3700);
    }
}
