//! `contender`: one side of one benchmark run.
//!
//! `contender NAME server WORKLOAD AMOUNT` binds 127.0.0.1:0, prints
//! `ready ADDR`, serves the client and prints what the server measures as
//! JSON. `contender NAME client WORKLOAD AMOUNT ADDR` drives the workload
//! and prints what the client measures as JSON. The harness merges the two. Each
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
    /// A large transfer in 64 KiB chunks; goodput, verified by checksum.
    Bulk,
    /// Many concurrent idle connections; server memory per connection and
    /// the time to establish them.
    Conns10k,
}

impl Workload {
    fn parse(name: &str) -> anyhow::Result<Self> {
        Ok(match name {
            "msgs64" => Self::Msgs64,
            "rtt64" => Self::Rtt64,
            "bulk" => Self::Bulk,
            "conns10k" => Self::Conns10k,
            other => bail!("unknown workload `{other}` (msgs64, rtt64, bulk, conns10k)"),
        })
    }
}

/// How much of a workload to run.
#[derive(Debug, Clone, Copy)]
pub struct Amount {
    /// How long to run a timed workload.
    pub duration: Duration,
    /// How many bytes a bulk transfer moves.
    pub bytes: u64,
    /// How many connections to open.
    pub connections: usize,
}

impl Amount {
    fn parse(workload: Workload, text: &str) -> anyhow::Result<Self> {
        let value: f64 = text.parse().context("AMOUNT")?;
        if !(value.is_finite() && value > 0.0) {
            bail!("AMOUNT must be a positive number");
        }
        let mut amount = Amount {
            duration: Duration::from_secs(1),
            bytes: 0,
            connections: 0,
        };
        match workload {
            Workload::Msgs64 | Workload::Rtt64 => amount.duration = Duration::from_secs_f64(value),
            Workload::Bulk => amount.bytes = (value * 1024.0 * 1024.0) as u64,
            Workload::Conns10k => amount.connections = value as usize,
        }
        Ok(amount)
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
        [name, role, workload, amount] if role == "server" => {
            let workload = Workload::parse(workload)?;
            let amount = Amount::parse(workload, amount)?;
            runtime.block_on(contenders::serve(name, workload, amount))
        }
        [name, role, workload, amount, addr] if role == "client" => {
            let workload = Workload::parse(workload)?;
            let amount = Amount::parse(workload, amount)?;
            let addr: SocketAddr = addr.parse().context("ADDR")?;
            runtime.block_on(contenders::drive(name, workload, amount, addr))
        }
        _ => bail!(
            "usage: contender NAME server WORKLOAD AMOUNT | contender NAME client WORKLOAD AMOUNT ADDR\n\
             AMOUNT: seconds (msgs64, rtt64), MiB (bulk), connections (conns10k)\n\
             contenders: {}",
            contenders::NAMES.join(", ")
        ),
    }
}
