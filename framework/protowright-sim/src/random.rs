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

#[cfg(test)]
mod tests {
    use super::*;

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
