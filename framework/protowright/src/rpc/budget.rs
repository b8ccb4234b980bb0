//! Byte budgets: how much memory the peer's queued requests and one-way
//! messages may hold on this side.
//!
//! Counting messages alone lets a peer hold `count × max_frame`; a budget
//! counts each held message's bytes plus [`MESSAGE_OVERHEAD`] for its
//! bookkeeping, so many tiny messages cost their share too. The session
//! takes room before it holds a message and gives it back when the message
//! is done with; when there is none, reading pauses (backpressure on the
//! sender), never a refusal and never unbounded growth.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What one held message costs beyond its body: a generous estimate of
/// the envelope's other fields, its queue slot and its handler's state.
pub(super) const MESSAGE_OVERHEAD: usize = 256;

/// A budget of bytes, taken by messages while they are held.
#[derive(Debug)]
pub(super) struct Budget {
    room: Arc<Semaphore>,
    capacity: u32,
}

/// Room taken in a [`Budget`]; given back when dropped.
pub(super) type Held = OwnedSemaphorePermit;

impl Budget {
    /// A budget of `bytes` (above 4 GiB, 4 GiB: the semaphore counts in
    /// `u32`).
    pub(super) fn new(bytes: usize) -> Self {
        let capacity = u32::try_from(bytes).unwrap_or(u32::MAX).max(1);
        Self {
            room: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
        }
    }

    /// What holding messages of `bytes` in all, `count` of them, costs: at
    /// most the whole budget, so a message larger than it still goes, alone.
    fn cost(&self, bytes: usize, count: usize) -> u32 {
        let cost = bytes.saturating_add(count.saturating_mul(MESSAGE_OVERHEAD));
        u32::try_from(cost).unwrap_or(u32::MAX).min(self.capacity)
    }

    /// Room for `count` messages of `bytes` in all, if there is some now.
    pub(super) fn try_take(&self, bytes: usize, count: usize) -> Option<Held> {
        Arc::clone(&self.room)
            .try_acquire_many_owned(self.cost(bytes, count))
            .ok()
    }

    /// Room for `count` messages of `bytes` in all, waiting for it. `None`
    /// only if the budget was closed, which it never is.
    pub(super) async fn take(&self, bytes: usize, count: usize) -> Option<Held> {
        let cost = self.cost(bytes, count);
        Arc::clone(&self.room).acquire_many_owned(cost).await.ok()
    }

    /// Bytes free now.
    #[cfg(test)]
    pub(super) fn available(&self) -> usize {
        self.room.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cost_their_bytes_and_their_overhead() {
        let budget = Budget::new(10_000);
        let held = budget.try_take(1000, 2).unwrap();
        assert_eq!(budget.available(), 10_000 - 1000 - 2 * MESSAGE_OVERHEAD);
        drop(held);
        assert_eq!(budget.available(), 10_000);
    }

    #[test]
    fn a_message_larger_than_the_budget_goes_alone() {
        let budget = Budget::new(1000);
        let alone = budget.try_take(5000, 1).unwrap();
        assert!(budget.try_take(1, 1).is_none(), "nothing fits beside it");
        drop(alone);
        assert!(budget.try_take(1, 1).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn taking_waits_until_room_is_given_back() {
        let budget = Arc::new(Budget::new(1000));
        let first = budget.try_take(600, 1).unwrap();
        let waiter = tokio::spawn({
            let budget = Arc::clone(&budget);
            async move { budget.take(600, 1).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        assert!(!waiter.is_finished(), "no room until the first is done");
        drop(first);
        assert!(waiter.await.unwrap().is_some());
    }
}
