//! The state a session's task, its handler tasks and its clients share.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot, watch};
use tokio::task::AbortHandle;

use super::keepalive::Activity;
use super::outbox::{Outbox, Refused};
use super::session::response;
use super::stats::Counters;
use super::{Config, Service, Stats, Status};
use crate::codec::FrameError;
use crate::error::ConnectionError;
use crate::v1::{Envelope, Kind};

/// What a waiting caller receives.
pub(super) type Reply = Result<Bytes, Status>;

#[derive(Debug)]
pub(super) struct Shared {
    peer: String,
    config: Config,
    pub(super) outbox: Outbox,
    next_call_id: AtomicU64,
    /// Bounds the caller's calls awaiting a response.
    in_flight: Arc<Semaphore>,
    /// Bounds the handlers running for the peer's calls.
    handler_slots: Arc<Semaphore>,
    calls: Mutex<Calls>,
    /// Handlers of the peer's requests, by call id, so a cancel can stop one.
    serving: Mutex<BTreeMap<u64, AbortHandle>>,
    /// One-way messages queued for or in their handler.
    one_ways_pending: AtomicUsize,
    /// Turns true when the session ends; one-way handlers stop on it.
    ended: watch::Sender<bool>,
    /// Set once either side said GOAWAY: finished calls then signal
    /// `drained`, so the session can close when the last one is done.
    draining: AtomicBool,
    /// This side said GOAWAY: new incoming calls are refused.
    going_away: AtomicBool,
    /// Cleared once the session ended or the peer said GOAWAY: a lock-free
    /// copy of what `calls` says, for the per-message paths.
    accepting: AtomicBool,
    drained: Notify,
    pub(super) activity: Activity,
    pub(super) counters: Counters,
}

/// The caller's calls awaiting a response, and whether new ones may start.
#[derive(Debug, Default)]
struct Calls {
    waiting: BTreeMap<u64, oneshot::Sender<Reply>>,
    /// Set when the session ended: why it did.
    closed: Option<String>,
    /// Set when the peer said GOAWAY: why. New calls are refused.
    peer_going_away: Option<String>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code path panics while holding these locks; if one ever did, the
    // maps are still consistent, so carry on rather than cascade the panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(super) fn new(peer: String, config: Config) -> Self {
        Self {
            outbox: Outbox::new(
                config.outgoing_queue,
                config.outgoing_bytes,
                config.max_frame,
            ),
            peer,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            handler_slots: Arc::new(Semaphore::new(config.max_concurrent_requests.max(1))),
            config,
            next_call_id: AtomicU64::new(1),
            calls: Mutex::default(),
            serving: Mutex::default(),
            one_ways_pending: AtomicUsize::new(0),
            ended: watch::Sender::new(false),
            draining: AtomicBool::new(false),
            going_away: AtomicBool::new(false),
            accepting: AtomicBool::new(true),
            drained: Notify::new(),
            activity: Activity::new(),
            counters: Counters::default(),
        }
    }

    /// The connection's counters now.
    pub(super) fn stats(&self) -> Stats {
        self.counters.snapshot(self.outbox.depth())
    }

    pub(super) fn peer(&self) -> &str {
        &self.peer
    }

    pub(super) fn config(&self) -> &Config {
        &self.config
    }

    pub(super) fn io_error(&self, source: std::io::Error) -> ConnectionError {
        ConnectionError::Io {
            peer: self.peer.clone(),
            source,
        }
    }

    pub(super) fn frame_error(&self, source: FrameError) -> ConnectionError {
        ConnectionError::Frame {
            peer: self.peer.clone(),
            source,
        }
    }

    /// The status of a call that cannot complete because the session ended.
    pub(super) fn unavailable(&self) -> Status {
        let reason = lock(&self.calls).closed.clone();
        Status::unavailable(
            reason.unwrap_or_else(|| format!("the session with {} ended", self.peer)),
        )
    }

    pub(super) fn is_closed(&self) -> bool {
        lock(&self.calls).closed.is_some()
    }

    /// Whether new calls can be made: the session is open and the peer has
    /// not said GOAWAY.
    pub(super) fn is_accepting_calls(&self) -> bool {
        self.accepting.load(Ordering::Acquire)
    }

    /// Whether calls are in flight either way.
    pub(super) fn is_busy(&self) -> bool {
        !lock(&self.calls).waiting.is_empty()
            || !lock(&self.serving).is_empty()
            || self.one_ways_pending.load(Ordering::Relaxed) > 0
    }

    /// Whether a GOAWAY was sent or received and no call is left.
    pub(super) fn is_drained(&self) -> bool {
        self.draining.load(Ordering::Relaxed) && !self.is_busy()
    }

    /// Waits for the next call to finish while draining.
    pub(super) async fn call_finished(&self) {
        self.drained.notified().await;
    }

    fn on_call_finished(&self) {
        if self.draining.load(Ordering::Relaxed) {
            self.drained.notify_one();
        }
    }

    /// The peer said GOAWAY: refuse new calls; let waiting ones finish.
    pub(super) fn on_peer_going_away(&self, reason: String) {
        lock(&self.calls).peer_going_away = Some(reason);
        self.accepting.store(false, Ordering::Release);
        self.draining.store(true, Ordering::Relaxed);
        self.drained.notify_one();
    }

    /// This side says GOAWAY: refuse new incoming calls from now on.
    pub(super) fn go_away(&self) {
        self.going_away.store(true, Ordering::Relaxed);
        self.draining.store(true, Ordering::Relaxed);
        self.drained.notify_one();
    }

    /// Queues an envelope for the writer, waiting while the queue is full.
    ///
    /// Refuses an envelope larger than the frame limit with
    /// `RESOURCE_EXHAUSTED`, so nothing a peer would reject is ever sent.
    pub(super) async fn enqueue(&self, envelope: Envelope) -> Result<(), Status> {
        self.outbox
            .push_wait(envelope)
            .await
            .map_err(|refused| self.refusal(refused))
    }

    /// Queues an envelope only if there is room now; a full queue is
    /// `RESOURCE_EXHAUSTED`.
    pub(super) fn try_enqueue(&self, envelope: Envelope) -> Result<(), Status> {
        self.outbox
            .push(envelope)
            .map_err(|refused| self.refusal(refused))
    }

    /// Queues an envelope if there is room now; hands it back if not.
    pub(super) fn offer(&self, envelope: Envelope) -> Result<(), Refused> {
        self.outbox.push(envelope)
    }

    /// The status for an envelope the outbox refused.
    pub(super) fn refusal(&self, refused: Refused) -> Status {
        match refused {
            Refused::Full(_) => Status::resource_exhausted(format!(
                "the outgoing queue to {} is full ({} envelopes or {} bytes)",
                self.peer, self.config.outgoing_queue, self.config.outgoing_bytes
            )),
            Refused::Closed => self.unavailable(),
            Refused::TooLarge(len) => Status::resource_exhausted(format!(
                "a message of {len} bytes exceeds the frame limit of {} bytes for {}",
                self.config.max_frame, self.peer
            )),
        }
    }

    /// Takes a slot for one more call awaiting a response.
    pub(super) async fn acquire_call_slot(&self) -> Result<OwnedSemaphorePermit, Status> {
        Arc::clone(&self.in_flight)
            .acquire_owned()
            .await
            .map_err(|_| self.unavailable())
    }

    /// Registers a call awaiting a reply; fails once the session has ended.
    pub(super) fn register(&self) -> Result<(u64, oneshot::Receiver<Reply>), Status> {
        let mut calls = lock(&self.calls);
        if let Some(reason) = calls.closed.as_ref().or(calls.peer_going_away.as_ref()) {
            return Err(Status::unavailable(reason.clone()));
        }
        let call_id = self.next_call_id.fetch_add(1, Ordering::Relaxed);
        let (reply, receiver) = oneshot::channel();
        calls.waiting.insert(call_id, reply);
        Ok((call_id, receiver))
    }

    /// Forgets a call whose caller stopped waiting. Returns whether it was
    /// still waiting (and so whether the peer may still be working on it).
    pub(super) fn forget(&self, call_id: u64) -> bool {
        let was_waiting = lock(&self.calls).waiting.remove(&call_id).is_some();
        self.on_call_finished();
        was_waiting
    }

    /// Hands a reply to the caller waiting on `call_id`. A reply nobody waits
    /// for (the caller gave up) is dropped.
    pub(super) fn complete(&self, call_id: u64, reply: Reply) {
        let waiting = lock(&self.calls).waiting.remove(&call_id);
        match waiting {
            Some(caller) => {
                let _ = caller.send(reply);
            }
            None => tracing::trace!(
                peer = self.peer,
                call_id,
                "reply for a call no longer waiting"
            ),
        }
    }

    /// Whether this side said GOAWAY and so takes no new calls.
    pub(super) fn refuses_calls(&self) -> Result<(), Status> {
        if self.going_away.load(Ordering::Relaxed) {
            return Err(Status::unavailable(format!(
                "the endpoint serving {} is shutting down and takes no new calls",
                self.peer
            )));
        }
        Ok(())
    }

    /// Makes finished calls signal [`call_finished`](Self::call_finished).
    pub(super) fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Whether one-way messages are queued for or in their handler.
    pub(super) fn has_one_ways_pending(&self) -> bool {
        self.one_ways_pending.load(Ordering::Relaxed) > 0
    }

    /// `count` one-way messages were queued for their handler.
    pub(super) fn one_ways_queued(&self, count: usize) {
        self.one_ways_pending.fetch_add(count, Ordering::Relaxed);
    }

    /// `count` one-way messages were handled (or dropped).
    pub(super) fn one_ways_done(&self, count: usize) {
        self.one_ways_pending.fetch_sub(count, Ordering::Relaxed);
        self.on_call_finished();
    }

    /// Resolves when the session has ended.
    pub(super) async fn ended(&self) {
        let mut ended = self.ended.subscribe();
        let _ = ended.wait_for(|ended| *ended).await;
    }

    /// Serves a request from the peer.
    ///
    /// The handler runs here, in the reader's pass, and most answer without
    /// waiting; only a handler that waits gets a task of its own (and is
    /// registered so a cancel can stop it). Fails at once, without running
    /// anything, when every handler slot is busy or the call id is already
    /// being served.
    pub(super) async fn serve_request<S: Service>(
        self: &Arc<Self>,
        service: &Arc<S>,
        envelope: Envelope,
    ) -> Result<(), Status> {
        self.refuses_calls()?;
        let slot = Arc::clone(&self.handler_slots)
            .try_acquire_owned()
            .map_err(|_| {
                Status::resource_exhausted(format!(
                    "{} calls are already being served for {}",
                    self.config.max_concurrent_requests, self.peer
                ))
            })?;
        let call_id = envelope.call_id;
        if lock(&self.serving).contains_key(&call_id) {
            return Err(Status::invalid_argument(format!(
                "call id {call_id} is already in use by a call in progress"
            )));
        }
        let timeout =
            (envelope.timeout_micros > 0).then(|| Duration::from_micros(envelope.timeout_micros));
        let handler = Handler {
            shared: Arc::clone(self),
            service: Arc::clone(service),
            call_id,
            method: envelope.method,
            body: envelope.body,
            timeout,
        };
        let mut task = Box::pin(handler.run_request(slot));
        let finished =
            std::future::poll_fn(|cx| Poll::Ready(task.as_mut().poll(cx).is_ready())).await;
        if finished {
            return Ok(());
        }
        let mut serving = lock(&self.serving);
        // The lock is held across the spawn so the handler cannot finish and
        // unregister before it is registered.
        let spawned = tokio::spawn(task);
        serving.insert(call_id, spawned.abort_handle());
        Ok(())
    }

    /// Stops the handler of `call_id`, if it is still running.
    pub(super) fn cancel_serving(&self, call_id: u64) {
        if let Some(task) = lock(&self.serving).remove(&call_id) {
            task.abort();
        }
    }

    fn finish_serving(&self, call_id: u64) {
        lock(&self.serving).remove(&call_id);
        self.on_call_finished();
    }

    /// Ends the session: fails every waiting call with `reason`, stops every
    /// handler, and refuses new calls.
    pub(super) fn shut_down(&self, reason: String) {
        let waiting = {
            let mut calls = lock(&self.calls);
            calls.closed = Some(reason.clone());
            self.accepting.store(false, Ordering::Release);
            std::mem::take(&mut calls.waiting)
        };
        for (_, caller) in waiting {
            let _ = caller.send(Err(Status::unavailable(reason.clone())));
        }
        for (_, task) in std::mem::take(&mut *lock(&self.serving)) {
            task.abort();
        }
        self.in_flight.close();
        self.outbox.close();
        self.ended.send_replace(true);
    }
}

/// One incoming call, run on a task of its own.
struct Handler<S> {
    shared: Arc<Shared>,
    service: Arc<S>,
    call_id: u64,
    method: u32,
    body: Bytes,
    timeout: Option<Duration>,
}

impl<S: Service> Handler<S> {
    async fn outcome(&self) -> Reply {
        let call = self.service.call(self.method, self.body.clone());
        match self.timeout {
            None => call.await,
            Some(limit) => tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
                Err(Status::deadline_exceeded(format!(
                    "the handler did not finish within the caller's {limit:?}"
                )))
            }),
        }
    }

    async fn run_request(self, _slot: OwnedSemaphorePermit) {
        let outcome = self.outcome().await;
        self.shared.finish_serving(self.call_id);
        if let Err(refused) = self.shared.enqueue(response(self.call_id, outcome)).await {
            // Too large to send: tell the caller why instead. (When the
            // session is closing, this fails too and nobody is waiting.)
            let _ = self
                .shared
                .enqueue(response(self.call_id, Err(refused)))
                .await;
        }
    }
}

/// Whether an envelope of this kind is a call's traffic (as opposed to
/// heartbeats and GOAWAY), which keeps the idle timer from firing.
pub(super) fn is_call_traffic(kind: i32) -> bool {
    matches!(
        Kind::try_from(kind),
        Ok(Kind::Request | Kind::Response | Kind::OneWay | Kind::Cancel)
    )
}
