//! Remote procedure calls and protocol messages over one message link.
//!
//! A [`Session`] runs the protocol described in `protowright/v1/rpc.proto`
//! over one link: calls in both directions, each with an id, an optional
//! deadline the callee honours too, cancellation when the caller gives up,
//! status codes with messages, bounded calls in flight, and the protocol's
//! own messages in order with the calls. Generated clients call through
//! the [`Channel`] trait; generated servers are dispatched to through the
//! [`Service`] trait.
//!
//! Applications rarely touch a session directly: a
//! [`Connection`](crate::Connection) runs one on either transport (over a
//! TCP stream, or over the session lane of a reliable-UDP connection).
//!
//! # Map
//! - `session`: the task driving a link (read, write, keepalive sides).
//! - `link`: what a session runs over; `stream` is the link over a byte
//!   stream (TCP, in memory), the session-lane link is in [`crate::udp`].
//! - `shared`: the state the task and the handles share, and the
//!   session's lifecycle (open, draining, closed).
//! - `calls`, `serving`: the caller's calls awaiting responses, the peer's
//!   calls being served.
//! - `outbox`, `inbox`: the bounded queues of envelopes to write and of
//!   protocol messages waiting for the application.
//! - `keepalive`: heartbeats, the dead-peer bound, the idle timeout.
//! - `wire`: building and decoding envelopes.
//! - [`Client`], [`Service`], [`Channel`], [`Status`], [`Config`], [`Stats`].

mod budget;
mod calls;
mod client;
mod config;
mod handler;
mod inbox;
mod keepalive;
pub(crate) mod link;
mod one_way;
mod outbox;
mod service;
mod serving;
mod session;
mod shared;
mod stats;
mod status;
mod stream;
mod wire;

pub use client::Client;
pub(crate) use config::check_duration;
pub use config::{Config, ConfigError, MAX_DURATION};
pub use service::{CallOptions, Channel, NoService, Service, decode_request, encode, unary};
pub(crate) use session::Pending;
pub use session::Session;
pub use stats::Stats;
pub use status::{Code, Status};
pub(crate) use stream::StreamLink;

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
