//! The raw handle to one reliable-UDP connection: bytes on the four
//! delivery lanes and per-channel priorities.
//!
//! Applications normally use [`crate::Connection`], which runs typed
//! protocol messages and RPC over this handle (RPC on the connection's
//! session lane, apart from the application's channels). This handle is
//! for code that wants the lanes themselves.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::Error;
use super::proto::{
    CLOSE_NORMAL, CloseReason, ConnectionHandle, ConnectionStats, Lane, Message, SendError,
};
use super::shared::{Owner, Shared, State};
use crate::Delivery;

/// One reliable-UDP connection. Cheap to clone; clones share it. Dropping
/// the last clone closes it gracefully: what was queued is still delivered.
#[derive(Debug, Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    _owner: Arc<Owner>,
    handle: ConnectionHandle,
    peer: SocketAddr,
    notify: Arc<Notify>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared
            .lock()
            .release_handle(self.handle, "connection dropped");
        self.shared.wake_driver.notify_one();
    }
}

impl Connection {
    pub(super) fn new(
        shared: Arc<Shared>,
        owner: Arc<Owner>,
        handle: ConnectionHandle,
        peer: SocketAddr,
        notify: Arc<Notify>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                shared,
                _owner: owner,
                handle,
                peer,
                notify,
            }),
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.peer
    }

    /// Waits until `poll` is ready, re-checking whenever the driver touches
    /// this connection.
    pub(super) async fn wait_for<T>(
        &self,
        mut poll: impl FnMut(&mut State, ConnectionHandle) -> Poll<Result<T, Error>>,
    ) -> Result<T, Error> {
        let handle = self.inner.handle;
        // The common case, ready at once, skips registering for a wake-up.
        if let Poll::Ready(result) = poll(&mut self.inner.shared.lock(), handle) {
            return result;
        }
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.inner.shared.lock();
                if let Poll::Ready(result) = poll(&mut state, handle) {
                    return result;
                }
            }
            notified.await;
        }
    }

    /// Wakes the driver: there is something to send.
    pub(super) fn wake_driver(&self) {
        self.inner.shared.wake_driver.notify_one();
    }

    /// Runs `action` on the engine under the lock, then wakes the driver.
    pub(super) fn with_engine<T>(
        &self,
        action: impl FnOnce(&mut State, ConnectionHandle) -> T,
    ) -> T {
        let result = action(&mut self.inner.shared.lock(), self.inner.handle);
        self.inner.shared.wake_driver.notify_one();
        result
    }

    /// Queues `data` if the send buffer has room now; `Pending` if not.
    pub(super) fn try_queue(
        &self,
        state: &mut State,
        lane: Lane,
        channel: u32,
        data: &Bytes,
    ) -> Poll<Result<(), Error>> {
        let handle = self.inner.handle;
        if let Some(error) = state.ended(handle, self.inner.peer) {
            return Poll::Ready(Err(error));
        }
        let Some(connection) = state.engine.connection(handle) else {
            return Poll::Ready(Err(Error::EndpointClosed(None)));
        };
        if !connection.can_send(data.len() as u64) {
            return Poll::Pending;
        }
        match state.engine.send(handle, lane, channel, data.clone()) {
            Ok(()) => {
                self.inner.shared.wake_driver.notify_one();
                Poll::Ready(Ok(()))
            }
            Err(SendError::Full) => Poll::Pending,
            Err(source) => Poll::Ready(Err(Error::Send {
                peer: self.inner.peer,
                source,
            })),
        }
    }

    /// Sends a message with `delivery` on `channel`, waiting while the send
    /// buffer is full (the peer's window or the congestion window holds
    /// data back).
    pub async fn send(&self, delivery: Delivery, channel: u32, data: Bytes) -> Result<(), Error> {
        let lane = Lane::from(delivery);
        self.wait_for(|state, _| self.try_queue(state, lane, channel, &data))
            .await
    }

    /// Sends without waiting: a full send buffer is [`SendError::Full`].
    pub fn try_send(&self, delivery: Delivery, channel: u32, data: Bytes) -> Result<(), Error> {
        let mut state = self.inner.shared.lock();
        match self.try_queue(&mut state, Lane::from(delivery), channel, &data) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(Error::Send {
                peer: self.inner.peer,
                source: SendError::Full,
            }),
        }
    }

    /// Waits for the next message on any of the application's lanes (RPC
    /// envelopes on the session lane go to the connection's session).
    /// After the connection ends, messages that arrived before its end are
    /// still returned; then the reason.
    pub async fn recv(&self) -> Result<Message, Error> {
        self.wait_for(|state, handle| {
            if let Some(message) = state.engine.recv(handle) {
                if message.lane.is_reliable()
                    && state.engine.release(handle, message.data.len() as u64)
                {
                    // A window update is due: the driver sends it.
                    self.inner.shared.wake_driver.notify_one();
                }
                return Poll::Ready(Ok(message));
            }
            match state.ended(handle, self.inner.peer) {
                Some(error) => Poll::Ready(Err(error)),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Waits for messages, like [`recv`](Self::recv), then moves up to
    /// `max` of those waiting into `out` under one lock (their flow-control
    /// credit goes back as they are taken). Returns how many it moved, at
    /// least one; after the connection ends, the reason once none is left.
    /// For a reader that takes every message as it comes: one lock and one
    /// engine update per batch rather than per message.
    pub async fn recv_many(&self, out: &mut VecDeque<Message>, max: usize) -> Result<usize, Error> {
        let max = max.max(1);
        self.wait_for(|state, handle| {
            let before = out.len();
            if state.engine.recv_many(handle, out, max) {
                // A window update is due: the driver sends it.
                self.inner.shared.wake_driver.notify_one();
            }
            if out.len() > before {
                return Poll::Ready(Ok(out.len() - before));
            }
            match state.ended(handle, self.inner.peer) {
                Some(error) => Poll::Ready(Err(error)),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// The largest message the peer accepts (its limit, learnt in the
    /// handshake, or this side's if lower).
    pub fn max_message(&self) -> u64 {
        let state = self.inner.shared.lock();
        state
            .engine
            .connection(self.inner.handle)
            .map_or(0, |connection| connection.max_message())
    }

    /// Sets the priority of `channel` for the messages sent on it from now
    /// on: higher goes first (default 0), so give game state a higher
    /// priority than a file transfer on the same connection and it is
    /// never stuck behind the transfer's backlog. Applies to every lane's
    /// messages on that channel number.
    pub fn set_priority(&self, channel: u32, priority: i32) {
        let mut state = self.inner.shared.lock();
        state
            .engine
            .set_priority(self.inner.handle, channel, priority);
    }

    /// Closes gracefully: what was queued is delivered and acknowledged
    /// first (within the idle timeout), then the peer is told `code` and
    /// `reason`.
    pub fn close(&self, code: u64, reason: &str) {
        self.with_engine(|state, handle| {
            let now = Instant::now().into_std();
            state.engine.close(handle, now, code, reason);
        });
    }

    /// Closes at once, dropping whatever is queued.
    pub fn abort(&self, code: u64, reason: &str) {
        self.with_engine(|state, handle| {
            let now = Instant::now().into_std();
            state.engine.abort(handle, now, code, reason);
        });
    }

    /// Waits for the connection to end and says why.
    pub async fn closed(&self) -> CloseReason {
        let result = self
            .wait_for(|state, handle| match state.ended(handle, self.inner.peer) {
                Some(Error::Closed { reason, .. }) => Poll::Ready(Ok(reason)),
                Some(error) => Poll::Ready(Ok(CloseReason::Local {
                    code: CLOSE_NORMAL,
                    reason: error.to_string(),
                })),
                None => Poll::Pending,
            })
            .await;
        result.unwrap_or_else(|error: Error| CloseReason::Local {
            code: CLOSE_NORMAL,
            reason: error.to_string(),
        })
    }

    /// Counters and estimates; `None` once the endpoint forgot the
    /// connection.
    pub fn stats(&self) -> Option<ConnectionStats> {
        let state = self.inner.shared.lock();
        state
            .engine
            .connection(self.inner.handle)
            .map(|c| c.stats())
    }
}
