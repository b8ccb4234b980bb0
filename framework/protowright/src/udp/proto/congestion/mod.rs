//! Congestion control behind a trait, so controllers can be swapped per
//! connection: NewReno per RFC 9002 is the reference implementation.
//!
//! The connection tells its controller about every packet sent, acked and
//! lost; the controller answers with a congestion window and a pacing rate.
//! Pacing is always on: a token bucket spreads a window over the RTT.

mod new_reno;
mod pacer;

use std::fmt::Debug;
use std::time::{Duration, Instant};

pub use new_reno::NewReno;
pub(crate) use pacer::Pacer;

use super::rtt::RttEstimator;

/// A congestion controller.
pub trait Controller: Debug + Send {
    /// The most bytes that may be in flight.
    fn window(&self) -> u64;

    /// A packet of `bytes` counted in flight was sent at `now`.
    fn on_sent(&mut self, now: Instant, bytes: u64);

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

/// Which congestion controller a connection runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CongestionControl {
    /// NewReno as specified in RFC 9002 section 7.
    #[default]
    NewReno,
}

impl CongestionControl {
    /// A fresh controller for a path with datagrams of `max_datagram` bytes.
    pub(crate) fn build(self, max_datagram: u64) -> Box<dyn Controller> {
        match self {
            Self::NewReno => Box::new(NewReno::new(max_datagram)),
        }
    }
}
