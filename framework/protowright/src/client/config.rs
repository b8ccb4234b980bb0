//! Settings of a client.

use std::time::Duration;

use super::{Backoff, RetryPolicy};
use crate::error::Error;
use crate::rpc;
use crate::udp;

/// How a [`Client`](crate::Client) behaves, on either transport.
///
/// Defaults: the session defaults of [`rpc::Config`], a 5 s connect
/// timeout, the default [`Backoff`] and [`RetryPolicy`], TCP's
/// `TCP_NODELAY` on, and the defaults of [`udp::Config`] for reliable UDP.
/// The reconnect jitter is drawn from the network provider's randomness,
/// so clients jitter apart in production and a simulation replays exactly.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Settings of the connection's session.
    pub session: rpc::Config,
    /// How long one connection attempt may take (above zero, at most
    /// [`rpc::MAX_DURATION`]).
    pub connect_timeout: Duration,
    /// Whether to reopen a lost connection (default `true`). Turn it off for
    /// a protocol whose state belongs to one connection (a game seat, a
    /// session login): the client then ends with its connection, in
    /// [`ConnectionState::GaveUp`](crate::ConnectionState::GaveUp).
    pub reconnect: bool,
    /// When to reconnect after losing or failing to reopen the connection.
    pub backoff: Backoff,
    /// Which failed calls are retried, and how many retries may be spent.
    pub retry: RetryPolicy,
    /// TCP: turn Nagle's algorithm off, so small messages leave at once.
    pub nodelay: bool,
    /// Reliable UDP: the client endpoint's settings.
    pub udp: udp::Config,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            session: rpc::Config::default(),
            connect_timeout: Duration::from_secs(5),
            reconnect: true,
            backoff: Backoff::default(),
            retry: RetryPolicy::default(),
            nodelay: true,
            udp: udp::Config::default(),
        }
    }
}

impl ClientConfig {
    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), Error> {
        self.session.validate()?;
        self.udp.validate()?;
        rpc::check_duration("connect_timeout", self.connect_timeout)?;
        rpc::check_duration("backoff.max", self.backoff.max)?;
        if let Some(max_elapsed) = self.backoff.max_elapsed {
            rpc::check_duration("backoff.max_elapsed", max_elapsed)?;
        }
        if self.backoff.initial.is_zero() || self.backoff.max < self.backoff.initial {
            return Err(Error::Config(
                "`backoff.initial` must be above zero and at most `backoff.max`".into(),
            ));
        }
        Ok(())
    }
}
