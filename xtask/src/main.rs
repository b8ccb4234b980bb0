//! `cargo xtask`: protowright's developer commands.
//!
//! - `demo`: runs the end-to-end tour (`examples/demo`): chat, a game and
//!   a file download over both transports, clean and through injected loss.
//! - `test [ARGS...]`: runs the whole test suite, every feature on
//!   (`cargo test --workspace --all-features`).
//! - `codegen [--check]`: regenerates the runtime's checked-in wire types
//!   from `proto/protowright/v1`, or checks that they are current.
//! - `bench [--quick] [--only PATTERN] [--json PATH] [--runs N]`: measures
//!   protowright against its peers in one run (see `bench.rs`).
//! - `sim [--seeds N] [--seed S] [--jobs J] [--trace-hash]`: the
//!   simulation scenarios over many seeds in one (release) process, or one
//!   seed replayed with its trace (`sim-tests/src/bin/sim.rs`).
//! - `properties [CASES]`: the reliable-UDP engine's property tests over
//!   CASES proptest cases (release).
//! - `fuzz [SECONDS]`: every fuzz target under `fuzz/` for SECONDS each
//!   (installs cargo-fuzz if missing).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

mod bench;
mod netem;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  demo               the end-to-end tour: chat, game and file sharing over
                     TCP and reliable UDP, clean and through loss (examples/demo)
  test [ARGS...]     run the whole test suite; ARGS go to `cargo test`
  codegen [--check]  regenerate framework/protowright/src/v1/generated.rs
                     (--check: fail if it is out of date instead)
  bench [--quick] [--only PATTERN] [--json PATH] [--runs N]
                     protowright side by side with its peers, in one run
  sim [--seeds N] [--first S] [--jobs J]
                     the simulation scenarios over N seeds (default 1000)
  sim --seed S [--trace-hash]
                     replay one seed: its schedule, trace (and trace hash)
  properties [CASES] the reliable-UDP engine's properties over CASES cases
                     (default 20000)
  fuzz [SECONDS]     run every fuzz target for SECONDS (default 60) each";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        println!("{USAGE}");
        return Ok(());
    };
    match command.as_str() {
        "demo" => cargo(&["run", "--package", "demo"], rest),
        "test" => cargo(&["test", "--workspace", "--all-features"], rest),
        "codegen" => codegen(rest),
        "bench" => bench::run(&workspace_root(), &bench::Options::parse(rest)?),
        "sim" => sim(rest),
        "properties" => properties(rest),
        "fuzz" => fuzz(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

/// Runs cargo from the workspace root with `args` then `extra`.
fn cargo(args: &[&str], extra: &[String]) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args(args)
        .args(extra)
        .status()
        .context("could not start cargo")?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn codegen(args: &[String]) -> Result<()> {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => bail!("codegen takes only `--check`\n\n{USAGE}"),
    };
    let path = workspace_root().join("framework/protowright/src/v1/generated.rs");
    let generated = protowright_build::runtime_schema_source()?;
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current == generated {
        println!("{} is up to date", path.display());
        return Ok(());
    }
    if check {
        bail!(
            "{} is out of date: run `cargo xtask codegen`",
            path.display()
        );
    }
    std::fs::write(&path, generated).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Parses the `index`th argument as a number, or takes `default`.
fn number(args: &[String], index: usize, default: u64, what: &str) -> Result<u64> {
    match args.get(index) {
        None => Ok(default),
        Some(text) => text
            .parse()
            .with_context(|| format!("{what} must be a whole number, not `{text}`")),
    }
}

/// Runs the simulation runner in release; its exit code is this command's
/// (it prints its own summary line, so a failure needs no second word).
fn sim(args: &[String]) -> Result<()> {
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(workspace_root())
        .args([
            "run",
            "--release",
            "--quiet",
            "-p",
            "sim-tests",
            "--bin",
            "sim",
            "--",
        ])
        .args(args)
        .status()
        .context("could not start cargo")?;
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}

fn properties(args: &[String]) -> Result<()> {
    let cases = number(args, 0, 20_000, "CASES")?;
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(workspace_root())
        .env("PROPTEST_CASES", cases.to_string())
        .args([
            "test",
            "--release",
            "-p",
            "protowright",
            "--lib",
            "udp::proto::tests::properties",
        ])
        .status()
        .context("could not start cargo")?;
    if !status.success() {
        bail!("the reliable-UDP properties failed ({status})");
    }
    println!("{cases} property cases passed");
    Ok(())
}

const FUZZ_TARGETS: &[&str] = &["udp_packet", "udp_frames", "udp_endpoint", "envelope"];

fn fuzz(args: &[String]) -> Result<()> {
    let seconds = number(args, 0, 60, "SECONDS")?;
    let installed = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        cargo(&["install", "cargo-fuzz", "--locked"], &[])?;
    }
    for target in FUZZ_TARGETS {
        // cargo-fuzz needs -Z flags; RUSTC_BOOTSTRAP lets the stable
        // toolchain (the only one these machines have) accept them.
        let status = Command::new("cargo")
            .current_dir(workspace_root().join("fuzz"))
            .env("RUSTC_BOOTSTRAP", "1")
            .args([
                "fuzz",
                "run",
                target,
                "--",
                &format!("-max_total_time={seconds}"),
                "-rss_limit_mb=2048",
            ])
            .status()
            .context("could not start cargo fuzz")?;
        if !status.success() {
            bail!(
                "fuzz target {target} found a failure ({status}); the input is under fuzz/artifacts/{target}/"
            );
        }
    }
    Ok(())
}
