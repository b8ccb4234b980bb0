//! `protowright-sim`: how many seeds per second the simulation scenarios
//! run in one process (`sim_tests::scenarios`: the standard traffic
//! scenario on each transport under a drawn fault schedule, the same as
//! `cargo xtask sim`). There is no server: the simulation holds the hosts.

use std::time::{Duration, Instant};

use super::ready;

pub(super) fn serve() -> anyhow::Result<()> {
    // Nothing to serve: say where nothing listens, and leave.
    ready(([127, 0, 0, 1], 9).into());
    Ok(())
}

pub(super) fn drive(duration: Duration) -> anyhow::Result<()> {
    // turmoil builds runtimes of its own: run it on a thread outside ours.
    let seeds_per_s = std::thread::spawn(move || {
        let started = Instant::now();
        let mut seeds = 0u64;
        while seeds == 0 || started.elapsed() < duration {
            let seed = seeds + 1;
            let report = sim_tests::scenarios::for_seed(seed)
                .run(seed)
                .unwrap_or_else(|failure| panic!("{failure}"));
            assert!(!report.history.is_empty(), "seed {seed} recorded nothing");
            seeds += 1;
        }
        seeds as f64 / started.elapsed().as_secs_f64()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("a simulation seed failed"))?;
    println!("{}", serde_json::json!({ "seeds_per_s": seeds_per_s }));
    Ok(())
}
