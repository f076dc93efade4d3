// SPDX-License-Identifier: MPL-2.0

//! A ceiling on a GCC viewer's estimate from the loss it reports (sans-IO).
//!
//! GCC's delay-based half reads queues. A link that drops instead of queueing (a token-bucket
//! policer: a shaped uplink, a mobile plan) shows no delay, so the estimate grows past the link
//! until its loss-based half cuts it at 10 % loss. Measured with the web app behind a
//! 1,000 kbit/s policer: the encoder climbed 25 % a second from 300 to ~1,900 kbit/s, lost a
//! third of its packets, fell back to 300, every ~10 s; the picture froze each time.
//!
//! This ceiling holds the video at what the link delivered, once per loss window (a second):
//! * loss above [`HOLD_ABOVE`] right after a raise: the raise found the link's edge and is
//!   undone, and the next waits [`REST_WINDOWS`] windows;
//! * else loss above [`CUT_ABOVE`]: the ceiling is what got through (what was sent, less the
//!   loss, at most [`MAX_CUT`] less);
//! * else loss above [`HOLD_ABOVE`] (loss that does not come from our rate, e.g. a lossy
//!   radio): it holds;
//! * a clean window raises it by [`PROBE_STEP`], and by [`FREE_STEP`] once [`FREE_AFTER`]
//!   clean windows have passed in a row (the link was freed); but after a collapse (loss above
//!   [`CUT_ABOVE`]) only up to [`NEAR`] of the rate that caused it, for [`FORGET_WINDOWS`]
//!   windows.

/// Loss above this fraction: the link is full; the ceiling drops to what it delivered.
pub const CUT_ABOVE: f64 = 0.10;
/// Loss above this fraction after a raise: the raise went past the link.
pub const HOLD_ABOVE: f64 = 0.02;
/// A clean window's raise (above the rate controller's 5 % deadband).
pub const PROBE_STEP: f64 = 0.06;
/// Clean windows in a row after which the link counts as freed...
pub const FREE_AFTER: u32 = 4;
/// ...and the ceiling rises this much a window.
pub const FREE_STEP: f64 = 0.25;
/// Windows to wait after a raise was undone.
pub const REST_WINDOWS: u32 = 5;
/// A cut keeps at least this fraction of what was sent.
pub const MAX_CUT: f64 = 0.5;
/// After a collapse the ceiling climbs back to this fraction of the rate that caused it...
pub const NEAR: f64 = 0.7;
/// ...and stays there for this many windows (then it probes again).
pub const FORGET_WINDOWS: u32 = 12;
/// Heavy loss within this many windows of a collapse is the same collapse.
pub const SAME_EVENT: u32 = 3;

#[derive(Debug, Clone, Default)]
pub struct LossCap {
    cap: Option<f64>,
    /// The ceiling before the last raise, while the window after it is awaited.
    before_raise: Option<f64>,
    clean: u32,
    rest: u32,
    max: f64,
    /// The rate that last collapsed the link, and windows since.
    broke: Option<(f64, u32)>,
}

impl LossCap {
    /// No ceiling above `max` kbit/s (`max-bitrate`).
    pub fn new(max: u32) -> Self {
        Self {
            max: f64::from(max),
            ..Self::default()
        }
    }

    /// The ceiling (kbit/s), if the link has shown one.
    pub fn cap(&self) -> Option<u32> {
        self.cap.map(|c| c.round() as u32)
    }

    /// One loss window: the fraction lost (0.0–1.0) and the video rate sent to the viewer in
    /// it (kbit/s).
    pub fn on_window(&mut self, loss: f64, sent_kbps: u32) {
        let loss = if loss.is_finite() {
            loss.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let sent = f64::from(sent_kbps);
        // A raise that moved what was sent (the ceiling held the rate).
        let raised_from = self.before_raise.take().filter(|b| sent >= 0.9 * b);
        if let Some((_, age)) = &mut self.broke {
            *age += 1;
        }
        if loss > CUT_ABOVE && self.broke.is_none_or(|(_, age)| age > SAME_EVENT) {
            // A new collapse: the rate sent in its first window is what broke the link.
            self.broke = Some((f64::from(sent_kbps), 0));
        }
        if loss > HOLD_ABOVE {
            self.clean = 0;
            self.cap = Some(match raised_from {
                // The raise found the link's edge.
                Some(before) => {
                    self.rest = REST_WINDOWS;
                    before
                }
                // The link carries less than it did: what got through, at most half less (a
                // report's loss covers a moment, which may be the worst one).
                None if loss > CUT_ABOVE => {
                    self.rest = 0;
                    (sent * (1.0 - loss)).max(sent * MAX_CUT)
                }
                None => self.cap.unwrap_or(sent),
            });
            return;
        }
        // Resting windows say nothing of what a higher rate would do.
        if self.rest > 0 {
            self.rest -= 1;
            return;
        }
        self.clean += 1;
        let Some(cap) = self.cap else { return };
        // Below the recent collapse's rate: up to NEAR of it, fast once clean a while, then
        // held until it is forgotten. (A link that polices drops nothing up to its edge and
        // then nearly everything, and the viewer's feedback with it: it gives no warning.)
        let limit = self
            .broke
            .filter(|(_, age)| *age < FORGET_WINDOWS)
            .map(|(rate, _)| rate * NEAR);
        if limit.is_some_and(|l| cap >= l) {
            return;
        }
        let step = if self.clean > FREE_AFTER {
            FREE_STEP
        } else {
            PROBE_STEP
        };
        let next = limit.map_or(cap * (1.0 + step), |l| (cap * (1.0 + step)).min(l));
        if next >= self.max {
            self.cap = None;
        } else {
            self.before_raise = Some(cap);
            self.cap = Some(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_loss_sets_the_ceiling_at_what_got_through() {
        let mut c = LossCap::new(8000);
        c.on_window(0.0, 2000);
        assert_eq!(c.cap(), None, "no ceiling before any loss");
        c.on_window(0.3, 1500);
        assert_eq!(c.cap(), Some(1050));
        // At most halved.
        c.on_window(0.9, 1000);
        assert_eq!(c.cap(), Some(500));
    }

    #[test]
    fn a_raise_into_heavy_loss_is_undone_not_cut_below() {
        let mut c = LossCap::new(8000);
        c.on_window(0.5, 1600);
        for _ in 0..FREE_AFTER + 1 {
            c.on_window(0.0, 800);
        }
        let before = c.before_raise.expect("raised");
        c.on_window(0.4, c.cap().unwrap_or(0));
        assert_eq!(c.cap(), Some(before.round() as u32));
    }

    #[test]
    fn a_raise_that_brings_loss_is_undone_and_rests() {
        let mut c = LossCap::new(8000);
        c.on_window(0.5, 1600);
        assert_eq!(c.cap(), Some(800));
        c.on_window(0.0, 800);
        assert_eq!(c.cap(), Some(848));
        // The raise went past the link: back, and no raise for five windows.
        c.on_window(0.05, 848);
        assert_eq!(c.cap(), Some(800));
        for _ in 0..REST_WINDOWS {
            c.on_window(0.0, 800);
            assert_eq!(c.cap(), Some(800));
        }
        c.on_window(0.0, 800);
        assert_eq!(c.cap(), Some(848));
    }

    #[test]
    fn loss_that_is_not_ours_holds_without_cutting() {
        let mut c = LossCap::new(8000);
        c.on_window(0.5, 1600);
        c.on_window(0.0, 800);
        c.on_window(0.0, 848);
        c.on_window(0.0, 899);
        let held = c.cap();
        // A raise's window passed clean; steady 5 % loss from then on holds where it is.
        c.on_window(0.05, 899);
        c.on_window(0.05, 899);
        c.on_window(0.05, 899);
        assert!(c.cap() >= Some(899), "{:?} after {held:?}", c.cap());
    }

    #[test]
    fn after_a_collapse_it_stays_below_it_then_climbs_a_freed_link_fast() {
        let mut c = LossCap::new(8000);
        c.on_window(0.5, 1700);
        let mut seen = vec![c.cap().unwrap_or(0)];
        for _ in 0..40 {
            c.on_window(0.0, seen[seen.len() - 1]);
            match c.cap() {
                Some(k) => seen.push(k),
                None => break,
            }
        }
        assert_eq!(c.cap(), None, "{seen:?}");
        let limit = (1700.0 * NEAR) as u32;
        let n = FORGET_WINDOWS as usize;
        assert!(seen[..n].iter().all(|k| *k <= limit), "{seen:?}");
        assert!(seen[..n].contains(&limit), "{seen:?}");
        // Then to 2,500 within five windows.
        assert!(
            seen.iter()
                .position(|k| *k >= 2500)
                .is_some_and(|i| i <= n + 5),
            "{seen:?}"
        );
    }

    #[test]
    fn a_raise_far_above_what_is_sent_is_not_undone_and_a_cut_does_not_rest() {
        let mut c = LossCap::new(8000);
        c.on_window(0.5, 1600);
        for _ in 0..FREE_AFTER + 2 {
            c.on_window(0.0, 800);
        }
        // The ceiling is far above the 800 sent: its raise did not cause this.
        c.on_window(0.45, 800);
        assert_eq!(c.cap(), Some(440));
        c.on_window(0.0, 440);
        assert_eq!(c.cap(), Some(466), "climbs again at once");
    }
}
