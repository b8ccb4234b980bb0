//! Limits and defaults of an RPC session.

use std::time::Duration;

use thiserror::Error;

use crate::codec::DEFAULT_MAX_FRAME;

/// How an RPC session behaves. Every queue it keeps is bounded by a field
/// here, and every wait by a timeout.
///
/// Defaults: 4 MiB frames, each to arrive within 30 s of its first byte;
/// 1024 calls in flight each way; incoming requests holding at most 4 MiB;
/// 1024 one-way messages (up to 4 MiB) queued for their handler; 1024
/// protocol messages (up to 4 MiB) waiting for the application; 1024
/// envelopes queued for writing; a 30 s default call timeout; a heartbeat
/// after 5 s without writing; the peer declared dead after 15 s without
/// reading anything from it; no idle timeout; a write that makes no
/// progress for 10 s ends the connection; at most 1 MiB queued for writing;
/// a 64 KiB read buffer.
///
/// Every duration is at most [`MAX_DURATION`], so no deadline computed from
/// it can overflow the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The largest envelope, in bytes, sent or accepted. A larger incoming
    /// frame closes the connection; a larger outgoing request or response
    /// fails with `RESOURCE_EXHAUSTED` instead of being sent.
    pub max_frame: usize,
    /// How long one incoming frame may take to arrive, from its first byte
    /// to its last (over a byte stream: TCP, TLS, in memory). A peer that
    /// starts a frame and then trickles it, one byte now and then, is cut
    /// off with [`ConnectionError::FrameTimeout`] instead of holding the
    /// connection (and what it buffered) forever: any byte counts as life
    /// for `dead_peer_timeout`, and the idle timeout is off by default.
    /// Time this side spends not reading (its own queues are full) does not
    /// count. At the default of 30 s a frame of the default 4 MiB maximum
    /// needs about 140 KiB/s; raise it for large frames over slow links.
    /// `None` lets a frame take forever.
    ///
    /// [`ConnectionError::FrameTimeout`]: crate::ConnectionError::FrameTimeout
    pub frame_timeout: Option<Duration>,
    /// Outgoing calls awaiting a response. A further call waits for a free
    /// slot (within its deadline).
    pub max_in_flight: usize,
    /// Incoming requests being served at once. A further request is answered
    /// `RESOURCE_EXHAUSTED` at once.
    pub max_concurrent_requests: usize,
    /// Bytes held by incoming requests being served: each request's body
    /// plus a fixed allowance for its bookkeeping, held until its answer is
    /// queued. When a request would go over, reading from the connection
    /// pauses until handlers finish, which pushes back on the sender (a
    /// single larger request still goes, alone). Counting only requests
    /// (`max_concurrent_requests`) would let a few huge ones through. A
    /// handler that calls back over its own connection while this budget is
    /// full waits for its deadline: size it for the requests served at once.
    pub request_bytes: usize,
    /// One-way messages received and waiting for their handler. They are
    /// handled one at a time, in the order they arrived; when this queue is
    /// full, reading from the connection pauses, which pushes back on the
    /// sender.
    pub one_way_queue: usize,
    /// Bytes of one-way messages queued for their handler (bodies plus a
    /// fixed allowance per message); see `one_way_queue`, whose
    /// backpressure this shares. A single larger message still goes, alone.
    pub one_way_bytes: usize,
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
    /// The most a read takes at a time. A connection starts reading 512
    /// bytes at a time and doubles that whenever a read fills it, up to
    /// this: an idle connection holds a small buffer, a busy one reads this
    /// much per system call.
    pub read_buffer: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            frame_timeout: Some(Duration::from_secs(30)),
            max_in_flight: 1024,
            max_concurrent_requests: 1024,
            request_bytes: 4 * 1024 * 1024,
            one_way_queue: 1024,
            one_way_bytes: 4 * 1024 * 1024,
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

/// The longest duration any setting accepts: one year. Deadlines are the
/// clock's now plus a setting, and `Instant + Duration` panics on overflow,
/// so no setting may come near the clock's range; a longer one is surely a
/// mistake (disable a timeout with `None` instead).
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// A configuration that cannot work. Each variant names the setting; fix
/// it and build again.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A size or count is zero, so nothing could ever fit.
    #[error("invalid configuration: `{setting}` must be at least 1")]
    Zero {
        /// The setting's field name.
        setting: &'static str,
    },
    /// A timeout or interval is zero. Use `None` to disable it.
    #[error("invalid configuration: `{setting}` must be longer than zero")]
    ZeroDuration {
        /// The setting's field name.
        setting: &'static str,
    },
    /// A duration exceeds [`MAX_DURATION`]: deadlines computed from it could
    /// overflow the clock.
    #[error(
        "invalid configuration: `{setting}` ({value:?}) exceeds the longest supported duration \
         ({max:?}); use None to disable it"
    )]
    TooLong {
        /// The setting's field name.
        setting: &'static str,
        /// The value given.
        value: Duration,
        /// The longest accepted, [`MAX_DURATION`].
        max: Duration,
    },
    /// `dead_peer_timeout` is not longer than `heartbeat_interval`, so a
    /// quiet but healthy peer would be declared dead.
    #[error(
        "invalid configuration: `dead_peer_timeout` ({dead:?}) must exceed \
         `heartbeat_interval` ({interval:?}), or a quiet but healthy peer is declared dead"
    )]
    DeadPeerWithinHeartbeat {
        /// The dead-peer timeout given.
        dead: Duration,
        /// The heartbeat interval given.
        interval: Duration,
    },
}

/// Checks that `value`, the setting `setting`, is above zero and at most
/// [`MAX_DURATION`].
pub(crate) fn check_duration(setting: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::ZeroDuration { setting });
    }
    if value > MAX_DURATION {
        return Err(ConfigError::TooLong {
            setting,
            value,
            max: MAX_DURATION,
        });
    }
    Ok(())
}

impl Config {
    /// Checks that the settings can work together: sizes above zero,
    /// durations above zero and at most [`MAX_DURATION`], and the dead-peer
    /// bound beyond the heartbeat interval.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("max_frame", self.max_frame),
            ("max_in_flight", self.max_in_flight),
            ("max_concurrent_requests", self.max_concurrent_requests),
            ("request_bytes", self.request_bytes),
            ("outgoing_queue", self.outgoing_queue),
            ("one_way_queue", self.one_way_queue),
            ("one_way_bytes", self.one_way_bytes),
            ("message_queue", self.message_queue),
            ("message_bytes", self.message_bytes),
            ("outgoing_bytes", self.outgoing_bytes),
            ("read_buffer", self.read_buffer),
        ];
        if let Some((setting, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::Zero { setting });
        }
        let durations = [
            ("frame_timeout", self.frame_timeout),
            ("default_timeout", self.default_timeout),
            ("heartbeat_interval", self.heartbeat_interval),
            ("dead_peer_timeout", self.dead_peer_timeout),
            ("idle_timeout", self.idle_timeout),
            ("write_stall_timeout", self.write_stall_timeout),
        ];
        for (setting, value) in durations {
            if let Some(value) = value {
                check_duration(setting, value)?;
            }
        }
        if let (Some(interval), Some(dead)) = (self.heartbeat_interval, self.dead_peer_timeout) {
            if dead <= interval {
                return Err(ConfigError::DeadPeerWithinHeartbeat { dead, interval });
            }
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

    #[test]
    fn a_duration_that_could_overflow_a_deadline_is_refused_naming_it() {
        for setting in [
            "frame_timeout",
            "default_timeout",
            "heartbeat_interval",
            "dead_peer_timeout",
            "idle_timeout",
            "write_stall_timeout",
        ] {
            // No heartbeats, so no dead-peer bound has to exceed them.
            let with = |value: Duration| {
                let mut config = Config {
                    heartbeat_interval: None,
                    dead_peer_timeout: None,
                    ..Config::default()
                };
                let field = match setting {
                    "frame_timeout" => &mut config.frame_timeout,
                    "default_timeout" => &mut config.default_timeout,
                    "heartbeat_interval" => &mut config.heartbeat_interval,
                    "dead_peer_timeout" => &mut config.dead_peer_timeout,
                    "idle_timeout" => &mut config.idle_timeout,
                    _ => &mut config.write_stall_timeout,
                };
                *field = Some(value);
                config
            };
            assert_eq!(
                with(Duration::MAX).validate(),
                Err(ConfigError::TooLong {
                    setting,
                    value: Duration::MAX,
                    max: MAX_DURATION
                })
            );
            assert_eq!(
                with(MAX_DURATION).validate(),
                Ok(()),
                "{setting} at the cap"
            );
        }
    }

    #[test]
    fn zero_byte_budgets_are_refused() {
        for (setting, config) in [
            (
                "request_bytes",
                Config {
                    request_bytes: 0,
                    ..Config::default()
                },
            ),
            (
                "one_way_bytes",
                Config {
                    one_way_bytes: 0,
                    ..Config::default()
                },
            ),
        ] {
            assert_eq!(config.validate(), Err(ConfigError::Zero { setting }));
        }
    }
}
