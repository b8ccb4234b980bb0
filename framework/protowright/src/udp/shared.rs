//! What an endpoint's driver task and the application's handles share: the
//! protocol engine behind one lock, each connection's phase as the
//! application sees it, and the endpoint's own lifecycle.
//!
//! ```text
//! endpoint:    Running ──shutdown()──> ShuttingDown ──last connection gone──> Stopped
//!                 └──────────── the socket failed ─────────────────────────────┘
//! connection:  Connecting ──Connected event──> Connected ──Closed event──> Closed(reason)
//!                  └───────────── refused, timed out ──────────────────────────┘
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::Error;
use super::proto::{CLOSE_NORMAL, CloseReason, ConnectionHandle, Endpoint as Engine, Event, Side};

/// The close code of a connection to a peer whose address refused our
/// datagrams (nothing listens there).
pub(crate) const CLOSE_REFUSED: u64 = 3;

/// The close code of a connection a server turned away after its handshake
/// (at its connection limit): an error for the peer, not a clean end.
pub(crate) const CLOSE_TURNED_AWAY: u64 = 4;

/// The close code of a connection whose session failed (the peer broke the
/// session protocol, or stopped taking what was sent): the reason says how.
pub(crate) const CLOSE_SESSION_FAILED: u64 = 5;

/// What an endpoint's handles and its driver share.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes the driver: something was queued, released or closed.
    pub(crate) wake_driver: Notify,
    /// Wakes `accept`.
    pub(crate) incoming: Notify,
}

/// Where the endpoint is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Life {
    Running,
    /// Accepting stopped; connections are closing gracefully.
    ShuttingDown,
    /// The driver stopped; `failure` says why, if the socket failed.
    Stopped {
        failure: Option<String>,
    },
}

/// Where one connection stands, as the application sees it.
#[derive(Debug, Clone)]
enum Phase {
    Connecting,
    Connected,
    Closed(CloseReason),
}

/// One connection as the application sees it.
#[derive(Debug)]
struct Entry {
    phase: Phase,
    /// Wakes whoever waits on this connection: a message arrived, room
    /// opened, the phase changed.
    notify: Arc<Notify>,
}

/// The state behind the lock.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) engine: Engine,
    entries: BTreeMap<ConnectionHandle, Entry>,
    /// Accepted connections not yet taken by `accept`.
    accept_queue: VecDeque<ConnectionHandle>,
    life: Life,
    /// The one peer a client endpoint's socket is restricted to, whose
    /// refusals the socket reports.
    pub(crate) connected_peer: Option<SocketAddr>,
}

impl Shared {
    pub(crate) fn new(engine: Engine) -> Self {
        Self {
            state: Mutex::new(State {
                engine,
                entries: BTreeMap::new(),
                accept_queue: VecDeque::new(),
                life: Life::Running,
                connected_peer: None,
            }),
            wake_driver: Notify::new(),
            incoming: Notify::new(),
        }
    }

    /// Locks the state. A panic while it was held poisons nothing that
    /// matters here: the engine's invariants hold between calls.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stops accepting, closes every connection gracefully with `reason`,
    /// and lets the driver stop once they are gone.
    pub(crate) fn shut_down(&self, reason: &str) {
        let mut state = self.lock();
        if state.life == Life::Running {
            state.life = Life::ShuttingDown;
        }
        state.engine.listen(false);
        let now = Instant::now().into_std();
        let handles: Vec<_> = state.entries.keys().copied().collect();
        for handle in handles {
            state.engine.close(handle, now, CLOSE_NORMAL, reason);
        }
        drop(state);
        self.wake_driver.notify_one();
        self.incoming.notify_waiters();
    }

    /// The driver stopped (`failure`: the socket failed): wakes everyone.
    pub(crate) fn stop(&self, failure: Option<String>) {
        let mut state = self.lock();
        state.life = Life::Stopped { failure };
        for entry in state.entries.values() {
            entry.notify.notify_waiters();
        }
        drop(state);
        self.incoming.notify_waiters();
    }
}

impl State {
    /// Whether the driver should stop: shut down, and nothing left to drain.
    pub(crate) fn is_finished(&self) -> bool {
        self.life == Life::ShuttingDown && self.engine.connection_count() == 0
    }

    /// Why the endpoint can no longer be used, if it cannot.
    pub(crate) fn stopped(&self) -> Option<Error> {
        match &self.life {
            Life::Stopped { failure } => Some(Error::EndpointClosed(failure.clone())),
            _ => None,
        }
    }

    /// Whether `accept` should give up: shut down or stopped.
    pub(crate) fn is_accepting(&self) -> bool {
        self.life == Life::Running
    }

    /// Tracks a connection this side opened; returns what wakes its waiters.
    pub(crate) fn track_connecting(&mut self, handle: ConnectionHandle) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        self.entries.insert(
            handle,
            Entry {
                phase: Phase::Connecting,
                notify: Arc::clone(&notify),
            },
        );
        notify
    }

    /// The next accepted connection not yet taken, with its peer and what
    /// wakes its waiters.
    pub(crate) fn take_accepted(&mut self) -> Option<(ConnectionHandle, SocketAddr, Arc<Notify>)> {
        while let Some(handle) = self.accept_queue.pop_front() {
            let peer = self.engine.connection(handle).map(|c| c.peer());
            let notify = self.entries.get(&handle).map(|e| Arc::clone(&e.notify));
            if let (Some(peer), Some(notify)) = (peer, notify) {
                return Some((handle, peer, notify));
            }
        }
        None
    }

    /// Whether the handshake of `handle` has finished: `Ok(true)` once
    /// connected, `Ok(false)` while connecting, the reason once it failed.
    pub(crate) fn is_connected(&self, handle: ConnectionHandle) -> Result<bool, CloseReason> {
        match self.entries.get(&handle).map(|e| &e.phase) {
            Some(Phase::Connected) => Ok(true),
            Some(Phase::Connecting) => Ok(false),
            Some(Phase::Closed(reason)) => Err(reason.clone()),
            None => Err(CloseReason::Local {
                code: CLOSE_NORMAL,
                reason: "the connection was dropped".into(),
            }),
        }
    }

    /// Why the connection can no longer be used, if it cannot: the endpoint
    /// stopped, the connection closed, or it was forgotten.
    pub(crate) fn ended(&self, handle: ConnectionHandle, peer: SocketAddr) -> Option<Error> {
        if let Some(error) = self.stopped() {
            return Some(error);
        }
        match self.entries.get(&handle).map(|e| &e.phase) {
            Some(Phase::Closed(reason)) => Some(Error::Closed {
                peer,
                reason: reason.clone(),
            }),
            Some(_) => None,
            None => Some(Error::EndpointClosed(None)),
        }
    }

    /// The application let go of `handle`: close it gracefully and let the
    /// engine forget it once it has drained.
    pub(crate) fn release_handle(&mut self, handle: ConnectionHandle, reason: &str) {
        let now = Instant::now().into_std();
        self.engine.close(handle, now, CLOSE_NORMAL, reason);
        self.engine.discard(handle);
        self.entries.remove(&handle);
    }

    /// Hands the engine's lifecycle events to the handles and wakes every
    /// connection the engine touched. Returns whether a connection arrived
    /// for `accept`.
    pub(crate) fn dispatch_events(&mut self) -> bool {
        let mut arrived = false;
        while let Some((handle, event)) = self.engine.poll_event() {
            let side = self.engine.connection(handle).map(|c| c.side());
            match event {
                Event::Connected => {
                    if side == Some(Side::Server) && !self.entries.contains_key(&handle) {
                        self.entries.insert(
                            handle,
                            Entry {
                                phase: Phase::Connected,
                                notify: Arc::new(Notify::new()),
                            },
                        );
                        self.accept_queue.push_back(handle);
                        arrived = true;
                    } else if let Some(entry) = self.entries.get_mut(&handle) {
                        entry.phase = Phase::Connected;
                    }
                }
                Event::Closed(reason) => match self.entries.get_mut(&handle) {
                    Some(entry) => {
                        entry.phase = Phase::Closed(reason);
                        entry.notify.notify_waiters();
                    }
                    // Nobody holds it: let the engine forget it.
                    None => self.engine.discard(handle),
                },
            }
        }
        for handle in self.engine.drain_touched() {
            if let Some(entry) = self.entries.get(&handle) {
                entry.notify.notify_waiters();
            }
        }
        arrived
    }

    /// The socket reported that the peer it is restricted to refused a
    /// datagram (nothing listens at its port): end every connection to it,
    /// so a client fails at once instead of waiting out its handshake.
    pub(crate) fn on_refused(&mut self) {
        let Some(peer) = self.connected_peer else {
            return;
        };
        let now = Instant::now().into_std();
        let reason = "the system refused the datagrams: nothing is listening on that port";
        let handles: Vec<_> = self.entries.keys().copied().collect();
        for handle in handles {
            if self.engine.connection(handle).map(|c| c.peer()) == Some(peer) {
                self.engine.abort(handle, now, CLOSE_REFUSED, reason);
            }
        }
    }
}

/// Keeps an endpoint running while any handle (the endpoint's or a
/// connection's) holds it, and shuts it down when the last one goes.
#[derive(Debug)]
pub(crate) struct Owner {
    pub(crate) shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.shut_down("endpoint dropped");
    }
}
