//! The TCP transport: framed protobuf connections with everything raw
//! sockets leave to the user handled.
//!
//! A [`Server`] accepts connections (up to a limit), runs an RPC session on
//! each, and shuts down gracefully. A [`Client`] keeps one connection to a
//! server alive — reconnecting with jittered exponential backoff, retrying
//! idempotent calls within a budget — and implements
//! [`rpc::Channel`](crate::rpc::Channel), so generated clients run over it.
//!
//! On the wire each frame is a varint length followed by one
//! `protowright.v1.Envelope` (see the crate README). Both ends are written
//! against [`crate::net`], so the same code runs on real sockets and in
//! simulation.

mod backoff;
mod client;
mod config;
mod error;
mod retry;
mod server;
#[cfg(feature = "tls")]
pub mod tls;

pub use backoff::Backoff;
pub use client::{Client, ClientStats, ConnectionState};
pub use config::{ClientConfig, ServerConfig};
pub use error::Error;
pub use retry::RetryPolicy;
pub use server::{Server, ServerHandle, ServerStats};
