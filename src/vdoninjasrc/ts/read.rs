// SPDX-License-Identifier: MPL-2.0

//! Reads what a reader of the room stream will see: which elementary streams the PMTs
//! announce (ISO/IEC 13818-1 §2.4.4), and where H.264 key frames start. Sans-IO: fed the
//! muxer's output bytes, it reports [`TsEvent`]s.

use std::collections::{HashMap, HashSet};

const PACKET: usize = 188;
const SYNC: u8 = 0x47;
const PAT_PID: u16 = 0;
const TABLE_PAT: u8 = 0x00;
const TABLE_PMT: u8 = 0x02;
const STREAM_TYPE_H264: u8 = 0x1b;
/// PSI sections are at most 1024 bytes after the length field.
const MAX_SECTION: usize = 3 + 1021;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TsEvent {
    /// A PMT listing these elementary PIDs (sorted).
    Pmt(Vec<u16>),
    /// An H.264 key frame starts on this PID.
    KeyFrame(u16),
}

/// Reads a transport stream (188-byte packets, aligned as muxers write them; a packet cut
/// across two buffers is skipped).
#[derive(Debug, Default)]
pub struct TsReader {
    pmt_pids: HashSet<u16>,
    /// H.264 streams, as the last PMT lists them.
    h264: HashSet<u16>,
    /// Sections being gathered, by PID (a section may span packets).
    partial: HashMap<u16, Vec<u8>>,
}

impl TsReader {
    /// Feeds muxer output.
    pub fn feed(&mut self, data: &[u8]) -> Vec<TsEvent> {
        let mut events = Vec::new();
        for packet in data.chunks_exact(PACKET) {
            if self.key_frame_starts(packet) {
                let pid = (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2]);
                events.push(TsEvent::KeyFrame(pid));
            } else if let Some(section) = self.gather(packet)
                && let Some(mut pids) = self.read_section(&section)
            {
                pids.sort_unstable();
                pids.dedup();
                events.push(TsEvent::Pmt(pids));
            }
        }
        events
    }

    /// Whether `p` starts a PES packet of an H.264 stream holding a key frame.
    fn key_frame_starts(&self, p: &[u8]) -> bool {
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        if p[0] != SYNC || p[1] & 0x40 == 0 || !self.h264.contains(&pid) {
            return false;
        }
        let control = (p[3] >> 4) & 0x3;
        let mut at = 4;
        if control & 0x2 != 0 {
            at += 1 + usize::from(p[4]);
        }
        // PES: start code (3), stream id, length (2), flags (2), header length, header.
        let Some(pes) = p.get(at..) else {
            return false;
        };
        if control & 0x1 == 0 || pes.len() < 9 || pes[..3] != [0, 0, 1] {
            return false;
        }
        pes.get(9 + usize::from(pes[8])..)
            .is_some_and(|es| crate::common::codec::h264_key_frame(es) == Some(true))
    }

    /// Adds a packet to its PID's section; returns the section once complete.
    fn gather(&mut self, p: &[u8]) -> Option<Vec<u8>> {
        if p[0] != SYNC || p[1] & 0x80 != 0 {
            return None; // lost sync or transport error
        }
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        if pid != PAT_PID && !self.pmt_pids.contains(&pid) {
            return None;
        }
        let start = p[1] & 0x40 != 0;
        let control = (p[3] >> 4) & 0x3;
        if control & 0x1 == 0 {
            return None; // no payload
        }
        let mut at = 4;
        if control & 0x2 != 0 {
            at += 1 + usize::from(p[4]);
        }
        let payload = p.get(at..)?;
        let section = if start {
            let pointer = usize::from(*payload.first()?);
            let body = payload.get(1 + pointer..)?;
            self.partial.insert(pid, body.to_vec());
            self.partial.get_mut(&pid)?
        } else {
            let s = self.partial.get_mut(&pid)?;
            s.extend_from_slice(payload);
            s
        };
        let length =
            3 + ((usize::from(*section.get(1)? & 0x0f) << 8) | usize::from(*section.get(2)?));
        if length > MAX_SECTION {
            self.partial.remove(&pid);
            return None;
        }
        if section.len() < length {
            return None;
        }
        let mut done = self.partial.remove(&pid)?;
        done.truncate(length);
        Some(done)
    }

    /// Reads a PAT (learning the PMT PIDs) or a PMT (returning its elementary PIDs).
    fn read_section(&mut self, s: &[u8]) -> Option<Vec<u16>> {
        // table_id(1) length(2) id(2) version(1) section(1) last(1) … CRC(4)
        let body = s.get(8..s.len().saturating_sub(4))?;
        match s[0] {
            TABLE_PAT => {
                for entry in body.chunks_exact(4) {
                    let program = u16::from_be_bytes([entry[0], entry[1]]);
                    if program != 0 {
                        // (program 0 names the network PID, not a PMT)
                        self.pmt_pids
                            .insert((u16::from(entry[2] & 0x1f) << 8) | u16::from(entry[3]));
                    }
                }
                None
            }
            TABLE_PMT => {
                // PCR PID(2), program info length(2), descriptors, then the streams.
                let &[_, _, hi, lo] = body.get(..4)? else {
                    return None;
                };
                let mut at = 4 + ((usize::from(hi & 0x0f) << 8) | usize::from(lo));
                let mut listed = Vec::new();
                self.h264.clear();
                while let Some(&[kind, p_hi, p_lo, i_hi, i_lo]) = body.get(at..at + 5) {
                    let pid = (u16::from(p_hi & 0x1f) << 8) | u16::from(p_lo);
                    listed.push(pid);
                    if kind == STREAM_TYPE_H264 {
                        self.h264.insert(pid);
                    }
                    at += 5 + ((usize::from(i_hi & 0x0f) << 8) | usize::from(i_lo));
                }
                Some(listed)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet of `pid` carrying `section` (which must fit).
    fn packet(pid: u16, section: &[u8]) -> Vec<u8> {
        let mut p = vec![SYNC, 0x40 | (pid >> 8) as u8, pid as u8, 0x10, 0x00];
        p.extend_from_slice(section);
        p.resize(PACKET, 0xff);
        p
    }

    fn section(table: u8, body: &[u8]) -> Vec<u8> {
        let length = 5 + body.len() + 4;
        let mut s = vec![
            table,
            0xb0 | (length >> 8) as u8,
            length as u8,
            0,
            1,
            0xc1,
            0,
            0,
        ];
        s.extend_from_slice(body);
        s.extend_from_slice(&[0; 4]); // CRC (not checked)
        s
    }

    fn pat(pmt: u16) -> Vec<u8> {
        packet(
            0,
            &section(TABLE_PAT, &[0, 1, 0xe0 | (pmt >> 8) as u8, pmt as u8]),
        )
    }

    fn pmt(pmt_pid: u16, streams: &[(u8, u16)]) -> Vec<u8> {
        let mut body = vec![0xe0, 0x41, 0xf0, 0x00];
        for &(kind, pid) in streams {
            body.extend_from_slice(&[kind, 0xe0 | (pid >> 8) as u8, pid as u8, 0xf0, 0x00]);
        }
        packet(pmt_pid, &section(TABLE_PMT, &body))
    }

    #[test]
    fn lists_the_streams_of_the_pmt_the_pat_names() {
        let mut r = TsReader::default();
        let mut ts = pat(0x20);
        ts.extend(pmt(0x20, &[(6, 0x41), (27, 0x42)]));
        assert_eq!(r.feed(&ts), vec![TsEvent::Pmt(vec![0x41, 0x42])]);
        // A newer PMT with a third stream, in a later buffer.
        assert_eq!(
            r.feed(&pmt(0x20, &[(6, 0x41), (27, 0x42), (27, 0x43)])),
            vec![TsEvent::Pmt(vec![0x41, 0x42, 0x43])]
        );
    }

    #[test]
    fn ignores_a_pmt_before_its_pat_and_other_pids() {
        let mut r = TsReader::default();
        assert!(r.feed(&pmt(0x20, &[(27, 0x42)])).is_empty());
        let mut ts = pat(0x20);
        ts.extend(pmt(0x30, &[(27, 0x42)]));
        assert!(r.feed(&ts).is_empty());
        assert_eq!(
            r.feed(&pmt(0x20, &[])),
            vec![TsEvent::Pmt(vec![])],
            "an empty program"
        );
    }

    #[test]
    fn reads_a_pmt_spanning_two_packets() {
        let mut r = TsReader::default();
        r.feed(&pat(0x20));
        let streams: Vec<(u8, u16)> = (0..40).map(|i| (27, 0x41 + i)).collect();
        let mut body = vec![0xe0, 0x41, 0xf0, 0x00];
        for &(kind, pid) in &streams {
            body.extend_from_slice(&[kind, 0xe0 | (pid >> 8) as u8, pid as u8, 0xf0, 0x00]);
        }
        let s = section(TABLE_PMT, &body);
        let first = packet(0x20, &s[..183]);
        let mut second = vec![SYNC, 0x00, 0x20, 0x11];
        second.extend_from_slice(&s[183..]);
        second.resize(PACKET, 0xff);
        assert!(r.feed(&first).is_empty());
        let events = r.feed(&second);
        assert!(
            matches!(&events[..], [TsEvent::Pmt(p)] if p.len() == 40),
            "{events:?}"
        );
    }

    /// The first packet of a PES packet on `pid` carrying `es`.
    fn pes(pid: u16, es: &[u8]) -> Vec<u8> {
        let mut p = vec![SYNC, 0x40 | (pid >> 8) as u8, pid as u8, 0x10];
        p.extend_from_slice(&[0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1]);
        p.extend_from_slice(es);
        p.resize(PACKET, 0xff);
        p
    }

    #[test]
    fn finds_where_h264_key_frames_start() {
        let mut r = TsReader::default();
        let idr = [
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x65,
        ];
        let delta = [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x41, 0x9a];
        assert!(r.feed(&pes(0x42, &idr)).is_empty(), "not listed yet");
        let mut ts = pat(0x20);
        ts.extend(pmt(0x20, &[(6, 0x41), (27, 0x42)]));
        r.feed(&ts);
        assert_eq!(r.feed(&pes(0x42, &idr)), vec![TsEvent::KeyFrame(0x42)]);
        assert!(r.feed(&pes(0x42, &delta)).is_empty());
        assert!(r.feed(&pes(0x41, &idr)).is_empty(), "not an H.264 stream");
        let mut cont = pes(0x42, &idr);
        cont[1] &= !0x40; // a continuation packet
        assert!(r.feed(&cont).is_empty());
    }

    #[test]
    fn survives_garbage() {
        let mut r = TsReader::default();
        r.feed(&pat(0x20));
        let mut junk = vec![0u8; PACKET * 3];
        junk[0] = SYNC;
        junk[1] = 0x40;
        junk[2] = 0x20;
        junk[3] = 0x30;
        junk[4] = 0xff; // adaptation field longer than the packet
        assert!(r.feed(&junk).is_empty());
        let mut bad = pmt(0x20, &[(27, 0x42)]);
        bad[6] = 0xff; // section length far past the packet
        bad[7] = 0xff;
        assert!(r.feed(&bad).is_empty());
        assert!(r.feed(&[SYNC; 100]).is_empty());
    }
}
