//! `cargo xtask demo`: a tour of what protowright is for, in well under a
//! minute, with nothing to set up.
//!
//! Everything runs in this process on loopback: the chat, game and
//! file-sharing servers from `examples/`, their bots and a download, over
//! TCP and reliable UDP, first on a clean path and then through
//! protowright-sim's fault layer with datagram loss (the same layer the
//! simulation suites use, here in front of real sockets). Then one table
//! says what happened.

mod resends;
mod runs;
mod table;

use std::time::{Duration, Instant};

use protowright::Transport;

use runs::Path;
use table::Row;

fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let runtime = tokio::runtime::Runtime::new()?;
    println!("protowright demo: chat, a game and file sharing, over TCP and reliable UDP,");
    println!(
        "on a clean loopback and through the fault layer ({:.0}% of datagrams lost each way)\n",
        runs::LOSS * 100.0
    );
    let rows: Vec<Row> = runtime.block_on(async {
        let mut rows = Vec::new();
        let plan = [
            (Transport::Tcp, Path::Clean),
            (Transport::Udp, Path::Clean),
            (Transport::Udp, Path::Lossy),
        ];
        for (transport, path) in plan {
            rows.push(announce(runs::chat(transport, path).await?));
        }
        for path in [Path::Clean, Path::Lossy] {
            rows.push(announce(runs::game(path).await?));
        }
        for (transport, path) in plan {
            rows.push(announce(runs::file(transport, path).await?));
        }
        anyhow::Ok(rows)
    })?;
    println!();
    table::print(&rows);
    println!(
        "\nTCP carries every message reliably and in order, and the fault layer \
         leaves its streams alone:\nloss shows on reliable UDP, where each message \
         travels as its schema says. Done in {:.1} s.",
        started.elapsed().as_secs_f64()
    );
    if rows.iter().any(|row| !row.ok) {
        anyhow::bail!("a run did not deliver everything it owed (see the table)");
    }
    Ok(())
}

/// Says a run is done, as it finishes.
fn announce(row: Row) -> Row {
    println!(
        "  {:<10} {:<4} {:<9} {}",
        row.example,
        row.transport,
        row.path,
        if row.ok { "done" } else { "INCOMPLETE" }
    );
    row
}

/// How long each interactive run lasts.
const RUN: Duration = Duration::from_secs(2);
