//! Counts what a server resent: its live connections' reliable-UDP
//! counters, sampled while a run goes on (a connection's counters leave
//! with it when it closes).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use protowright::ServerHandle;
use tokio::task::JoinHandle;

/// Samples a server's connections until stopped.
pub(crate) struct Sampler {
    seen: Arc<Mutex<BTreeMap<String, u64>>>,
    task: JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling `server` every 50 ms.
    pub(crate) fn start(server: ServerHandle) -> Self {
        let seen: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
        let sampled = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            loop {
                for connection in server.connections() {
                    if let Some(udp) = connection.stats().udp {
                        let mut seen = sampled.lock().unwrap_or_else(PoisonError::into_inner);
                        let count = seen.entry(connection.peer().to_owned()).or_default();
                        *count = (*count).max(udp.packets_retransmitted);
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Self { seen, task }
    }

    /// Stops, and says how many packets carried resent data in all.
    pub(crate) fn stop(self) -> u64 {
        self.task.abort();
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.values().sum()
    }
}
