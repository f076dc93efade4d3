// SPDX-License-Identifier: MPL-2.0

//! When each track enters the room's MPEG-TS stream (sans-IO: tracks are named by their PID,
//! time is passed in).
//!
//! Two facts shape it. A demuxer ignores a stream until a PMT lists it, and GStreamer 1.22's
//! mpegtsmux writes a new stream's first packets before that PMT: a new video track needs a
//! key frame *after* the PMT that announces it. And GStreamer 1.22's tsdemux starts a new set
//! of pads on every PMT change: each video stream needs a key frame after every change, and
//! a parser whose pad ends before it saw one fails the pipeline. So tracks are admitted one
//! at a time, every PMT change asks every video track for a key frame, and the next track
//! waits until all of them sent one (or [`SETTLE_TIMEOUT`] passed).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long an admission or a PMT change may wait for key frames before the next track goes in.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Let the track's media into the muxer.
    Admit(u16),
    /// Ask the track's publisher for a key frame, and report the next one.
    AskKeyframe(u16),
    /// Drop the track's delta frames until its next key frame.
    DropUntilKeyframe(u16),
}

#[derive(Debug)]
struct Track {
    pid: u16,
    video: bool,
    /// Listed by a PMT.
    announced: bool,
    /// Sent a key frame since the last PMT change.
    keyed: bool,
}

#[derive(Debug, Default)]
pub struct Admission {
    waiting: VecDeque<(u16, bool)>,
    admitted: Vec<Track>,
    listed: Vec<u16>,
    /// Since when the last admission or PMT change has been settling.
    settling: Option<Instant>,
}

impl Admission {
    /// A new track (`video` or audio) wants in.
    pub fn add(&mut self, pid: u16, video: bool, now: Instant) -> Vec<Action> {
        self.waiting.push_back((pid, video));
        self.pump(now, Vec::new())
    }

    /// A track ended.
    pub fn remove(&mut self, pid: u16, now: Instant) -> Vec<Action> {
        self.waiting.retain(|(p, _)| *p != pid);
        self.admitted.retain(|t| t.pid != pid);
        self.pump(now, Vec::new())
    }

    /// Time passed.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        self.pump(now, Vec::new())
    }

    /// A key frame of `pid` went into the muxer.
    pub fn keyframe(&mut self, pid: u16, now: Instant) -> Vec<Action> {
        if let Some(t) = self.admitted.iter_mut().find(|t| t.pid == pid) {
            t.keyed = true;
        }
        self.pump(now, Vec::new())
    }

    /// The muxer wrote a PMT listing `pids` (sorted).
    pub fn pmt(&mut self, pids: &[u16], now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if pids != self.listed {
            self.listed = pids.to_vec();
            for t in self.admitted.iter_mut() {
                let listed = self.listed.contains(&t.pid);
                if listed && !t.announced {
                    t.announced = true;
                    if t.video {
                        actions.push(Action::DropUntilKeyframe(t.pid));
                    }
                }
                if t.video && listed {
                    t.keyed = false;
                    actions.push(Action::AskKeyframe(t.pid));
                }
            }
            self.settling = Some(now);
        }
        self.pump(now, actions)
    }

    /// Whether every track in the stream can be decoded from here on.
    fn settled(&self) -> bool {
        self.admitted
            .iter()
            .all(|t| t.announced && (t.keyed || !t.video))
    }

    fn pump(&mut self, now: Instant, mut actions: Vec<Action>) -> Vec<Action> {
        let busy = self
            .settling
            .is_some_and(|since| now.duration_since(since) < SETTLE_TIMEOUT)
            && !self.settled();
        if !busy {
            self.settling = None;
            if let Some((pid, video)) = self.waiting.pop_front() {
                self.admitted.push(Track {
                    pid,
                    video,
                    announced: false,
                    keyed: false,
                });
                self.settling = Some(now);
                actions.push(Action::Admit(pid));
            }
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::Action::*;
    use super::*;

    #[test]
    fn tracks_enter_one_at_a_time_once_the_stream_is_decodable() {
        let t0 = Instant::now();
        let mut a = Admission::default();
        assert_eq!(a.add(0x41, true, t0), vec![Admit(0x41)]);
        assert!(a.add(0x42, false, t0).is_empty(), "waits for the first");
        // The first track's media made the muxer announce it: key frame asked, deltas dropped.
        assert_eq!(
            a.pmt(&[0x41], t0),
            vec![DropUntilKeyframe(0x41), AskKeyframe(0x41)]
        );
        assert!(a.pmt(&[0x41], t0).is_empty(), "same PMT: nothing new");
        // Its key frame settles the stream: the audio track goes in.
        assert_eq!(a.keyframe(0x41, t0), vec![Admit(0x42)]);
        // Announcing it asks the video track again (GStreamer 1.22 tsdemux starts new pads).
        assert_eq!(a.pmt(&[0x41, 0x42], t0), vec![AskKeyframe(0x41)]);
        assert!(a.add(0x43, true, t0).is_empty());
        assert_eq!(a.keyframe(0x41, t0), vec![Admit(0x43)]);
        assert_eq!(
            a.pmt(&[0x41, 0x42, 0x43], t0),
            vec![
                AskKeyframe(0x41),
                DropUntilKeyframe(0x43),
                AskKeyframe(0x43)
            ]
        );
        assert!(a.keyframe(0x41, t0).is_empty(), "0x43 has not sent one");
        assert!(a.keyframe(0x43, t0).is_empty(), "nobody waiting");
        // A track leaving changes the PMT: video tracks are asked again.
        assert!(a.remove(0x42, t0).is_empty());
        assert_eq!(
            a.pmt(&[0x41, 0x43], t0),
            vec![AskKeyframe(0x41), AskKeyframe(0x43)]
        );
    }

    #[test]
    fn a_track_without_media_or_key_frames_does_not_block_the_others() {
        let t0 = Instant::now();
        let mut a = Admission::default();
        assert_eq!(a.add(0x41, true, t0), vec![Admit(0x41)]);
        assert!(a.add(0x42, true, t0).is_empty());
        let later = t0 + SETTLE_TIMEOUT;
        assert_eq!(
            a.pmt(&[], later),
            vec![Admit(0x42)],
            "0x41 never sent media"
        );
        assert_eq!(
            a.pmt(&[0x42], later),
            vec![DropUntilKeyframe(0x42), AskKeyframe(0x42)]
        );
        assert!(a.add(0x43, false, later).is_empty());
        assert_eq!(
            a.pmt(&[0x42], later + SETTLE_TIMEOUT),
            vec![Admit(0x43)],
            "0x42 never sent a key frame"
        );
    }

    #[test]
    fn a_waiting_track_that_ends_is_forgotten() {
        let t0 = Instant::now();
        let mut a = Admission::default();
        a.add(0x41, false, t0);
        a.add(0x42, true, t0);
        assert!(a.remove(0x42, t0).is_empty());
        assert!(a.pmt(&[0x41], t0).is_empty(), "audio settles at once");
        assert!(a.add(0x43, true, t0).contains(&Admit(0x43)));
    }
}
