//! A member's outgoing queue on the server: bounded, and never a reason for
//! anyone else to wait.
//!
//! The room puts an event into every member's outbox under the lobby's
//! lock, without waiting ([`Outbox::push`]); one task per member (the pump
//! in `server`) takes them out ([`Outbox::next`]) and sends them on the
//! member's connection, waiting there as long as the connection needs.
//!
//! **Policy when a member reads too slowly: drop the oldest, then tell.**
//! When the queue holds its bound, a new event pushes the oldest one out
//! and the member's missed count grows. Before the next event that does go
//! out, the member gets one `Missed { count }` with the number dropped
//! since the last notice. So a member that never reads costs the server at
//! most `bound` queued events, and the others' events never wait for it.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use crate::pb;

/// What the pump sends next.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Next {
    /// Tell the member how many events it missed.
    Missed(u64),
    /// An event for the member.
    Event(pb::Event),
}

/// A member queue's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Events queued now.
    pub queued: usize,
    /// The most events ever queued at once (never above the bound).
    pub high_water: usize,
    /// Events dropped because the queue was full, since the start.
    pub dropped: u64,
}

#[derive(Debug, Default)]
struct State {
    events: VecDeque<pb::Event>,
    /// Dropped since the last `Missed` was handed out.
    missed: u64,
    closed: bool,
    stats: QueueStats,
}

/// One member's bounded queue of events (see the module docs).
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Wakes the pump: something was queued, or the outbox closed.
    ready: Notify,
    bound: usize,
}

impl Outbox {
    /// An empty outbox holding at most `bound` events (at least one).
    pub(crate) fn new(bound: usize) -> Self {
        Self {
            state: Mutex::default(),
            ready: Notify::new(),
            bound: bound.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `event` without waiting; when the queue is full the oldest
    /// event is dropped and counted as missed. Does nothing once closed.
    pub(crate) fn push(&self, event: pb::Event) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        if state.events.len() >= self.bound {
            state.events.pop_front();
            state.missed += 1;
            state.stats.dropped += 1;
        }
        state.events.push_back(event);
        let queued = state.events.len();
        state.stats.queued = queued;
        state.stats.high_water = state.stats.high_water.max(queued);
        drop(state);
        self.ready.notify_one();
    }

    /// Waits for what to send next: a `Missed` notice first when events
    /// were dropped, then the oldest queued event. `None` once the outbox
    /// is closed (what was still queued is dropped with it).
    pub(crate) async fn next(&self) -> Option<Next> {
        loop {
            {
                let mut state = self.lock();
                if state.closed {
                    return None;
                }
                if state.missed > 0 {
                    return Some(Next::Missed(std::mem::take(&mut state.missed)));
                }
                if let Some(event) = state.events.pop_front() {
                    state.stats.queued = state.events.len();
                    return Some(Next::Event(event));
                }
            }
            // One consumer, woken with `notify_one`: a wake-up that comes
            // before this wait is kept as a permit, so none is lost.
            self.ready.notified().await;
        }
    }

    /// Closes the outbox: the pump stops, and later events are not queued.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.events.clear();
        state.stats.queued = 0;
        drop(state);
        self.ready.notify_one();
    }

    /// The counters now.
    pub(crate) fn stats(&self) -> QueueStats {
        self.lock().stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64) -> pb::Event {
        pb::Said {
            room: "r".into(),
            nick: "n".into(),
            text: format!("line {seq}"),
            seq,
        }
        .into()
    }

    fn take_now(outbox: &Outbox) -> Option<Next> {
        let mut next = std::pin::pin!(outbox.next());
        let waker = std::task::Waker::noop();
        match next
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker))
        {
            std::task::Poll::Ready(next) => next,
            std::task::Poll::Pending => panic!("nothing was ready"),
        }
    }

    use std::future::Future as _;

    #[test]
    fn events_come_out_in_the_order_they_went_in() {
        let outbox = Outbox::new(4);
        for seq in 1..=3 {
            outbox.push(line(seq));
        }
        for seq in 1..=3 {
            assert_eq!(take_now(&outbox), Some(Next::Event(line(seq))));
        }
        assert_eq!(outbox.stats().queued, 0);
        assert_eq!(outbox.stats().high_water, 3);
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_reports_the_count_before_the_rest() {
        let outbox = Outbox::new(3);
        for seq in 1..=10 {
            outbox.push(line(seq));
        }
        let stats = outbox.stats();
        assert_eq!((stats.queued, stats.high_water, stats.dropped), (3, 3, 7));
        assert_eq!(take_now(&outbox), Some(Next::Missed(7)));
        for seq in 8..=10 {
            assert_eq!(take_now(&outbox), Some(Next::Event(line(seq))));
        }
        // The count restarts after each notice.
        for seq in 11..=14 {
            outbox.push(line(seq));
        }
        assert_eq!(take_now(&outbox), Some(Next::Missed(1)));
        assert_eq!(outbox.stats().dropped, 8);
    }

    #[test]
    fn a_closed_outbox_ends_the_pump_and_takes_nothing_more() {
        let outbox = Outbox::new(3);
        outbox.push(line(1));
        outbox.close();
        outbox.push(line(2));
        assert_eq!(take_now(&outbox), None);
        assert_eq!(outbox.stats().queued, 0);
    }
}
