//! The reliable-UDP protocol core, without I/O.
//!
//! A deterministic state machine: an [`Endpoint`] is fed datagrams
//! ([`Endpoint::handle_datagram`]) and time ([`Endpoint::handle_timeout`]),
//! and hands back datagrams to send ([`Endpoint::poll_transmit`]), the time
//! it next needs attention ([`Endpoint::poll_timeout`]) and lifecycle events
//! ([`Endpoint::poll_event`]). It owns no socket, clock or thread and its
//! randomness comes from a seed, so the same inputs give the same outputs:
//! property tests drive it over a simulated link without any runtime, and
//! the async driver in [`crate::udp`] is a thin loop around it.
//!
//! `poll_transmit(now, buf)` appends the datagram to a caller's buffer and
//! returns its destination and size, rather than returning an owned
//! datagram, so a driver can gather a batch into one buffer for batched
//! system calls without an allocation per packet.
//!
//! # Map
//! - `packet`, `frame`, `coding`: the wire format and its decoders, which
//!   refuse malformed input with a [`DecodeError`] and never panic.
//! - `cookie`: stateless address validation for the handshake.
//! - `crypto`: the Noise handshake, per-packet AEAD, replay window, reset
//!   and connect tokens.
//! - `connection`: one connection: handshake, acks, RFC 9002 loss
//!   recovery, flow control, keepalive and close (a folder, one concept a
//!   file: its `mod.rs` has the map).
//! - `send`, `recv`: a connection's message queues per priority,
//!   fragmentation and reassembly per delivery lane.
//! - `rtt`, `congestion`: RTT estimation and congestion control (the
//!   model-based default and NewReno, behind the [`Controller`] trait, fed
//!   delivery-rate samples) with pacing.
//! - `mtu`: path MTU discovery with black-hole fallback.
//! - `endpoint`: connections by id, the server's handshake, timers.
//! - `budget`, `limiter`: what an endpoint bounds across connections (the
//!   receive memory of all of them, connections per address) and the pace
//!   of its stateless answers.
//! - `fuzzing`: hidden hooks the fuzz targets and the fuzz smoke test call
//!   (a server fed datagrams, an established encrypted session fed sealed
//!   frames, a handshake with an attacker on the path).

mod budget;
mod coding;
mod config;
pub mod congestion;
mod connection;
mod cookie;
pub mod crypto;
mod endpoint;
mod frame;
mod fuzzing;
mod limiter;
mod mtu;
mod packet;
mod ranges;
mod recv;
mod rtt;
mod send;

pub use config::{Config, ConfigError, MAX_DURATION, MAX_MESSAGE_CEILING, MAX_SEQUENCE_LEAD};
pub use congestion::{CongestionControl, Controller};
pub use connection::{
    CLOSE_NORMAL, CLOSE_PROTOCOL_VIOLATION, CloseReason, Connection, ConnectionStats, Event, Side,
    Transmit,
};
pub use endpoint::{ConnectError, ConnectionHandle, Endpoint, EndpointStats};
pub use frame::Lane;
#[doc(hidden)]
pub use fuzzing::{fuzz_endpoint, fuzz_handshake, fuzz_session};
pub use packet::{MIN_INITIAL_SIZE, RefuseReason, VERSION};
pub use recv::{Message, ReceiveBuffer};
pub use rtt::RttEstimator;
pub use send::{ChannelDepth, QueueDepths};

/// Why received bytes are not a valid packet or frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("truncated: the input ends inside a field")]
    Truncated,
    /// The checksum does not match: the datagram was corrupted.
    #[error("checksum mismatch: the datagram was corrupted")]
    Checksum,
    /// A version this build does not speak.
    #[error("unsupported protocol version {0} (this build speaks {VERSION})")]
    UnsupportedVersion(u8),
    /// An unknown packet type.
    #[error("unknown packet type {0:#04x}")]
    UnknownPacketType(u8),
    /// An unknown frame type.
    #[error("unknown frame type {0:#04x}")]
    UnknownFrameType(u8),
    /// A field's value is out of its range.
    #[error("{0} out of range")]
    OutOfRange(&'static str),
    /// A text field is not UTF-8.
    #[error("{0} is not UTF-8")]
    NotUtf8(&'static str),
}

/// Why a message could not be queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The connection is closing or closed.
    #[error("the connection is closing or closed")]
    Closed,
    /// The message is larger than this side or the peer accepts.
    #[error("a {len}-byte message is larger than the {max}-byte limit")]
    TooLarge {
        /// The message's length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The channel does not exist.
    #[error("channel {channel} does not exist (the connection has {channels})")]
    NoSuchChannel {
        /// The channel asked for.
        channel: u32,
        /// How many there are.
        channels: u32,
    },
    /// The send buffer is full: wait for the peer to acknowledge.
    #[error("the send buffer is full; wait for the peer to catch up")]
    Full,
}

/// Decodes a datagram as far as the packet layer, for fuzzing: the
/// checksum, the header and, for data packets, every frame. Returns the
/// first error. Never panics, whatever the input.
#[doc(hidden)]
pub fn fuzz_decode(datagram: &[u8]) -> Result<(), DecodeError> {
    let packet = packet::unseal(datagram)?;
    fuzz_decode_unsealed(packet)
}

/// [`fuzz_decode`] without the checksum, so a fuzzer reaches the decoders
/// behind it.
#[doc(hidden)]
pub fn fuzz_decode_unsealed(packet: &[u8]) -> Result<(), DecodeError> {
    if let packet::Packet::Data { frames, .. } = packet::Packet::decode(packet)? {
        for frame in frame::Frames::new(frames) {
            frame?;
        }
    }
    Ok(())
}

/// `datagram` with a valid checksum appended, so a fuzzer's bytes reach
/// the decoders behind it.
#[doc(hidden)]
pub fn fuzz_seal(datagram: &[u8]) -> Vec<u8> {
    let mut sealed = datagram.to_vec();
    packet::seal(&mut sealed, 0);
    sealed
}

/// Decodes a data packet's frames, for fuzzing.
#[doc(hidden)]
pub fn fuzz_decode_frames(frames: &[u8]) -> Result<usize, DecodeError> {
    let mut count = 0;
    for frame in frame::Frames::new(frames) {
        frame?;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests;

/// One message fragment to put in a packet with [`test_fragment_frames`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct TestFragment<'a> {
    /// The lane.
    pub lane: Lane,
    /// The channel.
    pub channel: u32,
    /// The message's sequence number on its lane and channel.
    pub sequence: u64,
    /// The message's announced length.
    pub total: u64,
    /// Where this fragment starts in the message.
    pub offset: u64,
    /// Its bytes.
    pub data: &'a [u8],
}

/// The frames carrying `fragments`, so a test can play a hostile peer that
/// crafts its own frames and seals them with its connection's real keys
/// ([`Endpoint::seal_frames_as`]). The fragments must lie within their
/// announced lengths.
#[doc(hidden)]
pub fn test_fragment_frames(fragments: &[TestFragment<'_>]) -> Vec<u8> {
    let mut frames = Vec::new();
    for piece in fragments {
        frame::put_fragment(
            &mut frames,
            &frame::Fragment {
                lane: piece.lane,
                channel: piece.channel,
                sequence: piece.sequence,
                total: piece.total,
                offset: piece.offset,
                data: piece.data,
            },
        );
    }
    frames
}
