//! `cargo xtask`: protowright's developer commands.
//!
//! - `demo`: runs the end-to-end demo (the greeter example).
//! - `test [ARGS...]`: runs the whole test suite, every feature on
//!   (`cargo test --workspace --all-features`).
//! - `codegen [--check]`: regenerates the runtime's checked-in wire types
//!   from `proto/protowright/v1`, or checks that they are current.
//! - `bench [--quick] [--only PATTERN] [--json PATH] [--runs N]`: measures
//!   protowright against its peers in one run (see `bench.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

mod bench;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  demo               run the end-to-end demo (examples/greeter)
  test [ARGS...]     run the whole test suite; ARGS go to `cargo test`
  codegen [--check]  regenerate framework/protowright/src/v1/generated.rs
                     (--check: fail if it is out of date instead)
  bench [--quick] [--only PATTERN] [--json PATH] [--runs N]
                     protowright side by side with its peers, in one run";

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
        "demo" => cargo(&["run", "--quiet", "--package", "greeter"], rest),
        "test" => cargo(&["test", "--workspace", "--all-features"], rest),
        "codegen" => codegen(rest),
        "bench" => bench::run(&workspace_root(), &bench::Options::parse(rest)?),
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
