// SPDX-License-Identifier: MPL-2.0

//! Where the shared encoder's bitrate goes (sans-IO): the lowest of what the viewers' links
//! carry and what they ask for, within `min-bitrate`..`max-bitrate`. A cut is made at once (a
//! link that is full loses packets now); a raise that follows a link estimate waits
//! [`RAISE_EVERY`] after the last one and is at most [`RAISE_STEP`] of the current rate (an
//! estimate that overshoots costs a burst of loss for everyone on the encoder; where a link
//! last broke is each viewer's own memory, `cap`); a change under [`DEADBAND`] is not made at
//! all (each encoder reconfiguration costs a little quality, and estimates wobble), but for the
//! last step back to the resting rate (`bitrate`).

use std::time::{Duration, Instant};

/// At most one raise this often.
pub const RAISE_EVERY: Duration = Duration::from_millis(950);
/// A raise is at most this fraction of the current rate.
pub const RAISE_STEP: f64 = 0.25;
/// Changes smaller than this fraction of the current rate are ignored.
pub const DEADBAND: f64 = 0.05;

/// The encoder's rate and how it may move.
#[derive(Debug, Clone)]
pub struct RateController {
    min: u32,
    max: u32,
    current: u32,
    last_raise: Option<Instant>,
    /// The current rate was set by a link estimate (a cut, or a raise that followed one), not by
    /// a request or the bounds.
    held_by_link: bool,
}

impl Default for RateController {
    fn default() -> Self {
        Self::new(2500, 300, 8000)
    }
}

impl RateController {
    /// Starting at `start` (the `bitrate` property), within `min`..`max`, in kbit/s.
    pub fn new(start: u32, min: u32, max: u32) -> Self {
        let mut c = Self {
            min,
            max,
            current: start,
            last_raise: None,
            held_by_link: false,
        };
        c.current = c.clamp(start);
        c
    }

    /// New bounds (properties changed): applied at once.
    pub fn set_limits(&mut self, min: u32, max: u32) {
        self.min = min;
        self.max = max;
        self.current = self.clamp(self.current);
    }

    pub fn current(&self) -> u32 {
        self.current
    }

    fn clamp(&self, kbps: u32) -> u32 {
        let lo = self.min.min(self.max);
        kbps.clamp(lo, self.max)
    }

    /// `ceiling`: where the encoder rests when every link carries it (`bitrate`, or the lowest
    /// of the viewers' explicit requests); `estimate`: the lowest of the viewers' link
    /// estimates, if any. The new encoder rate, when it is to change.
    pub fn update(&mut self, ceiling: u32, estimate: Option<u32>, now: Instant) -> Option<u32> {
        let resting = self.clamp(ceiling);
        let target = self.clamp(estimate.map_or(ceiling, |e| e.min(ceiling)));
        let current = self.current as f64;
        let diff = (target as f64 - current).abs();
        // The deadband keeps wobbling estimates from moving the encoder, not the last step
        // home to the resting rate.
        if target == self.current || (diff < DEADBAND * current && target != resting) {
            return None;
        }
        // A cut is made at once. A raise goes in steps while a link estimate held the rate
        // down (an estimate above what we send proves nothing: GCC's grows past the link's
        // capacity while the encoder sends less); a raise after a request was lifted or the
        // bounds moved goes at once, up to the estimate.
        let by_link = estimate.is_some_and(|e| e < ceiling);
        if target < self.current {
            self.current = target;
            self.held_by_link = by_link;
            return Some(target);
        }
        if !self.held_by_link {
            self.current = target;
            self.held_by_link = by_link;
            return Some(target);
        }
        if self
            .last_raise
            .is_some_and(|t| now.saturating_duration_since(t) < RAISE_EVERY)
        {
            return None;
        }
        let step = ((current * RAISE_STEP) as u32).max(1);
        let next = target.min(self.current.saturating_add(step));
        self.current = next;
        self.last_raise = Some(now);
        self.held_by_link = next < resting;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_once_and_raises_in_steps() {
        let t = Instant::now();
        let s = |n: u64| t + Duration::from_secs(n);
        let mut c = RateController::new(2500, 300, 8000);
        // The link breaks at 2,500: cut at once to what it carries.
        assert_eq!(c.update(2500, Some(600), t), Some(600));
        // Its estimate then runs far ahead (GCC's does while we send less): at most one raise a
        // second, of at most 25 %.
        assert_eq!(c.update(2500, Some(9000), t), Some(750));
        assert_eq!(
            c.update(2500, Some(9000), t + Duration::from_millis(500)),
            None
        );
        let mut seen = vec![600, 750];
        for n in 1..18 {
            if let Some(k) = c.update(2500, Some(9000), s(n)) {
                seen.push(k);
            }
        }
        for w in seen.windows(2) {
            assert!(f64::from(w[1]) <= f64::from(w[0]) * 1.25 + 1.0, "{seen:?}");
            assert!(
                w[1] == 2500 || f64::from(w[1]) >= f64::from(w[0]) * 1.24,
                "{seen:?}"
            );
        }
        assert_eq!(c.current(), 2500, "home: {seen:?}");
        // A cut is never delayed by a recent raise.
        assert_eq!(c.update(2500, Some(9000), s(30)), None);
        assert_eq!(c.update(2500, Some(600), s(30)), Some(600));
    }

    #[test]
    fn a_lifted_request_is_honoured_at_once() {
        let t = Instant::now();
        let mut c = RateController::new(2000, 200, 4000);
        // A viewer asks for 500 (the link carries 5,000), then lifts its request.
        assert_eq!(c.update(500, Some(5000), t), Some(500));
        assert_eq!(c.update(2000, Some(5000), t), Some(2000));
        // The same with no estimate at all.
        assert_eq!(c.update(500, None, t), Some(500));
        assert_eq!(c.update(2000, None, t), Some(2000));
    }

    #[test]
    fn small_changes_and_bounds() {
        let t = Instant::now();
        let mut c = RateController::new(2500, 300, 8000);
        assert_eq!(c.update(2500, Some(2450), t), None, "under 5 %");
        assert_eq!(c.update(2500, Some(100), t), Some(300), "min-bitrate");
        let mut c = RateController::new(2500, 300, 2000);
        assert_eq!(c.current(), 2000, "max-bitrate bounds the start");
        assert_eq!(c.update(2500, Some(9000), t), None);
        c.set_limits(300, 1000);
        assert_eq!(c.current(), 1000);
    }
}
