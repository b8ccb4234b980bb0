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
    /// Whether an application task waits for a message (registered with
    /// `arrived` before it set this).
    taker_waits: bool,
    /// Whether the reader waits for room (registered with `room`).
    reader_waits: bool,
}

/// The bounded queue of received protocol messages.
///
/// A message costs one uncontended lock on each side. A side that finds
/// nothing to do registers with its `Notify` first and then says so under
/// the lock, so the other side wakes it only when someone waits: profiles
/// of many small messages showed a notification per message (and the
/// spurious wake-ups its stored permits cause) as a sixth of the reader's
/// time.
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
        let wake = std::mem::take(&mut state.taker_waits);
        drop(state);
        if wake {
            self.arrived.notify_waiters();
        }
        Ok(())
    }

    /// Moves messages from the front of `messages` into the inbox while
    /// there is room, under one lock; what is left did not fit.
    pub(super) fn try_push_all(&self, messages: &mut VecDeque<Bytes>) {
        let mut state = self.lock();
        if state.ended {
            messages.clear();
            return;
        }
        let before = state.messages.len();
        while let Some(message) = messages.front() {
            if !self.has_room(&state, message.len()) {
                break;
            }
            state.bytes += message.len();
            if let Some(message) = messages.pop_front() {
                state.messages.push_back(message);
            }
        }
        let wake = state.messages.len() > before && std::mem::take(&mut state.taker_waits);
        drop(state);
        if wake {
            self.arrived.notify_waiters();
        }
    }

    /// Moves every message of `messages` into the inbox, waiting for room
    /// as needed. (After the session ended they are dropped.)
    pub(super) async fn push_all(&self, messages: &mut VecDeque<Bytes>) {
        while let Some(first) = messages.pop_front() {
            self.push(first).await;
            self.try_push_all(messages);
        }
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
            {
                let mut state = self.lock();
                if state.ended || self.has_room(&state, message.len()) {
                    continue;
                }
                state.reader_waits = true;
            }
            room.await;
        }
    }

    /// Takes the next message, if one is waiting; `Err(ended)` if none is.
    fn try_pop(&self) -> Result<Bytes, bool> {
        let mut state = self.lock();
        let Some(message) = state.messages.pop_front() else {
            return Err(state.ended);
        };
        state.bytes -= message.len();
        let wake = std::mem::take(&mut state.reader_waits);
        drop(state);
        if wake {
            self.room.notify_waiters();
        }
        Ok(message)
    }

    /// Takes the next message, waiting for one. `None` once the session
    /// has ended and every message that arrived before was taken.
    pub(super) async fn pop(&self) -> Option<Bytes> {
        loop {
            match self.try_pop() {
                Ok(message) => return Some(message),
                Err(true) => return None,
                Err(false) => self.arrival().await,
            }
        }
    }

    /// Moves every waiting message into `batch` (which the caller has
    /// emptied) under one lock, waiting for one. Returns `false`, with
    /// nothing moved, once the session has ended and every message was
    /// taken. A typed message stream takes its messages this way, so a
    /// message costs it no lock of its own.
    pub(super) async fn pop_all(&self, batch: &mut VecDeque<Bytes>) -> bool {
        debug_assert!(batch.is_empty());
        loop {
            match self.try_pop_all(batch) {
                Ok(()) => return true,
                Err(true) => return false,
                Err(false) => self.arrival().await,
            }
        }
    }

    /// Moves every waiting message into `batch`, if any is waiting;
    /// `Err(ended)` if none is.
    fn try_pop_all(&self, batch: &mut VecDeque<Bytes>) -> Result<(), bool> {
        let mut state = self.lock();
        if state.messages.is_empty() {
            return Err(state.ended);
        }
        std::mem::swap(&mut state.messages, batch);
        state.bytes = 0;
        let wake = std::mem::take(&mut state.reader_waits);
        drop(state);
        if wake {
            self.room.notify_waiters();
        }
        Ok(())
    }

    /// Waits until a message may have arrived or the session ended: it
    /// registers for the wake-up first, then says it waits under the lock,
    /// so a push in between is never missed.
    async fn arrival(&self) {
        let mut arrived = pin!(self.arrived.notified());
        arrived.as_mut().enable();
        {
            let mut state = self.lock();
            if !state.messages.is_empty() || state.ended {
                return;
            }
            state.taker_waits = true;
        }
        arrived.await;
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
        self.room.notify_waiters();
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

    #[tokio::test]
    async fn a_batch_goes_in_under_one_lock_and_out_as_one_batch() {
        let inbox = Inbox::new(3, 1 << 20);
        let mut incoming: VecDeque<Bytes> = (1..=5).map(bytes).collect();
        inbox.try_push_all(&mut incoming);
        assert_eq!(inbox.len(), 3, "the count bound stops the batch");
        assert_eq!(incoming.len(), 2, "what did not fit stays with the reader");
        let mut batch = VecDeque::new();
        assert!(inbox.pop_all(&mut batch).await);
        assert_eq!(batch.iter().map(Bytes::len).collect::<Vec<_>>(), [1, 2, 3]);
        inbox.try_push_all(&mut incoming);
        inbox.end();
        batch.clear();
        assert!(
            inbox.pop_all(&mut batch).await,
            "messages that came before the end"
        );
        assert_eq!(batch.len(), 2);
        batch.clear();
        assert!(!inbox.pop_all(&mut batch).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_taker_is_woken_by_the_next_message_and_by_the_end() {
        let inbox = std::sync::Arc::new(Inbox::new(8, 1 << 20));
        let taker = tokio::spawn({
            let inbox = std::sync::Arc::clone(&inbox);
            async move {
                let mut batch = VecDeque::new();
                let mut seen = 0;
                while inbox.pop_all(&mut batch).await {
                    seen += batch.len();
                    batch.clear();
                }
                seen + usize::from(inbox.pop().await.is_none())
            }
        });
        for len in 1..=20 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            inbox.push(bytes(len)).await;
        }
        inbox.end();
        assert_eq!(taker.await.unwrap(), 21);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_waiting_for_room_goes_on_when_a_batch_is_taken() {
        let inbox = std::sync::Arc::new(Inbox::new(2, 1 << 20));
        let reader = tokio::spawn({
            let inbox = std::sync::Arc::clone(&inbox);
            async move {
                let mut incoming: VecDeque<Bytes> = (1..=6).map(bytes).collect();
                inbox.push_all(&mut incoming).await;
            }
        });
        let mut taken = Vec::new();
        let mut batch = VecDeque::new();
        while taken.len() < 6 {
            assert!(inbox.pop_all(&mut batch).await);
            taken.extend(batch.drain(..).map(|m| m.len()));
        }
        reader.await.unwrap();
        assert_eq!(taken, [1, 2, 3, 4, 5, 6], "in order, none lost");
    }
}
