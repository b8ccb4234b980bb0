//! The simulation's randomness: one seeded generator per simulation
//! thread, which the [`Turmoil`](crate::Turmoil) provider hands to the code
//! under test through `Net::fill_random`.
//!
//! turmoil runs every host of a simulation on the thread that runs the
//! simulation, one at a time in a fixed order, so one generator seeded from
//! the run's root seed gives every host the same draws on every run.
//! [`reseed`] starts it afresh; the toolkit's `Sim` does so before each
//! run. Code that builds a turmoil simulation by hand calls it itself.

use std::cell::RefCell;

use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

thread_local! {
    static GENERATOR: RefCell<SmallRng> = RefCell::new(SmallRng::seed_from_u64(0));
}

/// Starts this thread's simulated randomness afresh from `seed`.
pub fn reseed(seed: u64) {
    GENERATOR.with(|generator| *generator.borrow_mut() = SmallRng::seed_from_u64(seed));
}

/// Fills `dest` from this thread's simulated randomness.
pub(crate) fn fill(dest: &mut [u8]) {
    GENERATOR.with(|generator| generator.borrow_mut().fill_bytes(dest));
}

/// SplitMix64's finalizer: spreads every bit of `x` over the result. A
/// fixed function of its input, on every platform and toolchain, so seeds
/// derived with it replay anywhere (std's hashers promise no such thing).
pub(crate) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of one independent stream of randomness drawn from a run's
/// `seed`: the simulated network's, the code's, the faults'. Streams stay
/// apart, so one drawing more does not shift another.
pub(crate) fn derive(seed: u64, stream: u64) -> u64 {
    mix(mix(seed) ^ stream)
}

/// The stream of the code under test ([`reseed`]).
pub(crate) const CODE_STREAM: u64 = 1;
/// turmoil's own randomness (latency draws, tokio's under tokio_unstable).
pub(crate) const NETWORK_STREAM: u64 = 2;
/// The datagram faults' draws.
pub(crate) const FAULT_STREAM: u64 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_streams_differ_from_each_other_and_from_other_seeds() {
        let streams = [CODE_STREAM, NETWORK_STREAM, FAULT_STREAM];
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..64 {
            for stream in streams {
                assert!(
                    seen.insert(derive(seed, stream)),
                    "seed {seed} stream {stream}"
                );
            }
        }
        // Fixed values: a change here changes every replay command.
        assert_eq!(mix(0), 0xe220_a839_7b1d_cdaf);
    }

    fn draw() -> [u8; 16] {
        let mut bytes = [0u8; 16];
        fill(&mut bytes);
        bytes
    }

    #[test]
    fn the_same_seed_draws_the_same_bytes_and_another_seed_others() {
        reseed(7);
        let first = draw();
        reseed(7);
        assert_eq!(draw(), first);
        reseed(8);
        assert_ne!(draw(), first);
    }
}
