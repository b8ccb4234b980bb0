//! Delivery-rate estimation: what the congestion controller learns from
//! each ack about how fast the path delivers. Every packet sent remembers
//! the connection's delivery state ([`DeliveryMark`]); when it is
//! acknowledged, the bytes delivered since, over the time they took, make
//! a [`RateSample`].

use std::time::{Duration, Instant};

use crate::udp::proto::congestion::RateSample;

/// What the delivery-rate estimate remembers per packet sent: how much had
/// been delivered by then, when, and when the flight it belongs to began.
#[derive(Debug, Clone, Copy)]
pub(super) struct DeliveryMark {
    pub(super) delivered: u64,
    delivered_time: Instant,
    first_sent_time: Instant,
    /// Sent while the connection was application-limited.
    app_limited: bool,
}

/// The connection's side of delivery-rate estimation.
#[derive(Debug, Clone, Copy)]
pub(super) struct DeliveryRate {
    /// Bytes acknowledged over the connection's life.
    pub(super) delivered: u64,
    /// When `delivered` last grew.
    pub(super) delivered_time: Instant,
    /// When the newest acknowledged packet was sent: the start of the
    /// flight the next packet joins.
    pub(super) first_sent_time: Instant,
    /// Samples stay application-limited until `delivered` passes this
    /// (0: not limited).
    pub(super) app_limited_until: u64,
}

impl DeliveryRate {
    /// Nothing delivered yet, as of `now`.
    pub(super) fn new(now: Instant) -> Self {
        Self {
            delivered: 0,
            delivered_time: now,
            first_sent_time: now,
            app_limited_until: 0,
        }
    }

    /// The delivery-rate state to remember with a packet sent now, with
    /// `in_flight` bytes already in flight. A packet sent with nothing in
    /// flight starts a new flight.
    pub(super) fn mark(&mut self, now: Instant, in_flight: u64) -> DeliveryMark {
        if in_flight == 0 {
            self.first_sent_time = now;
            self.delivered_time = now;
        }
        DeliveryMark {
            delivered: self.delivered,
            delivered_time: self.delivered_time,
            first_sent_time: self.first_sent_time,
            app_limited: self.app_limited_until > 0,
        }
    }

    /// The delivery rate over the flight that ended with the newest packet
    /// just acknowledged (`newest`: when `mark` was the state, it was
    /// `sent`): bytes delivered since, over the longer of its send and ack
    /// intervals, so neither a burst of sends nor a burst of acks inflates
    /// it.
    pub(super) fn sample(
        &self,
        now: Instant,
        (mark, sent): (DeliveryMark, Instant),
        acked_bytes: u64,
        lost_bytes: u64,
        min_rtt: Duration,
        rtt: Option<Duration>,
    ) -> RateSample {
        let send_elapsed = sent.saturating_duration_since(mark.first_sent_time);
        let ack_elapsed = now.saturating_duration_since(mark.delivered_time);
        let interval = send_elapsed.max(ack_elapsed);
        let delivered = self.delivered - mark.delivered;
        // An interval shorter than the minimum RTT cannot show the path's
        // rate (acks compressed in a queue): no sample.
        let delivery_rate = if interval.is_zero() || interval < min_rtt {
            0
        } else {
            (u128::from(delivered) * 1_000_000_000 / interval.as_nanos()).min(u128::from(u64::MAX))
                as u64
        };
        RateSample {
            delivery_rate,
            delivered: self.delivered,
            prior_delivered: mark.delivered,
            acked_bytes,
            lost_bytes,
            is_app_limited: mark.app_limited,
            rtt,
        }
    }
}
