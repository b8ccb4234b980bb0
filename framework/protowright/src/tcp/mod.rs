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
//! connection is closed with a GOAWAY saying why.

#[cfg(feature = "tls")]
pub mod tls;
