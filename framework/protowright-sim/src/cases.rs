//! Many runs: a seed and a drawn schedule per case, shrinking on failure,
//! and one command that replays it.
//!
//! Case `n` of a suite has seed `first + n`, and its schedule is drawn from
//! the strategy by a generator seeded with the same number, so a seed alone
//! names a case. When a case fails, its schedule is shrunk (with the same
//! seed) to a short one that still fails, and the failure says the seed,
//! the shrunk schedule, the first violation, and how to replay it:
//! `PROTOWRIGHT_SEED=<seed>` runs that one case.
//!
//! Environment: `PROTOWRIGHT_SEED` (one seed), `PROTOWRIGHT_CASES` (how many
//! cases, overriding the suite's default), `PROTOWRIGHT_FIRST_SEED` (where
//! the seeds start).

use std::collections::BTreeMap;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::schedule::Schedule;
use crate::sim::{Failure, Report};

/// One case: a seed for everything random, and the schedule drawn for it.
#[derive(Debug, Clone)]
pub struct Case {
    /// The run's seed.
    pub seed: u64,
    /// The faults to apply.
    pub schedule: Schedule,
}

impl Case {
    /// The case named by `seed`: its schedule drawn from `strategy` by a
    /// generator seeded with it.
    pub fn draw<S: Strategy<Value = Schedule>>(strategy: &S, seed: u64) -> (Self, S::Tree) {
        let tree = tree_for(strategy, seed);
        let schedule = tree.current();
        (Self { seed, schedule }, tree)
    }
}

fn tree_for<S: Strategy<Value = Schedule>>(strategy: &S, seed: u64) -> S::Tree {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    // Drawing from our strategies cannot be rejected: they filter nothing.
    match strategy.new_tree(&mut runner) {
        Ok(tree) => tree,
        Err(reason) => panic!("the schedule strategy rejected every draw: {reason}"),
    }
}

/// A suite of cases: how many, from which seed, and how a failure replays.
pub struct Cases<S> {
    strategy: S,
    count: u64,
    first: u64,
    shrink_limit: u32,
    replay: Box<dyn Fn(u64) -> String>,
}

/// What a passing suite ran: its seeds and the coverage they add up to.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The seeds run.
    pub seeds: Vec<u64>,
    /// Every coverage counter, summed over the cases, with the fault
    /// layer's counts as `fault.dropped`, `fault.duplicated`, ... and the
    /// schedule's events that took effect as `fault.partitions`,
    /// `fault.holds`, `fault.crashes`, `fault.restarts`, `fault.changes`
    /// and `fault.latency_changes`.
    pub coverage: BTreeMap<String, u64>,
    /// Each seed's trace hash.
    pub trace_hashes: Vec<(u64, u64)>,
}

impl Summary {
    fn add(&mut self, report: &Report) {
        self.seeds.push(report.seed);
        self.trace_hashes.push((report.seed, report.trace_hash));
        for entry in &report.history {
            if let crate::history::Observation::Counter { name, value } = &entry.what {
                *self.coverage.entry(name.clone()).or_default() += value;
            }
        }
        let faults = report.faults;
        for (name, value) in [
            ("fault.dropped", faults.dropped()),
            ("fault.duplicated", faults.duplicated),
            ("fault.corrupted", faults.corrupted),
            ("fault.truncated", faults.truncated),
            ("fault.delayed", faults.delayed),
            ("fault.too_large", faults.too_large),
            ("fault.queue_dropped", faults.queue_dropped),
        ] {
            *self.coverage.entry(name.to_owned()).or_default() += value;
        }
    }

    /// The summed counter `name` (0 if never recorded).
    pub fn coverage(&self, name: &str) -> u64 {
        self.coverage.get(name).copied().unwrap_or(0)
    }

    /// Fails unless every counter in `names` is above zero: a suite that
    /// passes without its faults and recovery paths firing proves nothing.
    /// (Skipped when a single seed is replayed.)
    pub fn require(&self, names: &[&str]) {
        if self.seeds.len() <= 1 {
            return;
        }
        let missing: Vec<&&str> = names.iter().filter(|n| self.coverage(n) == 0).collect();
        assert!(
            missing.is_empty(),
            "the suite passed, but these never fired over its {} seeds: {missing:?}; coverage: {:?}",
            self.seeds.len(),
            self.coverage
        );
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

impl<S: Strategy<Value = Schedule>> Cases<S> {
    /// `count` cases with schedules from `strategy`, unless the environment
    /// says otherwise (see the module docs).
    pub fn new(strategy: S, count: u64) -> Self {
        Self {
            strategy,
            count: env_number("PROTOWRIGHT_CASES").unwrap_or(count),
            first: env_number("PROTOWRIGHT_FIRST_SEED").unwrap_or(1),
            shrink_limit: 256,
            replay: Box::new(default_replay),
        }
    }

    /// How a failing seed is replayed, for the failure's message (default:
    /// the `cargo test` command of the running test with `PROTOWRIGHT_SEED`).
    pub fn replay(mut self, command: impl Fn(u64) -> String + 'static) -> Self {
        self.replay = Box::new(command);
        self
    }

    /// The most re-runs spent shrinking a failure (default 256).
    pub fn shrink_limit(mut self, limit: u32) -> Self {
        self.shrink_limit = limit;
        self
    }

    /// The seeds this suite runs.
    pub fn seeds(&self) -> Vec<u64> {
        match env_number("PROTOWRIGHT_SEED") {
            Some(seed) => vec![seed],
            None => (self.first..self.first + self.count).collect(),
        }
    }

    /// Runs every case with `test`; the first failure is shrunk and
    /// returned with its replay command.
    pub fn try_run(
        &self,
        test: impl Fn(Case) -> Result<Report, Box<Failure>>,
    ) -> Result<Summary, Box<Failure>> {
        let mut summary = Summary::default();
        for seed in self.seeds() {
            match self.run_one(seed, &test) {
                Ok(report) => summary.add(&report),
                Err(failure) => return Err(failure),
            }
        }
        Ok(summary)
    }

    /// Runs one seed's case, shrinking it if it fails.
    pub fn run_one(
        &self,
        seed: u64,
        test: &impl Fn(Case) -> Result<Report, Box<Failure>>,
    ) -> Result<Report, Box<Failure>> {
        let (case, mut tree) = Case::draw(&self.strategy, seed);
        let original = case.schedule.clone();
        let mut failure = match test(case) {
            Ok(report) => return Ok(report),
            Err(failure) => failure,
        };
        let mut tries = 0;
        while tries < self.shrink_limit && tree.simplify() {
            tries += 1;
            match test(Case {
                seed,
                schedule: tree.current(),
            }) {
                Err(smaller) => failure = smaller,
                Ok(_) => {
                    if !tree.complicate() {
                        break;
                    }
                }
            }
        }
        // Then drop whatever event, and the datagram faults, the failure
        // does not need: the strategy's shrinking works element by element
        // and may leave an irrelevant event behind.
        let mut schedule = failure.report.schedule.clone();
        let mut index = 0;
        while index < schedule.events.len() && tries < self.shrink_limit {
            tries += 1;
            let mut smaller = schedule.clone();
            smaller.events.remove(index);
            match test(Case {
                seed,
                schedule: smaller.clone(),
            }) {
                Err(still) => {
                    failure = still;
                    schedule = smaller;
                }
                Ok(_) => index += 1,
            }
        }
        if !schedule.faults.is_perfect() && tries < self.shrink_limit {
            let mut calmer = schedule.clone();
            calmer.faults = crate::Faults::none();
            if let Err(still) = test(Case {
                seed,
                schedule: calmer,
            }) {
                failure = still;
            }
        }
        if failure.report.schedule != original {
            failure.shrunk_from = Some(original);
        }
        failure.replay = Some((self.replay)(seed));
        Err(failure)
    }

    /// Runs every case with `test` and panics with the first (shrunk)
    /// failure. Returns the suite's summary.
    pub fn run(&self, test: impl Fn(Case) -> Result<Report, Box<Failure>>) -> Summary {
        match self.try_run(test) {
            Ok(summary) => summary,
            Err(failure) => panic!("{failure}"),
        }
    }
}

/// `PROTOWRIGHT_SEED=<seed> cargo test -p <package> --test <binary> <test>`
/// for the test running now, as far as the environment tells.
fn default_replay(seed: u64) -> String {
    let package = std::env::var("CARGO_PKG_NAME").unwrap_or_else(|_| "<package>".into());
    let binary = std::env::current_exe()
        .ok()
        .and_then(|path| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|stem| {
            stem.rsplit_once('-')
                .map_or(stem.clone(), |(name, _)| name.to_owned())
        })
        .unwrap_or_else(|| "<test binary>".into());
    let test = std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .unwrap_or("<test name>")
        .to_owned();
    format!("PROTOWRIGHT_SEED={seed} cargo test -p {package} --test {binary} {test} -- --exact")
}
