//! One direction of one path: the fault model applied to each datagram.

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{FaultCounters, Faults};

/// One direction of a path, with its own seeded generator.
///
/// Feed it each datagram with [`transmit`](Self::transmit); it says which
/// copies (none, one, or two) leave and when. It keeps the burst state and
/// the bandwidth queue between datagrams, and counts every fault.
#[derive(Debug, Clone)]
pub struct Link {
    faults: Faults,
    rng: SmallRng,
    /// Whether the burst chain is in its bad state.
    bursting: bool,
    /// When the bandwidth cap finishes sending what it holds.
    free_at: Option<Instant>,
    counters: FaultCounters,
}

/// What became of one datagram: the copies that leave, each with when it
/// arrives (relative to the path's own latency) and its bytes, possibly
/// corrupted or truncated. Empty when it was dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transmission {
    /// The copies, in the order they leave.
    pub copies: Vec<(Instant, Vec<u8>)>,
    /// Whether the bytes were corrupted or cut short (every copy alike).
    pub damaged: bool,
}

impl Link {
    /// A path with `faults`, drawing from `seed`.
    pub fn new(faults: Faults, seed: u64) -> Self {
        Self {
            faults,
            rng: SmallRng::seed_from_u64(seed),
            bursting: false,
            free_at: None,
            counters: FaultCounters::default(),
        }
    }

    /// The settings in force.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Changes the settings from the next datagram on (the burst state and
    /// the queue carry over).
    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }

    /// What the path has done so far.
    pub fn counters(&self) -> FaultCounters {
        self.counters
    }

    /// Passes `datagram`, handed to the path at `now`, through the faults.
    pub fn transmit(&mut self, now: Instant, mut datagram: Vec<u8>) -> Transmission {
        self.counters.datagrams += 1;
        if self.is_dropped(datagram.len()) {
            return Transmission::default();
        }
        let Some(departs) = self.queue(now, datagram.len()) else {
            self.counters.queue_dropped += 1;
            return Transmission::default();
        };
        let damaged = self.damage(&mut datagram);
        let copies = if self.chance(self.faults.duplicate) {
            self.counters.duplicated += 1;
            2
        } else {
            1
        };
        let mut transmission = Transmission {
            copies: Vec::with_capacity(copies),
            damaged,
        };
        for copy in 0..copies {
            let arrives = departs + self.faults.delay + self.jitter();
            if arrives > now {
                self.counters.delayed += 1;
            }
            self.counters.delivered += 1;
            let bytes = if copy + 1 == copies {
                std::mem::take(&mut datagram)
            } else {
                datagram.clone()
            };
            transmission.copies.push((arrives, bytes));
        }
        transmission
    }

    fn chance(&mut self, probability: f64) -> bool {
        probability > 0.0 && self.rng.random_bool(probability.min(1.0))
    }

    /// Whether the datagram is lost to its size, the burst chain or
    /// independent loss (counted by cause).
    fn is_dropped(&mut self, len: usize) -> bool {
        if self.faults.max_datagram.is_some_and(|max| len > max) {
            self.counters.too_large += 1;
            return true;
        }
        if let Some(burst) = self.faults.burst {
            let flip = if self.bursting {
                burst.leave
            } else {
                burst.enter
            };
            if self.chance(flip) {
                self.bursting = !self.bursting;
            }
            if self.bursting && self.chance(burst.loss) {
                self.counters.burst_lost += 1;
                return true;
            }
        }
        if self.chance(self.faults.loss) {
            self.counters.lost += 1;
            return true;
        }
        false
    }

    /// When a datagram of `len` bytes handed over at `now` leaves the
    /// bandwidth cap; `None` when its queue is full.
    fn queue(&mut self, now: Instant, len: usize) -> Option<Instant> {
        let Some(cap) = self.faults.bandwidth else {
            return Some(now);
        };
        let rate = cap.bytes_per_second.max(1) as f64;
        let start = self.free_at.map_or(now, |free| free.max(now));
        let queued = start.duration_since(now).as_secs_f64() * rate;
        if queued + len as f64 > cap.queue_bytes as f64 && queued > 0.0 {
            return None;
        }
        let done = start + Duration::from_secs_f64(len as f64 / rate);
        self.free_at = Some(done);
        Some(done)
    }

    /// Flips a bit, or cuts the datagram short; says whether it did.
    fn damage(&mut self, datagram: &mut Vec<u8>) -> bool {
        if datagram.is_empty() {
            return false;
        }
        let mut damaged = false;
        if self.chance(self.faults.corrupt) {
            self.counters.corrupted += 1;
            let index = self.rng.random_range(0..datagram.len());
            datagram[index] ^= 1 << self.rng.random_range(0..8);
            damaged = true;
        }
        if self.chance(self.faults.truncate) {
            self.counters.truncated += 1;
            let keep = self.rng.random_range(0..datagram.len());
            datagram.truncate(keep);
            damaged = true;
        }
        damaged
    }

    fn jitter(&mut self) -> Duration {
        let max = u64::try_from(self.faults.jitter.as_nanos()).unwrap_or(u64::MAX);
        if max == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.rng.random_range(0..max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{Bandwidth, Burst};

    fn send(link: &mut Link, count: usize, len: usize) -> Vec<Transmission> {
        send_at(link, Instant::now(), count, len)
    }

    fn send_at(link: &mut Link, now: Instant, count: usize, len: usize) -> Vec<Transmission> {
        (0..count)
            .map(|_| link.transmit(now, vec![7; len]))
            .collect()
    }

    #[test]
    fn a_perfect_path_delivers_every_datagram_at_once_and_intact() {
        let mut link = Link::new(Faults::none(), 1);
        let now = Instant::now();
        let out = link.transmit(now, vec![1, 2, 3]);
        assert_eq!(out.copies, vec![(now, vec![1, 2, 3])]);
        assert!(!out.damaged);
        assert_eq!(link.counters().delivered, 1);
        assert_eq!(link.counters().dropped(), 0);
    }

    #[test]
    fn independent_loss_drops_about_its_rate_and_counts_each() {
        let mut link = Link::new(Faults::loss(0.3), 2);
        let delivered = send(&mut link, 10_000, 100)
            .iter()
            .filter(|t| !t.copies.is_empty())
            .count();
        let counters = link.counters();
        assert_eq!(counters.lost + counters.delivered, 10_000);
        assert_eq!(delivered as u64, counters.delivered);
        let rate = counters.lost as f64 / 10_000.0;
        assert!((0.28..0.32).contains(&rate), "{rate}");
    }

    #[test]
    fn bursty_loss_comes_in_runs_at_the_chains_long_run_rate() {
        let burst = Burst {
            enter: 0.02,
            leave: 0.2,
            loss: 0.9,
        };
        let faults = Faults {
            burst: Some(burst),
            ..Faults::none()
        };
        let mut link = Link::new(faults, 3);
        let outcomes: Vec<bool> = send(&mut link, 50_000, 100)
            .iter()
            .map(|t| t.copies.is_empty())
            .collect();
        let rate = link.counters().burst_lost as f64 / 50_000.0;
        let expected = burst.long_run_loss();
        assert!((rate - expected).abs() < 0.02, "{rate} vs {expected}");
        // Runs: a loss is far more likely right after a loss than overall.
        let after_loss = outcomes.windows(2).filter(|w| w[0]).count() as f64;
        let loss_after_loss = outcomes.windows(2).filter(|w| w[0] && w[1]).count() as f64;
        assert!(
            loss_after_loss / after_loss > 3.0 * rate,
            "losses cluster: {} vs {rate}",
            loss_after_loss / after_loss
        );
    }

    #[test]
    fn duplication_sends_two_identical_copies() {
        let faults = Faults {
            duplicate: 1.0,
            ..Faults::none()
        };
        let mut link = Link::new(faults, 4);
        let out = link.transmit(Instant::now(), vec![9, 8, 7]);
        assert_eq!(out.copies.len(), 2);
        assert_eq!(out.copies[0].1, out.copies[1].1);
        assert_eq!(link.counters().duplicated, 1);
        assert_eq!(link.counters().delivered, 2);
    }

    #[test]
    fn corruption_flips_exactly_one_bit_and_truncation_cuts_short() {
        let corrupting = Faults {
            corrupt: 1.0,
            ..Faults::none()
        };
        let mut link = Link::new(corrupting, 5);
        let out = link.transmit(Instant::now(), vec![0; 64]);
        let ones: u32 = out.copies[0].1.iter().map(|b| b.count_ones()).sum();
        assert_eq!(ones, 1);
        let truncating = Faults {
            truncate: 1.0,
            ..Faults::none()
        };
        let mut link = Link::new(truncating, 6);
        let out = link.transmit(Instant::now(), vec![0; 64]);
        assert!(out.copies[0].1.len() < 64);
        assert_eq!(link.counters().truncated, 1);
    }

    #[test]
    fn datagrams_above_the_maximum_are_dropped_and_counted() {
        let faults = Faults {
            max_datagram: Some(1500),
            ..Faults::none()
        };
        let mut link = Link::new(faults, 7);
        assert_eq!(link.transmit(Instant::now(), vec![0; 1500]).copies.len(), 1);
        assert!(
            link.transmit(Instant::now(), vec![0; 1501])
                .copies
                .is_empty()
        );
        assert_eq!(link.counters().too_large, 1);
    }

    #[test]
    fn jitter_reorders_and_delay_shifts() {
        let faults = Faults {
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(20),
            ..Faults::none()
        };
        let mut link = Link::new(faults, 8);
        let now = Instant::now();
        let arrivals: Vec<Instant> = (0..100)
            .map(|_| link.transmit(now, vec![0; 10]).copies[0].0)
            .collect();
        assert!(
            arrivals
                .iter()
                .all(|&at| at >= now + Duration::from_millis(10))
        );
        assert!(
            arrivals
                .iter()
                .all(|&at| at < now + Duration::from_millis(30))
        );
        assert!(
            arrivals.windows(2).any(|w| w[1] < w[0]),
            "something overtook"
        );
    }

    #[test]
    fn the_bandwidth_cap_spaces_datagrams_and_drops_beyond_its_queue() {
        let faults = Faults {
            bandwidth: Some(Bandwidth {
                bytes_per_second: 1000,
                queue_bytes: 300,
            }),
            ..Faults::none()
        };
        let mut link = Link::new(faults, 9);
        let now = Instant::now();
        let out: Vec<Transmission> = (0..6).map(|_| link.transmit(now, vec![0; 100])).collect();
        // 100 bytes at 1000 B/s: 100 ms each; the queue holds 300 bytes.
        assert_eq!(out[0].copies[0].0, now + Duration::from_millis(100));
        assert_eq!(out[1].copies[0].0, now + Duration::from_millis(200));
        let dropped = out.iter().filter(|t| t.copies.is_empty()).count();
        assert_eq!(dropped as u64, link.counters().queue_dropped);
        assert!(dropped >= 2, "{dropped}");
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let faults = Faults {
            loss: 0.2,
            duplicate: 0.1,
            corrupt: 0.05,
            jitter: Duration::from_millis(5),
            ..Faults::none()
        };
        let now = Instant::now();
        let run = |seed| {
            let mut link = Link::new(faults, seed);
            send_at(&mut link, now, 200, 50)
        };
        assert_eq!(run(11), run(11));
        assert_ne!(run(11), run(12));
    }
}
