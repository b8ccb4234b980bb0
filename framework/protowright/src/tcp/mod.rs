//! The TCP transport: length-delimited envelopes over a byte stream.
//!
//! Servers and clients on TCP are [`crate::Server`] and [`crate::Client`]
//! with [`crate::Transport::Tcp`]; this module holds what is TCP's own:
//! the stream link that cuts a byte stream into envelope frames (used for
//! TCP, TLS, and the in-memory harness's pipe) and, with the `tls`
//! feature, TLS through rustls.
//!
//! On the wire each frame is a varint length followed by one
//! `protowright.v1.Envelope` (see the crate README): calls, responses,
//! and the protocol's messages, all in one order. Frames above the
//! session's `max_frame` are refused before anything is allocated, and the
//! connection is closed with a GOAWAY saying why.

mod link;
#[cfg(feature = "tls")]
pub mod tls;

pub(crate) use link::StreamLink;
