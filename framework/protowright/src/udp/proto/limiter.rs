//! A token bucket for an endpoint's stateless answers (retries, resets,
//! refusals): each costs a token, tokens come back at a steady rate up to
//! a burst, and an answer without a token is dropped. Time is an input, as
//! everywhere in the protocol core.

use std::time::{Duration, Instant};

/// Tokens that refill at `rate` per second up to `burst`.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: u32,
    burst: u32,
    tokens: u32,
    /// When the bucket last gained its most recent token: refill counts
    /// from here, so fractions of a token are never lost.
    refilled_at: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub(crate) fn new(rate: u32, burst: u32, now: Instant) -> Self {
        Self {
            rate: rate.max(1),
            burst,
            tokens: burst,
            refilled_at: now,
        }
    }

    /// Takes a token; `false` when none is left.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled_at);
        let per_token = Duration::from_secs(1) / self.rate;
        let gained = elapsed.as_nanos() / per_token.as_nanos().max(1);
        if gained == 0 {
            return;
        }
        let room = self.burst - self.tokens;
        if gained >= u128::from(room) {
            self.tokens = self.burst;
            self.refilled_at = now;
        } else {
            // `gained < room <= u32::MAX`, so both conversions are exact.
            self.tokens += gained as u32;
            self.refilled_at += per_token * gained as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_answered_then_the_rate_holds() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(100, 10, start);
        let burst = (0..50).filter(|_| bucket.take(start)).count();
        assert_eq!(burst, 10);
        // 100 a second: one token every 10 ms, none in between.
        assert!(!bucket.take(start + Duration::from_millis(9)));
        assert!(bucket.take(start + Duration::from_millis(10)));
        assert!(!bucket.take(start + Duration::from_millis(10)));
        // Over a second, 100 more and no more, however often it is asked.
        let mut answered = 0;
        for ms in 11..=1010 {
            let now = start + Duration::from_millis(ms);
            answered += (0..5).filter(|_| bucket.take(now)).count();
        }
        assert_eq!(answered, 100);
        // A long quiet spell refills only up to the burst.
        let later = start + Duration::from_secs(3600);
        assert_eq!((0..50).filter(|_| bucket.take(later)).count(), 10);
    }
}
