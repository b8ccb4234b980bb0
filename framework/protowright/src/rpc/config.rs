//! Limits and defaults of an RPC session.

use std::time::Duration;

use thiserror::Error;

use crate::codec::DEFAULT_MAX_FRAME;

/// How an RPC session behaves. Every queue it keeps is bounded by a field
/// here, and every wait by a timeout.
///
/// Defaults: 4 MiB frames; 1024 calls in flight each way; 1024 one-way
/// messages queued for their handler; 1024 protocol messages (up to 4 MiB)
/// waiting for the application; 1024 envelopes queued for writing; a 30 s
/// default call timeout; a heartbeat after 5 s
/// without writing; the peer declared dead after 15 s without reading
/// anything from it; no idle timeout; a write that makes no progress for
/// 10 s ends the connection; at most 1 MiB queued for writing; a 64 KiB read
/// buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The largest envelope, in bytes, sent or accepted. A larger incoming
    /// frame closes the connection; a larger outgoing request or response
    /// fails with `RESOURCE_EXHAUSTED` instead of being sent.
    pub max_frame: usize,
    /// Outgoing calls awaiting a response. A further call waits for a free
    /// slot (within its deadline).
    pub max_in_flight: usize,
    /// Incoming requests being served at once. A further request is answered
    /// `RESOURCE_EXHAUSTED` at once.
    pub max_concurrent_requests: usize,
    /// One-way messages received and waiting for their handler. They are
    /// handled one at a time, in the order they arrived; when this queue is
    /// full, reading from the connection pauses, which pushes back on the
    /// sender.
    pub one_way_queue: usize,
    /// Protocol messages received and waiting for the application
    /// (`Connection::recv`). When this many (or `message_bytes`) wait,
    /// reading from the connection pauses — calls and responses behind them
    /// wait too — which pushes back on the sender: a connection whose peer
    /// sends protocol messages must have them read.
    pub message_queue: usize,
    /// Bytes of protocol messages waiting for the application; see
    /// `message_queue`. A single larger message still goes, alone.
    pub message_bytes: usize,
    /// Envelopes queued for the writer. When full, senders wait (or
    /// `try_send` fails): this is the session's backpressure.
    pub outgoing_queue: usize,
    /// The timeout of calls that set none. `None` waits until the response
    /// arrives or the connection closes.
    pub default_timeout: Option<Duration>,
    /// Send a PING when nothing has been written for this long, so the peer
    /// (and this side, through the PONG) keeps hearing from the connection.
    /// `None` sends no heartbeats.
    pub heartbeat_interval: Option<Duration>,
    /// Close the connection with [`ConnectionError::Timeout`] when nothing at
    /// all has been read from the peer for this long: it is dead or cut off,
    /// even if TCP has not noticed. Must exceed `heartbeat_interval` plus a
    /// round trip. `None` trusts the transport to notice.
    ///
    /// [`ConnectionError::Timeout`]: crate::ConnectionError::Timeout
    pub dead_peer_timeout: Option<Duration>,
    /// Close the connection cleanly when no call or one-way message has
    /// travelled either way for this long (heartbeats do not count).
    pub idle_timeout: Option<Duration>,
    /// Close the connection when writing one batch makes no progress for
    /// this long (the peer stopped reading).
    pub write_stall_timeout: Option<Duration>,
    /// Bytes queued for the writer. At this many, senders wait too (a
    /// single larger message still goes, alone): with `outgoing_queue`, this
    /// bounds a connection's outgoing memory.
    pub outgoing_bytes: usize,
    /// The read buffer's initial capacity.
    pub read_buffer: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            max_in_flight: 1024,
            max_concurrent_requests: 1024,
            one_way_queue: 1024,
            message_queue: 1024,
            message_bytes: 4 * 1024 * 1024,
            outgoing_queue: 1024,
            default_timeout: Some(Duration::from_secs(30)),
            heartbeat_interval: Some(Duration::from_secs(5)),
            dead_peer_timeout: Some(Duration::from_secs(15)),
            idle_timeout: None,
            write_stall_timeout: Some(Duration::from_secs(10)),
            outgoing_bytes: 1024 * 1024,
            read_buffer: 64 * 1024,
        }
    }
}

/// A configuration that cannot work.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("max_frame", self.max_frame),
            ("max_in_flight", self.max_in_flight),
            ("max_concurrent_requests", self.max_concurrent_requests),
            ("outgoing_queue", self.outgoing_queue),
            ("one_way_queue", self.one_way_queue),
            ("message_queue", self.message_queue),
            ("message_bytes", self.message_bytes),
            ("outgoing_bytes", self.outgoing_bytes),
            ("read_buffer", self.read_buffer),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError(format!("`{name}` must be at least 1")));
        }
        if let (Some(interval), Some(dead)) = (self.heartbeat_interval, self.dead_peer_timeout) {
            if dead <= interval {
                return Err(ConfigError(format!(
                    "`dead_peer_timeout` ({dead:?}) must exceed `heartbeat_interval` ({interval:?}), \
                     or a quiet but healthy peer is declared dead"
                )));
            }
        }
        let zero = [
            ("heartbeat_interval", self.heartbeat_interval),
            ("dead_peer_timeout", self.dead_peer_timeout),
            ("idle_timeout", self.idle_timeout),
            ("write_stall_timeout", self.write_stall_timeout),
        ];
        if let Some((name, _)) = zero
            .iter()
            .find(|(_, value)| *value == Some(Duration::ZERO))
        {
            return Err(ConfigError(format!(
                "`{name}` must be longer than zero (use None to disable)"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn a_dead_peer_timeout_within_the_heartbeat_interval_is_refused() {
        let config = Config {
            heartbeat_interval: Some(Duration::from_secs(5)),
            dead_peer_timeout: Some(Duration::from_secs(5)),
            ..Config::default()
        };
        let error = config.validate().unwrap_err();
        assert!(error.to_string().contains("dead_peer_timeout"), "{error}");
    }

    #[test]
    fn zero_sizes_and_zero_timeouts_are_refused() {
        let no_queue = Config {
            outgoing_queue: 0,
            ..Config::default()
        };
        assert!(
            no_queue
                .validate()
                .unwrap_err()
                .to_string()
                .contains("outgoing_queue")
        );
        let zero_idle = Config {
            idle_timeout: Some(Duration::ZERO),
            ..Config::default()
        };
        assert!(
            zero_idle
                .validate()
                .unwrap_err()
                .to_string()
                .contains("idle_timeout")
        );
    }
}
