//! Reliable messaging over UDP: protowright's own transport.
//!
//! [`proto`] is the protocol engine, a state machine without I/O; this
//! module drives it on any [`crate::net::Net`] (real sockets or a
//! simulation). An [`Endpoint`] is one socket serving many connections;
//! a [`Connection`] carries messages on four deliveries (reliable ordered
//! per channel, reliable unordered, unreliable, unreliable sequenced), the
//! schema's protocol messages on the delivery their options give, and an
//! RPC [`Session`](crate::rpc::Session) on a lane of its own, so the same
//! generated services and clients run over UDP as over TCP.
//!
//! ```no_run
//! use protowright::net::Tokio;
//! use protowright::udp::{Config, Endpoint};
//! use protowright::Delivery;
//! # async fn run() -> Result<(), protowright::udp::Error> {
//! let server = Endpoint::server(&Tokio, "127.0.0.1:7000".parse().unwrap(), Config::default()).await?;
//! let client = Endpoint::client(&Tokio, "127.0.0.1:0".parse().unwrap(), Config::default()).await?;
//! let connection = client.connect(server.local_addr()).await?;
//! connection.send(Delivery::UnreliableSequenced, 1, "tick 1".into()).await?;
//! let accepted = server.accept().await.expect("a connection");
//! let message = accepted.recv().await?;
//! assert_eq!(&message.data[..], b"tick 1");
//! # Ok(()) }
//! ```

mod connection;
mod driver;
mod endpoint;
mod error;
pub mod proto;
mod shared;

pub use connection::Connection;
pub use endpoint::Endpoint;
pub use error::Error;
pub use proto::{CloseReason, Config, CongestionControl, ConnectionStats, Lane, Message};
