//! Round-trip time estimation per RFC 9002, section 5.

use std::time::Duration;

/// The timer granularity RFC 9002 assumes (1 ms).
pub(crate) const GRANULARITY: Duration = Duration::from_millis(1);

/// Smoothed RTT, its variance, the minimum and the latest sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttEstimator {
    latest: Duration,
    smoothed: Duration,
    variance: Duration,
    min: Option<Duration>,
}

impl RttEstimator {
    /// An estimator that has seen no sample: smoothed RTT `initial`,
    /// variance half of it.
    pub(crate) fn new(initial: Duration) -> Self {
        Self {
            latest: initial,
            smoothed: initial,
            variance: initial / 2,
            min: None,
        }
    }

    /// Takes one sample: `latest` is the time from sending the largest newly
    /// acknowledged packet to receiving its ack; `ack_delay` is the time the
    /// peer says it held that ack, already capped at its maximum.
    pub(crate) fn update(&mut self, latest: Duration, ack_delay: Duration) {
        self.latest = latest;
        let Some(min) = self.min else {
            self.min = Some(latest);
            self.smoothed = latest;
            self.variance = latest / 2;
            return;
        };
        let min = min.min(latest);
        self.min = Some(min);
        // Subtract the ack delay only when that does not go below the minimum.
        let adjusted = if latest >= min + ack_delay {
            latest - ack_delay
        } else {
            latest
        };
        let deviation = self.smoothed.abs_diff(adjusted);
        self.variance = (self.variance * 3 + deviation) / 4;
        self.smoothed = (self.smoothed * 7 + adjusted) / 8;
    }

    /// Whether any sample has been taken.
    pub fn has_sample(&self) -> bool {
        self.min.is_some()
    }

    /// The smoothed RTT.
    pub fn smoothed(&self) -> Duration {
        self.smoothed
    }

    /// The RTT variance.
    pub fn variance(&self) -> Duration {
        self.variance
    }

    /// The smallest sample, or the smoothed RTT before any sample.
    pub fn min(&self) -> Duration {
        self.min.unwrap_or(self.smoothed)
    }

    /// The latest sample.
    pub fn latest(&self) -> Duration {
        self.latest
    }

    /// The probe timeout before backoff: smoothed + max(4·variance, 1 ms) +
    /// the peer's maximum ack delay.
    pub(crate) fn pto(&self, max_ack_delay: Duration) -> Duration {
        self.smoothed + (self.variance * 4).max(GRANULARITY) + max_ack_delay
    }

    /// How long after a later packet was acked an unacked one counts as
    /// lost: 9/8 of max(smoothed, latest), at least 1 ms.
    pub(crate) fn loss_delay(&self) -> Duration {
        (self.smoothed.max(self.latest) * 9 / 8).max(GRANULARITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_first_sample_sets_everything() {
        let mut rtt = RttEstimator::new(333 * MS);
        assert_eq!(rtt.pto(25 * MS), 333 * MS + 666 * MS + 25 * MS);
        rtt.update(100 * MS, 10 * MS);
        assert_eq!(rtt.smoothed(), 100 * MS);
        assert_eq!(rtt.variance(), 50 * MS);
        assert_eq!(rtt.min(), 100 * MS);
    }

    #[test]
    fn later_samples_follow_the_rfc_9002_formulas() {
        let mut rtt = RttEstimator::new(333 * MS);
        rtt.update(100 * MS, Duration::ZERO);
        // 160 ms with 20 ms of ack delay: adjusted 140 ms.
        rtt.update(160 * MS, 20 * MS);
        // variance = 3/4·50 + 1/4·|100 − 140| = 37.5 + 10 = 47.5 ms
        assert_eq!(rtt.variance(), Duration::from_micros(47_500));
        // smoothed = 7/8·100 + 1/8·140 = 105 ms
        assert_eq!(rtt.smoothed(), 105 * MS);
        assert_eq!(rtt.min(), 100 * MS);
        // loss delay = 9/8 · max(105, 160) = 180 ms
        assert_eq!(rtt.loss_delay(), 180 * MS);
        // pto = 105 + 4·47.5 + 25 = 320 ms
        assert_eq!(rtt.pto(25 * MS), 320 * MS);
    }

    #[test]
    fn ack_delay_is_not_subtracted_below_the_minimum() {
        let mut rtt = RttEstimator::new(333 * MS);
        rtt.update(100 * MS, Duration::ZERO);
        // 105 ms with 20 ms ack delay would go below min (100): use 105.
        rtt.update(105 * MS, 20 * MS);
        // smoothed = 7/8·100 + 1/8·105 = 100.625 ms
        assert_eq!(rtt.smoothed(), Duration::from_micros(100_625));
    }

    #[test]
    fn the_loss_delay_never_drops_below_the_granularity() {
        let mut rtt = RttEstimator::new(333 * MS);
        rtt.update(Duration::from_micros(20), Duration::ZERO);
        assert_eq!(rtt.loss_delay(), GRANULARITY);
    }
}
