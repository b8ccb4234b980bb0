//! protowright: custom network protocols from `.proto` files.
//!
//! You describe your messages and services in `.proto` files;
//! `protowright-build` turns them into Rust types, service traits, typed
//! clients and dispatchers; this crate runs them over TCP or protowright's
//! own reliable UDP, with one API for both.
//!
//! # The API in one screen
//!
//! - [`Server::bind`]`(net, transport, addr, config)` then
//!   [`serve`](Server::serve) one service on every connection, or
//!   [`accept`](Server::accept) connections and
//!   [`serve_with`](Incoming::serve_with) a service built from each (to
//!   push messages to it). [`ServerHandle::shutdown`] drains gracefully.
//! - [`Client::connect`]`(net, transport, addr, config)` fails fast when no
//!   server answers, then keeps the connection alive, reconnecting and
//!   retrying idempotent calls.
//! - On a [`Connection`] or a [`Client`]: `send(message)` any message of a
//!   protocol (its schema options choose the delivery and channel),
//!   `recv()` the protocol root's messages, and make calls with the
//!   generated `FooClient::new(connection)`.
//! - `net` is [`net::Tokio`] for real sockets, or `protowright_sim::Turmoil`
//!   in a deterministic simulation: nothing else changes.
//!
//! # Map
//!
//! The path a message takes, and the module that handles each step:
//!
//! ```text
//! schema (.proto) ── protowright-build ──> generated types + glue     (schema)
//!   connection.send(msg) / typed client call ──> envelope             (connection, rpc)
//!   TCP: envelope ──> length-delimited frame ──> byte stream          (tcp, codec)
//!   UDP: envelope or message ──> lane ──> packets, acks, resends      (udp, udp::proto)
//!   socket traits: real sockets or a simulation                      (net)
//! ```
//!
//! - [`schema`]: what generated code implements — per-message delivery
//!   settings, protocol roots, method descriptors.
//! - [`Connection`], [`Server`], [`Client`], [`Transport`]: the one API.
//! - [`rpc`]: sessions, status codes, the traits generated code uses.
//! - [`tcp`], [`udp`]: the transports; [`udp::proto`] is the sans-IO
//!   reliable-UDP engine.
//! - [`codec`]: framing, pure over a buffer.
//! - [`net`]: the socket traits every transport is written against, and the
//!   real-socket provider. The simulation provider lives in `protowright-sim`.
//! - [`memory`]: the in-memory harness for tests.
//! - [`v1`]: protowright's own wire types (envelope, status, delivery).
//! - [`Error`], [`SendError`], [`RecvError`], [`ConnectionError`]: what can
//!   go wrong, per operation.
//!
//! # Logs
//!
//! protowright reports through `tracing`: connection failures and their
//! causes at `debug`, give-ups and forced closes at `warn`. Install a
//! subscriber to see them, e.g. `tracing_subscriber::fmt().with_env_filter("protowright=debug").init()`.

mod client;
pub mod codec;
mod connection;
mod error;
pub mod memory;
pub mod net;
pub mod rpc;
pub mod schema;
mod server;
pub mod tcp;
mod transport;
pub mod udp;
pub mod v1;

pub use client::{Backoff, Client, ClientConfig, ClientStats, ConnectionState, RetryPolicy};
pub use connection::{Connection, ConnectionStats, Messages};
pub use error::{ConnectionError, Error, RecvError, SendError};
pub use schema::{Delivery, MAX_CHANNELS, MessageInfo, Method, Outgoing, Protocol, Route};
pub use server::{Incoming, Server, ServerConfig, ServerHandle, ServerStats};
pub use transport::{Transport, UnknownTransport};

/// Re-exports for generated code, so a user's crate needs no direct
/// dependency on them. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use bytes::Bytes;
    pub use prost;
}
