// SPDX-License-Identifier: MPL-2.0

//! Which rendition each viewer watches, from its link's estimate (sans-IO).
//!
//! Rendition 0 is the input's own size at `bitrate`; each one below it has half the width and
//! height (a quarter of the pixels) and a quarter of the rate. A viewer moves down when its
//! estimate falls under half its rendition's rate, up when both its estimate and what it is
//! being sent reach 60 % of the rate of the rendition above, and not again until [`SETTLE`]
//! has passed (an estimate swings after a move). GCC's estimate runs far ahead of what is sent
//! on a link that shows no delay (a policer: 1,500 kbit/s estimated while 680 went through a
//! 600 kbit/s limit), so only a rate the link has carried moves a viewer up. For that, a
//! rendition's encoder may run above its own rate, up to a quarter above the point where its
//! viewers move up: a wide link climbs back by itself.

use std::time::{Duration, Instant};

/// The most renditions the sink keeps.
pub const MAX_LEVELS: usize = 3;

/// A viewer moves down when its estimate is under this share of its rendition's rate...
const DOWN: f64 = 0.5;
/// ...and up when it reaches this share of the rate of the rendition above.
const UP: f64 = 0.6;
/// A rendition's encoder may run this much above the point where its viewers move up.
const HEADROOM: f64 = 1.25;
/// No move sooner than this after the last one.
pub const SETTLE: Duration = Duration::from_secs(4);

/// The renditions' rates.
#[derive(Debug, Clone, Copy)]
pub struct Ladder {
    pub levels: usize,
    /// Rendition 0's rate (kbit/s): the `bitrate` property, or the viewers' explicit requests.
    pub top: u32,
    /// No rendition's rate goes under this (`min-bitrate`).
    pub floor: u32,
}

impl Ladder {
    /// The rate rendition `level` is made for: a quarter of the one above.
    pub fn nominal(&self, level: usize) -> u32 {
        (self.top >> (2 * level.min(8))).max(self.floor.min(self.top))
    }

    /// Where a viewer of `level` moves up.
    fn up_at(&self, level: usize) -> u32 {
        if level == 0 {
            return u32::MAX;
        }
        (self.nominal(level - 1) as f64 * UP) as u32
    }

    /// Where a viewer of `level` moves down (never from the lowest).
    fn down_at(&self, level: usize) -> u32 {
        if level + 1 >= self.levels {
            return 0;
        }
        (self.nominal(level) as f64 * DOWN) as u32
    }

    /// The most rendition `level`'s encoder is given (its viewers' estimates decide within).
    pub fn cap(&self, level: usize) -> u32 {
        if level == 0 {
            return self.top;
        }
        ((self.up_at(level) as f64 * HEADROOM) as u32).min(self.top)
    }

    /// A viewer of `level` with this estimate is about to move down: it does not hold its
    /// rendition's encoder back meanwhile.
    pub fn leaving(&self, level: usize, estimate: u32) -> bool {
        estimate < self.down_at(level)
    }
}

/// Where one viewer is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Placement {
    pub level: usize,
    moved: Option<Instant>,
}

impl Placement {
    /// The viewer's new rendition, when it is to move. `sent`: the rate of the rendition it
    /// watches (what its link has been carrying).
    pub fn update(
        &mut self,
        estimate: Option<u32>,
        sent: u32,
        ladder: &Ladder,
        now: Instant,
    ) -> Option<usize> {
        let last = ladder.levels.max(1) - 1;
        if self.level > last {
            // Fewer renditions than before (the property changed): to the lowest there is.
            return self.move_to(last, now);
        }
        let e = estimate?;
        if self
            .moved
            .is_some_and(|t| now.saturating_duration_since(t) < SETTLE)
        {
            return None;
        }
        if ladder.leaving(self.level, e) {
            // Down to the best rendition the estimate holds, the lowest at worst.
            let to = (self.level + 1..=last)
                .find(|l| !ladder.leaving(*l, e))
                .unwrap_or(last);
            return self.move_to(to, now);
        }
        if self.level > 0 && e.min(sent) >= ladder.up_at(self.level) {
            return self.move_to(self.level - 1, now);
        }
        None
    }

    fn move_to(&mut self, level: usize, now: Instant) -> Option<usize> {
        self.level = level;
        self.moved = Some(now);
        Some(level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LADDER: Ladder = Ladder {
        levels: 2,
        top: 2500,
        floor: 300,
    };

    #[test]
    fn each_rendition_is_a_quarter_of_the_one_above() {
        let l = Ladder {
            levels: 3,
            ..LADDER
        };
        assert_eq!((l.nominal(0), l.nominal(1), l.nominal(2)), (2500, 625, 300));
        assert_eq!(l.cap(0), 2500);
        assert_eq!(l.cap(1), 1875, "60 % of 2,500 and a quarter more");
        assert!(l.leaving(0, 1200) && !l.leaving(0, 1300));
        assert!(!l.leaving(2, 10), "never below the lowest");
    }

    #[test]
    fn a_narrow_viewer_moves_down_and_stays_while_its_link_is_narrow() {
        let t0 = Instant::now();
        let mut p = Placement::default();
        assert_eq!(
            p.update(None, 2500, &LADDER, t0),
            None,
            "no estimate, no move"
        );
        assert_eq!(p.update(Some(2000), 2500, &LADDER, t0), None);
        assert_eq!(p.update(Some(600), 2500, &LADDER, t0), Some(1));
        for s in 1..60 {
            let now = t0 + Duration::from_secs(s);
            assert_eq!(p.update(Some(900), 700, &LADDER, now), None, "at {s} s");
        }
        // GCC's estimate runs ahead of what a policed link carries: not enough to move up.
        let later = t0 + Duration::from_secs(61);
        assert_eq!(p.update(Some(2000), 680, &LADDER, later), None);
    }

    #[test]
    fn a_wide_link_climbs_back_after_settling() {
        let t0 = Instant::now();
        let mut p = Placement::default();
        assert_eq!(p.update(Some(500), 2500, &LADDER, t0), Some(1));
        let soon = t0 + Duration::from_secs(1);
        assert_eq!(p.update(Some(1600), 2500, &LADDER, soon), None, "settling");
        let later = t0 + SETTLE;
        assert_eq!(p.update(Some(1600), 1600, &LADDER, later), Some(0));
        assert!(LADDER.cap(1) > 1500, "the rendition below can show 1,500");
    }

    #[test]
    fn a_collapsed_link_goes_to_the_lowest_it_holds() {
        let l = Ladder {
            levels: 3,
            ..LADDER
        };
        let mut p = Placement::default();
        assert_eq!(p.update(Some(200), 2500, &l, Instant::now()), Some(2));
        let mut p = Placement::default();
        assert_eq!(p.update(Some(400), 2500, &l, Instant::now()), Some(1));
    }

    #[test]
    fn fewer_renditions_move_viewers_to_what_is_left() {
        let t0 = Instant::now();
        let mut p = Placement::default();
        p.update(Some(500), 2500, &LADDER, t0);
        let one = Ladder {
            levels: 1,
            ..LADDER
        };
        assert_eq!(p.update(None, 2500, &one, t0), Some(0));
    }
}
