// SPDX-License-Identifier: MPL-2.0

//! Where the shared encoder's bitrate goes (sans-IO): the lowest of what the viewers' links
//! carry and what they ask for, within `min-bitrate`..`max-bitrate`. A cut is made at once (a
//! link that is full loses packets now); a raise that follows a link estimate waits
//! [`RAISE_EVERY`] after the last one and is at most [`RAISE_STEP`] of the current rate (an estimate that overshoots costs a burst of
//! loss for everyone on the encoder); a change under [`DEADBAND`] is not made at all (each
//! encoder reconfiguration costs a little quality, and estimates wobble), but for the last step
//! back to the resting rate (`bitrate`).

use std::time::{Duration, Instant};

/// At most one raise this often.
pub const RAISE_EVERY: Duration = Duration::from_secs(1);
/// A raise is at most this fraction of the current rate.
pub const RAISE_STEP: f64 = 0.15;
/// Changes smaller than this fraction of the current rate are ignored.
pub const DEADBAND: f64 = 0.05;

/// The encoder's rate and how it may move.
#[derive(Debug, Clone)]
pub struct RateController {
    min: u32,
    max: u32,
    current: u32,
    last_raise: Option<Instant>,
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
        // A cut is made at once; so is a raise to the ceiling that a link estimate does not
        // hold back (no estimate, or one at or above the ceiling: a request lifted, a new
        // `bitrate`). A raise that follows a link estimate goes in steps.
        if target < self.current || estimate.is_none_or(|e| e >= ceiling) {
            self.current = target;
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
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_once_and_raises_in_steps() {
        let t = Instant::now();
        let mut c = RateController::new(2500, 300, 8000);
        assert_eq!(c.update(2500, Some(800), t), Some(800));
        // The link's estimate climbs back: 15 % a second at most.
        assert_eq!(c.update(2500, Some(2400), t), Some(920));
        assert_eq!(
            c.update(2500, Some(2400), t + Duration::from_millis(500)),
            None
        );
        assert_eq!(
            c.update(2500, Some(2400), t + Duration::from_secs(1)),
            Some(1058)
        );
        let mut at = t + Duration::from_secs(1);
        let mut n = 0;
        while c.current() < 2400 && n < 20 {
            at += Duration::from_secs(1);
            c.update(2500, Some(2400), at);
            n += 1;
        }
        assert!(c.current() >= 2300, "{}", c.current());
        assert!(n <= 7, "{n} raises from 1058 to 2400");
        // An estimate over the ceiling (the link carries more): home at once.
        assert_eq!(c.update(2500, Some(3000), at), Some(2500));
        // A cut is never delayed by a recent raise.
        assert_eq!(c.update(2500, Some(600), at), Some(600));
        // A lifted request with no estimate to hold it back: at once too.
        assert_eq!(c.update(2500, None, at), Some(2500));
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
