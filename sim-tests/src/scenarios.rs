//! The named scenarios `cargo xtask sim` runs in-process, each seed on one
//! of them (seed `s` on scenario `s % count`), with schedules drawn from
//! its fault space.

use protowright::Transport;
use protowright_sim::{Cases, Failure, Report, Schedule};

use crate::traffic;

/// A scenario: its name, and how one seed of it runs.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Its name, as `cargo xtask sim` prints it.
    pub name: &'static str,
    transport: Transport,
}

/// Every scenario.
pub const ALL: &[Scenario] = &[
    Scenario {
        name: "udp-traffic",
        transport: Transport::Udp,
    },
    Scenario {
        name: "tcp-traffic",
        transport: Transport::Tcp,
    },
];

/// The scenario seed `seed` runs.
pub fn for_seed(seed: u64) -> Scenario {
    ALL[(seed % ALL.len() as u64) as usize]
}

impl Scenario {
    /// The suite of this scenario's cases.
    pub fn cases(self) -> Cases<impl proptest::strategy::Strategy<Value = Schedule>> {
        Cases::new(Schedule::strategy(traffic::space(self.transport)), 1)
            .replay(|seed| format!("cargo xtask sim --seed {seed}"))
    }

    /// Runs seed `seed` (shrinking it if it fails).
    pub fn run(self, seed: u64) -> Result<Report, Box<Failure>> {
        let transport = self.transport;
        self.cases()
            .run_one(seed, &|case| traffic::run(case, transport))
    }
}
