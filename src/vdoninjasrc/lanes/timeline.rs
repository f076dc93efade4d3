// SPDX-License-Identifier: MPL-2.0

//! Where a guest's audio goes in its aligned file, in samples from the recording's start. No
//! GStreamer here: the lane feeds it each decoded buffer's position and length and writes what
//! it says (silence first, then the buffer without its first `skip` samples).
//!
//! Decoded audio is contiguous (the decoder conceals lost packets), so a buffer goes where the
//! file ends. Its time stamp moves it only when the difference is real: beyond [`GAP_MS`] at
//! once (the guest joined late, left and came back, or sent nothing while silent), and below
//! that once the difference, averaged over about half a second, passes [`TOLERANCE_MS`] (the
//! sender's clock drifting from ours, or a stretch without concealment). A single late time
//! stamp (a scheduling hiccup) moves nothing.

/// A difference between a buffer's time stamp and the file's end larger than this is a gap
/// (or an overlap) and is honoured at once.
pub const GAP_MS: i64 = 60;
/// The averaged difference the file may drift from the time stamps before it is corrected.
pub const TOLERANCE_MS: f64 = 5.0;
/// The average's weight of each new buffer (about 25 buffers of 20 ms: half a second).
const SMOOTHING: f64 = 0.04;

/// What to write for one buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Samples of silence to write before the buffer.
    pub silence: u64,
    /// Samples to drop at the buffer's start (already covered).
    pub skip: u64,
}

/// One file's timeline.
#[derive(Debug, Clone)]
pub struct Timeline {
    rate: u64,
    written: u64,
    /// Averaged (time stamp − file end), in samples.
    drift: f64,
}

impl Timeline {
    pub fn new(rate: u32) -> Self {
        Self {
            rate: u64::from(rate.max(1)),
            written: 0,
            drift: 0.0,
        }
    }

    /// Samples written so far (the file's length).
    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// The sample position of a time (nanoseconds) from the recording's start.
    pub fn sample_at(&self, nanos: u64) -> u64 {
        ((u128::from(nanos) * u128::from(self.rate) + 500_000_000) / 1_000_000_000) as u64
    }

    /// The time (nanoseconds) of a sample position.
    pub fn time_of(&self, sample: u64) -> u64 {
        (u128::from(sample) * 1_000_000_000 / u128::from(self.rate)) as u64
    }

    /// Places `len` samples that belong at sample `at`.
    pub fn place(&mut self, at: u64, len: u64) -> Placement {
        let d = at as i64 - self.written as i64;
        let gap = self.rate as i64 * GAP_MS / 1000;
        let correction = if d.abs() > gap {
            self.drift = 0.0;
            d
        } else {
            self.drift += SMOOTHING * (d as f64 - self.drift);
            if self.drift.abs() > self.rate as f64 * TOLERANCE_MS / 1000.0 {
                let c = self.drift.round() as i64;
                self.drift = 0.0;
                c
            } else {
                0
            }
        };
        let p = if correction > 0 {
            Placement {
                silence: correction as u64,
                skip: 0,
            }
        } else {
            Placement {
                silence: 0,
                skip: correction.unsigned_abs().min(len),
            }
        };
        self.written += p.silence + (len - p.skip);
        p
    }

    /// Silence that makes the file `end` samples long (none if it is already that long).
    pub fn pad_to(&mut self, end: u64) -> u64 {
        let silence = end.saturating_sub(self.written);
        self.written += silence;
        silence
    }
}

/// A jump in a run's time stamps larger than this is a real gap (a packet the jitter buffer
/// gave up on), not the time stamps settling (they move by a few milliseconds per buffer).
pub const JUMP_MS: u64 = 10;

/// Where each buffer of a run goes, given each one's position from its time stamp and its
/// length. The newest time stamp is trusted (a connection's first time stamps start late and
/// settle, moving earlier); going back from it, each buffer ends where the next begins, except
/// across a forward jump of more than [`JUMP_MS`] (a missing stretch), which is kept.
pub fn run_positions(rate: u32, buffers: &[(i64, u64)]) -> Vec<i64> {
    let jump = i64::from(rate) * JUMP_MS as i64 / 1000;
    let mut out = vec![0i64; buffers.len()];
    let Some(&(last_at, _)) = buffers.last() else {
        return out;
    };
    let n = buffers.len();
    out[n - 1] = last_at;
    for k in (0..n - 1).rev() {
        let (at, len) = buffers[k];
        let (next_at, _) = buffers[k + 1];
        let d = next_at - at - len as i64;
        // Settling only ever moves time stamps earlier; a later one is a missing stretch.
        let gap = if d > jump { d } else { 0 };
        out[k] = out[k + 1] - len as i64 - gap;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 48_000;

    #[test]
    fn a_late_guest_starts_with_silence_up_to_its_join() {
        let mut t = Timeline::new(RATE);
        let at = t.sample_at(3_250_000_000);
        assert_eq!(at, 156_000);
        let p = t.place(at, 960);
        assert_eq!(
            p,
            Placement {
                silence: 156_000,
                skip: 0
            }
        );
        assert_eq!(t.written(), 156_960);
    }

    #[test]
    fn jitter_and_a_single_late_time_stamp_move_nothing() {
        let mut t = Timeline::new(RATE);
        t.place(0, 960);
        // 1 ms late, 2 ms early, then one 25 ms late (a hiccup), then on time again.
        assert_eq!(
            t.place(960 + 48, 960),
            Placement {
                silence: 0,
                skip: 0
            }
        );
        assert_eq!(
            t.place(1920 - 96, 960),
            Placement {
                silence: 0,
                skip: 0
            }
        );
        assert_eq!(
            t.place(2880 + 1200, 960),
            Placement {
                silence: 0,
                skip: 0
            }
        );
        for k in 4..40 {
            assert_eq!(
                t.place(k * 960, 960),
                Placement {
                    silence: 0,
                    skip: 0
                }
            );
        }
        assert_eq!(t.written(), 40 * 960);
    }

    #[test]
    fn a_steady_difference_is_corrected_once_averaged() {
        let mut t = Timeline::new(RATE);
        t.place(0, 960);
        // From here on the time stamps say 20 ms (960 samples) later: a lost packet that was
        // not concealed.
        let mut silence = 0;
        let mut buffers = 0;
        for k in 2..30 {
            let p = t.place(k * 960, 960);
            assert_eq!(p.skip, 0);
            silence += p.silence;
            if silence == 0 {
                buffers += 1;
            }
        }
        assert!(silence > 240 && silence <= 960, "{silence}");
        assert!(buffers <= 10, "corrected after {buffers} buffers");
    }

    #[test]
    fn a_gap_is_silence_and_an_overlap_is_dropped() {
        let mut t = Timeline::new(RATE);
        t.place(0, 48_000);
        // Away for 2 s, then back.
        let p = t.place(144_000, 960);
        assert_eq!(
            p,
            Placement {
                silence: 96_000,
                skip: 0
            }
        );
        // 100 ms of it again (a second connection overlapping the first).
        let p = t.place(144_960 - 4_800, 9_600);
        assert_eq!(
            p,
            Placement {
                silence: 0,
                skip: 4_800
            }
        );
        assert_eq!(t.written(), 144_960 + 4_800);
        // Wholly inside what is written: nothing of it is kept.
        let p = t.place(1000, 960);
        assert_eq!(
            p,
            Placement {
                silence: 0,
                skip: 960
            }
        );
        assert_eq!(t.written(), 149_760);
    }

    #[test]
    fn every_file_ends_at_the_same_sample() {
        let mut a = Timeline::new(RATE);
        let mut b = Timeline::new(RATE);
        a.place(0, 100_000);
        b.place(50_000, 10_000);
        let end = a.written().max(b.written()).max(a.sample_at(2_500_000_000));
        a.pad_to(end);
        b.pad_to(end);
        assert_eq!((a.written(), b.written()), (120_000, 120_000));
        assert_eq!(a.pad_to(10), 0);
    }

    #[test]
    fn a_run_is_placed_by_its_newest_time_stamp() {
        // Time stamps 70 ms (3,360 samples) late at first, settling to the truth by the end.
        let run = [
            (3_360, 960),
            (960 + 1_500, 960),
            (1_920 + 300, 960),
            (2_880, 960),
        ];
        assert_eq!(run_positions(RATE, &run), vec![0, 960, 1_920, 2_880]);
        assert_eq!(run_positions(RATE, &[(-500, 960)]), vec![-500]);
        assert!(run_positions(RATE, &[]).is_empty());
    }

    #[test]
    fn a_lost_packet_in_a_run_stays_a_gap() {
        // 20 ms (960 samples) missing between the second and third buffer.
        let run = [(3_000, 960), (3_960, 960), (5_880, 960), (6_840, 960)];
        assert_eq!(run_positions(RATE, &run), vec![3_000, 3_960, 5_880, 6_840]);
    }

    #[test]
    fn time_and_samples_round_trip() {
        let t = Timeline::new(RATE);
        assert_eq!(t.time_of(48_000), 1_000_000_000);
        assert_eq!(t.sample_at(t.time_of(123_457)), 123_457);
    }
}
