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
                        reason: other.to_string(),
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
    ) -> Result<Connection, String> {
        let limit = config.connect_timeout;
        let timed_out = || format!("connecting to {server} timed out after {limit:?}");
        match self {
            Self::Tcp(net) => {
                let stream = match tokio::time::timeout(limit, net.connect(server)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        return Err(format!("connecting to {server} failed: {error}"));
                    }
                    Err(_) => return Err(timed_out()),
                };
                if let Err(error) = stream.set_nodelay(config.nodelay) {
                    tracing::debug!(%server, %error, "could not set TCP_NODELAY");
                }
                let service = Arc::clone(service);
                Ok(Connection::over_stream(
                    stream,
                    server.to_string(),
                    Some(server),
                    config.session.clone(),
                    |_| service,
                ))
            }
            Self::Udp(endpoint) => {
                let raw = match tokio::time::timeout(limit, endpoint.connect(server)).await {
                    Ok(Ok(raw)) => raw,
                    Ok(Err(error)) => {
                        return Err(format!("connecting to {server} failed: {error}"));
                    }
                    Err(_) => return Err(timed_out()),
                };
                let service = Arc::clone(service);
                Ok(Connection::over_udp(raw, config.session.clone(), |_| {
                    service
                }))
            }
        }
    }

    /// Lets go of the transport (a UDP client's endpoint is shut down).
    pub(super) fn close(&self) {
        if let Self::Udp(endpoint) = self {
            endpoint.shutdown();
        }
    }
}
