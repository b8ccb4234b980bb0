//! A client that keeps one connection to a server alive.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::backoff::Schedule;
use super::retry::Budget;
use super::{ClientConfig, Error};
use crate::net::{Net, Stream};
use crate::rpc::{self, CallOptions, Channel, Code, NoService, Service, Session, Status};
use crate::schema::Method;

/// Where a [`Client`]'s connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Opening the connection; `attempt` counts from 1 since the last success.
    Connecting {
        /// Which attempt this is.
        attempt: u32,
    },
    /// Connected; calls go straight through.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStats {
    /// Where the connection stands.
    pub state: ConnectionState,
    /// Connections opened after the first one.
    pub reconnects: u64,
    /// The current connection's counters, when connected.
    pub connection: Option<rpc::Stats>,
}

/// Calls a server over one TCP connection that it keeps alive.
///
/// The connection is opened in the background and reopened whenever it is
/// lost, with exponential backoff and full jitter. A call made while
/// disconnected waits for the connection up to its deadline, then fails with
/// `UNAVAILABLE`. A call to an idempotent method that fails with
/// `UNAVAILABLE` is retried within the retry budget; other calls are never
/// retried. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    server: SocketAddr,
    config: ClientConfig,
    /// The live session's client, when connected.
    session: watch::Sender<Option<rpc::Client>>,
    state: watch::Sender<ConnectionState>,
    reconnects: AtomicU64,
    budget: Budget,
    close: Notify,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.inner.server)
            .field("state", &*self.inner.state.borrow())
            .finish()
    }
}

impl Client {
    /// Starts connecting to `server` and returns at once; calls wait for
    /// the connection. Must be called inside a tokio runtime.
    pub fn connect<N: Net>(
        net: N,
        server: SocketAddr,
        config: ClientConfig,
    ) -> Result<Self, Error> {
        Self::connect_serving(net, server, NoService, config)
    }

    /// Like [`connect`](Self::connect), and also serves calls the server
    /// makes back on the same connection with `service`.
    pub fn connect_serving<N: Net, S: Service>(
        net: N,
        server: SocketAddr,
        service: S,
        config: ClientConfig,
    ) -> Result<Self, Error> {
        config.validate()?;
        let inner = Arc::new(Inner {
            server,
            budget: Budget::new(config.retry),
            config,
            session: watch::Sender::new(None),
            state: watch::Sender::new(ConnectionState::Connecting { attempt: 1 }),
            reconnects: AtomicU64::new(0),
            close: Notify::new(),
        });
        tokio::spawn(supervise(net, Arc::clone(&inner), Arc::new(service)));
        Ok(Self { inner })
    }

    /// The server this client talks to.
    pub fn server(&self) -> SocketAddr {
        self.inner.server
    }

    /// Where the connection stands now.
    pub fn state(&self) -> ConnectionState {
        self.inner.state.borrow().clone()
    }

    /// Changes of [`state`](Self::state), as a watch channel.
    pub fn watch_state(&self) -> watch::Receiver<ConnectionState> {
        self.inner.state.subscribe()
    }

    /// The client's counters now.
    pub fn stats(&self) -> ClientStats {
        ClientStats {
            state: self.state(),
            reconnects: self.inner.reconnects.load(Ordering::Relaxed),
            connection: self.inner.session.borrow().as_ref().map(rpc::Client::stats),
        }
    }

    /// Stops reconnecting and closes the connection. Waiting calls fail
    /// with `UNAVAILABLE`.
    pub fn close(&self) {
        self.inner.close.notify_one();
    }

    /// Sends a one-way call to `method`: no response, never retried. Waits
    /// while disconnected (up to the default timeout) or while the outgoing
    /// queue is full.
    pub async fn send(&self, method: &'static Method, request: Bytes) -> Result<(), Status> {
        // The common case: connected, with room in the queue. Nothing is
        // cloned, no clock is read, nothing waits.
        let request = {
            let session = self.inner.session.borrow();
            match session.as_ref().filter(|s| s.is_accepting_calls()) {
                Some(session) => match session.offer(method, request) {
                    Ok(()) => return Ok(()),
                    Err(rpc::Offer::Failed(status)) => return Err(status),
                    Err(rpc::Offer::Full(request)) => request,
                },
                None => request,
            }
        };
        let timeout = self.inner.config.session.default_timeout;
        let session = self.inner.connected(deadline_after(timeout)).await?;
        session.send(method, request).await
    }

    /// Like [`send`](Self::send) but never waits: fails at once with
    /// `UNAVAILABLE` when disconnected, `RESOURCE_EXHAUSTED` when the queue
    /// is full.
    pub fn try_send(&self, method: &'static Method, request: Bytes) -> Result<(), Status> {
        let session = self.inner.session.borrow().clone();
        match session {
            Some(session) => session.try_send(method, request),
            None => Err(self.inner.not_connected()),
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
            let session = self.inner.connected(deadline).await?;
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let outcome = session
                .call(method, request.clone(), CallOptions { timeout: remaining })
                .await;
            match outcome {
                Ok(response) => {
                    self.inner.budget.on_success();
                    return Ok(response);
                }
                Err(status) if status.code() == Code::DeadlineExceeded => {
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
    /// The live session, if it accepts calls: the common case, without
    /// waiting or subscribing to anything.
    fn current(&self) -> Option<rpc::Client> {
        self.session
            .borrow()
            .as_ref()
            .filter(|s| s.is_accepting_calls())
            .cloned()
    }

    /// Waits until a session accepting calls is up, or `deadline` passes.
    async fn connected(&self, deadline: Option<Instant>) -> Result<rpc::Client, Status> {
        if let Some(session) = self.current() {
            return Ok(session);
        }
        let mut sessions = self.session.subscribe();
        let mut states = self.state.subscribe();
        loop {
            if let Some(session) = sessions.borrow_and_update().as_ref() {
                if session.is_accepting_calls() {
                    return Ok(session.clone());
                }
            }
            if let ConnectionState::GaveUp { .. } | ConnectionState::Closed =
                &*states.borrow_and_update()
            {
                return Err(self.not_connected());
            }
            let change = async {
                tokio::select! {
                    biased;
                    _ = sessions.changed() => {}
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

/// Opens the connection, and reopens it whenever it is lost, until the
/// backoff policy gives up or the client is closed.
async fn supervise<N: Net, S: Service>(net: N, inner: Arc<Inner>, service: Arc<S>) {
    let mut schedule = Schedule::new(inner.config.backoff, inner.config.seed());
    let mut connected_before = false;
    loop {
        inner.state.send_replace(ConnectionState::Connecting {
            attempt: schedule.failures() + 1,
        });
        let last_error = match open(&net, &inner).await {
            Ok(stream) => {
                if connected_before {
                    inner.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                connected_before = true;
                schedule.reset();
                match serve(stream, &inner, &service).await {
                    Some(lost) => lost,
                    None => {
                        inner.state.send_replace(ConnectionState::Closed);
                        return;
                    }
                }
            }
            Err(error) => error,
        };
        let Some(delay) = schedule.next_delay(Instant::now()) else {
            tracing::warn!(server = %inner.server, %last_error, "giving up on connecting");
            inner
                .state
                .send_replace(ConnectionState::GaveUp { last_error });
            return;
        };
        inner.state.send_replace(ConnectionState::Waiting {
            retry_in: delay,
            last_error,
        });
        tokio::select! {
            biased;
            () = inner.close.notified() => {
                inner.state.send_replace(ConnectionState::Closed);
                return;
            }
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// One connection attempt, within the connect timeout.
async fn open<N: Net>(net: &N, inner: &Inner) -> Result<N::Stream, String> {
    let server = inner.server;
    let limit = inner.config.connect_timeout;
    match tokio::time::timeout(limit, net.connect(server)).await {
        Ok(Ok(stream)) => {
            if let Err(error) = stream.set_nodelay(inner.config.nodelay) {
                tracing::debug!(%server, %error, "could not set TCP_NODELAY");
            }
            Ok(stream)
        }
        Ok(Err(error)) => Err(format!("connecting to {server} failed: {error}")),
        Err(_) => Err(format!("connecting to {server} timed out after {limit:?}")),
    }
}

/// Runs a session on `stream` until it ends. Returns why it was lost, or
/// `None` when the client was closed.
async fn serve<St: Stream, S: Service>(
    stream: St,
    inner: &Inner,
    service: &Arc<S>,
) -> Option<String> {
    let session = Session::spawn(
        stream,
        inner.server.to_string(),
        Arc::clone(service),
        inner.config.session.clone(),
    );
    let client = session.client();
    inner.session.send_replace(Some(client.clone()));
    inner.state.send_replace(ConnectionState::Connected);
    let outcome = tokio::select! {
        biased;
        () = inner.close.notified() => None,
        closed = session.closed() => Some(closed),
    };
    inner.session.send_replace(None);
    match outcome {
        None => {
            client.close();
            None
        }
        Some(Ok(())) => Some(format!("the connection to {} was closed", inner.server)),
        Some(Err(error)) => Some(error.to_string()),
    }
}

/// When a wait of `timeout` from now ends; `None` for no timeout, or one too
/// long to represent (which is the same in practice).
fn deadline_after(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}
