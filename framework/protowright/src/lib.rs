//! protowright: custom network protocols from `.proto` files.
//!
//! You describe your messages and services in `.proto` files;
//! `protowright-build` turns them into Rust types, service traits, typed
//! clients and dispatchers; this crate runs them over a connection.
//!
//! # Map
//!
//! The path a message takes, and the module that handles each step:
//!
//! ```text
//! schema (.proto) ── protowright-build ──> generated types + glue  (schema)
//!   typed client call ──> encoded request                          (rpc)
//!   envelope with call id and deadline ──> length-delimited frame  (codec)
//!   frame ──> byte stream on a socket                              (net)
//! ```
//!
//! - [`schema`]: what generated code implements — per-message delivery
//!   settings, protocol roots, method descriptors.
//! - [`rpc`]: sessions, clients, status codes, the in-memory harness.
//! - [`codec`]: framing, pure over a buffer.
//! - [`net`]: the socket traits every transport is written against, and the
//!   real-socket provider. The simulation provider lives in `protowright-sim`.
//! - [`v1`]: protowright's own wire types (envelope, status, delivery).
//! - [`ConnectionError`]: why a connection ended.

pub mod codec;
mod error;
pub mod net;
pub mod rpc;
pub mod schema;
pub mod tcp;
pub mod udp;
pub mod v1;

pub use error::ConnectionError;
pub use schema::{Delivery, MAX_CHANNELS, MessageInfo, Method, Outgoing, Protocol, Route};

/// Re-exports for generated code, so a user's crate needs no direct
/// dependency on them. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use bytes::Bytes;
    pub use prost;
}
