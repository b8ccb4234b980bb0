//! Settings for an endpoint and its connections, with defaults fit for a
//! game or file-transfer service on the internet.

use std::time::Duration;

use super::congestion::CongestionControl;
use super::crypto::{MIN_KEY_UPDATE_PACKETS, Security};

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
    /// Keys would update too often.
    #[error("security.key_update_packets must be at least {MIN_KEY_UPDATE_PACKETS}")]
    KeyUpdateTooFrequent,
}

/// The protocol's ceiling on message size.
pub const MAX_MESSAGE_CEILING: u64 = 1 << 30;

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
        if self.keepalive_interval >= self.idle_timeout {
            return Err(ConfigError::KeepaliveTooLong);
        }
        if self.security.key_update_packets < MIN_KEY_UPDATE_PACKETS {
            return Err(ConfigError::KeyUpdateTooFrequent);
        }
        Ok(())
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
}
