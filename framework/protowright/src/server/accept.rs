//! The accept tasks: one per server, taking connections off the listener
//! (TCP) or the endpoint (reliable UDP), enforcing the connection limit,
//! and queueing each for [`Server::accept`](super::Server::accept).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::registry::{Phase, Registry};
use super::{Incoming, Kind, ServerConfig};
use crate::codec::Delimited;
use crate::error::Error;
use crate::net::{Listener, Net, Stream};
use crate::rpc::Status;
use crate::udp;
use crate::v1::{Envelope, Kind as EnvelopeKind};

pub(super) async fn listen<N: Net>(net: &N, addr: SocketAddr) -> Result<N::Listener, Error> {
    net.listen(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

pub(super) fn local_addr<L: Listener>(listener: &L, addr: SocketAddr) -> Result<SocketAddr, Error> {
    listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })
}

/// A UDP endpoint's start-up failure as the server reports it.
pub(super) fn udp_bind_error(addr: SocketAddr, error: udp::Error) -> Error {
    match error {
        udp::Error::Bind { addr, source } => Error::Bind { addr, source },
        udp::Error::Config(config) => Error::Config(config.to_string()),
        other => Error::Bind {
            addr,
            source: std::io::Error::other(other.to_string()),
        },
    }
}

/// Resolves once shutdown was asked for.
async fn stopping(registry: &Registry) {
    let mut phase = registry.phase.subscribe();
    let _ = phase.wait_for(|phase| *phase != Phase::Serving).await;
}

/// The TCP accept loop.
pub(super) struct Tcp<L> {
    pub(super) listener: L,
    pub(super) registry: Arc<Registry>,
    pub(super) queue: mpsc::Sender<Incoming>,
    pub(super) config: ServerConfig,
}

impl<L: Listener> Tcp<L> {
    pub(super) async fn run(self) {
        loop {
            let accepted = tokio::select! {
                biased;
                () = stopping(&self.registry) => break,
                accepted = self.listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Typically out of file descriptors: pause rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(slot) = self.registry.admit() else {
                tokio::spawn(refuse(stream, peer, self.config.max_connections));
                continue;
            };
            if let Err(error) = stream.set_nodelay(self.config.nodelay) {
                tracing::debug!(%peer, %error, "could not set TCP_NODELAY");
            }
            let incoming = Incoming {
                kind: Kind::Tcp {
                    stream: Box::new(stream),
                    peer,
                },
                slot,
                registry: Arc::clone(&self.registry),
                session: self.config.session.clone(),
            };
            let queued = tokio::select! {
                biased;
                () = stopping(&self.registry) => break,
                queued = self.queue.send(incoming) => queued,
            };
            if queued.is_err() {
                // The server was dropped: nobody will take connections.
                break;
            }
        }
    }
}

/// Tells a connection over the limit why it is refused, then closes it.
async fn refuse<St: Stream>(mut stream: St, peer: SocketAddr, limit: usize) {
    let goaway = Envelope {
        kind: EnvelopeKind::Goaway as i32,
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

/// The reliable-UDP accept loop. The endpoint refuses handshakes beyond
/// the connection limit itself, with the reason.
pub(super) struct Udp {
    pub(super) endpoint: udp::Endpoint,
    pub(super) registry: Arc<Registry>,
    pub(super) queue: mpsc::Sender<Incoming>,
    pub(super) config: ServerConfig,
}

impl Udp {
    pub(super) async fn run(self) {
        loop {
            let accepted = tokio::select! {
                biased;
                () = stopping(&self.registry) => break,
                accepted = self.endpoint.accept() => accepted,
            };
            let Some(raw) = accepted else { break };
            let Some(slot) = self.registry.admit() else {
                raw.close(
                    udp::CLOSE_TURNED_AWAY,
                    &format!(
                        "the server is at its limit of {} connections; try again later",
                        self.config.max_connections
                    ),
                );
                continue;
            };
            let incoming = Incoming {
                kind: Kind::Udp(raw),
                slot,
                registry: Arc::clone(&self.registry),
                session: self.config.session.clone(),
            };
            let queued = tokio::select! {
                biased;
                () = stopping(&self.registry) => break,
                queued = self.queue.send(incoming) => queued,
            };
            if queued.is_err() {
                break;
            }
        }
    }
}
