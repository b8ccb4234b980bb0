//! Property cases that replay from one number.
//!
//! Each case is drawn from a `u64` seed: the seed seeds the generator that
//! draws the whole case (its faults, its traffic and the link's own seed),
//! so the seed alone replays it. A failing case is shrunk to a smaller one
//! that still fails, and the failure names the seed, the smallest failing
//! case and the command that replays it:
//!
//! ```text
//! PROTOWRIGHT_ENGINE_SEED=<seed> cargo test -p protowright --lib <test> -- --exact
//! ```
//!
//! proptest draws the seeds, and keeps the failing ones in a
//! `<test file>.regressions` file beside the test, which every run replays
//! first: check it in. `PROPTEST_CASES` sets the number of cases
//! (`cargo xtask sim` raises it); without it each property runs its own
//! default.

use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{
    FileFailurePersistence, RngAlgorithm, TestCaseError, TestRng, TestRunner, contextualize_config,
};

/// The variable that replays one case.
pub(super) const SEED_VAR: &str = "PROTOWRIGHT_ENGINE_SEED";

/// The most steps spent shrinking a failing case.
const MAX_SHRINK_STEPS: u32 = 256;

/// One property test.
pub(super) struct Property {
    /// Its path, as `module_path!()` and the test's name give it.
    pub(super) test: &'static str,
    /// The file it is written in (`file!()`), beside which its failing
    /// seeds are kept.
    pub(super) source_file: &'static str,
    /// Cases to run when `PROPTEST_CASES` is not set.
    pub(super) cases: u32,
}

impl Property {
    /// Runs `property` on cases drawn from `strategy`: only the case of
    /// `PROTOWRIGHT_ENGINE_SEED` when it is set, else proptest's seeds.
    /// Panics with the report of the first failing case.
    pub(super) fn check<S>(
        &self,
        strategy: S,
        property: impl Fn(&S::Value) -> Result<(), TestCaseError>,
    ) where
        S: Strategy,
        S::Value: Debug,
    {
        if let Some(seed) = replay_seed() {
            if let Err(report) = self.run_seed(seed, &strategy, &property) {
                panic!("{report}");
            }
            return;
        }
        // As under the `proptest!` macro, `PROPTEST_*` variables override
        // these (`PROPTEST_CASES` the number of cases).
        let config = contextualize_config(ProptestConfig {
            cases: self.cases,
            // Shrinking the seed would only draw unrelated cases: a failing
            // case is shrunk on what it is made of (see `run_seed`).
            max_shrink_iters: 0,
            failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
            source_file: Some(self.source_file),
            ..ProptestConfig::default()
        });
        let mut runner = TestRunner::new(config);
        let result = runner.run(&any::<u64>(), |seed| {
            self.run_seed(seed, &strategy, &property)
                .map_err(TestCaseError::fail)
        });
        if let Err(error) = result {
            panic!("{error}");
        }
    }

    /// Draws the case of `seed` and checks it; on failure, shrinks it and
    /// returns the report.
    fn run_seed<S>(
        &self,
        seed: u64,
        strategy: &S,
        property: &impl Fn(&S::Value) -> Result<(), TestCaseError>,
    ) -> Result<(), String>
    where
        S: Strategy,
        S::Value: Debug,
    {
        let mut tree = strategy
            .new_tree(&mut seeded_runner(seed))
            .map_err(|reason| format!("seed {seed}: no case could be drawn: {reason}"))?;
        let case = tree.current();
        let Err(failure) = attempt(property, &case) else {
            return Ok(());
        };
        let (smallest, smallest_failure) = shrink(&mut tree, property, (case, failure.clone()));
        let test = self
            .test
            .split_once("::")
            .map_or(self.test, |(_crate, path)| path);
        Err(format!(
            "case seed {seed} failed: {failure}\n\
             replay: {SEED_VAR}={seed} cargo test -p protowright --lib {test} -- --exact\n\
             smallest failing case ({smallest_failure}):\n{smallest:#?}\n"
        ))
    }
}

/// The seed `PROTOWRIGHT_ENGINE_SEED` names, if it is set.
fn replay_seed() -> Option<u64> {
    let text = std::env::var(SEED_VAR).ok()?;
    match text.trim().parse() {
        Ok(seed) => Some(seed),
        Err(error) => panic!("{SEED_VAR}={text} is not a u64 seed: {error}"),
    }
}

/// A runner whose generator is seeded by `seed` alone.
fn seeded_runner(seed: u64) -> TestRunner {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(
        ProptestConfig::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &key),
    )
}

/// Runs the property on one case; a panic is a failure like any other.
fn attempt<T>(property: &impl Fn(&T) -> Result<(), TestCaseError>, case: &T) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(|| property(case))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
            .unwrap_or_else(|| "a panic".to_owned())),
    }
}

/// proptest's shrinking loop: simplify while the case still fails, step
/// back when it passes. Returns the smallest failing case and its failure.
fn shrink<T: ValueTree>(
    tree: &mut T,
    property: &impl Fn(&T::Value) -> Result<(), TestCaseError>,
    mut smallest: (T::Value, String),
) -> (T::Value, String) {
    if !tree.simplify() {
        return smallest;
    }
    for _ in 0..MAX_SHRINK_STEPS {
        let candidate = tree.current();
        match attempt(property, &candidate) {
            Err(failure) => {
                smallest = (candidate, failure);
                if !tree.simplify() {
                    break;
                }
            }
            Ok(()) => {
                if !tree.complicate() {
                    break;
                }
            }
        }
    }
    smallest
}
