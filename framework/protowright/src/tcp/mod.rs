//! The TCP transport: length-delimited envelopes over a byte stream.
//!
//! Servers and clients on TCP are [`crate::Server`] and [`crate::Client`]
//! with [`crate::Transport::Tcp`]; a connection's session runs over the
//! stream as length-delimited envelopes (the RPC module's stream link,
//! also used for the in-memory harness's pipe). This module holds what is
//! TCP's own: with the `tls` feature, TLS through rustls.
//!
//! On the wire each frame is a varint length followed by one
//! `protowright.v1.Envelope` (see the crate README): calls, responses,
//! and the protocol's messages, all in one order. Frames above the
//! session's `max_frame` are refused before anything is allocated, and the
//! connection is closed with a GOAWAY saying why. What a peer can make a
//! connection hold is bounded by what it sent and for how long: the read
//! buffer grows with the bytes that arrived (never to an announced
//! length), a frame must arrive within `frame_timeout` of its first byte,
//! and requests and one-way messages held for handlers are bounded in
//! bytes (`request_bytes`, `one_way_bytes`); see
//! [`rpc::Config`](crate::rpc::Config).

#[cfg(feature = "tls")]
pub mod tls;
