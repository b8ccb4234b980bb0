//! The callee's side of a session: the peer's calls being served.
//!
//! Most handlers answer in the reader's own pass; a handler that has to wait
//! gets a task, registered here by call id so a CANCEL can stop it. Handler
//! slots bound how many run at once (`max_concurrent_requests`), a byte
//! budget how much their requests hold (`request_bytes`); one-way messages
//! queued for their worker are counted so a draining session knows when it
//! is done.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;

use super::budget::{Budget, Held};

/// The peer's calls in progress on this side.
#[derive(Debug)]
pub(super) struct Serving {
    /// Handlers running on tasks of their own, by call id.
    running: Mutex<BTreeMap<u64, AbortHandle>>,
    /// Bounds the handlers running at once.
    slots: Arc<Semaphore>,
    /// Bounds the bytes their requests hold.
    bytes: Budget,
    /// One-way messages queued for or in their handler.
    one_ways: AtomicUsize,
}

impl Serving {
    pub(super) fn new(max_concurrent: usize, request_bytes: usize) -> Self {
        Self {
            running: Mutex::default(),
            slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
            bytes: Budget::new(request_bytes),
            one_ways: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, AbortHandle>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A handler slot if one is free now.
    pub(super) fn try_slot(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).try_acquire_owned().ok()
    }

    /// Room in the request budget for a body of `len` bytes, if there is
    /// some now.
    pub(super) fn try_hold(&self, len: usize) -> Option<Held> {
        self.bytes.try_take(len, 1)
    }

    /// Room in the request budget for a body of `len` bytes, waiting for
    /// handlers to give some back.
    pub(super) async fn hold(&self, len: usize) -> Option<Held> {
        self.bytes.take(len, 1).await
    }

    /// Whether a handler for `call_id` is running on a task.
    pub(super) fn contains(&self, call_id: u64) -> bool {
        self.lock().contains_key(&call_id)
    }

    /// Runs `spawn` and registers the task it returns under `call_id`,
    /// holding the registry's lock across both so the handler cannot
    /// finish (and unregister) before it is registered.
    pub(super) fn register(&self, call_id: u64, spawn: impl FnOnce() -> AbortHandle) {
        let mut running = self.lock();
        running.insert(call_id, spawn());
    }

    /// Stops the handler of `call_id`, if it is still running.
    pub(super) fn cancel(&self, call_id: u64) {
        if let Some(task) = self.lock().remove(&call_id) {
            task.abort();
        }
    }

    /// The handler of `call_id` finished.
    pub(super) fn finish(&self, call_id: u64) {
        self.lock().remove(&call_id);
    }

    /// Stops every running handler.
    pub(super) fn abort_all(&self) {
        for (_, task) in std::mem::take(&mut *self.lock()) {
            task.abort();
        }
    }

    /// `count` one-way messages were queued for their handler.
    pub(super) fn one_ways_queued(&self, count: usize) {
        self.one_ways.fetch_add(count, Ordering::Relaxed);
    }

    /// `count` one-way messages were handled (or dropped).
    pub(super) fn one_ways_done(&self, count: usize) {
        self.one_ways.fetch_sub(count, Ordering::Relaxed);
    }

    /// Whether one-way messages are queued for or in their handler.
    pub(super) fn has_one_ways(&self) -> bool {
        self.one_ways.load(Ordering::Relaxed) > 0
    }

    /// Whether nothing is being served.
    pub(super) fn is_idle(&self) -> bool {
        self.lock().is_empty() && !self.has_one_ways()
    }
}
