//! A server's live connections, its counters, and its shutdown.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use super::ServerStats;
use crate::connection::Connection;
use crate::rpc::Status;
use crate::udp;

/// Where a server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Accepting and serving.
    Serving,
    /// Shutdown was asked for: accepting stopped, connections drain.
    Draining,
    /// Every connection is gone.
    Finished,
}

/// What a server's accept task, its connections' watchers and its handles
/// share.
#[derive(Debug)]
pub(super) struct Registry {
    connections: Mutex<BTreeMap<u64, Connection>>,
    next: AtomicU64,
    /// Connections admitted and not yet ended (served ones and those
    /// waiting in `accept`): what the connection limit counts.
    admitted: AtomicUsize,
    max_connections: usize,
    /// How many connections are live; watched while draining.
    live: watch::Sender<usize>,
    accepted: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    pub(super) phase: watch::Sender<Phase>,
    /// The reliable-UDP endpoint, for a UDP server.
    pub(super) endpoint: Option<udp::Endpoint>,
}

/// One admitted connection's place under the limit, given back when it is
/// dropped (the connection ended, or it was never served).
#[derive(Debug)]
pub(super) struct Slot {
    registry: Arc<Registry>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.registry.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Registry {
    pub(super) fn new(max_connections: usize, endpoint: Option<udp::Endpoint>) -> Self {
        Self {
            connections: Mutex::default(),
            next: AtomicU64::new(0),
            admitted: AtomicUsize::new(0),
            max_connections,
            live: watch::Sender::new(0),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            phase: watch::Sender::new(Phase::Serving),
            endpoint,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Connection>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn is_serving(&self) -> bool {
        *self.phase.borrow() == Phase::Serving
    }

    /// A place under the connection limit, if one is free; counts a refusal
    /// if not.
    pub(super) fn admit(self: &Arc<Self>) -> Option<Slot> {
        let admitted = self.admitted.fetch_add(1, Ordering::AcqRel);
        let slot = Slot {
            registry: Arc::clone(self),
        };
        if admitted >= self.max_connections {
            drop(slot);
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(slot)
    }

    /// Tracks a served connection until it ends; counts it as failed if it
    /// ends with an error.
    pub(super) fn track(self: &Arc<Self>, connection: &Connection, slot: Slot) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        {
            let mut connections = self.lock();
            connections.insert(number, connection.clone());
            self.live.send_replace(connections.len());
        }
        // Admitted as shutdown began, after the drain took its list: it
        // drains too (the insert above happened before this check, the
        // drain's list after the phase changed, so none is missed).
        if !self.is_serving() {
            connection.try_go_away(&shutting_down());
        }
        let registry = Arc::clone(self);
        let watched = connection.clone();
        tokio::spawn(async move {
            if let Err(error) = watched.closed().await {
                registry.failed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%error, "a connection ended with an error");
            }
            drop(watched);
            let mut connections = registry.lock();
            connections.remove(&number);
            registry.live.send_replace(connections.len());
            drop(slot);
        });
    }

    /// The live connections.
    pub(super) fn connections(&self) -> Vec<Connection> {
        self.lock().values().cloned().collect()
    }

    /// The counters now.
    pub(super) fn stats(&self) -> ServerStats {
        let refused_by_endpoint = self.endpoint.as_ref().map_or(0, |e| e.stats().refused);
        ServerStats {
            connections: self.lock().len(),
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed) + refused_by_endpoint,
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    /// Shuts down gracefully (once, however many ask): stops accepting,
    /// says GOAWAY on every connection, waits up to `timeout` for them to
    /// drain and close, closes the rest, and lets a UDP endpoint resend its
    /// closes. Returns when the server has finished.
    pub(super) async fn shut_down(&self, timeout: Duration) {
        let first = self.phase.send_if_modified(|phase| {
            let serving = *phase == Phase::Serving;
            if serving {
                *phase = Phase::Draining;
            }
            serving
        });
        if first {
            self.drain(timeout).await;
            self.phase.send_replace(Phase::Finished);
        }
        let mut phase = self.phase.subscribe();
        let _ = phase.wait_for(|phase| *phase == Phase::Finished).await;
    }

    async fn drain(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        // Never waits on a peer that stopped reading: its GOAWAY is then
        // skipped, and the deadline below closes it.
        let status = shutting_down();
        for connection in self.connections() {
            connection.try_go_away(&status);
        }
        let mut live = self.live.subscribe();
        let drained = tokio::time::timeout_at(deadline, live.wait_for(|n| *n == 0))
            .await
            .is_ok();
        if !drained {
            let stragglers = self.connections();
            tracing::warn!(
                connections = stragglers.len(),
                ?timeout,
                "closing connections whose calls did not finish in time"
            );
            for connection in &stragglers {
                connection.close();
            }
            drop(stragglers);
            let _ = tokio::time::timeout(Duration::from_secs(1), live.wait_for(|n| *n == 0)).await;
        }
        if let Some(endpoint) = &self.endpoint {
            endpoint.shutdown();
            // Let the closes be resent across their drain, within reason.
            let _ = tokio::time::timeout(timeout.max(Duration::from_secs(1)), endpoint.wait_idle())
                .await;
        }
    }
}

/// Why a shutting-down server turns its connections away.
fn shutting_down() -> Status {
    Status::unavailable("the server is shutting down")
}
