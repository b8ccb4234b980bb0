//! `cargo xtask sim`: the simulation scenarios over many seeds, in one
//! process.
//!
//! ```text
//! sim [--seeds N] [--first S] [--jobs J]     N seeds (default 1000) from S (default 1) on J threads
//! sim --seed S [--trace-hash]                replay one seed: its schedule and trace (and hash, last)
//! ```
//!
//! Seed `s` runs scenario `s % count` (see `sim_tests::scenarios`) with a
//! schedule drawn from that scenario's fault space. Prints a progress bar
//! with seeds per second, every failure (shrunk, with its replay command),
//! then exactly one summary line, `sim: N seeds passed, M failed`, and
//! exits non-zero when any seed failed.

use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use sim_tests::scenarios;

const USAGE: &str = "usage: sim [--seeds N] [--first S] [--jobs J] | sim --seed S [--trace-hash]";

/// What the command line asked for.
#[derive(Debug)]
enum Mode {
    Many { seeds: u64, first: u64, jobs: usize },
    One { seed: u64, trace_hash: bool },
}

fn number(flag: &str, value: Option<String>) -> anyhow::Result<u64> {
    let value = value.with_context(|| format!("{flag} needs a number"))?;
    value
        .parse()
        .with_context(|| format!("{flag} takes a whole number, not `{value}`"))
}

fn parse(args: impl Iterator<Item = String>) -> anyhow::Result<Mode> {
    let mut seeds = 1000;
    let mut first = 1;
    let mut jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut seed = None;
    let mut trace_hash = false;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seeds" => seeds = number("--seeds", args.next())?,
            "--first" => first = number("--first", args.next())?,
            "--jobs" => jobs = usize::try_from(number("--jobs", args.next())?.max(1))?,
            "--seed" => seed = Some(number("--seed", args.next())?),
            "--trace-hash" => trace_hash = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`"),
        }
    }
    Ok(match seed {
        Some(seed) => Mode::One { seed, trace_hash },
        None if trace_hash => bail!("--trace-hash goes with --seed S"),
        None => Mode::Many { seeds, first, jobs },
    })
}

fn main() -> ExitCode {
    let mode = match parse(std::env::args().skip(1)) {
        Ok(mode) => mode,
        Err(error) => {
            eprintln!("error: {error:#}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let passed = match mode {
        Mode::One { seed, trace_hash } => replay(seed, trace_hash),
        Mode::Many { seeds, first, jobs } => many(seeds, first, jobs),
    };
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs one seed and prints its schedule and trace.
fn replay(seed: u64, trace_hash: bool) -> bool {
    let scenario = scenarios::for_seed(seed);
    println!("seed {seed}: scenario {}", scenario.name);
    let outcome = scenario.run(seed);
    let (report, passed) = match &outcome {
        Ok(report) => (report, true),
        Err(failure) => (&failure.report, false),
    };
    println!("schedule: {}", report.schedule);
    for entry in &report.history {
        println!("{entry}");
    }
    match &outcome {
        Ok(_) => println!("passed"),
        Err(failure) => println!("{failure}"),
    }
    if trace_hash {
        println!("{:016x}", report.trace_hash);
    }
    passed
}

/// Runs `count` seeds from `first` on `jobs` threads.
fn many(count: u64, first: u64, jobs: usize) -> bool {
    let bar = ProgressBar::new(count);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds, {per_sec} [{elapsed_precise}, eta {eta}] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let next = AtomicU64::new(first);
    let failed = AtomicU64::new(0);
    let failures = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= first + count {
                        return;
                    }
                    if let Err(failure) = scenarios::for_seed(seed).run(seed) {
                        failed.fetch_add(1, Ordering::Relaxed);
                        bar.set_message(format!("{} failed", failed.load(Ordering::Relaxed)));
                        let mut failures = failures.lock().unwrap_or_else(|e| e.into_inner());
                        if failures.len() < 3 {
                            bar.println(failure.to_string());
                        }
                        failures.push(seed);
                    }
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    let failed = failed.load(Ordering::Relaxed);
    let elapsed = started.elapsed().max(Duration::from_millis(1));
    let failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    if !failures.is_empty() {
        let mut seeds = failures;
        seeds.sort_unstable();
        eprintln!("failing seeds: {seeds:?}; replay one with `cargo xtask sim --seed S`");
    }
    eprintln!(
        "{count} seeds in {:.1} s on {jobs} threads: {:.1} seeds/s",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    println!("sim: {} seeds passed, {failed} failed", count - failed);
    failed == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> impl Iterator<Item = String> {
        line.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn the_command_line_is_read_and_wrong_flags_are_refused() {
        assert!(matches!(
            parse(args("--seeds 10 --jobs 2")).unwrap(),
            Mode::Many {
                seeds: 10,
                first: 1,
                jobs: 2
            }
        ));
        assert!(matches!(
            parse(args("--seed 7 --trace-hash")).unwrap(),
            Mode::One {
                seed: 7,
                trace_hash: true
            }
        ));
        let wrong = parse(args("--seeds ten")).unwrap_err().to_string();
        assert!(wrong.contains("whole number, not `ten`"), "{wrong}");
        let unknown = parse(args("--speed 3")).unwrap_err().to_string();
        assert!(unknown.contains("unknown argument `--speed`"), "{unknown}");
        assert!(parse(args("--trace-hash")).is_err());
    }
}
