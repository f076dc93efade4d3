// SPDX-License-Identifier: MPL-2.0

//! A message rate limit (a token bucket): the handshake server applies one per connection
//! where its frames are read, the state machine one per peer to its application messages.

use std::time::Instant;

/// A message rate limit.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Messages per second, sustained.
    pub per_second: f64,
    /// Burst size.
    pub burst: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: 100.0,
            burst: 400.0,
        }
    }
}

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Dropped; `dropped` so far by this bucket, `log` when that count is worth a line
    /// (1, 2, 4, 8, …: one line per burst of a flood, not one per message).
    Drop {
        dropped: u64,
        log: bool,
    },
}

#[derive(Debug, Clone)]
pub struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    refilled: Instant,
    dropped: u64,
}

impl TokenBucket {
    pub fn new(limit: RateLimit, now: Instant) -> Self {
        Self {
            limit,
            tokens: limit.burst,
            refilled: now,
            dropped: 0,
        }
    }

    pub fn take(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.limit.per_second).min(self.limit.burst);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Pass;
        }
        self.dropped += 1;
        Verdict::Drop {
            dropped: self.dropped,
            log: self.dropped.is_power_of_two(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn drops_past_the_burst_and_refills() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(
            RateLimit {
                per_second: 10.0,
                burst: 5.0,
            },
            t0,
        );
        let verdicts: Vec<Verdict> = (0..20).map(|_| b.take(t0)).collect();
        let passed = verdicts.iter().filter(|v| **v == Verdict::Pass).count();
        assert_eq!(passed, 5, "only the burst passes");
        let logged = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Drop { log: true, .. }))
            .count();
        assert_eq!(logged, 4, "15 drops are logged at 1, 2, 4 and 8");
        // Half a second later five more tokens are there.
        let later = t0 + Duration::from_millis(500);
        let passed = (0..10).filter(|_| b.take(later) == Verdict::Pass).count();
        assert_eq!(passed, 5);
    }
}
