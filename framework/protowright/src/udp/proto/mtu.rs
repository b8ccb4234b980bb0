//! Path MTU discovery in the manner of DPLPMTUD (RFC 8899): every path is
//! assumed to carry the base size (1200 bytes); larger sizes are tried with
//! padded probe packets, one at a time, in a binary search up to the
//! configured ceiling. A probe that is acknowledged raises the size in use;
//! a size whose probe is lost [`MAX_PROBES`] times is taken to be too large.
//!
//! A path can shrink under a connection (a route change, a tunnel): when the
//! connection sees repeated probe timeouts at a size above the base — a
//! black hole — it falls back to the base at once and searches again below
//! the size that stopped working.
//!
//! Probes carry no data, so a lost probe costs nothing to resend, and their
//! loss is not a congestion signal.

use std::time::{Duration, Instant};

/// Tries at one size before it is taken to be too large (RFC 8899's
/// MAX_PROBES).
pub(crate) const MAX_PROBES: u8 = 3;

/// The search stops when the window between a working and a failing size
/// is this narrow: a few bytes more per datagram are not worth more probes.
const PRECISION: usize = 16;

/// A probe in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Probe {
    size: usize,
    packet: u64,
}

/// One connection's search for its path's datagram size.
#[derive(Debug, Clone)]
pub(crate) struct MtuSearch {
    /// The size in use: known to get through.
    current: usize,
    /// The size every path carries; the fallback.
    base: usize,
    /// The largest size that may still get through.
    ceiling: usize,
    /// The configured top of the search.
    max: usize,
    /// The size being tried and the tries lost at it.
    candidate: Option<(usize, u8)>,
    probe: Option<Probe>,
    /// When the search may start again after it finished (sizes can grow
    /// when routes change); `None` while it runs or when it is off.
    search_again_at: Option<Instant>,
    interval: Duration,
    enabled: bool,
}

impl MtuSearch {
    /// A search from `base` up to `ceiling`; `interval` is how long a
    /// finished search rests before trying again.
    pub(crate) fn new(base: usize, ceiling: usize, interval: Duration, enabled: bool) -> Self {
        Self {
            current: base,
            base,
            ceiling: ceiling.max(base),
            max: ceiling.max(base),
            candidate: None,
            probe: None,
            search_again_at: None,
            interval,
            enabled: enabled && ceiling > base,
        }
    }

    /// The datagram size to build packets with.
    pub(crate) fn current(&self) -> usize {
        self.current
    }

    /// Whether the search has narrowed to its precision.
    fn finished(&self) -> bool {
        self.ceiling < self.current + PRECISION
    }

    /// The size to probe now, if a probe should go.
    pub(crate) fn probe_size(&mut self, now: Instant) -> Option<usize> {
        if !self.enabled || self.probe.is_some() {
            return None;
        }
        if let Some(at) = self.search_again_at {
            if now < at {
                return None;
            }
            // Look above the size in use again, up to the configured top.
            self.search_again_at = None;
            self.ceiling = self.max;
        }
        if self.finished() {
            self.search_again_at = Some(now + self.interval);
            return None;
        }
        let (size, _) = *self
            .candidate
            .get_or_insert(((self.current + self.ceiling).div_ceil(2), 0));
        Some(size)
    }

    /// A probe of `size` bytes went as packet `packet`.
    pub(crate) fn on_probe_sent(&mut self, size: usize, packet: u64) {
        self.probe = Some(Probe { size, packet });
    }

    /// Packet `packet`, a probe, was acknowledged: its size gets through.
    /// Returns the new size in use when it grew.
    pub(crate) fn on_probe_acked(&mut self, packet: u64) -> Option<usize> {
        let probe = self.probe.filter(|probe| probe.packet == packet)?;
        self.probe = None;
        self.candidate = None;
        if probe.size <= self.current {
            return None;
        }
        self.current = probe.size;
        Some(self.current)
    }

    /// Packet `packet`, a probe, was declared lost.
    pub(crate) fn on_probe_lost(&mut self, packet: u64) {
        let Some(probe) = self.probe.filter(|probe| probe.packet == packet) else {
            return;
        };
        self.probe = None;
        let Some((size, lost)) = self.candidate.as_mut() else {
            return;
        };
        *lost += 1;
        if *lost >= MAX_PROBES || *size != probe.size {
            self.ceiling = probe.size - 1;
            self.candidate = None;
        }
    }

    /// The path stopped carrying the size in use: fall back to the base
    /// and search again below the size that failed. Returns the new size
    /// when it changed.
    pub(crate) fn on_black_hole(&mut self) -> Option<usize> {
        if self.current == self.base {
            return None;
        }
        self.ceiling = self.current - 1;
        self.current = self.base;
        self.candidate = None;
        self.probe = None;
        self.search_again_at = None;
        Some(self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search against a path that carries `path_mtu` bytes,
    /// answering each probe at once; returns the sizes probed.
    fn search(search: &mut MtuSearch, path_mtu: usize, now: Instant) -> Vec<usize> {
        let mut probed = Vec::new();
        let mut packet = 0;
        while let Some(size) = search.probe_size(now) {
            probed.push(size);
            search.on_probe_sent(size, packet);
            if size <= path_mtu {
                search.on_probe_acked(packet);
            } else {
                search.on_probe_lost(packet);
            }
            packet += 1;
            assert!(probed.len() < 200, "the search does not end");
        }
        probed
    }

    #[test]
    fn the_search_finds_the_largest_size_the_path_carries_within_its_precision() {
        let now = Instant::now();
        for path_mtu in [1200, 1472, 1500, 9000, 16_384, 65_507] {
            let mut mtu = MtuSearch::new(1200, 65_527, Duration::from_secs(600), true);
            let probed = search(&mut mtu, path_mtu, now);
            assert!(mtu.current() <= path_mtu, "{path_mtu}: {}", mtu.current());
            assert!(
                mtu.current() + PRECISION > path_mtu,
                "{path_mtu}: stopped at {}",
                mtu.current()
            );
            // A binary search: about log2(64K / 16) sizes, three tries at
            // each size that fails.
            assert!(probed.len() <= 13 * MAX_PROBES as usize, "{probed:?}");
        }
    }

    #[test]
    fn a_size_is_given_up_only_after_max_probes_losses() {
        let now = Instant::now();
        let mut mtu = MtuSearch::new(1200, 1500, Duration::from_secs(600), true);
        let size = mtu.probe_size(now).unwrap();
        assert_eq!(size, 1350);
        for packet in 0..u64::from(MAX_PROBES) - 1 {
            mtu.on_probe_sent(size, packet);
            mtu.on_probe_lost(packet);
            assert_eq!(mtu.probe_size(now), Some(size), "random loss of one probe");
        }
        mtu.on_probe_sent(size, 9);
        mtu.on_probe_lost(9);
        assert_eq!(
            mtu.probe_size(now),
            Some(1275),
            "half-way below the failed size"
        );
    }

    #[test]
    fn one_probe_at_a_time_and_stale_answers_are_ignored() {
        let now = Instant::now();
        let mut mtu = MtuSearch::new(1200, 9000, Duration::from_secs(600), true);
        let size = mtu.probe_size(now).unwrap();
        mtu.on_probe_sent(size, 4);
        assert_eq!(mtu.probe_size(now), None, "a probe is in flight");
        assert_eq!(mtu.on_probe_acked(3), None, "not the probe");
        assert_eq!(mtu.current(), 1200);
        assert_eq!(mtu.on_probe_acked(4), Some(size));
    }

    #[test]
    fn a_black_hole_falls_back_to_the_base_and_searches_below_the_failed_size() {
        let now = Instant::now();
        let mut mtu = MtuSearch::new(1200, 65_527, Duration::from_secs(600), true);
        search(&mut mtu, 9000, now);
        assert!(mtu.current() > 8900);
        assert_eq!(mtu.on_black_hole(), Some(1200));
        assert_eq!(mtu.on_black_hole(), None, "already at the base");
        search(&mut mtu, 1500, now);
        assert!((1485..=1500).contains(&mtu.current()), "{}", mtu.current());
    }

    #[test]
    fn a_finished_search_rests_for_its_interval_then_looks_up_again() {
        let now = Instant::now();
        let interval = Duration::from_secs(600);
        let mut mtu = MtuSearch::new(1200, 65_527, interval, true);
        search(&mut mtu, 1500, now);
        let found = mtu.current();
        assert_eq!(mtu.probe_size(now + interval / 2), None);
        let size = mtu.probe_size(now + interval).expect("searches again");
        assert!(size > found);
    }

    #[test]
    fn discovery_off_never_probes() {
        let mut mtu = MtuSearch::new(1200, 65_527, Duration::from_secs(600), false);
        assert_eq!(mtu.probe_size(Instant::now()), None);
        assert_eq!(mtu.current(), 1200);
    }
}
