//! A token bucket that spreads sends over time at the controller's rate, so
//! a window is never sent as one burst.

use std::time::{Duration, Instant};

/// Datagrams the bucket holds at least, so the sender can batch system
/// calls without bursting a window.
const BURST_DATAGRAMS: u64 = 10;

/// The bucket also holds this much time's worth of sending at the rate:
/// timers fire at millisecond granularity (and a driver may sleep longer),
/// so a smaller bucket would cap the rate at a burst per timer tick, below
/// what the controller asked for.
const BURST_TIME: Duration = Duration::from_millis(2);

#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    tokens: u64,
    last: Option<Instant>,
}

impl Pacer {
    pub(crate) fn new() -> Self {
        Self {
            tokens: 0,
            last: None,
        }
    }

    /// When a datagram of `bytes` may go at `rate` bytes per second: `None`
    /// for now.
    pub(crate) fn release_time(
        &mut self,
        now: Instant,
        rate: u64,
        bytes: u64,
        max_datagram: u64,
    ) -> Option<Instant> {
        let capacity = (BURST_DATAGRAMS * max_datagram)
            .max((u128::from(rate) * BURST_TIME.as_nanos() / 1_000_000_000) as u64);
        match self.last {
            None => self.tokens = capacity,
            Some(last) => {
                let elapsed = now.saturating_duration_since(last).as_nanos();
                let refill =
                    (elapsed * u128::from(rate) / 1_000_000_000).min(u128::from(capacity)) as u64;
                self.tokens = (self.tokens + refill).min(capacity);
            }
        }
        self.last = Some(now);
        if self.tokens >= bytes || rate == 0 {
            return None;
        }
        let missing = u128::from(bytes - self.tokens);
        let wait = (missing * 1_000_000_000).div_ceil(u128::from(rate));
        Some(now + Duration::from_nanos(wait.min(u128::from(u64::MAX)) as u64))
    }

    pub(crate) fn on_sent(&mut self, bytes: u64) {
        self.tokens = self.tokens.saturating_sub(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_at_once_then_sends_are_spaced_at_the_rate() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new();
        for _ in 0..BURST_DATAGRAMS {
            assert_eq!(pacer.release_time(t0, 1_000_000, 1000, 1000), None);
            pacer.on_sent(1000);
        }
        // Empty bucket at 1 MB/s (2 ms of which is below ten datagrams):
        // the next 1000 bytes wait 1 ms.
        assert_eq!(
            pacer.release_time(t0, 1_000_000, 1000, 1000),
            Some(t0 + Duration::from_millis(1))
        );
        assert_eq!(
            pacer.release_time(t0 + Duration::from_millis(1), 1_000_000, 1000, 1000),
            None
        );
    }

    #[test]
    fn at_high_rates_the_bucket_holds_two_milliseconds_of_sending() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new();
        // 100 MB/s: 200 kB per 2 ms, far above ten 1200-byte datagrams.
        let rate = 100_000_000;
        let mut sent = 0;
        while pacer.release_time(t0, rate, 1200, 1200).is_none() {
            pacer.on_sent(1200);
            sent += 1200;
        }
        // 166 whole datagrams fit in 200 kB.
        assert_eq!(sent, 199_200);
    }
}
