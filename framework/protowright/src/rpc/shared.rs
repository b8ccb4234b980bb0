//! What a session's task, its handler tasks and its handles share, and the
//! session's lifecycle.
//!
//! ```text
//!            go_away() / peer's GOAWAY
//!   Open ───────────────────────────────> Draining ──┐
//!     │                                      │        │ last call done:
//!     │   shut_down(status): the link        │        │ the session closes
//!     └──────── ended, an error, close() ────┴────────┴──> Closed(status)
//! ```
//!
//! `Open`: calls flow both ways. `Draining`: a GOAWAY was said — by this
//! side (new incoming calls are refused), by the peer (new outgoing calls
//! are refused), or both; calls in flight still complete. `Closed`: every
//! waiting call has failed with the status saying why, and nothing new
//! starts.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::{Notify, watch};

use super::calls::Calls;
use super::inbox::Inbox;
use super::keepalive::Activity;
use super::link::Meter;
use super::outbox::{Outbox, Refused};
use super::serving::Serving;
use super::stats::Counters;
use super::{Code, Config, Stats, Status};
use crate::error::{ConnectionError, SendError};
use crate::v1::Envelope;

/// Where a session is in its life (see the module docs).
#[derive(Debug, Clone)]
enum Lifecycle {
    Open,
    Draining {
        /// This side said GOAWAY: incoming calls are refused.
        local: bool,
        /// The peer said GOAWAY, and why: outgoing calls are refused.
        peer: Option<Status>,
    },
    Closed {
        /// Why: what calls still waiting failed with.
        status: Status,
        /// Whether the link ended cleanly (either side closed it).
        clean: bool,
    },
}

/// [`Lifecycle`]'s variant, readable without the lock on the per-message
/// paths.
const OPEN: u8 = 0;
const DRAINING: u8 = 1;
const CLOSED: u8 = 2;

#[derive(Debug)]
pub(super) struct Shared {
    peer: String,
    config: Config,
    pub(super) outbox: Outbox,
    pub(super) inbox: Inbox,
    pub(super) calls: Calls,
    pub(super) serving: Serving,
    life: Mutex<Lifecycle>,
    phase: AtomicU8,
    /// Whether new outgoing calls may start: open, and the peer has not
    /// said GOAWAY (a lock-free copy of what `life` says).
    accepting: std::sync::atomic::AtomicBool,
    /// Signalled when a call finishes while draining, and on every
    /// lifecycle change.
    changed: Notify,
    /// Turns true when the session has closed.
    ended: watch::Sender<bool>,
    /// How the session ended, once its task has finished.
    outcome: watch::Sender<Option<Result<(), ConnectionError>>>,
    pub(super) activity: Activity,
    pub(super) counters: Counters,
}

impl Shared {
    pub(super) fn new(peer: String, config: Config) -> Self {
        Self {
            outbox: Outbox::new(
                config.outgoing_queue,
                config.outgoing_bytes,
                config.max_frame,
            ),
            inbox: Inbox::new(config.message_queue, config.message_bytes),
            calls: Calls::new(config.max_in_flight),
            serving: Serving::new(config.max_concurrent_requests, config.request_bytes),
            peer,
            config,
            life: Mutex::new(Lifecycle::Open),
            phase: AtomicU8::new(OPEN),
            accepting: std::sync::atomic::AtomicBool::new(true),
            changed: Notify::new(),
            ended: watch::Sender::new(false),
            outcome: watch::Sender::new(None),
            activity: Activity::new(),
            counters: Counters::default(),
        }
    }

    fn life(&self) -> MutexGuard<'_, Lifecycle> {
        self.life.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves to `next`, keeping the lock-free copies in step.
    fn set_life(&self, life: &mut Lifecycle, next: Lifecycle) {
        let (phase, accepting) = match &next {
            Lifecycle::Open => (OPEN, true),
            Lifecycle::Draining { peer, .. } => (DRAINING, peer.is_none()),
            Lifecycle::Closed { .. } => (CLOSED, false),
        };
        *life = next;
        self.phase.store(phase, Ordering::Release);
        self.accepting.store(accepting, Ordering::Release);
        self.changed.notify_one();
    }

    pub(super) fn peer(&self) -> &str {
        &self.peer
    }

    pub(super) fn config(&self) -> &Config {
        &self.config
    }

    /// Where links report what they read.
    pub(super) fn meter(&self) -> Meter<'_> {
        Meter {
            activity: &self.activity,
            counters: &self.counters,
        }
    }

    /// The connection's counters now.
    pub(super) fn stats(&self) -> Stats {
        self.counters
            .snapshot(self.outbox.depth(), self.inbox.len())
    }

    /// Why a call cannot start or complete now that the session is closed
    /// (or, before that, that it ended).
    pub(super) fn unavailable(&self) -> Status {
        match &*self.life() {
            Lifecycle::Closed { status, .. } => status.clone(),
            _ => Status::unavailable(format!("the session with {} ended", self.peer)),
        }
    }

    pub(super) fn is_closed(&self) -> bool {
        self.phase.load(Ordering::Acquire) == CLOSED
    }

    fn is_draining(&self) -> bool {
        self.phase.load(Ordering::Acquire) == DRAINING
    }

    /// Whether new calls can be made: the session is open and the peer has
    /// not said GOAWAY.
    pub(super) fn is_accepting_calls(&self) -> bool {
        self.accepting.load(Ordering::Acquire)
    }

    /// Refuses a new outgoing call when the session is closed or the peer
    /// said GOAWAY.
    pub(super) fn admit_call(&self) -> Result<(), Status> {
        if self.is_accepting_calls() {
            return Ok(());
        }
        match &*self.life() {
            Lifecycle::Closed { status, .. } => Err(status.clone()),
            Lifecycle::Draining {
                peer: Some(status), ..
            } => Err(Status::unavailable(format!(
                "{} takes no new calls on this connection: {}",
                self.peer,
                status.message()
            ))),
            _ => Ok(()),
        }
    }

    /// Refuses a new incoming call when this side said GOAWAY.
    pub(super) fn admit_incoming(&self) -> Result<(), Status> {
        match &*self.life() {
            Lifecycle::Draining { local: true, .. } | Lifecycle::Closed { .. } => {
                Err(Status::unavailable(format!(
                    "the endpoint serving {} is shutting down and takes no new calls",
                    self.peer
                )))
            }
            _ => Ok(()),
        }
    }

    /// Whether calls are in flight either way.
    pub(super) fn is_busy(&self) -> bool {
        !self.calls.is_empty() || !self.serving.is_idle()
    }

    /// Whether a GOAWAY was said either way and no call is left.
    pub(super) fn is_drained(&self) -> bool {
        self.is_draining() && !self.is_busy()
    }

    /// Waits for the next call to finish while draining (or any lifecycle
    /// change).
    pub(super) async fn call_finished(&self) {
        self.changed.notified().await;
    }

    /// A call finished either way: a draining session may now be done.
    pub(super) fn on_call_finished(&self) {
        if self.is_draining() {
            self.changed.notify_one();
        }
    }

    /// This side says GOAWAY: refuse new incoming calls from now on.
    pub(super) fn go_away(&self) {
        let mut life = self.life();
        let next = match &*life {
            Lifecycle::Open => Lifecycle::Draining {
                local: true,
                peer: None,
            },
            Lifecycle::Draining { peer, .. } => Lifecycle::Draining {
                local: true,
                peer: peer.clone(),
            },
            Lifecycle::Closed { .. } => return,
        };
        self.set_life(&mut life, next);
    }

    /// The peer said GOAWAY (`status` says why): refuse new outgoing calls;
    /// let waiting ones finish.
    pub(super) fn on_peer_going_away(&self, status: Status) {
        let mut life = self.life();
        let local = match &*life {
            Lifecycle::Open => false,
            Lifecycle::Draining { local, .. } => *local,
            Lifecycle::Closed { .. } => return,
        };
        let next = Lifecycle::Draining {
            local,
            peer: Some(status),
        };
        self.set_life(&mut life, next);
    }

    /// The status calls still waiting fail with when the link ended
    /// cleanly: the peer's GOAWAY reason if it gave one (so a connection
    /// the peer closed because of this side's oversized message fails the
    /// calls with that reason, not a retryable `UNAVAILABLE`), otherwise
    /// that the connection was closed.
    pub(super) fn clean_close_status(&self) -> Status {
        match &*self.life() {
            Lifecycle::Draining {
                peer: Some(status), ..
            } if status.code() != Code::Unavailable => Status::new(
                status.code(),
                format!("{} closed the connection: {}", self.peer, status.message()),
            ),
            _ => Status::unavailable(format!("the connection with {} was closed", self.peer)),
        }
    }

    /// `Some(true)` once the session has closed cleanly, `Some(false)` once
    /// it has closed with an error, `None` while it is open.
    pub(super) fn ended_cleanly(&self) -> Option<bool> {
        match &*self.life() {
            Lifecycle::Closed { clean, .. } => Some(*clean),
            _ => None,
        }
    }

    /// Why a protocol message was not queued.
    pub(super) fn message_refusal(&self, refused: Refused, message: &'static str) -> SendError {
        let peer = self.peer.clone();
        match refused {
            Refused::Full => SendError::Full { peer },
            Refused::Closed => SendError::Closed {
                peer,
                reason: self.unavailable().message().to_owned(),
            },
            Refused::TooLarge(len) => SendError::TooLarge {
                peer,
                message,
                len,
                max: self.config.max_frame,
            },
        }
    }

    /// Queues an envelope for the writer, waiting while the queue is full.
    ///
    /// Refuses an envelope larger than the frame limit with
    /// `RESOURCE_EXHAUSTED`, so nothing a peer would reject is ever sent.
    pub(super) async fn enqueue(&self, envelope: Envelope) -> Result<(), Status> {
        self.outbox
            .push_wait(&envelope)
            .await
            .map_err(|refused| self.refusal(refused))
    }

    /// Queues an envelope only if there is room now; a full queue is
    /// `RESOURCE_EXHAUSTED`.
    pub(super) fn try_enqueue(&self, envelope: Envelope) -> Result<(), Status> {
        self.outbox
            .push(&envelope)
            .map_err(|refused| self.refusal(refused))
    }

    /// The status for an envelope the outbox refused.
    pub(super) fn refusal(&self, refused: Refused) -> Status {
        match refused {
            Refused::Full => Status::resource_exhausted(format!(
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

    /// Resolves when the session has closed.
    pub(super) async fn ended(&self) {
        let mut ended = self.ended.subscribe();
        let _ = ended.wait_for(|ended| *ended).await;
    }

    /// Records how the session ended (its task has finished).
    pub(super) fn record_outcome(&self, outcome: Result<(), ConnectionError>) {
        if let Err(error) = &outcome {
            tracing::debug!(peer = self.peer, %error, "a session ended with an error");
        }
        self.outcome.send_replace(Some(outcome));
    }

    /// Waits until the session's task has finished, and says how it ended.
    pub(super) async fn outcome(&self) -> Result<(), ConnectionError> {
        let mut outcome = self.outcome.subscribe();
        let ended = outcome.wait_for(Option::is_some).await;
        match ended.as_deref() {
            Ok(Some(result)) => result.clone(),
            _ => Err(ConnectionError::Aborted {
                peer: self.peer.clone(),
            }),
        }
    }

    /// Closes the session: fails every waiting call with `status`, stops
    /// every handler, refuses new calls and messages, and tells the
    /// application's message stream that nothing more will come.
    pub(super) fn shut_down(&self, status: Status, clean: bool) {
        {
            let mut life = self.life();
            if matches!(*life, Lifecycle::Closed { .. }) {
                return;
            }
            let closed = Lifecycle::Closed {
                status: status.clone(),
                clean,
            };
            self.set_life(&mut life, closed);
        }
        self.calls.fail_all(&status);
        self.serving.abort_all();
        self.outbox.close();
        self.inbox.end();
        self.ended.send_replace(true);
    }
}
