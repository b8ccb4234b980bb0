//! One seed, one history: every scenario run twice with the same seed
//! gives the same trace hash, and different seeds give different ones.
//! (One root seed drives turmoil's latency draws, the fault layer, the
//! schedule and the randomness of the code under test, through the
//! simulation's `Net` provider.)

use std::collections::BTreeSet;

use sim_tests::scenarios;

#[test]
fn the_same_seed_gives_the_same_trace_hash_on_every_scenario() {
    for seed in 1..=8 {
        let scenario = scenarios::for_seed(seed);
        let first = scenario
            .run(seed)
            .unwrap_or_else(|failure| panic!("{failure}"));
        let second = scenario
            .run(seed)
            .unwrap_or_else(|failure| panic!("{failure}"));
        assert!(!first.history.is_empty());
        assert_eq!(
            first.trace_hash, second.trace_hash,
            "{} seed {seed} diverged; replay: cargo xtask sim --seed {seed}",
            scenario.name
        );
    }
}

#[test]
fn different_seeds_give_different_trace_hashes() {
    let hashes: BTreeSet<u64> = (100..108)
        .map(|seed| {
            scenarios::for_seed(seed)
                .run(seed)
                .unwrap_or_else(|failure| panic!("{failure}"))
                .trace_hash
        })
        .collect();
    assert_eq!(hashes.len(), 8, "every seed told its own story");
}
