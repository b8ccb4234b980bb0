//! Errors of the reliable-UDP transport.

use std::io;
use std::net::SocketAddr;

use super::proto::{CloseReason, ConfigError, ConnectError, SendError};

/// What went wrong on a reliable-UDP endpoint or connection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot work; nothing was started.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The socket could not be bound.
    #[error("could not bind a UDP socket on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A connection could not be started.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The connection ended (or never came up); the reason says why.
    #[error("connection to {peer} ended: {reason}")]
    Closed {
        /// The peer.
        peer: SocketAddr,
        /// Why it ended.
        reason: CloseReason,
    },
    /// A message could not be queued.
    #[error("cannot send to {peer}: {source}")]
    Send {
        /// The peer.
        peer: SocketAddr,
        /// Why.
        #[source]
        source: SendError,
    },
    /// The endpoint was shut down, or its socket failed.
    #[error("the endpoint is shut down{}", .0.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    EndpointClosed(Option<String>),
}
