//! Settings of TCP servers and clients.

use std::time::Duration;

use super::{Backoff, RetryPolicy};
use crate::rpc;

/// How a TCP server behaves.
///
/// Defaults: the session defaults of [`rpc::Config`], at most 10,000
/// connections, `TCP_NODELAY` on, 10 s for calls in flight to finish on
/// shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Settings of each connection's session (frame limit, queues,
    /// heartbeats, timeouts).
    pub session: rpc::Config,
    /// Connections served at once. A connection beyond it is told why
    /// (a GOAWAY with `RESOURCE_EXHAUSTED`) and closed.
    pub max_connections: usize,
    /// Turn Nagle's algorithm off, so small messages leave at once.
    pub nodelay: bool,
    /// On shutdown, how long calls in flight may take to finish before the
    /// remaining connections are closed.
    pub shutdown_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            session: rpc::Config::default(),
            max_connections: 10_000,
            nodelay: true,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl ServerConfig {
    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), rpc::ConfigError> {
        self.session.validate()?;
        if self.max_connections == 0 {
            return Err(rpc::ConfigError(
                "`max_connections` must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// How a TCP client behaves.
///
/// Defaults: the session defaults of [`rpc::Config`], a 5 s connect
/// timeout, `TCP_NODELAY` on, the default [`Backoff`] and [`RetryPolicy`],
/// and a jitter seed drawn from the operating system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Settings of the connection's session.
    pub session: rpc::Config,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// Turn Nagle's algorithm off, so small messages leave at once.
    pub nodelay: bool,
    /// When to reconnect after losing or failing to open the connection.
    pub backoff: Backoff,
    /// Which failed calls are retried, and how many retries may be spent.
    pub retry: RetryPolicy,
    /// Seeds the reconnect jitter. Set it in simulations so runs replay;
    /// leave it `None` in production so clients jitter apart.
    pub seed: Option<u64>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            session: rpc::Config::default(),
            connect_timeout: Duration::from_secs(5),
            nodelay: true,
            backoff: Backoff::default(),
            retry: RetryPolicy::default(),
            seed: None,
        }
    }
}

impl ClientConfig {
    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), rpc::ConfigError> {
        self.session.validate()?;
        if self.connect_timeout.is_zero() {
            return Err(rpc::ConfigError(
                "`connect_timeout` must be longer than zero".into(),
            ));
        }
        if self.backoff.initial.is_zero() || self.backoff.max < self.backoff.initial {
            return Err(rpc::ConfigError(
                "`backoff.initial` must be above zero and at most `backoff.max`".into(),
            ));
        }
        Ok(())
    }

    /// The jitter seed: the configured one, or one from the operating
    /// system's randomness (through std's hasher keys, which it seeds).
    pub(super) fn seed(&self) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        self.seed.unwrap_or_else(|| {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(0x0070_7772_6967_6874);
            hasher.finish()
        })
    }
}
