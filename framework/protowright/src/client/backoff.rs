//! Reconnect pacing: exponential backoff with full jitter.
//!
//! Each failed attempt doubles the ceiling (from `initial` up to `max`) and
//! the actual wait is drawn uniformly between zero and the ceiling, so a
//! fleet of clients that lost the same server does not return in lockstep.
//! The generator is seeded, so a simulation replays the same waits.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

/// When to try again after a failed connection, and when to give up.
///
/// Defaults: 100 ms initial ceiling, 10 s maximum, no cap on attempts or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first wait.
    pub initial: Duration,
    /// The largest ceiling.
    pub max: Duration,
    /// Give up after this many failed attempts in a row. `None`: never.
    pub max_attempts: Option<u32>,
    /// Give up once failures have gone on this long. `None`: never.
    pub max_elapsed: Option<Duration>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            max_attempts: None,
            max_elapsed: None,
        }
    }
}

/// The backoff of one client: failures since the last success.
#[derive(Debug)]
pub(super) struct Schedule {
    policy: Backoff,
    failures: u32,
    first_failure: Option<Instant>,
    rng: SmallRng,
}

impl Schedule {
    pub(super) fn new(policy: Backoff, seed: u64) -> Self {
        Self {
            policy,
            failures: 0,
            first_failure: None,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// A connection succeeded: the next failure starts from the beginning.
    pub(super) fn reset(&mut self) {
        self.failures = 0;
        self.first_failure = None;
    }

    /// Records a failure at `now` and returns how long to wait before the
    /// next attempt, or `None` when the policy says to give up.
    pub(super) fn next_delay(&mut self, now: Instant) -> Option<Duration> {
        let first = *self.first_failure.get_or_insert(now);
        self.failures += 1;
        if self
            .policy
            .max_attempts
            .is_some_and(|max| self.failures >= max)
        {
            return None;
        }
        if self
            .policy
            .max_elapsed
            .is_some_and(|max| now.duration_since(first) >= max)
        {
            return None;
        }
        let doubling = 2u32.saturating_pow(self.failures - 1);
        let ceiling = self
            .policy
            .initial
            .saturating_mul(doubling)
            .min(self.policy.max);
        let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        Some(Duration::from_micros(self.rng.random_range(0..=micros)))
    }

    /// Failed attempts since the last success.
    pub(super) fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Backoff {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
            ..Backoff::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waits_stay_under_a_doubling_ceiling_capped_at_max() {
        let mut schedule = Schedule::new(policy(), 1);
        let ceilings = [100, 200, 400, 800, 1600, 2000, 2000, 2000];
        for ceiling in ceilings {
            let delay = schedule.next_delay(Instant::now()).unwrap();
            assert!(
                delay <= Duration::from_millis(ceiling),
                "{delay:?} > {ceiling} ms"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waits_are_jittered_across_the_whole_range() {
        let mut low = false;
        let mut high = false;
        for seed in 0..200 {
            let mut schedule = Schedule::new(policy(), seed);
            for _ in 0..5 {
                schedule.next_delay(Instant::now());
            }
            // The sixth ceiling is 2 s.
            let delay = schedule.next_delay(Instant::now()).unwrap();
            low |= delay < Duration::from_millis(500);
            high |= delay > Duration::from_millis(1500);
        }
        assert!(low && high, "full jitter spans zero to the ceiling");
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_seed_gives_the_same_waits() {
        let waits = |seed| {
            let mut schedule = Schedule::new(policy(), seed);
            (0..6)
                .map(|_| schedule.next_delay(Instant::now()))
                .collect::<Vec<_>>()
        };
        assert_eq!(waits(42), waits(42));
        assert_ne!(waits(42), waits(43));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_attempts() {
        let mut schedule = Schedule::new(
            Backoff {
                max_attempts: Some(3),
                ..policy()
            },
            1,
        );
        assert!(schedule.next_delay(Instant::now()).is_some());
        assert!(schedule.next_delay(Instant::now()).is_some());
        assert_eq!(schedule.next_delay(Instant::now()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_elapsed() {
        let mut schedule = Schedule::new(
            Backoff {
                max_elapsed: Some(Duration::from_secs(5)),
                ..policy()
            },
            1,
        );
        assert!(schedule.next_delay(Instant::now()).is_some());
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(schedule.next_delay(Instant::now()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_starts_the_ceiling_over() {
        let mut schedule = Schedule::new(policy(), 1);
        for _ in 0..6 {
            schedule.next_delay(Instant::now());
        }
        schedule.reset();
        assert_eq!(schedule.failures(), 0);
        let delay = schedule.next_delay(Instant::now()).unwrap();
        assert!(delay <= Duration::from_millis(100));
    }
}
