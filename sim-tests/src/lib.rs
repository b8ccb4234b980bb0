//! Shared pieces of protowright's simulation suites.
//!
//! Each suite runs real protowright code on turmoil hosts and records what
//! happened as a [`Trace`]: a list of events stamped with simulated time.
//! The determinism contract is that one seed always yields the same trace.

pub mod udp_scenario;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Events recorded during one simulation, in the order they happened.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    events: Arc<Mutex<Vec<(Duration, String)>>>,
}

impl Trace {
    /// Records `event` at the current simulated time.
    pub fn record(&self, event: impl Into<String>) {
        let at = turmoil::sim_elapsed().unwrap_or_default();
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((at, event.into()));
    }

    /// The events recorded so far.
    pub fn events(&self) -> Vec<(Duration, String)> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The command that replays a failing seed of a suite's test.
pub fn replay_command(test: &str, seed: u64) -> String {
    format!("PROTOWRIGHT_SEED={seed} cargo test -p sim-tests --test {test}")
}
