//! The caller's side of a session: calls awaiting their responses.
//!
//! Each call gets an id unique on the session and a slot among the calls in
//! flight (bounded by `max_in_flight`); its response is handed to the
//! waiting caller by id. When the session ends, every waiting caller gets
//! the reason at once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::Status;

/// What a waiting caller receives.
pub(super) type Reply = Result<Bytes, Status>;

/// The waiting callers, and whether new ones are still taken.
#[derive(Debug, Default)]
struct Waiting {
    calls: BTreeMap<u64, oneshot::Sender<Reply>>,
    /// Set when every call was failed: the session closed.
    closed: bool,
}

/// The calls this side made and still waits on.
#[derive(Debug)]
pub(super) struct Calls {
    next_id: AtomicU64,
    waiting: Mutex<Waiting>,
    /// Bounds the calls awaiting a response.
    in_flight: Arc<Semaphore>,
}

impl Calls {
    pub(super) fn new(max_in_flight: usize) -> Self {
        Self {
            next_id: AtomicU64::new(1),
            waiting: Mutex::default(),
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        // No code path panics while holding the lock; if one ever did, the
        // map is still consistent, so carry on rather than cascade it.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a slot for one more call awaiting a response, waiting for one.
    /// `None` once the session has ended.
    pub(super) async fn acquire_slot(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.in_flight).acquire_owned().await.ok()
    }

    /// Registers a call awaiting a reply; returns its id and where the reply
    /// will arrive. `None` once every call has been failed (the session
    /// closed): a call registered after that would wait forever.
    pub(super) fn register(&self) -> Option<(u64, oneshot::Receiver<Reply>)> {
        let mut waiting = self.lock();
        if waiting.closed {
            return None;
        }
        let call_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, receiver) = oneshot::channel();
        waiting.calls.insert(call_id, reply);
        Some((call_id, receiver))
    }

    /// Forgets a call whose caller stopped waiting. Returns whether it was
    /// still waiting (and so whether the peer may still be working on it).
    pub(super) fn forget(&self, call_id: u64) -> bool {
        self.lock().calls.remove(&call_id).is_some()
    }

    /// Hands a reply to the caller waiting on `call_id`; returns whether one
    /// was (a reply for a caller that gave up is dropped).
    pub(super) fn complete(&self, call_id: u64, reply: Reply) -> bool {
        let waiting = self.lock().calls.remove(&call_id);
        match waiting {
            Some(caller) => {
                let _ = caller.send(reply);
                true
            }
            None => false,
        }
    }

    /// Whether no call is waiting.
    pub(super) fn is_empty(&self) -> bool {
        self.lock().calls.is_empty()
    }

    /// Fails every waiting call with `status` and refuses new slots.
    pub(super) fn fail_all(&self, status: &Status) {
        let waiting = {
            let mut waiting = self.lock();
            waiting.closed = true;
            std::mem::take(&mut waiting.calls)
        };
        for (_, caller) in waiting {
            let _ = caller.send(Err(status.clone()));
        }
        self.in_flight.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reply_reaches_the_caller_of_its_own_id_only() {
        let calls = Calls::new(4);
        let (first, first_reply) = calls.register().unwrap();
        let (second, second_reply) = calls.register().unwrap();
        assert_ne!(first, second);
        assert!(calls.complete(second, Ok(Bytes::from_static(b"two"))));
        assert!(calls.complete(first, Ok(Bytes::from_static(b"one"))));
        assert_eq!(first_reply.await.unwrap().unwrap(), "one");
        assert_eq!(second_reply.await.unwrap().unwrap(), "two");
        assert!(!calls.complete(first, Ok(Bytes::new())), "answered once");
    }

    #[tokio::test]
    async fn failing_all_answers_every_waiting_caller_and_closes_the_slots() {
        let calls = Calls::new(4);
        let (_, reply) = calls.register().unwrap();
        calls.fail_all(&Status::unavailable("gone"));
        assert_eq!(reply.await.unwrap().unwrap_err().message(), "gone");
        assert!(calls.is_empty());
        assert!(calls.acquire_slot().await.is_none());
        assert!(calls.register().is_none(), "nothing waits after the end");
    }
}
