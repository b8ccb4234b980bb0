//! The datagram fault model: what a path does to each datagram.
//!
//! turmoil's simulated UDP reorders (when its latency spread is wide) and
//! can cut a link, but it never loses, duplicates, corrupts or truncates a
//! single datagram, has no size limit and no bandwidth. This module adds
//! them, seeded, so a failing run replays exactly:
//!
//! - [`Faults`]: the settings of one path — independent loss, bursty loss
//!   (a Gilbert-Elliott chain), duplication, corruption, truncation, extra
//!   delay with jitter (which reorders), a strict maximum datagram size, and
//!   a bandwidth cap behind a bounded drop-tail queue.
//! - [`Link`]: one direction of one path, applying the settings to each
//!   datagram with its own generator and counting every fault. It is pure
//!   (no sockets, no runtime): protowright's own engine tests step it by
//!   hand, and the [`Faulty`] network wrapper runs it inside turmoil (or on
//!   real sockets).
//! - [`Faulty`]: any `protowright::net::Net` with the model between the
//!   transport and the socket, its settings changeable while the run goes
//!   on through a [`FaultControl`].

mod layer;
mod link;

use std::time::Duration;

pub use layer::{FaultControl, Faulty, FaultyDatagram};
pub use link::{Link, Transmission};

/// What a path does to the datagrams crossing it. `Faults::default()` is a
/// perfect path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Probability that a datagram is lost, independently of the others.
    pub loss: f64,
    /// Bursty loss on top of `loss`, as radio and congested paths lose.
    pub burst: Option<Burst>,
    /// Probability that a datagram arrives twice.
    pub duplicate: f64,
    /// Probability that one bit of a datagram is flipped.
    pub corrupt: f64,
    /// Probability that a datagram is cut short at a random length.
    pub truncate: f64,
    /// Delay added to every datagram (on top of the network's own).
    pub delay: Duration,
    /// A random extra delay up to this, drawn per datagram: datagrams
    /// overtake each other.
    pub jitter: Duration,
    /// Datagrams larger than this are dropped (and counted), as a path
    /// whose MTU is lower than what the sender tries would do.
    pub max_datagram: Option<usize>,
    /// A rate limit with a bounded queue: datagrams wait their turn, and
    /// one that finds the queue full is dropped.
    pub bandwidth: Option<Bandwidth>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            loss: 0.0,
            burst: None,
            duplicate: 0.0,
            corrupt: 0.0,
            truncate: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            max_datagram: None,
            bandwidth: None,
        }
    }
}

impl Faults {
    /// A perfect path.
    pub fn none() -> Self {
        Self::default()
    }

    /// Independent loss at `rate`.
    pub fn loss(rate: f64) -> Self {
        Self {
            loss: rate,
            ..Self::default()
        }
    }

    /// Whether this path does anything at all to datagrams.
    pub fn is_perfect(&self) -> bool {
        *self == Self::default()
    }

    /// The share of datagrams the path loses in the long run (independent
    /// and bursty loss together; the queue's drops are not included, as
    /// they depend on the traffic).
    pub fn long_run_loss(&self) -> f64 {
        let burst = self.burst.map_or(0.0, |b| b.long_run_loss());
        1.0 - (1.0 - self.loss) * (1.0 - burst)
    }
}

/// Bursty loss: a two-state (Gilbert-Elliott) chain. In the good state
/// nothing extra is lost; after each datagram the chain enters the bad
/// state with probability `enter`, and leaves it with probability `leave`;
/// in the bad state a datagram is lost with probability `loss`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// Chance, per datagram, of entering the bad state.
    pub enter: f64,
    /// Chance, per datagram, of leaving it.
    pub leave: f64,
    /// Loss while in it.
    pub loss: f64,
}

impl Burst {
    /// The long-run share of datagrams this chain loses.
    pub fn long_run_loss(&self) -> f64 {
        let bad = if self.enter + self.leave > 0.0 {
            self.enter / (self.enter + self.leave)
        } else {
            0.0
        };
        bad * self.loss
    }
}

/// A rate limit: `bytes_per_second`, behind a drop-tail queue of
/// `queue_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bandwidth {
    /// The rate datagrams leave at.
    pub bytes_per_second: u64,
    /// The most bytes waiting their turn; a datagram that does not fit is
    /// dropped.
    pub queue_bytes: u64,
}

/// What the fault model did, counted per kind of fault. Every datagram is
/// counted once in `datagrams`, then in at most one drop counter, or in
/// `delivered` (and possibly `duplicated`, `corrupted`, `truncated`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounters {
    /// Datagrams handed to the path.
    pub datagrams: u64,
    /// Datagrams (copies included) sent on.
    pub delivered: u64,
    /// Lost to independent loss.
    pub lost: u64,
    /// Lost in a burst.
    pub burst_lost: u64,
    /// Dropped for exceeding the maximum datagram size.
    pub too_large: u64,
    /// Dropped by the full queue of the bandwidth cap.
    pub queue_dropped: u64,
    /// Duplicated (sent twice).
    pub duplicated: u64,
    /// Corrupted (a bit flipped).
    pub corrupted: u64,
    /// Cut short.
    pub truncated: u64,
    /// Held back by a delay, jitter or the bandwidth queue.
    pub delayed: u64,
}

impl FaultCounters {
    /// Every drop, whatever its cause.
    pub fn dropped(&self) -> u64 {
        self.lost + self.burst_lost + self.too_large + self.queue_dropped
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Self) {
        self.datagrams += other.datagrams;
        self.delivered += other.delivered;
        self.lost += other.lost;
        self.burst_lost += other.burst_lost;
        self.too_large += other.too_large;
        self.queue_dropped += other.queue_dropped;
        self.duplicated += other.duplicated;
        self.corrupted += other.corrupted;
        self.truncated += other.truncated;
        self.delayed += other.delayed;
    }
}
