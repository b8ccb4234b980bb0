//! Congestion control behind a trait, so controllers can be swapped per
//! connection. The default, [`Bbr`], is model-based: it paces at its
//! estimate of the bottleneck bandwidth and does not take random loss for
//! congestion. [`NewReno`] per RFC 9002 is the loss-based reference.
//!
//! The connection tells its controller about every packet sent, acked and
//! lost, and once per ack about the delivery rate it measured (the bytes
//! acknowledged over the time they took, per the delivery-rate estimation
//! of draft-cheng-iccrg-delivery-rate-estimation); the controller answers
//! with a congestion window and a pacing rate. Pacing is always on: a token
//! bucket spreads a window over the RTT.

mod bbr;
mod new_reno;
mod pacer;

use std::fmt::Debug;
use std::time::{Duration, Instant};

pub use bbr::{Bbr, BbrState};
pub use new_reno::NewReno;
pub(crate) use pacer::Pacer;

use super::rtt::RttEstimator;

/// A congestion controller.
pub trait Controller: Debug + Send {
    /// The most bytes that may be in flight.
    fn window(&self) -> u64;

    /// A packet of `bytes` counted in flight was sent at `now`. The
    /// default ignores it (both built-in controllers learn from acks).
    fn on_sent(&mut self, now: Instant, bytes: u64) {
        let _ = (now, bytes);
    }

    /// A packet of `bytes` sent at `sent` was acked. `app_limited` tells that
    /// the sender had less to send than the window allowed when it was sent,
    /// so the ack says nothing about spare capacity.
    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: u64,
        rtt: &RttEstimator,
        app_limited: bool,
    );

    /// Packets were declared lost; `largest_lost_sent` is when the newest of
    /// them was sent, `lost_bytes` their total size. `persistent` is RFC
    /// 9002's persistent congestion.
    fn on_loss(
        &mut self,
        now: Instant,
        largest_lost_sent: Instant,
        lost_bytes: u64,
        persistent: bool,
    );

    /// One ack frame was processed: `sample` holds the delivery rate it
    /// measured. Called after `on_ack` for each packet it acknowledged, and
    /// after `on_loss` for the packets it declared lost. The default
    /// ignores it.
    fn on_ack_event(&mut self, now: Instant, sample: &RateSample, bytes_in_flight: u64) {
        let _ = (now, sample, bytes_in_flight);
    }

    /// Path MTU discovery changed the datagram size to `size` bytes.
    fn on_datagram_size(&mut self, size: u64);

    /// Bytes per second to pace at. The default spreads 1.25 windows over
    /// the smoothed RTT, as RFC 9002 section 7.7 suggests.
    fn pacing_rate(&self, rtt: &RttEstimator) -> u64 {
        let rtt = rtt.smoothed().max(Duration::from_micros(1));
        let window = self.window() as u128 * 5 / 4;
        (window * 1_000_000_000 / rtt.as_nanos()).min(u128::from(u64::MAX)) as u64
    }

    /// The controller's name, for stats and logs.
    fn name(&self) -> &'static str;
}

/// What one ack taught about the path: the delivery rate over the flight
/// that ended with the newest packet it acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RateSample {
    /// Bytes per second delivered over the sample's interval; 0 when the
    /// interval was too short to measure.
    pub delivery_rate: u64,
    /// Bytes delivered (acknowledged) over the connection's life, this ack
    /// included.
    pub delivered: u64,
    /// What `delivered` was when the newest acknowledged packet was sent;
    /// a round trip ends when this passes the value at the round's start.
    pub prior_delivered: u64,
    /// Bytes this ack acknowledged.
    pub acked_bytes: u64,
    /// Bytes declared lost while processing this ack.
    pub lost_bytes: u64,
    /// Whether the sender ran out of data while the sample's packets were
    /// in flight, so the rate shows the application, not the path.
    pub is_app_limited: bool,
    /// The RTT measured by this ack, if it gave one.
    pub rtt: Option<Duration>,
}

/// Which congestion controller a connection runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CongestionControl {
    /// The BBR-style model-based controller: paces at the estimated
    /// bottleneck bandwidth; random loss does not slow it.
    #[default]
    Bbr,
    /// NewReno as specified in RFC 9002 section 7: halves its window on
    /// loss.
    NewReno,
}

impl CongestionControl {
    /// A fresh controller for a path with datagrams of `max_datagram` bytes.
    pub(crate) fn build(self, max_datagram: u64) -> Box<dyn Controller> {
        match self {
            Self::Bbr => Box::new(Bbr::new(max_datagram)),
            Self::NewReno => Box::new(NewReno::new(max_datagram)),
        }
    }
}
