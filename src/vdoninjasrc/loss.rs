// SPDX-License-Identifier: MPL-2.0

//! After a lost AV1 packet: nothing until the next key frame, which is asked for at once.
//!
//! `rtpav1depay` (gst-plugins-rs 0.15) does not act on a gap in the packets: the frames after
//! a lost one, which refer to it, go on to the parser, the decoder and the file. In room
//! recordings of the web app on a loaded machine (the jitter buffer gave up on a few packets)
//! a file then had an inter frame written after seven lost ones, at which libaom stops the
//! whole file ("Corrupt frame"); on the live pads the picture breaks up until the sender's
//! next key frame, and browsers send none unless asked. The VP8 and H.264 depayloaders
//! handle a loss themselves. So the AV1 depayloader gets a guard on its sink pad: after a gap
//! in the sequence numbers (or a packet the jitter buffer marked discontinuous, after the
//! first), packets are dropped up to the first one of a key frame, and a key frame is asked
//! for (an upstream force-key-unit event, which webrtcbin's session sends as an RTCP PLI) at
//! once and every [`ASK_EVERY`] while it has not come: one lost request must not stop the
//! picture for good.
//!
//! [`Guard`] is the rule without I/O; [`attach`] puts it on a depayloader.

use std::time::{Duration, Instant};

use gst::prelude::*;

use super::CAT;

/// How often a key frame is asked for while one is awaited.
pub const ASK_EVERY: Duration = Duration::from_millis(500);

/// One received RTP packet, as the guard needs it.
#[derive(Debug, Clone, Copy)]
pub struct Packet {
    pub seq: u16,
    /// The jitter buffer marked it: packets before it were given up.
    pub discont: bool,
    /// It is the first packet of a key frame (see [`starts_key_frame`]).
    pub key: bool,
}

/// What becomes of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// The first packet after a wait: passes.
    Resume {
        dropped: u32,
    },
    /// Dropped; `ask` when a key frame should be asked for now.
    Drop {
        ask: bool,
        first: bool,
    },
}

/// The rule: see the module documentation. Times are offsets from any fixed instant.
#[derive(Debug, Default)]
pub struct Guard {
    next_seq: Option<u16>,
    waiting: bool,
    dropped: u32,
    asked: Option<Duration>,
}

impl Guard {
    pub fn packet(&mut self, p: Packet, now: Duration) -> Verdict {
        let gap = match self.next_seq {
            // The first packet: the jitter buffer marks it discontinuous anyway.
            None => false,
            Some(next) => {
                let ahead = p.seq.wrapping_sub(next) as i16;
                if ahead < 0 {
                    // Older than one already passed (the jitter buffer lets none through).
                    return Verdict::Drop {
                        ask: false,
                        first: false,
                    };
                }
                ahead > 0 || p.discont
            }
        };
        self.next_seq = Some(p.seq.wrapping_add(1));
        let first = gap && !self.waiting;
        if first {
            self.waiting = true;
            self.dropped = 0;
            self.asked = None;
        }
        if !self.waiting {
            return Verdict::Pass;
        }
        if p.key {
            self.waiting = false;
            return Verdict::Resume {
                dropped: self.dropped,
            };
        }
        self.dropped += 1;
        let ask = self
            .asked
            .is_none_or(|t| now.saturating_sub(t) >= ASK_EVERY);
        if ask {
            self.asked = Some(now);
        }
        Verdict::Drop { ask, first }
    }
}

/// Whether an AV1 RTP payload starts a key frame: the aggregation header's N bit ("first
/// packet of a coded video sequence"), or, from a sender that does not set it, a first OBU
/// that is a sequence header and not a continued fragment.
pub fn starts_key_frame(payload: &[u8]) -> bool {
    let Some(&aggregation) = payload.first() else {
        return false;
    };
    if aggregation & 0x08 != 0 {
        return true;
    }
    // Z: the first element continues an OBU of the previous packet.
    if aggregation & 0x80 != 0 {
        return false;
    }
    // W = 1: one element without a length field; otherwise the first element has one.
    let mut rest = &payload[1..];
    if (aggregation >> 4) & 0x03 != 1 {
        // A LEB128 length: bytes with the high bit set, then one without.
        let Some(end) = rest.iter().position(|b| b & 0x80 == 0) else {
            return false;
        };
        rest = &rest[end + 1..];
    }
    const OBU_SEQUENCE_HEADER: u8 = 1;
    rest.first()
        .is_some_and(|&h| (h >> 3) & 0x0f == OBU_SEQUENCE_HEADER)
}

/// Puts a [`Guard`] on the sink pad of `depay` (an `rtpav1depay`).
pub fn attach(depay: &gst::Element) {
    let Some(sink) = depay.static_pad("sink") else {
        return;
    };
    let guard = std::sync::Mutex::new(Guard::default());
    let start = Instant::now();
    sink.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(buffer) = info.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        let Ok(rtp) = gst_rtp::RTPBuffer::from_buffer_readable(buffer) else {
            // Not RTP: the depayloader says so itself.
            return gst::PadProbeReturn::Ok;
        };
        let packet = Packet {
            seq: rtp.seq(),
            discont: buffer.flags().contains(gst::BufferFlags::DISCONT),
            key: rtp.payload().is_ok_and(starts_key_frame),
        };
        drop(rtp);
        let mut guard = crate::common::lock(&guard);
        match guard.packet(packet, start.elapsed()) {
            Verdict::Pass => gst::PadProbeReturn::Ok,
            Verdict::Resume { dropped } => {
                gst::info!(
                    CAT,
                    obj = pad,
                    "a key frame at packet {}: {dropped} packets were dropped after the loss",
                    packet.seq
                );
                gst::PadProbeReturn::Ok
            }
            Verdict::Drop { ask, first } => {
                drop(guard);
                if first {
                    gst::info!(
                        CAT,
                        obj = pad,
                        "packets lost before {}: waiting for a key frame",
                        packet.seq
                    );
                }
                if ask {
                    // Upstream, from the streaming thread: webrtcbin's session sends the PLI
                    // from its own RTCP thread.
                    pad.push_event(crate::peer::force_key_unit());
                }
                crate::common::elements::DROP
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::super::rtp_testing::{av1_rtp, blocks, frames_of, pictures, record, run};
    use super::*;

    fn p(seq: u16, key: bool) -> Packet {
        Packet {
            seq,
            discont: false,
            key,
        }
    }

    const T0: Duration = Duration::ZERO;

    #[test]
    fn packets_in_order_pass() {
        let mut g = Guard::default();
        for seq in [65534, 65535, 0, 1] {
            assert_eq!(g.packet(p(seq, false), T0), Verdict::Pass);
        }
    }

    #[test]
    fn after_a_gap_nothing_passes_until_a_key_frame() {
        let mut g = Guard::default();
        assert_eq!(g.packet(p(10, false), T0), Verdict::Pass);
        assert_eq!(
            g.packet(p(12, false), T0),
            Verdict::Drop {
                ask: true,
                first: true
            }
        );
        assert_eq!(
            g.packet(p(13, false), T0),
            Verdict::Drop {
                ask: false,
                first: false
            }
        );
        assert_eq!(g.packet(p(14, true), T0), Verdict::Resume { dropped: 2 });
        assert_eq!(g.packet(p(15, false), T0), Verdict::Pass);
    }

    #[test]
    fn a_discontinuous_packet_after_the_first_is_a_loss() {
        let mut g = Guard::default();
        let first = Packet {
            seq: 1,
            discont: true,
            key: false,
        };
        assert_eq!(g.packet(first, T0), Verdict::Pass);
        let later = Packet { seq: 2, ..first };
        assert!(matches!(
            g.packet(later, T0),
            Verdict::Drop { ask: true, .. }
        ));
    }

    #[test]
    fn a_key_frame_is_asked_for_again_while_none_comes() {
        let mut g = Guard::default();
        g.packet(p(1, false), T0);
        let ask = |g: &mut Guard, seq, ms| match g.packet(p(seq, false), Duration::from_millis(ms))
        {
            Verdict::Drop { ask, .. } => ask,
            v => panic!("{v:?}"),
        };
        assert!(ask(&mut g, 3, 0));
        assert!(!ask(&mut g, 4, 499));
        assert!(ask(&mut g, 5, 500));
        assert!(!ask(&mut g, 6, 900));
        assert!(ask(&mut g, 7, 1000));
    }

    #[test]
    fn a_gap_while_waiting_changes_nothing() {
        let mut g = Guard::default();
        g.packet(p(1, false), T0);
        g.packet(p(3, false), T0);
        assert_eq!(
            g.packet(p(9, false), Duration::from_millis(10)),
            Verdict::Drop {
                ask: false,
                first: false
            }
        );
        assert_eq!(g.packet(p(10, true), T0), Verdict::Resume { dropped: 2 });
    }

    #[test]
    fn an_older_packet_is_dropped_without_a_wait() {
        let mut g = Guard::default();
        g.packet(p(5, false), T0);
        assert!(matches!(
            g.packet(p(4, false), T0),
            Verdict::Drop { ask: false, .. }
        ));
        assert_eq!(g.packet(p(6, false), T0), Verdict::Pass);
    }

    #[test]
    fn key_frames_are_known_by_the_n_bit_or_a_sequence_header() {
        // N set.
        assert!(starts_key_frame(&[0b0001_1000, 0x0a, 0x0b]));
        // W = 2, no N: a length, then the OBU header of a sequence header (type 1).
        assert!(starts_key_frame(&[0b0010_0000, 0x0b, 1 << 3, 0, 0]));
        // A long length (two LEB128 bytes).
        assert!(starts_key_frame(&[0b0000_0000, 0x81, 0x01, 1 << 3]));
        // W = 1: no length.
        assert!(starts_key_frame(&[0b0001_0000, 1 << 3, 0]));
        // A frame OBU (type 6) is not.
        assert!(!starts_key_frame(&[0b0001_0000, 6 << 3, 0]));
        // A continued fragment is not, whatever its bytes.
        assert!(!starts_key_frame(&[0b1001_0000, 1 << 3, 0]));
        assert!(!starts_key_frame(&[]));
        assert!(!starts_key_frame(&[0b0010_0000, 0x80]));
    }

    /// What the depayloader makes of `packets`: the time stamps of its buffers, and how many
    /// key frames it asked for.
    fn depayloaded(
        caps: &gst::Caps,
        packets: &[gst::Buffer],
        guarded: bool,
    ) -> (Vec<gst::ClockTime>, u32) {
        let (_, buffers, asked) = run(
            "appsrc name=src ! rtpav1depay name=depay ! appsink name=out sync=false",
            Some((caps, packets, guarded)),
        );
        (buffers.iter().filter_map(|b| b.pts()).collect(), asked)
    }

    #[test]
    fn after_a_lost_packet_no_frame_passes_until_a_key_frame() {
        let (caps, packets) = av1_rtp();
        let frames = frames_of(&packets);
        let key = |r: &std::ops::Range<usize>| {
            let rtp = gst_rtp::RTPBuffer::from_buffer_readable(&packets[r.start]).expect("rtp");
            starts_key_frame(rtp.payload().expect("payload"))
        };
        let keys: Vec<usize> = (0..frames.len()).filter(|&i| key(&frames[i])).collect();
        assert!(keys.len() >= 2 && keys[0] == 0, "key frames at {keys:?}");
        // The middle packet of an inter frame of three packets or more is lost.
        let lost_frame = (5..keys[1])
            .find(|&i| frames[i].len() >= 3)
            .expect("an inter frame of three packets");
        let lost = frames[lost_frame].start + frames[lost_frame].len() / 2;
        let mut received: Vec<gst::Buffer> = packets.clone();
        received.remove(lost);
        // As the jitter buffer gives them after a loss.
        received[lost]
            .make_mut()
            .set_flags(gst::BufferFlags::DISCONT);
        let pts = |i: usize| packets[frames[i].start].pts().expect("pts");
        let broken = pts(lost_frame)..pts(keys[1]);

        // Unguarded, the frames after the lost one, which refer to it, go on (else this test
        // could not fail).
        let (out, _) = depayloaded(&caps, &received, false);
        assert!(out.iter().any(|t| *t > broken.start && broken.contains(t)));

        let (out, asked) = depayloaded(&caps, &received, true);
        assert!(
            out.iter().all(|t| !broken.contains(t)),
            "frames from {broken:?} passed"
        );
        let wanted: Vec<_> = (0..frames.len())
            .map(pts)
            .filter(|t| !broken.contains(t))
            .collect();
        assert!(wanted.iter().all(|t| out.contains(t)), "a frame is missing");
        assert!(asked >= 1, "a key frame was asked for");

        // Recorded, the file decodes: every frame before the loss and from the key frame on.
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("r.mkv");
        record(&caps, &received, true, &file);
        assert_eq!(
            (blocks(&file), pictures(&file)),
            (wanted.len(), wanted.len())
        );
    }
}
