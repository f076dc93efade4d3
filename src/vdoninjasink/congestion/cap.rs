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
//!   carries) make what the link carried their mean, if the second was still sent at least
//!   what the first carried (else what arrived in it says only that the rate fell);
//! * loss above [`HOLD_ABOVE`] right after a raise: the raise found the link's edge; it is
//!   undone, and the next waits [`REST_WINDOWS`] windows;
//! * other light loss: above what the link carried, a step back towards it; below, it is not
//!   ours (e.g. a lossy radio) and the ceiling holds;
//! * a clean window raises it: by [`FAST_STEP`] up to [`BELOW`] of what the link carried, by
//!   [`PROBE_STEP`] from there to what it carried, by [`EDGE_STEP`] from there to [`FREED`]
//!   of it. There it waits until the link has shown it carries more than when it last filled:
//!   clean windows in a row, each counting what arrived above what it carried then,
//!   [`FREED_SHOWN`] of a second's worth of it in all (more than a policer's bucket hides).
//!   A viewer that sends most of its ceiling but brings less than [`WAIT_SHOWS`] of what the
//!   link carried (audio, headers and an encoder under its target take their part: 0.8 of the
//!   ceiling arrived at ~500 kbit/s, and the viewer waited there for good after the link was
//!   freed) has the ceiling raised by [`EDGE_STEP`] after spotless windows, to
//!   [`WAIT_AT_MOST`] of it at most.
//!   The link was freed: the memory goes and the ceiling climbs by [`FAST_STEP`] (to
//!   [`PAST_EDGE`] times what arrived at most) to `max-bitrate`, where it is lifted; a raise
//!   that brings light loss there found the link's edge again (what arrived is what it
//!   carries). (Clean windows alone freed the link before: the encoder, a second behind a
//!   rising ceiling, had not yet sent what it allowed, a policer's bucket hid the rest, and the
//!   ceiling climbed into a collapse every 10–15 s.)

/// Loss above this fraction: the link is full.
pub const CUT_ABOVE: f64 = 0.10;
/// What arrives grows by more than this share a window: the viewer is climbing to its
/// ceiling (more than what a steady encoder's rate wanders).
pub const GROWING: f64 = 0.05;
/// Where no edge is known, a ceiling at most this multiple of what arrived (for a viewer that
/// fills it): at a quarter above, a freed link took 5 windows from 1,250 to 2,500, the encoder
/// a window behind each raise.
pub const PAST_EDGE: f64 = 1.5;
/// A viewer sent at least this share of its ceiling fills it.
pub const FILLED: f64 = 0.9;
/// Loss above this fraction after a raise: the raise went past the link.
pub const HOLD_ABOVE: f64 = 0.01;
/// After the link filled, the ceiling sits this far below what it carried.
pub const BELOW: f64 = 0.85;
/// A clean window's raise up to what the link carried (from [`BELOW`] of it, one window)...
pub const PROBE_STEP: f64 = 0.18;
/// ...and past it (above the rate controller's 5 % deadband): small enough that a policer's
/// bucket, once empty, drops a few per cent (a raise undone), not a collapse (8 % a window
/// met the policer's edge 15–20 % over it, a collapse each time).
pub const EDGE_STEP: f64 = 0.05;
/// Light loss above what the link carried steps the ceiling back this much a window.
pub const BACK_STEP: f64 = 0.10;
/// A clean window's raise far from the link's edge (under [`BELOW`] of what it carried, and once it
/// was freed).
pub const FAST_STEP: f64 = 0.25;
/// The ceiling waits at this multiple of what the link carried until the link shows it
/// carries more (at 1.2, what arrived there showed it too slowly: back at `bitrate` 12–13 s
/// after a 1,000 kbit/s limit went, against 10 at 1.25).
pub const FREED: f64 = 1.25;
/// What clean windows in a row must have brought above what the link carried, in all, for it
/// to count as freed, as a share of what it carried (a second's worth): a policer's bucket
/// (a quarter of a second's worth here) lets a probe past the link through a while, and the
/// link shows no loss until the bucket is empty.
pub const FREED_SHOWN: f64 = 0.4;
/// A viewer that brings at least this share of its ceiling sends most of it: what it sends is
/// the ceiling less audio, headers and what its encoder keeps under its target (not a still
/// picture, nor a lower rendition's top rate).
pub const SENDS_MOST: f64 = 0.7;
/// At the wait, what arrives is to come to at least this multiple of what the link carried
/// (a viewer that fills [`FILLED`] of a ceiling at [`FREED`] brings 1.125)...
pub const WAIT_SHOWS: f64 = 1.1;
/// ...raised only after windows that lost at most this (a policer's bucket that begins to
/// empty loses a packet or two first)...
pub const SPOTLESS: f64 = 0.002;
/// ...for which the ceiling goes at most this far above what the link carried (0.8 of the
/// ceiling arrived at ~500 kbit/s: 1.375).
pub const WAIT_AT_MOST: f64 = 1.45;
/// Windows to wait after a raise was undone.
pub const REST_WINDOWS: u32 = 2;
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
    /// What the clean windows since the link last filled or lost brought above what it
    /// carried (a share of it, a second's worth each).
    shown: f64,

    rest: u32,
    max: f64,
    /// What the link carried when it last filled (kbit/s).
    carried: Option<f64>,
    /// What arrived in the last window (kbit/s).
    arrived: Option<f64>,
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

    /// A collapse is under way (its heavy loss is being told).
    pub fn collapsing(&self) -> bool {
        self.event.is_some()
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
        let arrived_kbps = f64::from(received_kbps.unwrap_or(sent_kbps));
        let arrived_before = self.arrived.replace(arrived_kbps);
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
                    && sent >= first
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
            self.shown = 0.0;
            return;
        }
        if loss > HOLD_ABOVE {
            self.shown = 0.0;
            self.cap = Some(match (raised_from, self.cap, self.carried) {
                (Some(before), _, _) => {
                    // With no edge known (the link was taken as freed), this raise found it:
                    // what arrived is what the link carries.
                    self.carried.get_or_insert(arrived_kbps);
                    self.rest = REST_WINDOWS;
                    before
                }
                // Above what the link carried, it goes on losing: a step back towards it.
                (None, Some(cap), Some(carried)) if cap > carried => {
                    (cap * (1.0 - BACK_STEP)).max(carried * BELOW)
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
        if let Some(carried) = self.carried.filter(|c| *c > 0.0) {
            self.shown += (arrived_kbps - carried).max(0.0) / carried;
        }
        // Up to FREED of what the link carried, a clean window raises it even when less than
        // it was sent: what holds the encoder down may be something else (a rendition's top
        // rate, `max-bitrate`, a still picture), and a ceiling that waited for proof there
        // would never let such a viewer climb again.
        let next = match self.carried {
            Some(carried) if cap < BELOW * carried => {
                (cap * (1.0 + FAST_STEP)).min(BELOW * carried)
            }
            Some(carried) if cap < carried => (cap * (1.0 + PROBE_STEP)).min(carried),
            Some(carried) if cap < FREED * carried => {
                (cap * (1.0 + EDGE_STEP)).min(FREED * carried)
            }
            Some(_) if self.shown >= FREED_SHOWN => {
                self.carried = None;
                self.shown = 0.0;
                self.past_edge(cap, arrived_kbps, arrived_before)
            }
            // At the wait, a viewer that sends most of its ceiling but still brings less than
            // the wait is to show: audio and headers take their share of the ceiling, and an
            // encoder sends under its target (at ~500 kbit/s what arrived was 0.8 of the
            // ceiling, no more than the link had carried: the wait showed nothing and the
            // viewer stayed there after the link was freed). Raised in small steps until what
            // arrives is [`WAIT_SHOWS`] times what the link carried.
            Some(carried)
                if loss <= SPOTLESS
                    && arrived_kbps >= SENDS_MOST * cap
                    && arrived_kbps < WAIT_SHOWS * carried
                    && cap < WAIT_AT_MOST * carried =>
            {
                (cap * (1.0 + EDGE_STEP)).min(WAIT_AT_MOST * carried)
            }
            // Waiting for the link to show it carries more (a viewer that does not fill the
            // ceiling loses nothing by the wait: when it does, the windows show it).
            Some(_) => return,
            None => self.past_edge(cap, arrived_kbps, arrived_before),
        };
        if next >= self.max {
            self.cap = None;
            self.carried = None;
        } else {
            self.before_raise = Some(cap);
            self.cap = Some(next);
        }
    }

    /// A clean window's raise from `cap` where no edge is known: by [`FAST_STEP`], and for a
    /// viewer that fills its ceiling or is climbing to it (the encoder follows a raise a
    /// second late), to [`PAST_EDGE`] times what arrived at most. Sent into a policer that is
    /// still there (a bucket hid it), more is a collapse of half the packets, not a third. A
    /// viewer held down by something else (what arrives neither fills the ceiling nor grows)
    /// is raised all the same: it costs nothing.
    fn past_edge(&self, cap: f64, arrived_kbps: f64, before: Option<f64>) -> f64 {
        let up = cap * (1.0 + FAST_STEP);
        let growing = before.is_some_and(|b| arrived_kbps > b * (1.0 + GROWING));
        if growing || arrived_kbps >= FILLED * cap {
            up.min(arrived_kbps * PAST_EDGE).max(cap)
        } else {
            up
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
        // A second window sent less than the first carried: the rate fell, the link did not.
        let mut f = LossCap::new(8000);
        f.on_window(0.58, 3400, Some(904));
        f.on_window(0.18, 837, Some(558));
        assert_eq!(f.carried(), Some(904));
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
        assert_eq!(c.cap(), Some(1000));
        // The raise went past the link: back, and no raise for REST_WINDOWS windows.
        c.on_window(0.05, 1000, None);
        assert_eq!(c.cap(), Some(850));
        for _ in 0..REST_WINDOWS {
            c.on_window(0.0, 850, None);
            assert_eq!(c.cap(), Some(850));
        }
        c.on_window(0.0, 850, None);
        assert_eq!(c.cap(), Some(1000));
    }

    #[test]
    fn light_loss_holds_below_what_the_link_carried_and_steps_back_above_it() {
        let mut c = LossCap::new(8000);
        c.on_window(0.5, 2000, None);
        assert_eq!(c.carried(), Some(1000));
        c.on_window(0.0, 850, None);
        assert_eq!(c.cap(), Some(1000), "up to what the link carried");
        // The raise to 1,000 meets 5 % loss: undone. Steady 5 % below what the link carried
        // is not ours: it holds at 850.
        for _ in 0..8 {
            c.on_window(0.05, 850, None);
            assert_eq!(c.cap(), Some(850));
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

    /// A policer of `rate` kbit/s with a bucket of `depth` kbit, one window (a second) at a
    /// time: the loss of sending `sent` kbit/s, and what arrived.
    struct Policer {
        rate: f64,
        depth: f64,
        tokens: f64,
    }

    impl Policer {
        fn new(rate: f64, depth: f64) -> Self {
            Self {
                rate,
                depth,
                tokens: depth,
            }
        }

        fn window(&mut self, sent: u32) -> (f64, u32) {
            let sent = f64::from(sent);
            let over = sent - self.rate;
            self.tokens -= over;
            let lost = (-self.tokens).max(0.0);
            self.tokens = self.tokens.clamp(0.0, self.depth);
            let loss = if sent > 0.0 { lost / sent } else { 0.0 };
            (loss, (sent - lost).round() as u32)
        }
    }

    #[test]
    fn a_policers_bucket_does_not_free_the_link() {
        // 1,000 kbit/s with a quarter second of bucket; the encoder sends 90 % of what the
        // ceiling allowed a window before (it follows a raise late, and under its target).
        let mut p = Policer::new(1000.0, 250.0);
        let mut c = LossCap::new(8000);
        c.on_window(0.5, 2000, Some(1000));
        let mut allowed = c.cap().unwrap_or(0);
        let mut seen = vec![];
        for _ in 0..60 {
            let (loss, received) = p.window(allowed);
            c.on_window(loss, allowed, Some(received));
            seen.push((
                allowed,
                (loss * 100.0).round() as u32,
                c.carried().is_some(),
            ));
            allowed = c.cap().unwrap_or(8000) * 9 / 10;
        }
        // It probes past the link up to a quarter above it, where the bucket empties and the
        // link shows loss; it never takes the link as freed (and climbs a quarter a window).
        assert!(seen.iter().all(|(_, _, edge)| *edge), "{seen:?}");
        assert!(seen.iter().all(|(k, _, _)| *k <= 1125), "{seen:?}");
        assert!(seen.iter().any(|(_, loss, _)| *loss > 0), "{seen:?}");
        assert!(seen[10..].iter().all(|(k, _, _)| *k >= 750), "{seen:?}");
    }

    /// A viewer that brings 0.8 of its ceiling (audio and headers take their share, the
    /// encoder sends under its target) behind a policer of `rate` with a quarter second of
    /// bucket, for `limited` windows, then with the policer gone: the ceilings, losses and
    /// the windows from the policer's going to a ceiling of 2,500 or none.
    fn under_a_policer_then_free(rate: f64, limited: usize) -> (Vec<(u32, u32)>, Option<usize>) {
        let mut p = Policer::new(rate, rate / 4.0);
        let mut c = LossCap::new(8000);
        let mut allowed = 2000;
        let mut seen = vec![];
        for i in 0..limited + 40 {
            if i == limited {
                p = Policer::new(100_000.0, 25_000.0);
            }
            let (loss, received) = p.window(allowed);
            c.on_window(loss, allowed, Some(received));
            seen.push((allowed, (loss * 100.0).round() as u32));
            if i >= limited && c.cap().is_none_or(|k| k >= 2500) {
                return (seen, Some(i - limited));
            }
            allowed = c.cap().unwrap_or(8000) * 8 / 10;
        }
        (seen, None)
    }

    #[test]
    fn a_viewer_under_its_ceiling_still_shows_a_freed_link() {
        for rate in [500.0, 1000.0] {
            let (seen, back) = under_a_policer_then_free(rate, 40);
            // Under the policer: probes bring light loss at most once settled, never a collapse.
            assert!(
                seen[10..40].iter().all(|(_, loss)| *loss <= 10),
                "{rate}: {seen:?}"
            );
            // Freed: back at 2,500 within 12 windows (the rule before never came back: what
            // arrived at the wait was no more than what the link had carried).
            assert!(back.is_some_and(|w| w <= 12), "{rate}: {back:?} {seen:?}");
        }
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
        // carried (what arrived above it shown on the way), then a quarter a window.
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
    fn past_the_edge_a_ceiling_far_above_what_arrives_waits_for_the_encoder() {
        let mut c = LossCap::new(8000);
        c.on_window(0.5, 2000, Some(1000));
        while c.carried().is_some() {
            let k = c.cap().unwrap_or(0);
            c.on_window(0.0, k, Some(k));
        }
        let cap = c.cap().unwrap_or(0);
        // The encoder far behind and climbing (600, then 720 of a ceiling of ~1,600): no
        // raise until what arrives comes within PAST_EDGE of it.
        c.on_window(0.0, 600, Some(600));
        let held = c.cap().unwrap_or(0);
        c.on_window(0.0, 720, Some(720));
        assert_eq!(c.cap().unwrap_or(0), held, "from {cap}");
        // Close to it, it rises again.
        c.on_window(0.0, held * 95 / 100, Some(held * 95 / 100));
        assert!(c.cap().unwrap_or(0) > held);
    }

    #[test]
    fn a_raise_past_a_freed_edge_that_brings_loss_finds_the_edge_again() {
        let mut c = LossCap::new(8000);
        c.on_window(0.5, 2000, Some(1000));
        let mut before = 0;
        while c.carried().is_some() {
            before = c.cap().unwrap_or(0);
            c.on_window(0.0, before, Some(before));
        }
        // Taken as freed: a raise.
        let raised = c.cap().unwrap_or(0);
        assert!(raised > before, "{before} to {raised}");
        // It brings light loss: the policer is still there. Undone, and the link's edge is
        // what arrived.
        c.on_window(0.04, raised, Some(raised * 96 / 100));
        assert_eq!(c.cap(), Some(before));
        assert_eq!(c.carried(), Some(raised * 96 / 100));
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
