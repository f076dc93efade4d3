// SPDX-License-Identifier: MPL-2.0

//! Retransmissions to one viewer, held to a share of its link (sans-IO).
//!
//! A viewer asks again for every packet it missed (NACK) and webrtcbin's `rtprtxsend` answers
//! each at once. When a link fills, that is most of what was sent: measured with the web app
//! behind a 1,000 kbit/s policer, 4,000–4,900 kbit/s left for the viewer in the second of a
//! collapse while the encoder sent ~2,000, so the link stayed full of retransmissions of
//! packets the policer went on dropping, and the picture froze until the next key frame.
//! Here the media and the retransmissions share a token bucket of [`SHARE`] of the viewer's
//! link estimate that holds [`BURST`] of it: the media always goes (and takes its tokens), a
//! retransmission only when tokens are left; what is over is not sent (the viewer asks again,
//! or for a key frame). On a full link the media leaves nothing: retransmissions of packets a
//! policer drops again only prolong its collapse (with a budget of the whole estimate on top of
//! the media, 900–2,000 kbit/s of them went into a 1,000 kbit/s link in the second of a
//! collapse, and light loss grew into heavy loss).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Media and retransmissions together may take this share of the link estimate (the media
/// alone is sent at its video share, 85–95 % of it: the rest is the retransmissions')...
pub const SHARE: f64 = 1.2;
/// ...with a bucket of this much of it (a burst of lost packets is answered at once).
pub const BURST: Duration = Duration::from_millis(250);
/// The bucket holds at least this (a few full packets), whatever the estimate.
const MIN_BUCKET: f64 = 6000.0;

/// The payload types of the RTX streams (`a=rtpmap:<pt> rtx/<rate>`) in an SDP.
pub fn rtx_payload_types(sdp: &str) -> Vec<u8> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a=rtpmap:"))
        .filter_map(|rest| {
            let (pt, encoding) = rest.split_once(' ')?;
            let name = encoding.split('/').next()?;
            name.eq_ignore_ascii_case("rtx")
                .then(|| pt.parse::<u8>().ok())
                .flatten()
                .filter(|pt| *pt < 128)
        })
        .collect()
}

/// A token bucket in bytes.
#[derive(Debug, Default)]
pub struct Budget {
    tokens: f64,
    last: Option<Instant>,
}

impl Budget {
    /// Whether a retransmission of `bytes` may go at `now`, with the link estimate at
    /// `link_kbps`.
    pub fn allow(&mut self, now: Instant, bytes: usize, link_kbps: u32) -> bool {
        let cap = self.refill(now, link_kbps);
        let bytes = bytes as f64;
        let ok = self.tokens >= bytes;
        if ok {
            self.tokens -= bytes;
        }
        debug_assert!(self.tokens <= cap);
        ok
    }

    /// A media packet of `bytes` went at `now`: it takes its tokens (down to an empty bucket's
    /// worth below nothing, so a long overshoot is not owed for ever).
    pub fn spend(&mut self, now: Instant, bytes: usize, link_kbps: u32) {
        let cap = self.refill(now, link_kbps);
        self.tokens = (self.tokens - bytes as f64).max(-cap);
    }

    /// Adds the tokens since the last packet; the bucket's size.
    fn refill(&mut self, now: Instant, link_kbps: u32) -> f64 {
        let rate = f64::from(link_kbps) * 1000.0 / 8.0 * SHARE;
        let cap = (rate * BURST.as_secs_f64()).max(MIN_BUCKET);
        // A new bucket starts full.
        let refill = self.last.map_or(cap, |t| {
            rate * now.saturating_duration_since(t).as_secs_f64()
        });
        self.last = Some(now);
        self.tokens = (self.tokens + refill).min(cap);
        cap
    }
}

/// What the send path and the congestion tick share for one viewer.
#[derive(Debug, Default)]
pub struct Limiter {
    /// The RTX payload types, a bit each (0–127).
    pts: [AtomicU64; 2],
    /// The link estimate (kbit/s; 0: none yet, nothing is held back).
    pub link_kbps: AtomicU32,
    budget: Mutex<Budget>,
    /// Retransmitted bytes sent and dropped since the last window.
    pub sent_bytes: AtomicU64,
    pub dropped_bytes: AtomicU64,
}

impl Limiter {
    pub fn set_payload_types(&self, pts: &[u8]) {
        let mut bits = [0u64; 2];
        for pt in pts.iter().filter(|pt| **pt < 128) {
            bits[usize::from(pt / 64)] |= 1 << (pt % 64);
        }
        for (slot, b) in self.pts.iter().zip(bits) {
            slot.store(b, Ordering::Relaxed);
        }
    }

    fn is_rtx(&self, pt: u8) -> bool {
        pt < 128 && self.pts[usize::from(pt / 64)].load(Ordering::Relaxed) & (1 << (pt % 64)) != 0
    }

    /// Whether the RTP packet `rtp` (header and payload) may be sent at `now`: anything but a
    /// retransmission (it takes its share of the budget), and a retransmission within what is
    /// left of the budget.
    pub fn allow(&self, rtp: &[u8], now: Instant) -> bool {
        let Some(pt) = (rtp.len() >= 12 && rtp[0] >> 6 == 2).then(|| rtp[1] & 0x7f) else {
            return true;
        };
        let link = self.link_kbps.load(Ordering::Relaxed);
        if link == 0 {
            return true;
        }
        let mut budget = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        if !self.is_rtx(pt) {
            budget.spend(now, rtp.len(), link);
            return true;
        }
        let ok = budget.allow(now, rtp.len(), link);
        drop(budget);
        let counter = if ok {
            &self.sent_bytes
        } else {
            &self.dropped_bytes
        };
        counter.fetch_add(rtp.len() as u64, Ordering::Relaxed);
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtx_payload_types_are_read_from_the_sdp() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103\r\n\
                   a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
                   a=rtpmap:102 H264/90000\r\na=rtpmap:103 RTX/90000\r\n\
                   a=rtpmap:200 rtx/90000\r\na=rtpmap:x rtx/90000\r\n";
        assert_eq!(rtx_payload_types(sdp), vec![97, 103]);
    }

    /// Two seconds at 1,000 kbit/s from `t`: a retransmission of 1,200 bytes asked for every
    /// millisecond, and a media packet of `media` bytes every 10 ms (0: none); the bytes
    /// retransmitted.
    fn retransmitted(b: &mut Budget, t: Instant, media: usize) -> usize {
        let mut sent = 0;
        for ms in 0..2000u64 {
            let now = t + Duration::from_millis(ms);
            if media > 0 && ms % 10 == 0 {
                b.spend(now, media, 1000);
            }
            if b.allow(now, 1200, 1000) {
                sent += 1200;
            }
        }
        sent
    }

    #[test]
    fn retransmissions_get_a_share_of_the_link() {
        let mut b = Budget::default();
        // 1,000 kbit/s: 125,000 bytes a second, a bucket of a quarter of its share.
        let sent = retransmitted(&mut b, Instant::now(), 0);
        // Two seconds of asking for 2.4 MB: the bucket and 2 s of the link's share.
        let share = (SHARE * 125_000.0) as usize;
        let expected = share * 2 + share / 4;
        assert!(sent.abs_diff(expected) <= 2400, "{sent} against {expected}");
    }

    #[test]
    fn retransmissions_get_what_the_media_leaves() {
        let t = Instant::now();
        let mut b = Budget::default();
        // Media at 900 kbit/s (a 1,125-byte packet every 10 ms).
        let sent = retransmitted(&mut b, t, 1125);
        // The bucket and two seconds of what the media leaves of 1.2x the link.
        let left = ((SHARE - 0.9) * 125_000.0) as usize;
        let expected = left * 2 + (SHARE * 125_000.0 / 4.0) as usize;
        assert!(sent.abs_diff(expected) <= 2400, "{sent} against {expected}");
        // Media over the link leaves nothing, however long it lasts.
        let later = t + Duration::from_secs(10);
        for ms in 0..1000u64 {
            b.spend(later + Duration::from_millis(ms), 2000, 1000);
        }
        assert!(!b.allow(later + Duration::from_millis(1000), 1200, 1000));
    }

    #[test]
    fn only_rtx_packets_are_held_back() {
        let l = Limiter::default();
        l.set_payload_types(&[97, 127]);
        l.link_kbps.store(50, Ordering::Relaxed);
        let t = Instant::now();
        let mut rtx = vec![0x80, 97];
        rtx.resize(1200, 0);
        let mut media = rtx.clone();
        media[1] = 96 | 0x80;
        let sent = (0..20).filter(|_| l.allow(&rtx, t)).count();
        assert_eq!(sent, 5, "the minimum bucket: five packets at once");
        assert!((0..20).all(|_| l.allow(&media, t)), "media always goes");
        assert!(l.allow(&[1, 2, 3], t), "not RTP: not ours to judge");
        assert_eq!(l.dropped_bytes.load(Ordering::Relaxed), 15 * 1200);
        // No estimate yet: nothing held back.
        l.link_kbps.store(0, Ordering::Relaxed);
        assert!(l.allow(&rtx, t));
    }
}
