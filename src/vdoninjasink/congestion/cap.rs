// SPDX-License-Identifier: MPL-2.0

//! A ceiling on a GCC viewer's link estimate from the loss it reports (sans-IO).
//!
//! GCC's delay-based half reads queues. A link that drops instead of queueing (a token-bucket
//! policer: a shaped uplink, a mobile plan) shows no delay, so GCC's estimate grows far past
//! the link, and its loss-based half only cuts once a tenth of the packets are gone. Measured
//! with the web app behind a 1,000 kbit/s policer: the encoder climbed 25 % a second to
//! 1,600–1,900 kbit/s with no loss reported (the policer's bucket hides an overshoot for
//! seconds), then lost 81–97 % of its packets and fell to 300, every 10–20 s; the picture froze
//! each time.
//!
//! The ceiling remembers what the link *carried* when it last filled, and probes above it in
//! small steps, once per loss window (about a second):
//! * loss above [`CUT_ABOVE`]: the link is full. It carried what got through (what the
//!   transport-wide feedback says arrived, else what was sent less the loss; at least
//!   [`MAX_CUT`] of what was sent); the ceiling goes to [`BELOW`] of that, so the
//!   policer's bucket fills again and a key frame fits. Heavy loss in the [`SAME_EVENT`]
//!   windows after it is the same collapse, told again or late while the rate falls; what
//!   arrived in its second window and its first (the one more, the other less than the link
//!   carries) make what the link carried their mean;
//! * loss above [`HOLD_ABOVE`] right after a raise: the raise found the link's edge; it is
//!   undone, and the next waits [`REST_WINDOWS`] windows;
//! * other light loss: above what the link carried, a step back towards it; below, it is not
//!   ours (e.g. a lossy radio) and the ceiling holds;
//! * a clean window raises it: by [`FAST_STEP`] up to [`BELOW`] of what the link carried, by
//!   [`PROBE_STEP`] from there to what it carried, by [`EDGE_STEP`] from there to [`FREED`]
//!   of it, by [`FREED_STEP`] above, and, once
//!   [`FREED_AFTER`] windows in a row were clean there, the link was freed: the memory goes and the ceiling climbs by
//!   [`FAST_STEP`] to `max-bitrate`, where it is lifted.

/// Loss above this fraction: the link is full.
pub const CUT_ABOVE: f64 = 0.10;
/// Loss above this fraction after a raise: the raise went past the link.
pub const HOLD_ABOVE: f64 = 0.01;
/// After the link filled, the ceiling sits this far below what it carried.
pub const BELOW: f64 = 0.85;
/// A clean window's raise up to what the link carried...
pub const PROBE_STEP: f64 = 0.10;
/// ...and past it (above the rate controller's 5 % deadband): small enough that a policer's
/// bucket, once empty, drops a few per cent (a raise undone), not a collapse.
pub const EDGE_STEP: f64 = 0.05;
/// A clean window's raise far from it.
pub const FAST_STEP: f64 = 0.25;
/// Clean at this multiple of what the link carried and above, [`FREED_AFTER`] windows in a
/// row: the link was freed.
pub const FREED: f64 = 1.25;
pub const FREED_AFTER: u32 = 2;
/// A clean window's raise there (past the link a policer's bucket would have shown).
pub const FREED_STEP: f64 = 0.15;
/// Windows to wait after a raise was undone.
pub const REST_WINDOWS: u32 = 3;
/// Without a measure of what arrived, what got through is taken as at least this fraction of
/// what was sent (a window's loss may cover its worst moment only).
pub const MAX_CUT: f64 = 0.5;
/// Windows after a collapse's first in which heavy loss belongs to it.
pub const SAME_EVENT: u32 = 3;

#[derive(Debug, Clone, Default)]
pub struct LossCap {
    cap: Option<f64>,
    /// The ceiling before the last raise, while the window after it is awaited.
    before_raise: Option<f64>,
    /// Clean windows in a row at [`FREED`] of what the link carried.
    freed: u32,
    rest: u32,
    max: f64,
    /// What the link carried when it last filled (kbit/s).
    carried: Option<f64>,
    /// The current collapse's windows so far.
    event: Option<u32>,
}

impl LossCap {
    /// No ceiling at or above `max` kbit/s (`max-bitrate`).
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

    /// What the link carried when it last filled (kbit/s), while it is remembered.
    pub fn carried(&self) -> Option<u32> {
        self.carried.map(|c| c.round() as u32)
    }

    /// One loss window: the fraction lost (0.0–1.0), the rate sent to the viewer in it and, if
    /// known, the rate that arrived (kbit/s).
    pub fn on_window(&mut self, loss: f64, sent_kbps: u32, received_kbps: Option<u32>) {
        let loss = if loss.is_finite() {
            loss.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let sent = f64::from(sent_kbps);
        // A raise that moved what was sent (the ceiling held the rate).
        let raised_from = self.before_raise.take().filter(|b| sent >= 0.9 * b);
        if let Some(age) = &mut self.event {
            *age += 1;
        }
        self.event = self.event.filter(|age| *age <= SAME_EVENT);
        if loss > CUT_ABOVE {
            if let Some(age) = self.event {
                // The rest of a collapse: its loss told again or late, while the rate falls
                // from it. Its first window's measure holds what a policer's bucket let
                // through besides the link's rate, its second's less than the link carries
                // (the rate fell within it): the link's is taken as their mean.
                if age == 1
                    && let (Some(first), Some(second)) = (self.carried, received_kbps)
                    && f64::from(second) < first
                {
                    let carried = (first + f64::from(second)) / 2.0;
                    self.carried = Some(carried);
                    self.cap = Some((carried * BELOW).min(self.max));
                }
                return;
            }
            // What arrived is measured; what was sent less the loss is not (a window's loss
            // may cover its worst moment only).
            let carried =
                received_kbps.map_or_else(|| (sent * (1.0 - loss)).max(sent * MAX_CUT), f64::from);
            self.event = Some(0);
            self.carried = Some(carried);
            self.cap = Some((carried * BELOW).min(self.max));
            self.rest = 0;
            self.freed = 0;
            return;
        }
        if loss > HOLD_ABOVE {
            self.freed = 0;
            self.cap = Some(match (raised_from, self.cap, self.carried) {
                (Some(before), _, _) => {
                    self.rest = REST_WINDOWS;
                    before
                }
                // Above what the link carried, it goes on losing: a step back towards it.
                (None, Some(cap), Some(carried)) if cap > carried => {
                    (cap * (1.0 - PROBE_STEP)).max(carried * BELOW)
                }
                (None, cap, _) => cap.unwrap_or(sent),
            });
            return;
        }
        // Resting windows say nothing of what a higher rate would do.
        if self.rest > 0 {
            self.rest -= 1;
            return;
        }
        let Some(cap) = self.cap else { return };
        // A clean window raises it even when less than it was sent: what holds the encoder
        // down may be something else (a rendition's top rate, `max-bitrate`, a still picture),
        // and a ceiling that waited for proof would never let such a viewer climb again.
        let next = match self.carried {
            Some(carried) if cap < BELOW * carried => {
                (cap * (1.0 + FAST_STEP)).min(BELOW * carried)
            }
            Some(carried) if cap < carried => {
                self.freed = 0;
                (cap * (1.0 + PROBE_STEP)).min(carried)
            }
            Some(carried) if cap < FREED * carried => {
                self.freed = 0;
                (cap * (1.0 + EDGE_STEP)).min(FREED * carried)
            }
            Some(_) => {
                // Clean windows at FREED and above, probing on: the FREED_AFTER-th in a row
                // forgets the link's edge (a policer's bucket hides an overshoot a while).
                self.freed += 1;
                if self.freed >= FREED_AFTER {
                    self.carried = None;
                    self.freed = 0;
                }
                cap * (1.0 + FREED_STEP)
            }
            None => cap * (1.0 + FAST_STEP),
        };
        if next >= self.max {
            self.cap = None;
            self.carried = None;
        } else {
            self.before_raise = Some(cap);
            self.cap = Some(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Windows until the ceiling is lifted, each sent at the ceiling, all clean.
    fn climb(c: &mut LossCap, limit: usize) -> Vec<u32> {
        climb_sending(c, u32::MAX, limit)
    }

    /// Windows until the ceiling is lifted, each clean and sending at most `top`.
    fn climb_sending(c: &mut LossCap, top: u32, limit: usize) -> Vec<u32> {
        let mut seen = vec![];
        for _ in 0..limit {
            let Some(k) = c.cap() else { break };
            seen.push(k);
            c.on_window(0.0, k.min(top), None);
        }
        seen
    }

    #[test]
    fn heavy_loss_sets_the_ceiling_below_what_got_through() {
        let mut c = LossCap::new(8000);
        c.on_window(0.0, 2000, None);
        assert_eq!(c.cap(), None, "no ceiling before any loss");
        c.on_window(0.3, 1500, None);
        assert_eq!(c.carried(), Some(1050));
        assert_eq!(c.cap(), Some(893));
        // More heavy loss at once is the same collapse: nothing changes, but for a measure of
        // what arrived in its second window, below the first's: their mean.
        c.on_window(0.9, 900, None);
        c.on_window(0.9, 1200, None);
        assert_eq!(c.carried(), Some(1050));
        assert_eq!(c.cap(), Some(893));
        let mut m = LossCap::new(8000);
        m.on_window(0.3, 1800, Some(1200));
        m.on_window(0.4, 1200, Some(800));
        assert_eq!(m.carried(), Some(1000));
        m.on_window(0.4, 900, Some(500));
        assert_eq!(m.carried(), Some(1000), "the third window is not measured");
        // A new collapse: what got through is taken as at least half of what was sent.
        for _ in 0..SAME_EVENT - 1 {
            c.on_window(0.0, 893, None);
        }
        c.on_window(0.9, 1000, None);
        assert_eq!(c.carried(), Some(500));
        assert_eq!(c.cap(), Some(425));
    }

    #[test]
    fn what_arrived_is_what_the_link_carried() {
        let mut c = LossCap::new(8000);
        c.on_window(0.3, 1800, Some(1000));
        assert_eq!(c.carried(), Some(1000));
        assert_eq!(c.cap(), Some(850));
        // Measured, it is taken as it is (what was sent may be mostly retransmissions).
        let mut c = LossCap::new(8000);
        c.on_window(0.8, 2400, Some(300));
        assert_eq!(c.carried(), Some(300));
    }

    #[test]
    fn a_raise_that_brings_light_loss_is_undone_and_rests() {
        let mut c = LossCap::new(8000);
        c.on_window(0.5, 2000, None);
        assert_eq!(c.cap(), Some(850));
        c.on_window(0.0, 850, None);
        assert_eq!(c.cap(), Some(935));
        // The raise went past the link: back, and no raise for REST_WINDOWS windows.
        c.on_window(0.05, 935, None);
        assert_eq!(c.cap(), Some(850));
        for _ in 0..REST_WINDOWS {
            c.on_window(0.0, 850, None);
            assert_eq!(c.cap(), Some(850));
        }
        c.on_window(0.0, 850, None);
        assert_eq!(c.cap(), Some(935));
    }

    #[test]
    fn light_loss_holds_below_what_the_link_carried_and_steps_back_above_it() {
        let mut c = LossCap::new(8000);
        c.on_window(0.5, 2000, None);
        assert_eq!(c.carried(), Some(1000));
        c.on_window(0.0, 850, None);
        c.on_window(0.0, 935, None);
        assert_eq!(c.cap(), Some(1000), "up to what the link carried");
        // The raise to 1,000 meets 5 % loss: undone. Steady 5 % below what the link carried
        // is not ours: it holds at 935.
        for _ in 0..8 {
            c.on_window(0.05, 935, None);
            assert_eq!(c.cap(), Some(935));
        }
        // Climbed past the link (clean windows: a policer's bucket) and then losing: back a
        // step a window, to 85 % of what the link carried at most.
        for _ in 0..REST_WINDOWS + 3 {
            c.on_window(0.0, c.cap().unwrap_or(0), None);
        }
        let above = c.cap().unwrap_or(0);
        assert!(above > 1000, "{above}");
        c.on_window(0.0, above, None);
        c.on_window(0.05, c.cap().unwrap_or(0), None);
        let undone = c.cap().unwrap_or(0);
        c.on_window(0.05, undone, None);
        let back = c.cap().unwrap_or(0);
        assert!(back.abs_diff(undone * 9 / 10) <= 1, "{back} after {undone}");
        for _ in 0..10 {
            c.on_window(0.05, c.cap().unwrap_or(0), None);
        }
        let held = c.cap().unwrap_or(0);
        assert!(
            (850..=1000).contains(&held),
            "back under what the link carried: {held}"
        );
    }

    #[test]
    fn a_narrow_link_is_probed_in_small_steps_and_never_past_a_quarter_above_it() {
        // A policer that carries 1,000: everything above it lost, the loss shown in the window.
        let mut c = LossCap::new(8000);
        c.on_window(0.45, 1800, None);
        let mut seen = vec![];
        for _ in 0..60 {
            let k = c.cap().unwrap_or(8000);
            seen.push(k);
            let loss = (f64::from(k) - 1000.0).max(0.0) / f64::from(k);
            c.on_window(loss, k, None);
        }
        // Each probe past the link brings light loss (under a tenth), never a collapse.
        assert!(seen.iter().all(|k| *k <= 1110), "{seen:?}");
        let settled = &seen[20..];
        assert!(settled.iter().all(|k| *k >= 800), "{seen:?}");
    }

    #[test]
    fn a_freed_link_is_climbed_fast() {
        let mut c = LossCap::new(8000);
        c.on_window(0.45, 1800, None);
        assert_eq!(c.carried(), Some(990));
        let seen = climb(&mut c, 40);
        assert_eq!(c.cap(), None, "{seen:?}");
        assert_eq!(c.carried(), None, "{seen:?}");
        // From 850 past 2,500 in well under 15 windows: small steps to 1.25x what the link
        // carried, two clean windows there, then a quarter a window.
        let to_2500 = seen.iter().position(|k| *k >= 2500).unwrap_or(99);
        assert!(to_2500 <= 12, "{to_2500} windows: {seen:?}");
        for w in seen.windows(2) {
            if f64::from(w[0]) < FREED * 990.0 {
                assert!(
                    f64::from(w[1]) <= f64::from(w[0]) * (1.0 + PROBE_STEP) + 1.0,
                    "{seen:?}"
                );
            }
        }
    }

    #[test]
    fn a_viewer_held_down_by_something_else_climbs_again() {
        // A viewer on a lower rendition (its top rate 625) behind a link that carried 600:
        // what it sends never comes up to the ceiling, which must still rise once the link is
        // clean, or the viewer would never be moved up again.
        let mut c = LossCap::new(8000);
        c.on_window(0.5, 1200, Some(600));
        let seen = climb_sending(&mut c, 700, 40);
        assert!(seen.iter().any(|k| *k >= 2000), "{seen:?}");
    }

    #[test]
    fn a_deep_cut_climbs_fast_back_to_near_the_link() {
        let mut c = LossCap::new(8000);
        // A spurious report of 80 % loss on a link that carries 2,000.
        c.on_window(0.8, 2000, None);
        assert_eq!(c.carried(), Some(1000));
        assert_eq!(c.cap(), Some(850));
        let seen = climb(&mut c, 40);
        assert!(
            seen.iter()
                .position(|k| *k >= 2500)
                .is_some_and(|i| i <= 12),
            "{seen:?}"
        );
    }

    #[test]
    fn nonsense_is_clamped() {
        let mut c = LossCap::new(3000);
        c.on_window(f64::NAN, 1000, None);
        assert_eq!(c.cap(), None);
        c.on_window(7.0, 1000, None);
        assert_eq!(c.cap(), Some(425));
        let seen = climb(&mut c, 40);
        assert_eq!(c.cap(), None, "lifted at max-bitrate: {seen:?}");
    }
}
