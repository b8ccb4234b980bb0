//! Protocol messages received on a session, waiting for the application.
//!
//! Over TCP (and in memory) a protocol message travels as a `MESSAGE`
//! envelope in order with the calls. The session's reader puts each one
//! here; the application takes them with `Connection::recv`. The inbox is
//! bounded in messages and bytes: when it is full the reader waits, which
//! stops reading from the connection and so pushes back on the sender —
//! nothing that arrived is dropped.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::Notify;

#[derive(Debug, Default)]
struct State {
    messages: VecDeque<Bytes>,
    bytes: usize,
    /// Set when the session ended: no more messages will come.
    ended: bool,
}

/// The bounded queue of received protocol messages.
#[derive(Debug)]
pub(super) struct Inbox {
    state: Mutex<State>,
    /// Wakes the application: a message arrived, or the session ended.
    arrived: Notify,
    /// Wakes the reader: the application took a message.
    room: Notify,
    max_messages: usize,
    max_bytes: usize,
    /// Whether the inbox was ever full (reported once).
    was_full: AtomicBool,
}

impl Inbox {
    pub(super) fn new(max_messages: usize, max_bytes: usize) -> Self {
        Self {
            state: Mutex::default(),
            arrived: Notify::new(),
            room: Notify::new(),
            max_messages: max_messages.max(1),
            max_bytes,
            was_full: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a message of `len` bytes fits now. A message larger than
    /// the byte bound fits an empty inbox, so it can go alone.
    fn has_room(&self, state: &State, len: usize) -> bool {
        state.messages.is_empty()
            || (state.messages.len() < self.max_messages && state.bytes + len <= self.max_bytes)
    }

    /// Whether this is the first time the inbox is found full.
    pub(super) fn first_time_full(&self) -> bool {
        !self.was_full.swap(true, Ordering::Relaxed)
    }

    /// Queues a message if there is room now; hands it back if not.
    pub(super) fn try_push(&self, message: Bytes) -> Result<(), Bytes> {
        let mut state = self.lock();
        if state.ended {
            return Ok(());
        }
        if !self.has_room(&state, message.len()) {
            return Err(message);
        }
        state.bytes += message.len();
        state.messages.push_back(message);
        drop(state);
        self.arrived.notify_one();
        Ok(())
    }

    /// Queues a message, waiting for room. (After the session ended the
    /// message is dropped: nobody will read it.)
    pub(super) async fn push(&self, message: Bytes) {
        let mut message = match self.try_push(message) {
            Ok(()) => return,
            Err(back) => back,
        };
        loop {
            let mut room = pin!(self.room.notified());
            room.as_mut().enable();
            match self.try_push(message) {
                Ok(()) => return,
                Err(back) => message = back,
            }
            room.await;
        }
    }

    /// Takes the next message, waiting for one. `None` once the session
    /// has ended and every message that arrived before was taken.
    pub(super) async fn pop(&self) -> Option<Bytes> {
        loop {
            let mut arrived = pin!(self.arrived.notified());
            arrived.as_mut().enable();
            {
                let mut state = self.lock();
                if let Some(message) = state.messages.pop_front() {
                    state.bytes -= message.len();
                    let more = !state.messages.is_empty() || state.ended;
                    drop(state);
                    self.room.notify_one();
                    if more {
                        // Let another waiting reader of this connection go on.
                        self.arrived.notify_one();
                    }
                    return Some(message);
                }
                if state.ended {
                    drop(state);
                    self.arrived.notify_one();
                    return None;
                }
            }
            arrived.await;
        }
    }

    /// Messages waiting now.
    pub(super) fn len(&self) -> usize {
        self.lock().messages.len()
    }

    /// No more messages will come: wakes the application, and a reader
    /// waiting for room (which then drops its message).
    pub(super) fn end(&self) {
        self.lock().ended = true;
        self.arrived.notify_waiters();
        self.arrived.notify_one();
        self.room.notify_waiters();
        self.room.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(len: usize) -> Bytes {
        Bytes::from(vec![7u8; len])
    }

    #[tokio::test]
    async fn messages_come_out_in_order_then_none_after_the_end() {
        let inbox = Inbox::new(10, 1 << 20);
        for len in 1..=3 {
            inbox.push(bytes(len)).await;
        }
        inbox.end();
        for len in 1..=3 {
            assert_eq!(inbox.pop().await.map(|m| m.len()), Some(len));
        }
        assert_eq!(inbox.pop().await, None);
    }

    #[test]
    fn the_count_and_byte_bounds_refuse_but_a_large_message_may_go_alone() {
        let inbox = Inbox::new(2, 100);
        inbox.try_push(bytes(500)).unwrap();
        assert!(inbox.try_push(bytes(1)).is_err(), "over the byte bound");
        let inbox = Inbox::new(2, 100);
        inbox.try_push(bytes(1)).unwrap();
        inbox.try_push(bytes(1)).unwrap();
        assert!(inbox.try_push(bytes(1)).is_err(), "over the count bound");
        assert_eq!(inbox.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_inbox_makes_the_reader_wait_until_the_application_takes_one() {
        let inbox = std::sync::Arc::new(Inbox::new(1, 1 << 20));
        inbox.push(bytes(1)).await;
        let reader = tokio::spawn({
            let inbox = std::sync::Arc::clone(&inbox);
            async move { inbox.push(bytes(2)).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        assert!(!reader.is_finished(), "the reader waits for room");
        assert_eq!(inbox.pop().await.map(|m| m.len()), Some(1));
        reader.await.unwrap();
        assert_eq!(inbox.pop().await.map(|m| m.len()), Some(2));
    }
}
