//! NewReno as specified in RFC 9002 section 7: slow start, congestion
//! avoidance, one window reduction per recovery period, and a collapse to
//! the minimum window on persistent congestion.

use std::time::Instant;

use super::Controller;
use crate::udp::proto::rtt::RttEstimator;

/// RFC 9002's NewReno.
#[derive(Debug, Clone)]
pub struct NewReno {
    max_datagram: u64,
    window: u64,
    ssthresh: u64,
    /// Bytes acked in congestion avoidance since the window last grew.
    acked_in_avoidance: u64,
    /// Packets sent before this instant belong to the current recovery.
    recovery_start: Option<Instant>,
}

impl NewReno {
    /// A controller in slow start with RFC 9002's initial window:
    /// min(10 × datagram, max(14,720, 2 × datagram)).
    pub fn new(max_datagram: u64) -> Self {
        Self {
            max_datagram,
            window: initial_window(max_datagram),
            ssthresh: u64::MAX,
            acked_in_avoidance: 0,
            recovery_start: None,
        }
    }

    fn minimum_window(&self) -> u64 {
        2 * self.max_datagram
    }

    fn in_recovery(&self, sent: Instant) -> bool {
        self.recovery_start.is_some_and(|start| sent <= start)
    }

    /// The slow-start threshold (`u64::MAX` until the first loss).
    pub fn ssthresh(&self) -> u64 {
        self.ssthresh
    }
}

/// RFC 9002's initial window for datagrams of `max_datagram` bytes.
pub(crate) fn initial_window(max_datagram: u64) -> u64 {
    (10 * max_datagram).min((2 * max_datagram).max(14_720))
}

impl Controller for NewReno {
    fn window(&self) -> u64 {
        self.window
    }

    fn on_ack(
        &mut self,
        _now: Instant,
        sent: Instant,
        bytes: u64,
        _rtt: &RttEstimator,
        app_limited: bool,
    ) {
        if self.in_recovery(sent) || app_limited {
            return;
        }
        if self.window < self.ssthresh {
            self.window += bytes;
        } else {
            self.acked_in_avoidance += bytes;
            if self.acked_in_avoidance >= self.window {
                self.acked_in_avoidance -= self.window;
                self.window += self.max_datagram;
            }
        }
    }

    fn on_loss(
        &mut self,
        now: Instant,
        largest_lost_sent: Instant,
        _lost_bytes: u64,
        persistent: bool,
    ) {
        if !self.in_recovery(largest_lost_sent) {
            self.recovery_start = Some(now);
            self.ssthresh = (self.window / 2).max(self.minimum_window());
            self.window = self.ssthresh;
            self.acked_in_avoidance = 0;
        }
        if persistent {
            self.window = self.minimum_window();
            self.acked_in_avoidance = 0;
        }
    }

    fn on_datagram_size(&mut self, size: u64) {
        self.max_datagram = size;
        self.window = self.window.max(self.minimum_window());
    }

    fn name(&self) -> &'static str {
        "newreno"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rtt() -> RttEstimator {
        RttEstimator::new(Duration::from_millis(100))
    }

    #[test]
    fn the_initial_window_follows_rfc_9002() {
        assert_eq!(initial_window(1200), 12_000);
        assert_eq!(initial_window(1472), 14_720);
        assert_eq!(initial_window(9000), 18_000);
    }

    #[test]
    fn slow_start_grows_by_every_acked_byte() {
        let t0 = Instant::now();
        let mut cc = NewReno::new(1200);
        cc.on_ack(t0, t0, 1200, &rtt(), false);
        assert_eq!(cc.window(), 13_200);
        // An app-limited ack does not grow the window.
        cc.on_ack(t0, t0, 1200, &rtt(), true);
        assert_eq!(cc.window(), 13_200);
    }

    #[test]
    fn a_loss_halves_once_per_recovery_period() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(10);
        let t2 = t0 + Duration::from_millis(20);
        let mut cc = NewReno::new(1200);
        cc.on_loss(t1, t0, 1200, false);
        assert_eq!(cc.window(), 6_000);
        assert_eq!(cc.ssthresh(), 6_000);
        // A second loss of a packet sent before recovery began: no change.
        cc.on_loss(t2, t0, 1200, false);
        assert_eq!(cc.window(), 6_000);
        // Acks of packets sent before recovery began do not grow it either.
        cc.on_ack(t2, t1, 1200, &rtt(), false);
        assert_eq!(cc.window(), 6_000);
        // A loss of a packet sent after recovery began starts a new one.
        cc.on_loss(t2 + Duration::from_millis(1), t2, 1200, false);
        assert_eq!(cc.window(), 3_000);
        // Never below two datagrams.
        cc.on_loss(
            t2 + Duration::from_millis(3),
            t2 + Duration::from_millis(2),
            1200,
            false,
        );
        assert_eq!(cc.window(), 2_400);
    }

    #[test]
    fn congestion_avoidance_adds_one_datagram_per_window_acked() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(10);
        let mut cc = NewReno::new(1000);
        cc.on_loss(t1, t0, 1000, false); // window 5_000, ssthresh 5_000
        let after = t1 + Duration::from_millis(1);
        for _ in 0..4 {
            cc.on_ack(after, after, 1000, &rtt(), false);
        }
        assert_eq!(cc.window(), 5_000);
        cc.on_ack(after, after, 1000, &rtt(), false);
        assert_eq!(cc.window(), 6_000);
    }

    #[test]
    fn persistent_congestion_collapses_to_the_minimum_window() {
        let t0 = Instant::now();
        let mut cc = NewReno::new(1200);
        cc.on_loss(t0 + Duration::from_secs(1), t0, 1200, true);
        assert_eq!(cc.window(), 2_400);
    }
}
