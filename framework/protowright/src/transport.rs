//! Which transport a server or client runs on.

use std::fmt;
use std::str::FromStr;

/// The transport under a [`Server`](crate::Server) or
/// [`Client`](crate::Client). The application's code is the same on both;
/// only what the schema's delivery options do differs.
///
/// - [`Tcp`](Self::Tcp): one ordered byte stream per connection. Every
///   message is reliable and ordered with every other, whatever its
///   delivery option says, and a lost segment delays everything behind it.
///   Works through any firewall that passes TCP, and with TLS
///   (`tcp::tls`). Pick it for request/response services and chat.
/// - [`Udp`](Self::Udp): protowright's reliable UDP. Each message travels
///   as its schema says: reliable ordered per channel, reliable unordered,
///   unreliable, or unreliable sequenced, so a lost packet delays only its
///   own channel and stale game state is never resent. Pick it for
///   real-time games, and for bulk transfers over lossy or long paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Length-delimited envelopes over TCP.
    Tcp,
    /// protowright's reliable UDP.
    Udp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        })
    }
}

/// A transport name that is neither `tcp` nor `udp`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown transport `{0}`: expected `tcp` or `udp`")]
pub struct UnknownTransport(pub String);

impl FromStr for Transport {
    type Err = UnknownTransport;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Self::Tcp),
            "udp" => Ok(Self::Udp),
            _ => Err(UnknownTransport(name.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for transport in [Transport::Tcp, Transport::Udp] {
            assert_eq!(transport.to_string().parse(), Ok(transport));
        }
        assert_eq!("UDP".parse(), Ok(Transport::Udp));
        assert_eq!(
            "quic".parse::<Transport>().unwrap_err().to_string(),
            "unknown transport `quic`: expected `tcp` or `udp`"
        );
    }
}
