//! Settings of a server.

use std::time::Duration;

use crate::error::Error;
use crate::rpc;
use crate::udp;

/// How a [`Server`](crate::Server) behaves, on either transport.
///
/// Defaults: the session defaults of [`rpc::Config`], at most 10,000
/// connections, 10 s for calls in flight to finish on shutdown, TCP's
/// `TCP_NODELAY` on, and the defaults of [`udp::Config`] for reliable UDP.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Settings of each connection's session (frame limit, queues,
    /// heartbeats, timeouts).
    pub session: rpc::Config,
    /// Connections served at once. Over TCP a connection beyond it is told
    /// why (a GOAWAY with `RESOURCE_EXHAUSTED`) and closed; over reliable
    /// UDP its handshake is refused with the reason.
    pub max_connections: usize,
    /// On shutdown, how long calls in flight may take to finish before the
    /// remaining connections are closed. Above zero, at most
    /// [`rpc::MAX_DURATION`].
    pub shutdown_timeout: Duration,
    /// TCP: turn Nagle's algorithm off, so small messages leave at once.
    pub nodelay: bool,
    /// Reliable UDP: the endpoint's settings (datagram sizes, windows,
    /// channels, timeouts, congestion control). Its `max_connections` is
    /// replaced by the server's.
    pub udp: udp::Config,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            session: rpc::Config::default(),
            max_connections: 10_000,
            shutdown_timeout: Duration::from_secs(10),
            nodelay: true,
            udp: udp::Config::default(),
        }
    }
}

impl ServerConfig {
    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), Error> {
        self.session.validate()?;
        if self.max_connections == 0 {
            return Err(Error::Config("`max_connections` must be at least 1".into()));
        }
        rpc::check_duration("shutdown_timeout", self.shutdown_timeout)?;
        self.udp_config().validate()?;
        Ok(())
    }

    /// The endpoint settings a UDP server runs with.
    pub(crate) fn udp_config(&self) -> udp::Config {
        udp::Config {
            max_connections: self.max_connections,
            ..self.udp.clone()
        }
    }
}
