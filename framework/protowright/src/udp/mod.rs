//! Reliable messaging over UDP: protowright's own transport.
//!
//! [`proto`] is the protocol engine, a state machine without I/O; this
//! module drives it on any [`crate::net::Net`] (real sockets or a
//! simulation). An [`Endpoint`] is one socket serving many connections; a
//! [`Connection`] here is the raw handle to one of them: bytes on four
//! delivery lanes (reliable ordered per channel, reliable unordered,
//! unreliable, unreliable sequenced) and per-channel priorities.
//!
//! Applications normally reach this transport through
//! [`crate::Server`] and [`crate::Client`] with [`crate::Transport::Udp`]:
//! they run typed protocol messages on the lanes their schema options
//! choose, and the RPC session on the connection's session lane (one
//! envelope per message, apart from the application's channels).
//!
//! ```no_run
//! use protowright::net::Tokio;
//! use protowright::udp::{Config, Endpoint};
//! use protowright::Delivery;
//! # async fn run() -> Result<(), protowright::udp::Error> {
//! let server = Endpoint::server(Tokio, "127.0.0.1:7000".parse().unwrap(), Config::default()).await?;
//! let client = Endpoint::client(Tokio, "127.0.0.1:0".parse().unwrap(), Config::default()).await?;
//! let connection = client.connect(server.local_addr()).await?;
//! connection.send(Delivery::UnreliableSequenced, 1, "tick 1".into()).await?;
//! let accepted = server.accept().await.expect("a connection");
//! let message = accepted.recv().await?;
//! assert_eq!(&message.data[..], b"tick 1");
//! # Ok(()) }
//! ```
//!
//! # Map
//! - `endpoint`: binding, connecting, accepting, shutting down.
//! - `driver`: the task moving datagrams between the socket and the engine.
//! - `shared`: the engine behind its lock; endpoint and connection phases.
//! - `connection`: the raw per-connection handle.
//! - `link`: the session lane as an RPC session's message link.

mod connection;
mod driver;
mod endpoint;
mod error;
pub(crate) mod link;
pub mod proto;
mod shared;

pub use connection::Connection;
pub use endpoint::Endpoint;
pub use error::Error;
pub use proto::crypto::{
    Cipher, ConnectToken, ConnectTokenKey, KeyError, PublicKey, Security, StaticKey, TokenError,
    TokenPolicy,
};
pub use proto::{CloseReason, Config, CongestionControl, ConnectionStats, Lane, Message};
pub(crate) use shared::{CLOSE_REFUSED, CLOSE_SESSION_FAILED, CLOSE_TURNED_AWAY};
