//! Settings for an endpoint and its connections, with defaults fit for a
//! game or file-transfer service on the internet.

use std::time::Duration;

use super::congestion::CongestionControl;
use super::crypto::{MAX_KEY_UPDATE_PACKETS, MIN_KEY_UPDATE_PACKETS, Security};

/// Settings for an endpoint and every connection it holds.
#[derive(Debug, Clone)]
pub struct Config {
    /// The datagram size every connection starts with and falls back to,
    /// header included. Default 1200 bytes, which every IPv4 and IPv6 path
    /// carries.
    pub initial_datagram_size: usize,
    /// The largest datagram path MTU discovery may settle on. Default
    /// 16,384 bytes: loopback and jumbo-frame paths carry it, and on other
    /// paths the search stops at what gets through (1,472 bytes on an
    /// Ethernet IPv4 path). Larger datagrams mean fewer packets and system
    /// calls per byte; beyond 16 KiB, loopback transfers measured slower
    /// (socket buffers hold fewer datagrams, and one loss costs more).
    pub max_datagram_size: usize,
    /// Whether connections probe for datagrams larger than
    /// `initial_datagram_size` (DPLPMTUD-style, with fallback when a path
    /// stops carrying them). Default on.
    pub mtu_discovery: bool,
    /// How long a finished path-MTU search rests before it probes upward
    /// again. Default 10 minutes (RFC 8899's raise timer).
    pub mtu_search_interval: Duration,
    /// The largest message accepted and sent. Default 1 MiB.
    pub max_message_size: u64,
    /// Bytes of reliable data the peer may send beyond what the application
    /// has read: the flow-control window. At least `max_message_size`.
    /// Default 16 MiB.
    pub receive_window: u64,
    /// Bytes queued for sending, sent or not, before `send` waits. Default
    /// 16 MiB.
    pub send_buffer: u64,
    /// Bytes held for reassembling and delivering unreliable messages.
    /// Default 1 MiB.
    pub unreliable_buffer: u64,
    /// Ordered channels per connection (channel ids `0..channels`), for the
    /// reliable-ordered and unreliable-sequenced deliveries. Default and
    /// ceiling [`MAX_CHANNELS`](crate::MAX_CHANNELS) (256), which is what
    /// `protowright-build` lets a schema name; channel state is made only
    /// for channels in use, so unused ones cost nothing.
    pub channels: u32,
    /// A connection that hears nothing for this long is closed. Default 15 s.
    pub idle_timeout: Duration,
    /// A connection that has sent nothing for this long sends a ping.
    /// Default 5 s.
    pub keepalive_interval: Duration,
    /// How long an ack may be held waiting for a second packet. Default 5 ms.
    pub max_ack_delay: Duration,
    /// The RTT assumed before the first sample. Default 100 ms.
    pub initial_rtt: Duration,
    /// How long a client tries to connect. Default 10 s.
    pub handshake_timeout: Duration,
    /// How long a server's address-validation cookie stays good. Default 10 s.
    pub cookie_lifetime: Duration,
    /// The most connections an endpoint holds. Default 16,384.
    pub max_connections: usize,
    /// The most connections a server holds from one IP address (any port);
    /// further attempts are refused as full, saying why. It keeps one host
    /// from taking the whole connection table and memory budget. Default
    /// 256: generous, because many clients can share one address behind a
    /// carrier-grade NAT.
    pub max_connections_per_address: usize,
    /// Bytes all of an endpoint's connections together may hold for
    /// receiving (messages being reassembled, waiting for an earlier one,
    /// or unread), each message charged its bookkeeping overhead besides
    /// its payload. When it is reached, new reliable data is refused
    /// without being acknowledged, so the sender resends it later, as if it
    /// had been lost (the message each ordered lane waits for is still
    /// taken, so no connection stalls for good); new unreliable data is
    /// dropped. At least `receive_window`. Default 512 MiB.
    pub receive_budget: u64,
    /// The most reliable messages a connection holds that it cannot deliver
    /// yet: being reassembled, or complete and waiting for an earlier one
    /// on their channel. Beyond it, fragments of further messages are
    /// refused without acknowledgement and resent later (the message a
    /// lane waits for is always taken). Default 16,384.
    pub max_early_messages: usize,
    /// How far past the message a reliable lane waits for a message's
    /// sequence number may be; fragments further ahead are refused without
    /// acknowledgement and resent later. It bounds the bookkeeping of
    /// gaps between messages. Default 65,536.
    pub max_sequence_lead: u64,
    /// Stateless answers (retries, resets, refusals) an endpoint sends per
    /// second on average; beyond it they are dropped and counted, so a
    /// flood of spoofed packets cannot turn the endpoint into a reflector.
    /// Default 4,096.
    pub stateless_rate: u32,
    /// Stateless answers an endpoint may send at once after a quiet spell
    /// (the token bucket's depth). Default 1,024.
    pub stateless_burst: u32,
    /// A hash of the protocol schema; peers with different hashes refuse to
    /// connect. Default 0 (no check beyond equality of zeros).
    pub schema_hash: u64,
    /// The congestion controller. Default BBR-style (model-based).
    pub congestion_control: CongestionControl,
    /// Keys, pinning, tokens and the cipher. Default: every connection
    /// encrypted, with a fresh static key per endpoint.
    pub security: Security,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            initial_datagram_size: 1200,
            max_datagram_size: 16_384,
            mtu_discovery: true,
            mtu_search_interval: Duration::from_secs(600),
            max_message_size: 1 << 20,
            receive_window: 16 << 20,
            send_buffer: 16 << 20,
            unreliable_buffer: 1 << 20,
            channels: crate::MAX_CHANNELS,
            idle_timeout: Duration::from_secs(15),
            keepalive_interval: Duration::from_secs(5),
            max_ack_delay: Duration::from_millis(5),
            initial_rtt: Duration::from_millis(100),
            handshake_timeout: Duration::from_secs(10),
            cookie_lifetime: Duration::from_secs(10),
            max_connections: 16_384,
            max_connections_per_address: 256,
            receive_budget: 512 << 20,
            max_early_messages: 16_384,
            max_sequence_lead: 65_536,
            stateless_rate: 4096,
            stateless_burst: 1024,
            schema_hash: 0,
            congestion_control: CongestionControl::default(),
            security: Security::default(),
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A datagram size is outside what the protocol supports.
    #[error("{name} {size} is outside 1200..=65527")]
    DatagramSize {
        /// The setting.
        name: &'static str,
        /// Its value.
        size: usize,
    },
    /// The discovery ceiling is below the starting size.
    #[error("max_datagram_size ({max}) is below initial_datagram_size ({initial})")]
    DatagramCeilingBelowInitial {
        /// The ceiling.
        max: usize,
        /// The starting size.
        initial: usize,
    },
    /// The window cannot hold one largest message.
    #[error("receive_window ({window}) must hold at least one max_message_size ({max_message})")]
    WindowTooSmall {
        /// The window.
        window: u64,
        /// The largest message.
        max_message: u64,
    },
    /// The largest message is above what the protocol carries.
    #[error("max_message_size {0} is above the protocol's 1 GiB")]
    MessageTooLarge(u64),
    /// No channels, or more than the protocol's ceiling.
    #[error("channels must be between 1 and {}", crate::MAX_CHANNELS)]
    NoChannels,
    /// A timeout of zero.
    #[error("{0} must be above zero")]
    ZeroDuration(&'static str),
    /// The keepalive would never fire before the idle timeout.
    #[error("keepalive_interval must be shorter than idle_timeout")]
    KeepaliveTooLong,
    /// Keys would update too often, or too rarely for the cipher's limits.
    #[error(
        "security.key_update_packets must be between {MIN_KEY_UPDATE_PACKETS} and {MAX_KEY_UPDATE_PACKETS}"
    )]
    KeyUpdateOutOfRange,
    /// A duration above [`MAX_DURATION`]: deadlines computed from it could
    /// overflow.
    #[error("{name} ({value:?}) is above the ceiling of {MAX_DURATION:?}")]
    DurationTooLong {
        /// The setting.
        name: &'static str,
        /// Its value.
        value: std::time::Duration,
    },
    /// A count or rate that must be above zero is zero.
    #[error("{0} must be above zero")]
    Zero(&'static str),
    /// The endpoint's receive budget cannot hold one connection's window.
    #[error("receive_budget ({budget}) must hold at least one receive_window ({window})")]
    BudgetBelowWindow {
        /// The budget.
        budget: u64,
        /// The window.
        window: u64,
    },
    /// The sequence lead is above what the receiver tracks.
    #[error("max_sequence_lead {0} is above the ceiling of {MAX_SEQUENCE_LEAD}")]
    LeadTooLong(u64),
}

/// The protocol's ceiling on message size.
pub const MAX_MESSAGE_CEILING: u64 = 1 << 30;

/// The ceiling on every duration setting: one day. Deadlines are
/// `Instant + Duration` (which panics on overflow) and backoffs multiply
/// durations, so no setting may be near the ends of the clock.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// The ceiling on [`Config::max_sequence_lead`]: the gaps a lane tracks
/// between delivered messages stay below 131,072.
pub const MAX_SEQUENCE_LEAD: u64 = 1 << 17;

impl Config {
    /// Checks the settings fit together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, size) in [
            ("initial_datagram_size", self.initial_datagram_size),
            ("max_datagram_size", self.max_datagram_size),
        ] {
            if !(1200..=65_527).contains(&size) {
                return Err(ConfigError::DatagramSize { name, size });
            }
        }
        if self.max_datagram_size < self.initial_datagram_size {
            return Err(ConfigError::DatagramCeilingBelowInitial {
                max: self.max_datagram_size,
                initial: self.initial_datagram_size,
            });
        }
        if self.max_message_size > MAX_MESSAGE_CEILING {
            return Err(ConfigError::MessageTooLarge(self.max_message_size));
        }
        if self.receive_window < self.max_message_size {
            return Err(ConfigError::WindowTooSmall {
                window: self.receive_window,
                max_message: self.max_message_size,
            });
        }
        if self.channels == 0 || self.channels > crate::MAX_CHANNELS {
            return Err(ConfigError::NoChannels);
        }
        for (name, value) in [
            ("idle_timeout", self.idle_timeout),
            ("keepalive_interval", self.keepalive_interval),
            ("initial_rtt", self.initial_rtt),
            ("handshake_timeout", self.handshake_timeout),
            ("cookie_lifetime", self.cookie_lifetime),
            ("mtu_search_interval", self.mtu_search_interval),
        ] {
            if value.is_zero() {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        for (name, value) in self.durations() {
            if value > MAX_DURATION {
                return Err(ConfigError::DurationTooLong { name, value });
            }
        }
        if self.keepalive_interval >= self.idle_timeout {
            return Err(ConfigError::KeepaliveTooLong);
        }
        if !(MIN_KEY_UPDATE_PACKETS..=MAX_KEY_UPDATE_PACKETS)
            .contains(&self.security.key_update_packets)
        {
            return Err(ConfigError::KeyUpdateOutOfRange);
        }
        self.validate_budgets()
    }

    /// Every duration setting, by name.
    fn durations(&self) -> [(&'static str, Duration); 7] {
        [
            ("idle_timeout", self.idle_timeout),
            ("keepalive_interval", self.keepalive_interval),
            ("max_ack_delay", self.max_ack_delay),
            ("initial_rtt", self.initial_rtt),
            ("handshake_timeout", self.handshake_timeout),
            ("cookie_lifetime", self.cookie_lifetime),
            ("mtu_search_interval", self.mtu_search_interval),
        ]
    }

    fn validate_budgets(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("max_connections", self.max_connections as u64),
            (
                "max_connections_per_address",
                self.max_connections_per_address as u64,
            ),
            ("max_early_messages", self.max_early_messages as u64),
            ("max_sequence_lead", self.max_sequence_lead),
            ("stateless_rate", u64::from(self.stateless_rate)),
            ("stateless_burst", u64::from(self.stateless_burst)),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.max_sequence_lead > MAX_SEQUENCE_LEAD {
            return Err(ConfigError::LeadTooLong(self.max_sequence_lead));
        }
        if self.receive_budget < self.receive_window {
            return Err(ConfigError::BudgetBelowWindow {
                budget: self.receive_budget,
                window: self.receive_window,
            });
        }
        Ok(())
    }

    /// The flow-control window the receiver advertises: the configured
    /// window plus one message's bookkeeping charge, so that a message of
    /// `max_message_size` always fits (flow control charges every reliable
    /// message [`MESSAGE_OVERHEAD`](super::recv::MESSAGE_OVERHEAD) bytes
    /// besides its payload).
    pub(crate) fn flow_window(&self) -> u64 {
        self.receive_window + super::recv::MESSAGE_OVERHEAD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_bad_settings_are_named() {
        assert_eq!(Config::default().validate(), Ok(()));
        let small_window = Config {
            max_message_size: 64 << 20,
            ..Config::default()
        };
        assert_eq!(
            small_window.validate(),
            Err(ConfigError::WindowTooSmall {
                window: 16 << 20,
                max_message: 64 << 20
            })
        );
        let big = Config {
            max_message_size: 64 << 20,
            receive_window: 64 << 20,
            ..Config::default()
        };
        assert_eq!(big.validate(), Ok(()));
        let tiny = Config {
            initial_datagram_size: 500,
            ..Config::default()
        };
        assert_eq!(
            tiny.validate(),
            Err(ConfigError::DatagramSize {
                name: "initial_datagram_size",
                size: 500
            })
        );
        let inverted = Config {
            initial_datagram_size: 4000,
            max_datagram_size: 1500,
            ..Config::default()
        };
        assert_eq!(
            inverted.validate(),
            Err(ConfigError::DatagramCeilingBelowInitial {
                max: 1500,
                initial: 4000
            })
        );
    }

    #[test]
    fn no_duration_setting_can_push_a_deadline_past_the_clock() {
        let now = std::time::Instant::now();
        let config = Config::default();
        for index in 0..config.durations().len() {
            let mut huge = Config::default();
            let name = config.durations()[index].0;
            let field = match name {
                "idle_timeout" => &mut huge.idle_timeout,
                "keepalive_interval" => &mut huge.keepalive_interval,
                "max_ack_delay" => &mut huge.max_ack_delay,
                "initial_rtt" => &mut huge.initial_rtt,
                "handshake_timeout" => &mut huge.handshake_timeout,
                "cookie_lifetime" => &mut huge.cookie_lifetime,
                "mtu_search_interval" => &mut huge.mtu_search_interval,
                other => panic!("unknown duration {other}"),
            };
            *field = Duration::MAX;
            assert_eq!(
                huge.validate(),
                Err(ConfigError::DurationTooLong {
                    name,
                    value: Duration::MAX
                }),
                "{name}"
            );
        }
        // The ceiling itself is accepted, and deadlines built from it (with
        // the largest backoff a connection applies) stay on the clock.
        let longest = Config {
            idle_timeout: MAX_DURATION,
            keepalive_interval: MAX_DURATION - Duration::from_secs(1),
            max_ack_delay: MAX_DURATION,
            initial_rtt: MAX_DURATION,
            handshake_timeout: MAX_DURATION,
            cookie_lifetime: MAX_DURATION,
            mtu_search_interval: MAX_DURATION,
            ..Config::default()
        };
        assert_eq!(longest.validate(), Ok(()));
        assert!(now.checked_add(MAX_DURATION * (1 << 16)).is_some());
    }

    #[test]
    fn budgets_must_be_above_zero_and_hold_a_window() {
        let cases = [
            (
                Config {
                    max_connections_per_address: 0,
                    ..Config::default()
                },
                ConfigError::Zero("max_connections_per_address"),
            ),
            (
                Config {
                    max_early_messages: 0,
                    ..Config::default()
                },
                ConfigError::Zero("max_early_messages"),
            ),
            (
                Config {
                    stateless_rate: 0,
                    ..Config::default()
                },
                ConfigError::Zero("stateless_rate"),
            ),
            (
                Config {
                    max_sequence_lead: MAX_SEQUENCE_LEAD + 1,
                    ..Config::default()
                },
                ConfigError::LeadTooLong(MAX_SEQUENCE_LEAD + 1),
            ),
            (
                Config {
                    receive_budget: 1 << 20,
                    ..Config::default()
                },
                ConfigError::BudgetBelowWindow {
                    budget: 1 << 20,
                    window: 16 << 20,
                },
            ),
        ];
        for (config, error) in cases {
            assert_eq!(config.validate(), Err(error));
        }
    }
}
