//! A server on either transport: accepting connections up to a limit,
//! serving a generated service on each, and shutting down gracefully.
//!
//! ```no_run
//! # async fn run<S: protowright::rpc::Service + Clone>(service: S) -> Result<(), protowright::Error> {
//! use protowright::net::Tokio;
//! use protowright::{Server, ServerConfig, Transport};
//!
//! let server = Server::bind(Tokio, Transport::Tcp, "127.0.0.1:7000".parse().unwrap(), ServerConfig::default()).await?;
//! let handle = server.handle();
//! tokio::spawn(server.serve(service));
//! // ...
//! handle.shutdown().await; // stop accepting, GOAWAY, let calls finish, close
//! # Ok(()) }
//! ```
//!
//! To act on each connection (push messages to it, keep per-connection
//! state), take them with [`Server::accept`] and serve each with
//! [`Incoming::serve_with`], whose closure receives the connection.

mod accept;
mod config;
mod registry;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

pub use config::ServerConfig;
use registry::{Phase, Registry, Slot};

use crate::connection::Connection;
use crate::error::Error;
use crate::net::Net;
use crate::rpc::{self, Service};
use crate::transport::Transport;
use crate::udp;

/// A server's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections being served now.
    pub connections: usize,
    /// Connections accepted and served since the start.
    pub accepted: u64,
    /// Connections refused because the server was at its limit.
    pub refused: u64,
    /// Connections that ended with an error (a peer that vanished, broke
    /// the protocol or sent an oversized frame) rather than a clean close.
    pub failed: u64,
}

/// A server bound to an address on one transport.
///
/// Serve every connection with one service ([`serve`](Self::serve),
/// [`serve_with`](Self::serve_with)), or take connections one by one
/// ([`accept`](Self::accept)). Either way the server keeps the connection
/// limit, counts connections, and shuts down gracefully through its
/// [`ServerHandle`].
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    transport: Transport,
    public_key: Option<udp::PublicKey>,
    registry: Arc<Registry>,
    config: ServerConfig,
    incoming: mpsc::Receiver<Incoming>,
}

/// Controls and observes a running [`Server`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    registry: Arc<Registry>,
    local_addr: SocketAddr,
    shutdown_timeout: std::time::Duration,
}

/// A connection the server accepted, not yet served: give it a service to
/// start it.
#[derive(Debug)]
pub struct Incoming {
    kind: Kind,
    slot: Slot,
    registry: Arc<Registry>,
    session: rpc::Config,
}

/// A byte stream of any provider, behind one type.
pub(crate) trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> ByteStream for T {}

enum Kind {
    Tcp {
        stream: Box<dyn ByteStream>,
        peer: SocketAddr,
    },
    Udp(udp::Connection),
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp { peer, .. } => f.debug_struct("Tcp").field("peer", peer).finish(),
            Self::Udp(connection) => f.debug_tuple("Udp").field(connection).finish(),
        }
    }
}

/// How many accepted connections may wait for [`Server::accept`]; beyond
/// that the server stops accepting until one is taken.
const ACCEPT_QUEUE: usize = 64;

impl Server {
    /// Binds `addr` on `net` for `transport`. Must be called inside a tokio
    /// runtime: the server accepts on a task of its own.
    pub async fn bind<N: Net>(
        net: N,
        transport: Transport,
        addr: SocketAddr,
        config: ServerConfig,
    ) -> Result<Self, Error> {
        config.validate()?;
        let (queue, incoming) = mpsc::channel(ACCEPT_QUEUE);
        let mut public_key = None;
        let (local_addr, registry) = match transport {
            Transport::Tcp => {
                let listener = accept::listen(&net, addr).await?;
                let local_addr = accept::local_addr(&listener, addr)?;
                let registry = Arc::new(Registry::new(config.max_connections, None));
                let acceptor = accept::Tcp {
                    listener,
                    registry: Arc::clone(&registry),
                    queue,
                    config: config.clone(),
                };
                tokio::spawn(acceptor.run());
                (local_addr, registry)
            }
            Transport::Udp => {
                let endpoint = udp::Endpoint::server(net, addr, config.udp_config())
                    .await
                    .map_err(|error| accept::udp_bind_error(addr, error))?;
                let local_addr = endpoint.local_addr();
                public_key = Some(endpoint.public_key());
                let registry = Arc::new(Registry::new(
                    config.max_connections,
                    Some(endpoint.clone()),
                ));
                let acceptor = accept::Udp {
                    endpoint,
                    registry: Arc::clone(&registry),
                    queue,
                    config: config.clone(),
                };
                tokio::spawn(acceptor.run());
                (local_addr, registry)
            }
        };
        Ok(Self {
            local_addr,
            transport,
            public_key,
            registry,
            config,
            incoming,
        })
    }

    /// The address the server listens on (with the port the system chose,
    /// when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The transport it serves.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Over reliable UDP, the server's static public key: what clients pin
    /// in `udp.security.server_key`. It stays the same across restarts
    /// only when `udp.security.static_key` is loaded from a file (see
    /// `SECURITY.md`). `None` over TCP.
    pub fn public_key(&self) -> Option<udp::PublicKey> {
        self.public_key
    }

    /// A handle to stop and observe the server.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            registry: Arc::clone(&self.registry),
            local_addr: self.local_addr,
            shutdown_timeout: self.config.shutdown_timeout,
        }
    }

    /// Waits for the next connection. `None` once shutdown was asked for,
    /// or when the listening socket failed.
    pub async fn accept(&mut self) -> Option<Incoming> {
        if !self.registry.is_serving() {
            return None;
        }
        let mut phase = self.registry.phase.subscribe();
        tokio::select! {
            biased;
            _ = phase.wait_for(|phase| *phase != Phase::Serving) => None,
            incoming = self.incoming.recv() => incoming,
        }
    }

    /// Serves every connection with a clone of `service` until shutdown has
    /// finished (see [`ServerHandle::shutdown`]).
    pub async fn serve<S: Service + Clone>(self, service: S) {
        self.serve_with(move |_| service.clone()).await;
    }

    /// Serves every connection with the service `make_service` builds for
    /// it, from the connection itself (to push messages to it, or keep
    /// per-connection state), until shutdown has finished.
    pub async fn serve_with<S, F>(mut self, make_service: F)
    where
        S: Service,
        F: Fn(&Connection) -> S,
    {
        while let Some(incoming) = self.accept().await {
            incoming.serve_with(&make_service);
        }
        if self.registry.is_serving() {
            // Nothing asked for shutdown: the listening socket failed and
            // its accept task ended. Drain what is served, and finish.
            tracing::warn!(addr = %self.local_addr, "the listener stopped; shutting the server down");
            self.registry.shut_down(self.config.shutdown_timeout).await;
        }
        let mut phase = self.registry.phase.subscribe();
        let _ = phase.wait_for(|phase| *phase == Phase::Finished).await;
    }
}

impl Incoming {
    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        match &self.kind {
            Kind::Tcp { peer, .. } => *peer,
            Kind::Udp(connection) => connection.peer_addr(),
        }
    }

    /// Starts the connection, serving the peer's calls with `service`.
    pub fn serve<S: Service>(self, service: S) -> Connection {
        self.serve_with(|_| service)
    }

    /// Starts the connection, serving the peer's calls with the service
    /// `make_service` builds from the connection itself, so the service can
    /// push messages to its own peer.
    ///
    /// A service holding its connection keeps it open until the peer closes
    /// it, it fails, or the server shuts down.
    pub fn serve_with<S: Service>(self, make_service: impl FnOnce(&Connection) -> S) -> Connection {
        let connection = match self.kind {
            Kind::Tcp { stream, peer } => Connection::over_stream(
                stream,
                peer.to_string(),
                Some(peer),
                self.session,
                make_service,
            ),
            Kind::Udp(raw) => Connection::over_udp(raw, self.session, make_service),
        };
        self.registry.track(&connection, self.slot);
        connection
    }
}

impl ServerHandle {
    /// Stops the server gracefully and waits until it has finished: stops
    /// accepting, tells every connection GOAWAY, lets calls in flight
    /// finish for up to the shutdown timeout, then closes whatever is left.
    pub async fn shutdown(&self) {
        self.registry.shut_down(self.shutdown_timeout).await;
    }

    /// The server's counters now.
    pub fn stats(&self) -> ServerStats {
        self.registry.stats()
    }

    /// The live connections.
    pub fn connections(&self) -> Vec<Connection> {
        self.registry.connections()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}
