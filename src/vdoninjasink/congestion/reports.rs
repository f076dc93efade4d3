// SPDX-License-Identifier: MPL-2.0

//! The report blocks of a compound RTCP packet (RFC 3550 §6.4; sans-IO): what a viewer says of
//! each stream we send it, in particular the fraction of packets lost since its last report.
//!
//! The loss fallback reads them as they arrive (the RTP session's `on-receiving-rtcp`), not from
//! webrtcbin 1.22's statistics: those keep one report block per remote source, and under loss
//! the one kept stayed stale for 15 s and more (measured behind a 1,000 kbit/s policer).

/// One report block: about our stream `ssrc`, the fraction lost (0–255 of 256) since the
/// previous report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
}

impl ReportBlock {
    pub fn loss(&self) -> f64 {
        f64::from(self.fraction_lost) / 256.0
    }
}

const SR: u8 = 200;
const RR: u8 = 201;
/// Transport-layer feedback; format 1 is the generic NACK (RFC 4585 §6.2.1).
const RTPFB: u8 = 205;
const GENERIC_NACK: u8 = 1;

/// The packets of a compound RTCP packet: (the header's count or format field, packet type,
/// the whole packet). A malformed header ends it; what came before it is kept.
fn packets(rtcp: &[u8]) -> impl Iterator<Item = (u8, u8, &[u8])> {
    let mut rest = rtcp;
    std::iter::from_fn(move || {
        if rest.len() < 4 {
            return None;
        }
        let version = rest[0] >> 6;
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        if version != 2 || len > rest.len() {
            return None;
        }
        let (packet, next) = rest.split_at(len);
        rest = next;
        Some((packet[0] & 0x1f, packet[1], packet))
    })
}

/// The packets the generic NACKs in `rtcp` ask for again, as (media SSRC, sequence number):
/// each entry names one packet and up to 16 after it. Under loss a GStreamer receiver sends
/// these at once and its receiver reports late or not at all (behind a 1,000 kbit/s policer
/// none came in 30 s), so they are what tells the loss in time. A packet may be asked for more
/// than once: the caller counts each once.
pub fn nacked(rtcp: &[u8]) -> impl Iterator<Item = (u32, u16)> + '_ {
    packets(rtcp)
        .filter(|(format, packet_type, p)| {
            *packet_type == RTPFB && *format == GENERIC_NACK && p.len() >= 12
        })
        .flat_map(|(_, _, p)| {
            // Header, sender SSRC, media SSRC; then (packet ID, bitmask of the 16 after it).
            let media = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
            p[12..].chunks_exact(4).flat_map(move |fci| {
                let pid = u16::from_be_bytes([fci[0], fci[1]]);
                let blp = u16::from_be_bytes([fci[2], fci[3]]);
                std::iter::once(pid)
                    .chain(
                        (0..16u16)
                            .filter(move |b| blp & (1 << b) != 0)
                            .map(move |b| pid.wrapping_add(b + 1)),
                    )
                    .map(move |seq| (media, seq))
            })
        })
}

/// The report blocks of every sender and receiver report in `rtcp`; other packet types are
/// skipped.
pub fn report_blocks(rtcp: &[u8]) -> impl Iterator<Item = ReportBlock> + '_ {
    packets(rtcp).flat_map(|(count, packet_type, p)| {
        // Header and sender SSRC (8 bytes), then a sender report's 20 bytes of sender info.
        let blocks_at = match packet_type {
            SR => 28,
            RR => 8,
            _ => p.len(),
        };
        p.get(blocks_at..)
            .unwrap_or_default()
            .chunks_exact(24)
            .take(usize::from(count))
            .map(|b| ReportBlock {
                ssrc: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                fraction_lost: b[4],
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(rtcp: &[u8]) -> Vec<ReportBlock> {
        report_blocks(rtcp).collect()
    }

    fn nacks(rtcp: &[u8]) -> Vec<(u32, u16)> {
        nacked(rtcp).collect()
    }

    /// A receiver report from `sender` with one block per (ssrc, fraction lost).
    fn rr(sender: u32, blocks: &[(u32, u8)]) -> Vec<u8> {
        let words = 1 + 6 * blocks.len();
        let mut p = vec![0x80 | blocks.len() as u8, RR];
        p.extend_from_slice(&(words as u16).to_be_bytes());
        p.extend_from_slice(&sender.to_be_bytes());
        for (ssrc, lost) in blocks {
            p.extend_from_slice(&ssrc.to_be_bytes());
            p.push(*lost);
            p.extend_from_slice(&[0; 19]);
        }
        p
    }

    #[test]
    fn blocks_of_a_compound_packet_are_read() {
        let mut compound = rr(7, &[(0xaaaa, 64), (0xbbbb, 0)]);
        // An SDES after it (skipped): header, SSRC, CNAME item, padding to a word.
        compound.extend_from_slice(&[0x81, 202, 0, 2, 0, 0, 0, 7, 1, 1, b'x', 0]);
        assert_eq!(
            blocks(&compound),
            vec![
                ReportBlock {
                    ssrc: 0xaaaa,
                    fraction_lost: 64
                },
                ReportBlock {
                    ssrc: 0xbbbb,
                    fraction_lost: 0
                },
            ]
        );
        assert_eq!(blocks(&compound)[0].loss(), 0.25);
    }

    #[test]
    fn a_sender_reports_blocks_follow_its_sender_info() {
        let mut sr = vec![0x81, SR, 0, 12];
        sr.extend_from_slice(&7u32.to_be_bytes());
        sr.extend_from_slice(&[0; 20]);
        sr.extend_from_slice(&0xccccu32.to_be_bytes());
        sr.push(128);
        sr.extend_from_slice(&[0; 19]);
        assert_eq!(
            blocks(&sr),
            vec![ReportBlock {
                ssrc: 0xcccc,
                fraction_lost: 128
            }]
        );
    }

    #[test]
    fn nacks_count_the_packets_they_ask_for() {
        // Generic NACK: two entries, the second with two more packets in its bitmask.
        let mut p = vec![0x81, RTPFB, 0, 4];
        p.extend_from_slice(&7u32.to_be_bytes());
        p.extend_from_slice(&0xaaaau32.to_be_bytes());
        p.extend_from_slice(&[0, 10, 0, 0, 0xff, 0xff, 0b0000_0000, 0b0000_0101]);
        assert_eq!(
            nacks(&p),
            vec![(0xaaaa, 10), (0xaaaa, 0xffff), (0xaaaa, 0), (0xaaaa, 2)],
            "the bitmask counts on from the packet ID, across the wrap"
        );
        // A transport-wide feedback (format 15) and a receiver report ask for nothing.
        let mut twcc = p.clone();
        twcc[0] = 0x8f;
        assert!(nacks(&twcc).is_empty());
        assert!(nacks(&rr(7, &[(1, 10)])).is_empty());
        let mut both = rr(7, &[(1, 10)]);
        both.extend_from_slice(&p);
        assert_eq!(nacks(&both).len(), 4);
    }

    #[test]
    fn malformed_input_gives_what_came_before_it() {
        assert!(blocks(&[]).is_empty());
        assert!(
            blocks(&[0x81, RR, 0xff, 0xff]).is_empty(),
            "length past the end"
        );
        let mut p = rr(7, &[(1, 10)]);
        p.extend_from_slice(&[0x40, RR, 0, 0]);
        assert_eq!(blocks(&p).len(), 1, "a version-1 header stops the reading");
        // A count larger than the blocks present reads the ones there are.
        let mut short = rr(7, &[(1, 10)]);
        short[0] = 0x85;
        assert_eq!(blocks(&short).len(), 1);
    }
}
