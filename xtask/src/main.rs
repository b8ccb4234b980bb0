//! `cargo xtask`: protowright's developer commands.
//!
//! - `demo`: runs the end-to-end tour (`examples/demo`): chat, a game and
//!   a file download over both transports, clean and through injected loss.
//! - `test [ARGS...]`: runs the whole test suite, every feature on
//!   (`cargo test --workspace --all-features`).
//! - `codegen [--check]`: regenerates the runtime's checked-in wire types
//!   from `proto/protowright/v1`, or checks that they are current.
//! - `bench [--quick] [--only PATTERN] [--skip PATTERN] [--json PATH] [--runs N]`: measures
//!   protowright against its peers in one run (see `bench.rs`).
//! - `sim [--seeds N] [--seed S] [--jobs J] [--trace-hash]`: the
//!   simulation scenarios over many seeds in one (release) process, or one
//!   seed replayed with its trace (`sim-tests/src/bin/sim.rs`).
//! - `properties [CASES]`: the reliable-UDP engine's property tests over
//!   CASES proptest cases (release).
//! - `hostile [HELLOS]`: a flood of HELLOS (default a million) spoofed
//!   connection attempts against a reliable-UDP server (release), with the
//!   packets per second handled and the server's heap growth.
//! - `fuzz [SECONDS] [TARGET...]`: every fuzz target under `fuzz/` (or
//!   those named) for SECONDS each, then the runs and findings of each
//!   (installs cargo-fuzz if missing; see `fuzz/README.md`).

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
  bench [--quick] [--only PATTERN] [--skip PATTERN] [--json PATH] [--runs N]
                     protowright side by side with its peers, in one run
  sim [--seeds N] [--first S] [--jobs J]
                     the simulation scenarios over N seeds (default 1000)
  sim --seed S [--trace-hash]
                     replay one seed: its schedule, trace (and trace hash)
  properties [CASES] the reliable-UDP engine's properties over CASES cases
                     (default 20000)
  hostile [HELLOS]   HELLOS spoofed connection attempts (default 1000000)
                     against a UDP server: packets/s and heap growth
  fuzz [SECONDS] [TARGET...]
                     run every fuzz target (or those named) for SECONDS
                     (default 60) each, then report runs and findings";

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
        "hostile" => hostile(rest),
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

fn hostile(args: &[String]) -> Result<()> {
    let hellos = number(args, 0, 1_000_000, "HELLOS")?;
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(workspace_root())
        .env("PROTOWRIGHT_HELLOS", hellos.to_string())
        .args([
            "test",
            "--release",
            "-p",
            "protowright",
            "--test",
            "udp_spoofed_hellos",
            "--",
            "--nocapture",
        ])
        .status()
        .context("could not start cargo")?;
    if !status.success() {
        bail!("the spoofed-hello flood failed ({status})");
    }
    Ok(())
}

const FUZZ_TARGETS: &[&str] = &[
    "udp_packet",
    "udp_frames",
    "udp_endpoint",
    "udp_session",
    "udp_handshake",
    "envelope",
];

/// What one fuzz target's run came to.
struct FuzzRun {
    target: String,
    /// Inputs libFuzzer executed.
    runs: u64,
    /// The crashing input it saved, if it found one.
    finding: Option<String>,
    passed: bool,
}

fn fuzz(args: &[String]) -> Result<()> {
    let seconds = number(args, 0, 60, "SECONDS")?;
    let targets: Vec<&str> = match args.get(1..) {
        Some(named) if !named.is_empty() => {
            for target in named {
                if !FUZZ_TARGETS.contains(&target.as_str()) {
                    bail!(
                        "no fuzz target `{target}` (targets: {})",
                        FUZZ_TARGETS.join(", ")
                    );
                }
            }
            named.iter().map(String::as_str).collect()
        }
        _ => FUZZ_TARGETS.to_vec(),
    };
    let installed = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        cargo(&["install", "cargo-fuzz", "--locked"], &[])?;
    }
    let mut runs = Vec::new();
    for target in targets {
        runs.push(fuzz_target(target, seconds)?);
    }
    println!("\nfuzzing, {seconds} s a target:");
    for run in &runs {
        let outcome = match (&run.finding, run.passed) {
            (Some(input), _) => format!("FOUND a failure: {input}"),
            (None, true) => "no findings".to_owned(),
            (None, false) => "FAILED (see its output above)".to_owned(),
        };
        println!("  {:<14} {:>12} runs  {outcome}", run.target, run.runs);
    }
    if runs.iter().any(|run| !run.passed) {
        bail!("a fuzz target failed; crashing inputs are under fuzz/artifacts/<target>/");
    }
    Ok(())
}

/// Runs one target: the checked-in seeds (`fuzz/corpus/<target>`) are read,
/// what the fuzzer finds new goes to `fuzz/grown/<target>` (not checked
/// in). Streams libFuzzer's output and reads its run count and any saved
/// crash from it.
fn fuzz_target(target: &str, seconds: u64) -> Result<FuzzRun> {
    let fuzz_dir = workspace_root().join("fuzz");
    let grown = format!("grown/{target}");
    std::fs::create_dir_all(fuzz_dir.join(&grown)).context("could not create fuzz/grown")?;
    let seeds = format!("corpus/{target}");
    // libFuzzer refuses a corpus directory that does not exist.
    let corpora: &[&str] = if fuzz_dir.join(&seeds).is_dir() {
        &[&grown, &seeds]
    } else {
        &[&grown]
    };
    // cargo-fuzz needs -Z flags; RUSTC_BOOTSTRAP lets the stable
    // toolchain (the only one these machines have) accept them.
    let mut child = Command::new("cargo")
        .current_dir(&fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "run", target])
        .args(corpora)
        .args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-rss_limit_mb=2048",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("could not start cargo fuzz")?;
    let mut run = FuzzRun {
        target: target.to_owned(),
        runs: 0,
        finding: None,
        passed: false,
    };
    if let Some(stderr) = child.stderr.take() {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.context("could not read cargo fuzz's output")?;
            eprintln!("{line}");
            // Status lines start `#RUNS`; the last says `Done RUNS runs`.
            let count = line
                .strip_prefix('#')
                .or_else(|| line.strip_prefix("Done "))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|count| count.parse().ok());
            if let Some(count) = count {
                run.runs = run.runs.max(count);
            }
            if let Some((_, path)) = line.split_once("Test unit written to ") {
                run.finding = Some(path.trim().to_owned());
            }
        }
    }
    run.passed = child.wait().context("cargo fuzz did not finish")?.success();
    Ok(run)
}
