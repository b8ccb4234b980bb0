//! Remote procedure calls over any ordered byte stream.
//!
//! A [`Session`] runs the protocol described in `protowright/v1/rpc.proto`
//! over one stream: calls in both directions, each with an id, an optional
//! deadline the callee honours too, cancellation when the caller gives up,
//! status codes with messages, and bounded calls in flight. Generated
//! clients call through the [`Channel`] trait ([`Client`] implements it);
//! generated servers are dispatched to through the [`Service`] trait.
//!
//! The transports (`tcp`, `udp`) run sessions over their connections;
//! [`memory::connect`] runs one over an in-memory pipe for tests.

mod client;
mod config;
mod keepalive;
pub mod memory;
mod outbox;
mod service;
mod session;
mod shared;
mod stats;
mod status;
mod wire;

pub use client::Client;
pub(crate) use client::Offer;
pub use config::{Config, ConfigError};
pub use service::{CallOptions, Channel, NoService, Service, decode_request, encode, unary};
pub use session::Session;
pub use stats::Stats;
pub use status::{Code, Status};

/// Cuts `stream` into frames and decodes each as an envelope, for
/// fuzzing: never panics, whatever the bytes.
#[doc(hidden)]
pub fn fuzz_envelopes(stream: &[u8]) {
    let mut cutter = crate::codec::Delimited::new(1 << 20);
    let mut buf = bytes::BytesMut::from(stream);
    while let Ok(Some(frame)) = cutter.decode(&mut buf) {
        let _ = wire::decode_envelope(frame);
    }
    let _ = cutter.decode_eof(&buf);
}

#[cfg(test)]
mod tests;
