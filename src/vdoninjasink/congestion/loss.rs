// SPDX-License-Identifier: MPL-2.0

//! A viewer's link estimate from the loss its RTCP receiver reports give (sans-IO), for viewers
//! that send no transport-wide feedback (GStreamer 1.22 clients that answer without the
//! extension, Raspberry Ninja): above [`CUT_ABOVE`] loss the estimate is cut in proportion,
//! between [`RAISE_BELOW`] and [`CUT_ABOVE`] it holds, below it rises by [`RAISE_STEP`]. The
//! same rule as the loss-based half of Google Congestion Control, once per report.

/// Loss above this fraction cuts the estimate.
pub const CUT_ABOVE: f64 = 0.10;
/// Loss below this fraction raises it.
pub const RAISE_BELOW: f64 = 0.02;
/// How much a clean report raises it.
pub const RAISE_STEP: f64 = 0.08;

#[derive(Debug, Clone)]
pub struct LossEstimator {
    estimate: f64,
    min: f64,
    max: f64,
}

impl LossEstimator {
    /// Starts at `start` kbit/s, within `min`..`max`.
    pub fn new(start: u32, min: u32, max: u32) -> Self {
        Self {
            estimate: f64::from(start),
            min: f64::from(min.min(max)),
            max: f64::from(max),
        }
    }

    pub fn estimate(&self) -> u32 {
        self.estimate.round() as u32
    }

    /// A receiver report's fraction of packets lost (0.0–1.0) since the last one: the new
    /// estimate (kbit/s).
    pub fn on_report(&mut self, fraction_lost: f64) -> u32 {
        let loss = fraction_lost.clamp(0.0, 1.0);
        if loss > CUT_ABOVE {
            self.estimate *= 1.0 - 0.5 * loss;
        } else if loss < RAISE_BELOW {
            self.estimate *= 1.0 + RAISE_STEP;
        }
        self.estimate = self.estimate.clamp(self.min, self.max);
        self.estimate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_holds_and_raises_by_loss() {
        let mut e = LossEstimator::new(2500, 300, 8000);
        assert_eq!(e.on_report(0.30), 2125, "30 % loss: cut by 15 %");
        assert_eq!(e.on_report(0.05), 2125, "5 %: hold");
        assert_eq!(e.on_report(0.0), 2295, "clean: +8 %");
        for _ in 0..50 {
            e.on_report(0.9);
        }
        assert_eq!(e.estimate(), 300, "min-bitrate");
        for _ in 0..100 {
            e.on_report(0.0);
        }
        assert_eq!(e.estimate(), 8000, "max-bitrate");
        assert_eq!(e.on_report(f64::NAN.max(2.0)), 4000, "nonsense is clamped");
    }
}
