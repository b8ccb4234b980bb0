//! Why a TCP server or client could not start.

use std::io;
use std::net::SocketAddr;

use thiserror::Error;

use crate::rpc::ConfigError;

/// Why a TCP server or client could not start. (Failures of individual
/// connections and calls are reported per connection and per call.)
#[derive(Debug, Error)]
pub enum Error {
    /// The configuration cannot work; nothing was started.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The address could not be bound (in use, not local, no permission).
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}
