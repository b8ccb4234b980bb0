//! `contender`: one side of one benchmark run.
//!
//! `contender NAME server WORKLOAD` binds 127.0.0.1:0, prints `ready ADDR`,
//! serves one client and, for one-way workloads, prints the receiver's
//! result as JSON. `contender NAME client WORKLOAD ADDR SECONDS` drives the
//! workload and, for round-trip workloads, prints the result as JSON. Each
//! process runs one single-threaded tokio runtime, so `cargo xtask bench`
//! can pin a server and a client to different cores.

mod contenders;
mod report;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};

pub use report::Report;

/// The protocol the contenders speak, generated from `proto/bench/v1`.
pub mod pb {
    #![allow(missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/bench.v1.rs"));
}

/// The workloads a contender may support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// One-way pipelined 64-byte messages; messages/s at the receiver.
    Msgs64,
    /// 64-byte request/response; round-trip percentiles at the client.
    Rtt64,
}

impl Workload {
    fn parse(name: &str) -> anyhow::Result<Self> {
        Ok(match name {
            "msgs64" => Self::Msgs64,
            "rtt64" => Self::Rtt64,
            other => bail!("unknown workload `{other}` (msgs64, rtt64)"),
        })
    }
}

/// The 62 bytes every message carries (64 bytes once encoded).
pub const DATA: [u8; 62] = [0x5a; 62];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match args.as_slice() {
        [name, role, workload] if role == "server" => {
            let workload = Workload::parse(workload)?;
            runtime.block_on(contenders::serve(name, workload))
        }
        [name, role, workload, addr, seconds] if role == "client" => {
            let workload = Workload::parse(workload)?;
            let addr: SocketAddr = addr.parse().context("ADDR")?;
            let duration = Duration::from_secs_f64(seconds.parse().context("SECONDS")?);
            runtime.block_on(contenders::drive(name, workload, addr, duration))
        }
        _ => bail!(
            "usage: contender NAME server WORKLOAD | contender NAME client WORKLOAD ADDR SECONDS\n\
             contenders: {}",
            contenders::NAMES.join(", ")
        ),
    }
}
