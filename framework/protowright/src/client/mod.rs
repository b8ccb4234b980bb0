//! A client that keeps one connection to a server alive, on either
//! transport.
//!
//! [`Client::connect`] makes the first connection and fails fast when it
//! cannot (a wrong port, no server), saying so. After that the client
//! reconnects by itself whenever the connection is lost, with exponential
//! backoff and full jitter, retries idempotent calls within a budget, and
//! offers the same operations as a [`Connection`]: typed messages both
//! ways and calls through generated clients.

mod backoff;
mod config;
mod dial;
mod retry;
mod supervisor;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

pub use backoff::Backoff;
use backoff::Schedule;
pub use config::ClientConfig;
use dial::Dialer;
use retry::Budget;
pub use retry::RetryPolicy;

use crate::connection::{Connection, ConnectionStats};
use crate::error::{Error, RecvError, SendError};
use crate::net::Net;
use crate::rpc::{CallOptions, Channel, Code, NoService, Service, Status};
use crate::schema::{Method, Outgoing, Protocol};
use crate::transport::Transport;

/// Where a [`Client`]'s connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Opening the connection; `attempt` counts from 1 since the last success.
    Connecting {
        /// Which attempt this is.
        attempt: u32,
    },
    /// Connected; calls and messages go straight through.
    Connected,
    /// Waiting before the next attempt.
    Waiting {
        /// How long until the next attempt.
        retry_in: Duration,
        /// Why the last attempt or connection failed.
        last_error: String,
    },
    /// The backoff policy's cap was reached: no more attempts. Calls fail
    /// with `UNAVAILABLE`.
    GaveUp {
        /// Why the last attempt failed.
        last_error: String,
    },
    /// [`Client::close`] was called.
    Closed,
}

/// A client's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientStats {
    /// Where the connection stands.
    pub state: ConnectionState,
    /// Connections opened after the first one.
    pub reconnects: u64,
    /// Connection attempts made, successful or not, the first included.
    pub attempts: u64,
    /// The current connection's counters, when connected.
    pub connection: Option<ConnectionStats>,
}

/// Keeps one connection to a server alive and talks over it, on either
/// transport. Cheap to clone; clones share the connection.
///
/// A call made while disconnected waits for the connection up to its
/// deadline, then fails with `UNAVAILABLE`. A call to an idempotent method
/// that fails with `UNAVAILABLE` before the server answered is retried
/// within the retry budget; other calls are never retried. Messages sent
/// while disconnected wait for the connection up to the session's default
/// timeout. Messages in flight when a connection is lost may be lost with
/// it: a protocol that must survive reconnects says so at the application
/// level (see [`watch_state`](Self::watch_state) to learn of reconnects).
///
/// Dropping the last clone closes the client, as [`close`](Self::close)
/// does.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// Shared by the clones only (the supervising task holds `inner`), so
    /// the client closes when the application drops its last clone.
    _owner: Arc<Owner>,
}

/// Closes the client when dropped.
struct Owner(Arc<Inner>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.close.notify_one();
    }
}

/// The connection [`Client::recv`] reads from: kept until it has handed
/// over every message it received, even after a newer one is up.
#[derive(Default)]
struct Reading {
    current: Option<Connection>,
    /// The last connection read to its end, so it is not read again.
    finished: Option<Connection>,
}

struct Inner {
    server: SocketAddr,
    transport: Transport,
    config: ClientConfig,
    /// The live connection, when connected.
    connection: watch::Sender<Option<Connection>>,
    state: watch::Sender<ConnectionState>,
    reconnects: AtomicU64,
    attempts: AtomicU64,
    budget: Budget,
    close: Notify,
    reading: Mutex<Reading>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.inner.server)
            .field("transport", &self.inner.transport)
            .field("state", &*self.inner.state.borrow())
            .finish()
    }
}

impl Client {
    /// Connects to `server` over `transport` and keeps the connection
    /// alive from then on. Fails fast, with [`Error::Connect`], when the
    /// first connection cannot be made within the connect timeout: nothing
    /// listens there (the error asks whether a server does), or the server
    /// refused it (at its connection limit, another schema: the error says
    /// so). Connecting takes one round trip on either transport: reliable
    /// UDP's handshake, or over TCP a ping. Must be called inside a tokio
    /// runtime.
    pub async fn connect<N: Net>(
        net: N,
        transport: Transport,
        server: SocketAddr,
        config: ClientConfig,
    ) -> Result<Self, Error> {
        Self::connect_serving(net, transport, server, NoService, config).await
    }

    /// Like [`connect`](Self::connect), and also serves calls the server
    /// makes back on the connection with `service` (every connection, the
    /// reopened ones too).
    pub async fn connect_serving<N: Net, S: Service>(
        net: N,
        transport: Transport,
        server: SocketAddr,
        service: S,
        config: ClientConfig,
    ) -> Result<Self, Error> {
        config.validate()?;
        let seed = net.random_u64().map_err(|error| Error::Connect {
            addr: server,
            transport,
            reason: format!("no randomness for the reconnect jitter: {error}"),
            unreachable: false,
        })?;
        let dialer = Dialer::new(net, transport, server, &config).await?;
        let service = Arc::new(service);
        let inner = Arc::new(Inner {
            server,
            transport,
            budget: Budget::new(config.retry),
            config,
            connection: watch::Sender::new(None),
            state: watch::Sender::new(ConnectionState::Connecting { attempt: 1 }),
            reconnects: AtomicU64::new(0),
            attempts: AtomicU64::new(1),
            close: Notify::new(),
            reading: Mutex::default(),
        });
        let first = dialer.dial(server, &inner.config, &service).await;
        let first = match first {
            Ok(connection) => connection,
            Err(failure) => {
                dialer.close().await;
                return Err(Error::Connect {
                    addr: server,
                    transport,
                    reason: failure.reason,
                    unreachable: failure.unreachable,
                });
            }
        };
        // Published here, not only by the supervisor's task, so the client
        // is connected (state, `try_send`, stats) as soon as this returns.
        inner.connection.send_replace(Some(first.clone()));
        inner.state.send_replace(ConnectionState::Connected);
        let schedule = Schedule::new(inner.config.backoff, seed);
        tokio::spawn(supervisor::supervise(
            dialer,
            Arc::clone(&inner),
            service,
            first,
            schedule,
        ));
        let owner = Arc::new(Owner(Arc::clone(&inner)));
        Ok(Self {
            inner,
            _owner: owner,
        })
    }

    /// The server this client talks to.
    pub fn server(&self) -> SocketAddr {
        self.inner.server
    }

    /// The transport it talks over.
    pub fn transport(&self) -> Transport {
        self.inner.transport
    }

    /// Where the connection stands now.
    pub fn state(&self) -> ConnectionState {
        self.inner.state.borrow().clone()
    }

    /// Changes of [`state`](Self::state), as a watch channel: a change to
    /// `Connected` after a loss is a reconnect.
    pub fn watch_state(&self) -> watch::Receiver<ConnectionState> {
        self.inner.state.subscribe()
    }

    /// The client's counters now.
    pub fn stats(&self) -> ClientStats {
        ClientStats {
            state: self.state(),
            reconnects: self.inner.reconnects.load(Ordering::Relaxed),
            attempts: self.inner.attempts.load(Ordering::Relaxed),
            connection: self
                .inner
                .connection
                .borrow()
                .as_ref()
                .map(Connection::stats),
        }
    }

    /// Stops reconnecting and closes the connection: what was queued is
    /// sent first. Waiting calls fail with `UNAVAILABLE`. Returns at once;
    /// [`closed`](Self::closed) waits for the close to be done.
    pub fn close(&self) {
        self.inner.close.notify_one();
    }

    /// Waits until the client has stopped: closed (and its connection's
    /// close sent — on reliable UDP, resent across its drain, up to two
    /// seconds — so a process may exit right after), or given up. Call
    /// [`close`](Self::close) first to stop it.
    pub async fn closed(&self) {
        let mut states = self.inner.state.subscribe();
        let _ = states
            .wait_for(|s| matches!(s, ConnectionState::Closed | ConnectionState::GaveUp { .. }))
            .await;
    }

    /// The live connection, waiting for one (while reconnecting) up to the
    /// session's default timeout.
    pub async fn connection(&self) -> Result<Connection, Status> {
        let timeout = self.inner.config.session.default_timeout;
        self.inner.connected(deadline_after(timeout)).await
    }

    /// Sends a protocol message on the live connection (see
    /// [`Connection::send`]), waiting for one while reconnecting.
    pub async fn send<M: Outgoing>(&self, message: M) -> Result<(), SendError> {
        let connection = self
            .connection()
            .await
            .map_err(|status| self.down(status))?;
        connection.send(message).await
    }

    /// Like [`send`](Self::send), but never waits: fails at once when
    /// disconnected or when the queue is full.
    pub fn try_send<M: Outgoing>(&self, message: M) -> Result<(), SendError> {
        match self.inner.current() {
            Some(connection) => connection.try_send(message),
            None => Err(self.down(self.inner.not_connected())),
        }
    }

    /// Waits for the next protocol message from the server (see
    /// [`Connection::recv`]). Every message a connection received is
    /// returned before it counts as lost, even when a newer connection is
    /// already up. When a connection is lost, returns
    /// [`RecvError::Closed`] once, so the application learns of it; the
    /// next call reads from the reconnected one. `Ok(None)` once the
    /// client is closed or has given up reconnecting.
    pub async fn recv<P: Protocol>(&self) -> Result<Option<P>, RecvError> {
        loop {
            let Some(connection) = self.inner.reading().await else {
                return Ok(None);
            };
            match connection.recv().await {
                ended @ (Ok(None) | Err(RecvError::Closed { .. })) => {
                    if !self.inner.finished_reading(&connection) {
                        // Another caller already reported this end.
                        continue;
                    }
                    return match ended {
                        Ok(None) if !self.is_closed() => Err(RecvError::Closed {
                            peer: self.inner.server.to_string(),
                            reason: "the connection was closed; reconnecting".into(),
                        }),
                        other => other,
                    };
                }
                received => return received,
            }
        }
    }

    fn is_closed(&self) -> bool {
        matches!(
            *self.inner.state.borrow(),
            ConnectionState::Closed | ConnectionState::GaveUp { .. }
        )
    }

    fn down(&self, status: Status) -> SendError {
        SendError::Closed {
            peer: self.inner.server.to_string(),
            reason: status.message().to_owned(),
        }
    }
}

impl Channel for Client {
    async fn call(
        &self,
        method: &'static Method,
        request: Bytes,
        options: CallOptions,
    ) -> Result<Bytes, Status> {
        let timeout = options
            .timeout
            .or(self.inner.config.session.default_timeout);
        let deadline = deadline_after(timeout);
        let mut retries = 0;
        loop {
            let connection = self.inner.connected(deadline).await?;
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let outcome = connection
                .call(method, request.clone(), CallOptions { timeout: remaining })
                .await;
            match outcome {
                Ok(response) => {
                    self.inner.budget.on_success();
                    return Ok(response);
                }
                Err(status)
                    if status.code() == Code::DeadlineExceeded && !status.is_from_peer() =>
                {
                    // Name the caller's whole timeout, not the slice left
                    // for this attempt.
                    let waited = timeout.unwrap_or_default();
                    return Err(Status::deadline_exceeded(format!(
                        "{} got no response from {} within {waited:?}",
                        method.path, self.inner.server
                    )));
                }
                Err(status) if self.inner.budget.allow_retry(method, &status, retries) => {
                    tracing::debug!(method = method.path, %status, retries, "retrying an idempotent call");
                    retries += 1;
                }
                Err(status) => return Err(status),
            }
        }
    }
}

impl Inner {
    /// The live connection, if it accepts calls: the common case, without
    /// waiting or subscribing to anything.
    fn current(&self) -> Option<Connection> {
        self.connection
            .borrow()
            .as_ref()
            .filter(|c| c.session().is_accepting_calls())
            .cloned()
    }

    /// Waits until a connection accepting calls is up, or `deadline` passes.
    async fn connected(&self, deadline: Option<Instant>) -> Result<Connection, Status> {
        if let Some(connection) = self.current() {
            return Ok(connection);
        }
        let mut connections = self.connection.subscribe();
        let mut states = self.state.subscribe();
        loop {
            if let Some(connection) = connections.borrow_and_update().as_ref()
                && connection.session().is_accepting_calls()
            {
                return Ok(connection.clone());
            }
            if let ConnectionState::GaveUp { .. } | ConnectionState::Closed =
                &*states.borrow_and_update()
            {
                return Err(self.not_connected());
            }
            let change = async {
                tokio::select! {
                    biased;
                    _ = connections.changed() => {}
                    _ = states.changed() => {}
                }
            };
            match deadline {
                None => change.await,
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline, change).await.is_err() {
                        return Err(self.not_connected());
                    }
                }
            }
        }
    }

    fn lock_reading(&self) -> MutexGuard<'_, Reading> {
        // Never poisoned in practice (no code panics holding it); the state
        // is two handles, consistent either way.
        self.reading.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection [`Client::recv`] reads from: the one it read last,
    /// until that one has ended, then the next one published. `None` once
    /// the client is closed or gave up and no connection is left to read.
    async fn reading(&self) -> Option<Connection> {
        if let Some(connection) = self.lock_reading().current.clone() {
            return Some(connection);
        }
        let mut connections = self.connection.subscribe();
        let mut states = self.state.subscribe();
        loop {
            if let Some(published) = connections.borrow_and_update().as_ref() {
                let mut reading = self.lock_reading();
                let finished = reading.finished.as_ref();
                if !finished.is_some_and(|done| done.same_as(published)) {
                    return Some(reading.current.get_or_insert(published.clone()).clone());
                }
            }
            if let ConnectionState::GaveUp { .. } | ConnectionState::Closed =
                &*states.borrow_and_update()
            {
                return None;
            }
            tokio::select! {
                biased;
                _ = connections.changed() => {}
                _ = states.changed() => {}
            }
        }
    }

    /// Records that `connection` was read to its end. Returns whether this
    /// caller is the first to see that end (and so the one to report it).
    fn finished_reading(&self, connection: &Connection) -> bool {
        let mut reading = self.lock_reading();
        if reading
            .finished
            .as_ref()
            .is_some_and(|done| done.same_as(connection))
        {
            return false;
        }
        if reading
            .current
            .as_ref()
            .is_some_and(|c| c.same_as(connection))
        {
            reading.current = None;
        }
        reading.finished = Some(connection.clone());
        true
    }

    fn not_connected(&self) -> Status {
        let detail = match &*self.state.borrow() {
            ConnectionState::Waiting { last_error, .. }
            | ConnectionState::GaveUp { last_error } => {
                format!(": {last_error}")
            }
            ConnectionState::Closed => ": the client was closed".to_owned(),
            _ => String::new(),
        };
        Status::unavailable(format!("not connected to {}{detail}", self.server))
    }
}

/// When a wait of `timeout` from now ends; `None` for no timeout, or one too
/// long to represent (which is the same in practice).
fn deadline_after(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}
