//! State shared between the driver task and the application's handles:
//! the protocol engine behind one lock, and what each side waits on.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use bytes::Bytes;
use tokio::sync::Notify;

use super::proto::{CloseReason, ConnectionHandle, Endpoint as Engine, Lane, Message};

/// What an endpoint's handles and its driver share.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes the driver: something was queued, released or closed.
    pub(crate) wake_driver: Notify,
    /// Wakes `accept`.
    pub(crate) incoming: Notify,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) engine: Engine,
    pub(crate) connections: BTreeMap<ConnectionHandle, ConnectionState>,
    /// Accepted connections not yet taken by `accept`.
    pub(crate) accept_queue: VecDeque<ConnectionHandle>,
    /// Set once the driver stopped; the text says why, if it failed.
    pub(crate) stopped: Option<Option<String>>,
    pub(crate) shutting_down: bool,
}

/// One connection as the application sees it.
#[derive(Debug)]
pub(crate) struct ConnectionState {
    pub(crate) notify: Arc<Notify>,
    /// Wakers of the session stream's reads and writes.
    pub(crate) wakers: Vec<Waker>,
    pub(crate) connected: bool,
    pub(crate) closed: Option<CloseReason>,
    /// Application messages taken out of the engine by a session read.
    pub(crate) messages: VecDeque<Message>,
    /// Session bytes taken out of the engine by an application read.
    pub(crate) session: VecDeque<Bytes>,
}

impl ConnectionState {
    pub(crate) fn new() -> Self {
        Self {
            notify: Arc::new(Notify::new()),
            wakers: Vec::new(),
            connected: false,
            closed: None,
            messages: VecDeque::new(),
            session: VecDeque::new(),
        }
    }

    /// Wakes everyone waiting on this connection.
    pub(crate) fn wake(&mut self) {
        self.notify.notify_waiters();
        for waker in self.wakers.drain(..) {
            waker.wake();
        }
    }
}

impl Shared {
    pub(crate) fn new(engine: Engine) -> Self {
        Self {
            state: Mutex::new(State {
                engine,
                connections: BTreeMap::new(),
                accept_queue: VecDeque::new(),
                stopped: None,
                shutting_down: false,
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
}

impl State {
    /// Moves messages out of the engine into the connection's two inboxes
    /// until the one `want` asks for has something. Flow-control credit is
    /// given back only when the application consumes a message, so the
    /// inboxes stay within the receive window.
    pub(crate) fn route(&mut self, handle: ConnectionHandle, want: Lane) {
        let Some(connection) = self.connections.get_mut(&handle) else {
            return;
        };
        loop {
            let has_wanted = if want == Lane::Session {
                !connection.session.is_empty()
            } else {
                !connection.messages.is_empty()
            };
            if has_wanted {
                return;
            }
            let Some(message) = self.engine.recv(handle) else {
                return;
            };
            if message.lane == Lane::Session {
                connection.session.push_back(message.data);
            } else {
                connection.messages.push_back(message);
            }
        }
    }
}
