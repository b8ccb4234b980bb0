//! Accepting connections and serving calls on each.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use super::{Error, ServerConfig};
use crate::codec::Delimited;
use crate::net::{Listener, Net, Stream};
use crate::rpc::{self, Service, Session, Status};
use crate::v1::{Envelope, Kind};

/// A TCP server: accepts connections and serves calls on each with one
/// service.
///
/// Call [`run`](Self::run) to serve; it returns after
/// [`ServerHandle::shutdown`] has stopped the server gracefully.
pub struct Server<N: Net, S> {
    listener: N::Listener,
    local_addr: SocketAddr,
    service: Arc<S>,
    config: ServerConfig,
    shared: Arc<Shared>,
}

/// Controls and observes a running [`Server`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

/// A server's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections being served now.
    pub connections: usize,
    /// Connections accepted and served since the start.
    pub accepted: u64,
    /// Connections refused because the server was at its limit.
    pub refused: u64,
}

#[derive(Debug)]
struct Shared {
    /// Each live connection's client handle, by connection number.
    connections: Mutex<BTreeMap<u64, rpc::Client>>,
    /// How many connections are live; watched while draining.
    live: watch::Sender<usize>,
    next_connection: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    /// Turns true when shutdown is asked for.
    stop: watch::Sender<bool>,
    /// Turns true when `run` has finished.
    finished: watch::Sender<bool>,
}

impl<N: Net, S: Service> Server<N, S> {
    /// Binds `addr` on `net` and prepares to serve `service` there.
    pub async fn bind(
        net: N,
        addr: SocketAddr,
        service: S,
        config: ServerConfig,
    ) -> Result<Self, Error> {
        config.validate()?;
        let listener = net
            .listen(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        Ok(Self {
            listener,
            local_addr,
            service: Arc::new(service),
            config,
            shared: Arc::new(Shared {
                connections: Mutex::default(),
                live: watch::Sender::new(0),
                next_connection: AtomicU64::new(0),
                accepted: AtomicU64::new(0),
                refused: AtomicU64::new(0),
                stop: watch::Sender::new(false),
                finished: watch::Sender::new(false),
            }),
        })
    }

    /// The address the server listens on (with the port the system chose,
    /// when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle to stop and observe the server.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Accepts and serves connections until shutdown is asked for, then
    /// shuts down gracefully: stops accepting, tells every connection
    /// GOAWAY, lets calls in flight finish for up to the shutdown timeout,
    /// then closes whatever is left.
    pub async fn run(self) {
        let mut stop = self.shared.stop.subscribe();
        loop {
            let accepted = tokio::select! {
                biased;
                _ = stop.wait_for(|stop| *stop) => break,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => self.admit(stream, peer),
                Err(error) => {
                    // Typically out of file descriptors: pause rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        drop(self.listener);
        self.shared.drain(self.config.shutdown_timeout).await;
        self.shared.finished.send_replace(true);
    }

    fn admit(&self, stream: N::Stream, peer: SocketAddr) {
        if self.shared.live_count() >= self.config.max_connections {
            self.shared.refused.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(refuse(stream, peer, self.config.max_connections));
            return;
        }
        if let Err(error) = stream.set_nodelay(self.config.nodelay) {
            tracing::debug!(%peer, %error, "could not set TCP_NODELAY");
        }
        self.shared.accepted.fetch_add(1, Ordering::Relaxed);
        let session = Session::spawn(
            stream,
            peer.to_string(),
            Arc::clone(&self.service),
            self.config.session.clone(),
        );
        let number = self.shared.next_connection.fetch_add(1, Ordering::Relaxed);
        self.shared.insert(number, session.client());
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            if let Err(error) = session.closed().await {
                tracing::debug!(%error, "a connection ended with an error");
            }
            shared.remove(number);
        });
    }
}

/// Tells a connection over the limit why it is refused, then closes it.
async fn refuse<St: Stream>(mut stream: St, peer: SocketAddr, limit: usize) {
    let goaway = Envelope {
        kind: Kind::Goaway as i32,
        status: Some(
            Status::resource_exhausted(format!(
                "the server is at its limit of {limit} connections; try again later"
            ))
            .to_wire(),
        ),
        ..Envelope::default()
    };
    let mut frame = BytesMut::new();
    if Delimited::default().encode(&goaway, &mut frame).is_err() {
        return;
    }
    let farewell = async {
        stream.write_all(&frame).await?;
        stream.shutdown().await
    };
    if let Ok(Err(error)) = tokio::time::timeout(Duration::from_secs(1), farewell).await {
        tracing::debug!(%peer, %error, "could not tell a refused connection why");
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, rpc::Client>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn live_count(&self) -> usize {
        self.lock().len()
    }

    fn insert(&self, number: u64, client: rpc::Client) {
        let mut connections = self.lock();
        connections.insert(number, client);
        self.live.send_replace(connections.len());
    }

    fn remove(&self, number: u64) {
        let mut connections = self.lock();
        connections.remove(&number);
        self.live.send_replace(connections.len());
    }

    /// Says GOAWAY on every connection, waits up to `timeout` for them to
    /// drain and close, then closes the rest.
    async fn drain(&self, timeout: Duration) {
        let connections: Vec<rpc::Client> = self.lock().values().cloned().collect();
        for connection in &connections {
            connection
                .go_away(Status::unavailable("the server is shutting down"))
                .await;
        }
        drop(connections);
        let mut live = self.live.subscribe();
        if tokio::time::timeout(timeout, live.wait_for(|n| *n == 0))
            .await
            .is_ok()
        {
            return;
        }
        let stragglers: Vec<rpc::Client> = self.lock().values().cloned().collect();
        tracing::warn!(
            connections = stragglers.len(),
            ?timeout,
            "closing connections whose calls did not finish in time"
        );
        for connection in &stragglers {
            connection.close();
        }
        drop(stragglers);
        let _ = tokio::time::timeout(Duration::from_secs(1), live.wait_for(|n| *n == 0)).await;
    }
}

impl ServerHandle {
    /// Stops the server gracefully (see [`Server::run`]) and waits until it
    /// has finished.
    pub async fn shutdown(&self) {
        self.shared.stop.send_replace(true);
        let mut finished = self.shared.finished.subscribe();
        let _ = finished.wait_for(|finished| *finished).await;
    }

    /// The server's counters now.
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            connections: self.shared.live_count(),
            accepted: self.shared.accepted.load(Ordering::Relaxed),
            refused: self.shared.refused.load(Ordering::Relaxed),
        }
    }

    /// The counters of each live connection, by peer.
    pub fn connections(&self) -> Vec<(String, rpc::Stats)> {
        self.shared
            .lock()
            .values()
            .map(|client| (client.peer().to_owned(), client.stats()))
            .collect()
    }
}
