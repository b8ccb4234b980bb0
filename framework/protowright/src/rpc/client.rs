//! The handle that makes calls and sends messages on a session.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::outbox::MessageFrame;
use super::shared::Shared;
use super::wire;
use super::{CallOptions, Channel, Stats, Status};
use crate::error::SendError;
use crate::schema::Method;
use crate::v1::{Envelope, Kind};

/// Closes the session when the last handle that keeps it alive is dropped.
#[derive(Debug)]
pub(super) struct Owner {
    pub(super) close: Arc<Notify>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.close.notify_one();
    }
}

/// Makes calls on one session. Cheap to clone; clones share the session and
/// keep it open.
///
/// Implements [`Channel`], so generated clients run over it.
#[derive(Debug, Clone)]
pub struct Client {
    shared: Arc<Shared>,
    owner: Arc<Owner>,
}

impl Client {
    pub(super) fn new(shared: Arc<Shared>, owner: Arc<Owner>) -> Self {
        Self { shared, owner }
    }

    /// Who is on the other end.
    pub fn peer(&self) -> &str {
        self.shared.peer()
    }

    /// Whether the session has ended; calls then fail with `UNAVAILABLE`.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Whether new calls can be made: the session is open and the peer has
    /// not said GOAWAY.
    pub fn is_accepting_calls(&self) -> bool {
        self.shared.is_accepting_calls()
    }

    /// The connection's counters now.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Ends the session now: queued envelopes are written, then the stream
    /// is shut down. Calls still waiting fail with `UNAVAILABLE`.
    pub fn close(&self) {
        self.owner.close.notify_one();
    }

    /// Tells the peer this side takes no new calls (see [`Session::go_away`]).
    ///
    /// [`Session::go_away`]: super::Session::go_away
    pub async fn go_away(&self, status: Status) {
        // Queued before draining starts, so the session cannot close
        // before the GOAWAY saying why is written.
        let _ = self.shared.enqueue(wire::go_away(&status)).await;
        self.shared.go_away();
    }

    /// Like [`go_away`](Self::go_away), but never waits: when the outgoing
    /// queue is full (a peer that stopped reading), the GOAWAY is skipped
    /// and only this side's refusal of new calls takes effect.
    pub(crate) fn try_go_away(&self, status: &Status) {
        let _ = self.shared.try_enqueue(wire::go_away(status));
        self.shared.go_away();
    }

    /// Sends a one-way call to `method`: no response, no retry.
    ///
    /// Returns once the call is queued for writing, waiting while the queue
    /// is full. Fails with `UNAVAILABLE` when the session has ended and
    /// `RESOURCE_EXHAUSTED` when the message exceeds the frame limit.
    /// (Applications send protocol messages with `Connection::send`; this
    /// is the wire's ONE_WAY kind, for peers that use it.)
    pub async fn send(&self, method: &'static Method, request: Bytes) -> Result<(), Status> {
        // A closed session's queue refuses the envelope: no check needed here.
        self.shared.enqueue(wire::one_way(method.id, request)).await
    }

    /// Sends a protocol message (`root`: the protocol root holding a
    /// `message`, `len` its encoded length), waiting while the outgoing
    /// queue is full. The root is encoded straight into the queue.
    pub(crate) async fn send_message<M: prost::Message>(
        &self,
        root: &M,
        len: usize,
        message: &'static str,
    ) -> Result<(), SendError> {
        self.shared
            .outbox
            .push_wait(&MessageFrame::new(root, len))
            .await
            .map_err(|refused| self.shared.message_refusal(refused, message))
    }

    /// Sends a protocol message only if the outgoing queue has room now.
    pub(crate) fn try_send_message<M: prost::Message>(
        &self,
        root: &M,
        len: usize,
        message: &'static str,
    ) -> Result<(), SendError> {
        self.shared
            .outbox
            .push(&MessageFrame::new(root, len))
            .map_err(|refused| self.shared.message_refusal(refused, message))
    }

    /// `Some(true)` once the session has closed cleanly, `Some(false)` once
    /// it has closed with an error, `None` while it is open.
    pub(crate) fn ended_cleanly(&self) -> Option<bool> {
        self.shared.ended_cleanly()
    }

    /// Takes the next protocol message the peer sent, waiting for one.
    /// `None` once the session has ended and every message was taken.
    pub(crate) async fn recv_message(&self) -> Option<Bytes> {
        self.shared.inbox.pop().await
    }

    /// Takes every protocol message waiting, into `batch` (empty), waiting
    /// for one; `false` once the session has ended and every message was
    /// taken.
    pub(crate) async fn recv_messages(
        &self,
        batch: &mut std::collections::VecDeque<Bytes>,
    ) -> bool {
        self.shared.inbox.pop_all(batch).await
    }

    /// Waits until the session has ended, and says why: `Ok(())` when it
    /// ended cleanly (either side closed it).
    pub async fn closed(&self) -> Result<(), crate::ConnectionError> {
        self.shared.outcome().await
    }

    /// Waits until the session has ended, like [`closed`](Self::closed),
    /// without keeping it open: a session closes when its last handle is
    /// dropped, and what this returns is not one.
    pub(crate) fn ended(
        &self,
    ) -> impl Future<Output = Result<(), crate::ConnectionError>> + Send + 'static {
        let shared = Arc::clone(&self.shared);
        async move { shared.outcome().await }
    }

    /// Why the session ended (or, while it is open, that it did not).
    pub(crate) fn end_status(&self) -> Status {
        self.shared.unavailable()
    }

    /// Measures one round trip to the peer's session (a PING answered by a
    /// PONG), waiting at most the session's default timeout.
    pub async fn ping(&self) -> Result<Duration, Status> {
        let started = Instant::now();
        let exchange = self.exchange(Kind::Ping, 0, Bytes::new(), None);
        self.within(self.shared.config().default_timeout, "a ping", exchange)
            .await?;
        Ok(started.elapsed())
    }

    async fn within(
        &self,
        timeout: Option<Duration>,
        what: &str,
        exchange: impl Future<Output = Result<Bytes, Status>>,
    ) -> Result<Bytes, Status> {
        let Some(limit) = timeout else {
            return exchange.await;
        };
        tokio::time::timeout(limit, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(Status::deadline_exceeded(format!(
                    "{what} got no response from {} within {limit:?}",
                    self.peer()
                )))
            })
    }

    /// Sends one envelope that expects an answer, and waits for the answer.
    async fn exchange(
        &self,
        kind: Kind,
        method: u32,
        body: Bytes,
        timeout: Option<Duration>,
    ) -> Result<Bytes, Status> {
        self.shared.admit_call()?;
        let _slot = self
            .shared
            .calls
            .acquire_slot()
            .await
            .ok_or_else(|| self.shared.unavailable())?;
        // The session may have closed while this call waited for a slot.
        self.shared.admit_call()?;
        let (call_id, reply) = self
            .shared
            .calls
            .register()
            .ok_or_else(|| self.shared.unavailable())?;
        let mut outstanding = Outstanding {
            shared: &self.shared,
            call_id,
            cancel_on_drop: kind == Kind::Request,
        };
        let envelope = Envelope {
            kind: kind as i32,
            call_id,
            method,
            body,
            timeout_micros: timeout.map_or(0, |limit| {
                u64::try_from(limit.as_micros().max(1)).unwrap_or(u64::MAX)
            }),
            ..Envelope::default()
        };
        if let Err(refused) = self.shared.enqueue(envelope).await {
            outstanding.cancel_on_drop = false;
            return Err(refused);
        }
        let answer = reply.await.map_err(|_| self.shared.unavailable());
        outstanding.cancel_on_drop = false;
        answer?
    }
}

impl Channel for Client {
    async fn call(
        &self,
        method: &'static Method,
        request: Bytes,
        options: CallOptions,
    ) -> Result<Bytes, Status> {
        let timeout = options.timeout.or(self.shared.config().default_timeout);
        let exchange = self.exchange(Kind::Request, method.id, request, timeout);
        self.within(timeout, method.path, exchange).await
    }
}

/// A call awaiting its answer. If the caller stops waiting (deadline, or the
/// future was dropped), the call is forgotten and the peer told to stop.
struct Outstanding<'a> {
    shared: &'a Shared,
    call_id: u64,
    cancel_on_drop: bool,
}

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        let was_waiting = self.shared.calls.forget(self.call_id);
        self.shared.on_call_finished();
        if was_waiting && self.cancel_on_drop && !self.shared.is_closed() {
            // Best effort: if the queue is full the callee's own deadline
            // still stops the work.
            let _ = self
                .shared
                .try_enqueue(wire::control(Kind::Cancel, self.call_id));
        }
    }
}
