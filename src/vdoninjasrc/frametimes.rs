// SPDX-License-Identifier: MPL-2.0

//! Each received frame a time of its own.
//!
//! After the machine stalls (a loaded 2-core box running two browsers), webrtcbin's jitter
//! buffer lets the waiting packets go at once and gives several frames the same time stamp,
//! since its times never go back. The parsers after the depayloader (`av1parse`, `h264parse`,
//! `opusparse`: GstBaseParse) time only the first frame of a run of equal time stamps and
//! leave the others untimed, and `matroskamux` drops untimed buffers ("Invalid buffer
//! timestamp; dropping buffer"): a recording lost the frames of the run, and the next frame,
//! which refers to them, stopped libaom on the whole file. So on the depayloader's sink pad
//! every packet of a new frame (a new RTP time stamp) gets a time after the previous frame's,
//! [`STEP`] after it when the jitter buffer gave it no later one, and the packets of one frame
//! keep one time.
//!
//! [`FrameTimes`] is the rule without I/O; [`attach`] puts it on a depayloader.

use gst::prelude::*;

/// How far after the previous frame a frame whose time stamp did not move is put: a
/// millisecond, Matroska's time unit.
pub const STEP: gst::ClockTime = gst::ClockTime::from_mseconds(1);

/// The rule: see the module documentation.
#[derive(Debug, Default)]
pub struct FrameTimes {
    /// The last frame's RTP time stamp and the time it was given.
    last: Option<(u32, gst::ClockTime)>,
}

impl FrameTimes {
    /// The time for a packet of RTP time stamp `rtp_time` that came with `pts`.
    pub fn time(&mut self, rtp_time: u32, pts: gst::ClockTime) -> gst::ClockTime {
        let time = match self.last {
            Some((last_rtp, last)) if last_rtp == rtp_time => last,
            Some((_, last)) if pts <= last => last + STEP,
            _ => pts,
        };
        self.last = Some((rtp_time, time));
        time
    }
}

/// Puts [`FrameTimes`] on the sink pad of `depay`.
pub fn attach(depay: &gst::Element) {
    let Some(sink) = depay.static_pad("sink") else {
        return;
    };
    let times = std::sync::Mutex::new(FrameTimes::default());
    sink.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(gst::PadProbeData::Buffer(buffer)) = &mut info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(pts) = buffer.pts() else {
            return gst::PadProbeReturn::Ok;
        };
        let Ok(rtp_time) = gst_rtp::RTPBuffer::from_buffer_readable(buffer).map(|r| r.timestamp())
        else {
            return gst::PadProbeReturn::Ok;
        };
        let time = crate::common::lock(&times).time(rtp_time, pts);
        if time != pts {
            buffer.make_mut().set_pts(time);
        }
        gst::PadProbeReturn::Ok
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> gst::ClockTime {
        gst::ClockTime::from_mseconds(n)
    }

    #[test]
    fn times_that_move_are_kept() {
        let mut t = FrameTimes::default();
        assert_eq!(t.time(100, ms(10)), ms(10));
        assert_eq!(t.time(100, ms(10)), ms(10));
        assert_eq!(t.time(3100, ms(43)), ms(43));
    }

    #[test]
    fn frames_let_go_at_once_get_times_of_their_own() {
        let mut t = FrameTimes::default();
        assert_eq!(t.time(100, ms(500)), ms(500));
        // Three frames after a stall, all at 500 ms (two packets for the second).
        assert_eq!(t.time(3100, ms(500)), ms(501));
        assert_eq!(t.time(6100, ms(500)), ms(502));
        assert_eq!(t.time(6100, ms(500)), ms(502));
        assert_eq!(t.time(9100, ms(500)), ms(503));
        // Back to times that move.
        assert_eq!(t.time(12100, ms(533)), ms(533));
    }

    #[test]
    fn a_time_that_goes_back_goes_after_the_last() {
        let mut t = FrameTimes::default();
        t.time(100, ms(500));
        assert_eq!(t.time(3100, ms(480)), ms(501));
    }

    #[test]
    fn rtp_time_stamps_wrap() {
        let mut t = FrameTimes::default();
        t.time(u32::MAX - 10, ms(500));
        assert_eq!(t.time(2990, ms(500)), ms(501));
    }

    #[test]
    fn frames_of_one_time_stamp_are_all_recorded() {
        use super::super::rtp_testing::{av1_rtp, blocks, frames_of, pictures, record};
        let (caps, packets) = av1_rtp();
        let frames = frames_of(&packets);
        // Four frames let go at once, as after a stall.
        let mut received = packets.clone();
        let at = packets[frames[10].start].pts();
        for f in &frames[10..14] {
            for p in f.clone() {
                received[p].make_mut().set_pts(at);
            }
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("r.mkv");
        // Unguarded, matroskamux drops three of them (else this test could not fail).
        record(&caps, &received, false, &file);
        assert_eq!(blocks(&file), frames.len() - 3);

        record(&caps, &received, true, &file);
        assert_eq!(
            (blocks(&file), pictures(&file)),
            (frames.len(), frames.len())
        );
    }
}
