//! File I/O off the async tasks, without losing the simulation's
//! determinism.
//!
//! Reading and hashing a chunk blocks. On a multi-threaded runtime (the
//! command line) it goes to tokio's blocking pool, so the network tasks
//! keep running. On a current-thread runtime — every turmoil host, and
//! `#[tokio::test]` — it runs inline: the blocking pool's threads finish
//! in real time, which a simulation's virtual clock cannot order, so the
//! same seed would not replay the same run. A chunk is at most a few
//! hundred KiB, so running it inline costs a short pause, not a stall.

use std::io;

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `work`, on the blocking pool when the runtime has one worth using.
/// Fails only when the work panicked or its runtime is shutting down.
pub(crate) async fn run<T, F>(work: F) -> io::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match Handle::current().runtime_flavor() {
        RuntimeFlavor::MultiThread => tokio::task::spawn_blocking(work)
            .await
            .map_err(|error| io::Error::other(format!("file work did not finish: {error}"))),
        _ => Ok(work()),
    }
}
