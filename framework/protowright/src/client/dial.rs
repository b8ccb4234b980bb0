//! Opening one connection to the server, on either transport.

use std::net::SocketAddr;
use std::sync::Arc;

use super::ClientConfig;
use crate::connection::Connection;
use crate::error::Error;
use crate::net::{Net, Stream};
use crate::rpc::Service;
use crate::transport::Transport;
use crate::udp;

/// How a client reaches its server.
pub(super) enum Dialer<N> {
    /// A new TCP stream per connection.
    Tcp(N),
    /// A new connection per attempt on one endpoint whose socket talks only
    /// to the server (so a refusal is reported at once).
    Udp(udp::Endpoint),
}

impl<N: Net> Dialer<N> {
    pub(super) async fn new(
        net: N,
        transport: Transport,
        server: SocketAddr,
        config: &ClientConfig,
    ) -> Result<Self, Error> {
        match transport {
            Transport::Tcp => Ok(Self::Tcp(net)),
            Transport::Udp => udp::Endpoint::dialer(net, server, config.udp.clone())
                .await
                .map(Self::Udp)
                .map_err(|error| match error {
                    udp::Error::Bind { addr, source } => Error::Bind { addr, source },
                    other => Error::Connect {
                        addr: server,
                        transport,
                        reason: other.to_string(),
                        unreachable: false,
                    },
                }),
        }
    }

    /// One connection attempt, within the connect timeout. The error says
    /// what happened, for the client's state and logs.
    pub(super) async fn dial<S: Service>(
        &self,
        server: SocketAddr,
        config: &ClientConfig,
        service: &Arc<S>,
    ) -> Result<Connection, DialError> {
        let limit = config.connect_timeout;
        let timed_out = || DialError {
            reason: format!("no answer within {limit:?}"),
            unreachable: true,
        };
        match self {
            Self::Tcp(net) => {
                // One deadline for the connect and its round trip.
                match tokio::time::timeout(limit, dial_tcp(net, server, config, service)).await {
                    Ok(dialed) => dialed,
                    Err(_) => Err(timed_out()),
                }
            }
            Self::Udp(endpoint) => {
                let raw = match tokio::time::timeout(limit, endpoint.connect(server)).await {
                    Ok(Ok(raw)) => raw,
                    Ok(Err(error)) => return Err(udp_failure(&error)),
                    Err(_) => return Err(timed_out()),
                };
                let service = Arc::clone(service);
                Ok(Connection::over_udp(raw, config.session.clone(), |_| {
                    service
                }))
            }
        }
    }

    /// Lets go of the transport: a UDP client's endpoint is shut down and
    /// given up to two seconds to resend its closes across their drain.
    pub(super) async fn close(&self) {
        if let Self::Udp(endpoint) = self {
            endpoint.shutdown();
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(2), endpoint.wait_idle()).await;
        }
    }
}

/// Opens a TCP connection and makes sure the server took it.
async fn dial_tcp<N: Net, S: Service>(
    net: &N,
    server: SocketAddr,
    config: &ClientConfig,
    service: &Arc<S>,
) -> Result<Connection, DialError> {
    let stream = net.connect(server).await.map_err(|error| DialError {
        reason: error.to_string(),
        unreachable: nothing_there(&error),
    })?;
    if let Err(error) = stream.set_nodelay(config.nodelay) {
        tracing::debug!(%server, %error, "could not set TCP_NODELAY");
    }
    let service = Arc::clone(service);
    let connection = Connection::over_stream(
        stream,
        server.to_string(),
        Some(server),
        config.session.clone(),
        |_| service,
    );
    // TCP has no handshake of protowright's own: one round trip makes sure
    // the server took the connection (one at its connection limit says so
    // in a GOAWAY and closes it).
    match connection.ping().await {
        Ok(_) => Ok(connection),
        Err(status) => Err(DialError {
            reason: format!(
                "the server did not take the connection: {}",
                status.message()
            ),
            unreachable: false,
        }),
    }
}

/// Why an attempt failed, and whether anything answered at all.
#[derive(Debug, Clone)]
pub(super) struct DialError {
    /// What happened, for the client's state and logs.
    pub(super) reason: String,
    /// Nothing answered (refused by the system, or silent): perhaps no
    /// server listens there.
    pub(super) unreachable: bool,
}

/// Whether a failed TCP connect means nothing answered at that address.
fn nothing_there(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionRefused | TimedOut | HostUnreachable | NetworkUnreachable | AddrNotAvailable
    )
}

/// A failed UDP handshake, said briefly, and whether no server answered
/// (as opposed to a server that refused).
fn udp_failure(error: &udp::Error) -> DialError {
    let (reason, unreachable) = match error {
        udp::Error::Closed { reason, .. } => match reason {
            udp::CloseReason::Local {
                code: crate::udp::CLOSE_REFUSED,
                reason,
            } => (reason.clone(), true),
            udp::CloseReason::HandshakeTimeout(after) => {
                (format!("no answer within {after:?}"), true)
            }
            other => (other.to_string(), false),
        },
        other => (other.to_string(), false),
    };
    DialError {
        reason,
        unreachable,
    }
}
