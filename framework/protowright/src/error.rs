//! protowright's errors: why a server or client could not start, why a
//! message could not be sent or received, and why a connection ended.
//!
//! Calls report a [`Status`](crate::rpc::Status) instead (a gRPC-style code
//! and message), because a call's failure can come from the peer's handler.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use thiserror::Error;

use crate::codec::FrameError;
use crate::rpc::{Code, Status};

/// Why a server or client could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot work; nothing was started. The text names
    /// the setting and what it must be.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The address could not be bound (in use, not local, no permission).
    #[error("could not bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The first connection to the server could not be made. A client that
    /// was connected once reconnects by itself instead; this is for the
    /// first attempt, which fails fast so a wrong address or a server that
    /// is not running is reported at once.
    #[error("could not connect to {addr} over {transport}: {reason}{}", listening_hint(*.unreachable, addr, *.transport))]
    Connect {
        /// The server's address.
        addr: SocketAddr,
        /// The transport tried: a server on the other one refuses or stays
        /// silent just like no server at all.
        transport: crate::Transport,
        /// What the attempt ran into.
        reason: String,
        /// Whether nothing answered at that address (refused, or silent
        /// until the timeout), as opposed to a server that answered and
        /// refused: the message then asks whether a server listens there.
        unreachable: bool,
    },
}

/// How many bytes a partial frame announced, for [`ConnectionError::FrameTimeout`].
fn expected_bytes(expected: Option<usize>) -> String {
    expected.map_or_else(|| "an unknown number of".to_owned(), |len| len.to_string())
}

/// The hint for a connection nothing answered.
fn listening_hint(unreachable: bool, addr: &SocketAddr, transport: crate::Transport) -> String {
    if unreachable {
        format!(" (is a protowright server listening on {addr} over {transport}?)")
    } else {
        String::new()
    }
}

impl From<crate::rpc::ConfigError> for Error {
    fn from(error: crate::rpc::ConfigError) -> Self {
        // The session's error already says "invalid configuration".
        let text = error.to_string();
        let text = text
            .strip_prefix("invalid configuration: ")
            .unwrap_or(&text);
        Self::Config(text.to_owned())
    }
}

impl From<crate::udp::proto::ConfigError> for Error {
    fn from(error: crate::udp::proto::ConfigError) -> Self {
        Self::Config(error.to_string())
    }
}

/// Why a protocol message was not sent.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The connection has ended (or, for a reconnecting client, is down
    /// now); `reason` says why.
    #[error("cannot send to {peer}: {reason}")]
    Closed {
        /// Who the message was for.
        peer: String,
        /// Why the connection is gone.
        reason: String,
    },
    /// The message is larger than its schema's `max_size`, the connection's
    /// frame limit or the largest message the peer accepts. It was not sent.
    #[error("a {len}-byte {message} exceeds the {max}-byte limit for {peer}; it was not sent")]
    TooLarge {
        /// Who the message was for.
        peer: String,
        /// The message's protobuf name.
        message: &'static str,
        /// Its encoded length.
        len: usize,
        /// The limit it broke.
        max: usize,
    },
    /// The outgoing queue is full (only `try_send` says so; `send` waits).
    #[error("the outgoing queue to {peer} is full; wait (send) or try again later")]
    Full {
        /// Who the message was for.
        peer: String,
    },
    /// The message's channel is beyond the channels the connection has.
    #[error("channel {channel} does not exist on the connection with {peer} (it has {channels})")]
    NoSuchChannel {
        /// Who the message was for.
        peer: String,
        /// The channel asked for.
        channel: u32,
        /// How many the connection has.
        channels: u32,
    },
}

/// Why a protocol message could not be received.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvError {
    /// The connection ended with an error (a clean end is `Ok(None)`);
    /// `reason` says why. Messages that arrived before were all returned.
    #[error("the connection with {peer} ended: {reason}")]
    Closed {
        /// Who was on the other end.
        peer: String,
        /// Why it ended.
        reason: String,
    },
    /// A message arrived that does not decode as the protocol asked for:
    /// the peer speaks another protocol or version on this connection. The
    /// message is dropped; the connection stays up.
    #[error("a message from {peer} is not a valid {protocol}: {source}")]
    Decode {
        /// Who sent it.
        peer: String,
        /// The protocol root it was decoded as.
        protocol: &'static str,
        /// What protobuf decoding reported.
        #[source]
        source: prost::DecodeError,
    },
}

/// Why a connection ended with an error. Names the peer and the cause.
///
/// The connection is gone when this is reported; calls that were waiting on
/// it fail with `UNAVAILABLE` carrying the same explanation. Other
/// connections are not affected.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// Reading from or writing to the socket failed (reset, broken pipe...).
    #[error("i/o error on the connection with {peer}: {source}")]
    Io {
        /// Who was on the other end.
        peer: String,
        /// The operating system's error.
        #[source]
        source: Arc<io::Error>,
    },
    /// The peer sent a frame that cannot be read: oversized, with a bad
    /// length prefix, or cut off by the end of the stream.
    #[error("bad frame from {peer}: {source}")]
    Frame {
        /// Who sent it.
        peer: String,
        /// What was wrong with it.
        #[source]
        source: FrameError,
    },
    /// A frame arrived whole but is not a valid protobuf envelope.
    #[error("undecodable envelope from {peer}: {source}")]
    Decode {
        /// Who sent it.
        peer: String,
        /// What protobuf decoding reported.
        #[source]
        source: prost::DecodeError,
    },
    /// The peer broke the protocol's rules (for example, an envelope with no kind).
    #[error("protocol violation by {peer}: {reason}")]
    Protocol {
        /// Who broke the rule.
        peer: String,
        /// Which rule.
        reason: String,
    },
    /// Nothing at all arrived from the peer for the dead-peer bound, though
    /// heartbeats were sent: it crashed, or the path to it is cut.
    #[error("no data from {peer} for {silence:?}: the peer is unreachable or not responding")]
    Timeout {
        /// Who fell silent.
        peer: String,
        /// How long the silence lasted.
        silence: std::time::Duration,
    },
    /// A frame the peer started did not arrive whole within the frame
    /// timeout (`rpc::Config::frame_timeout`), counted from its first byte:
    /// the peer is too slow or is trickling bytes to hold the connection
    /// open. The peer is told why. Raise the timeout if frames this large
    /// must cross links this slow.
    #[error(
        "a frame from {peer} did not arrive within {limit:?} of its first byte: \
         {received} of {}{}", expected_bytes(*.expected), " bytes came; the peer is too slow or stalling"
    )]
    FrameTimeout {
        /// Who sent the partial frame.
        peer: String,
        /// The frame timeout in force.
        limit: std::time::Duration,
        /// Bytes of the frame that had arrived: of its body once its
        /// length prefix was read, else of the prefix.
        received: usize,
        /// The body length its prefix announced, if the prefix had arrived.
        expected: Option<usize>,
    },
    /// Writing to the peer made no progress for the write-stall timeout: it
    /// stopped reading.
    #[error("writing to {peer} made no progress for {stalled:?}: the peer stopped reading")]
    WriteStalled {
        /// Who stopped reading.
        peer: String,
        /// How long the write was stuck.
        stalled: std::time::Duration,
    },
    /// The reliable-UDP connection under the session ended other than by a
    /// clean close (silence, a reset, a refusal, a protocol violation).
    #[error("the reliable-UDP connection with {peer} ended: {reason}")]
    Udp {
        /// Who was on the other end.
        peer: String,
        /// Why it ended.
        reason: crate::udp::CloseReason,
    },
    /// The session's task was stopped before it could report (its runtime
    /// shut down).
    #[error("the session with {peer} was stopped by its runtime")]
    Aborted {
        /// Who was on the other end.
        peer: String,
    },
}

impl ConnectionError {
    /// An I/O error on the connection with `peer`.
    pub(crate) fn io(peer: &str, source: io::Error) -> Self {
        Self::Io {
            peer: peer.to_owned(),
            source: Arc::new(source),
        }
    }

    /// What the peer is told (in a GOAWAY) before the connection is closed
    /// for this error: `Some` when the peer caused it and is still there to
    /// hear why.
    pub(crate) fn farewell(&self) -> Option<Status> {
        let code = match self {
            Self::Frame {
                source: FrameError::TooLarge { .. },
                ..
            } => Code::ResourceExhausted,
            Self::Frame {
                source: FrameError::BadLength { .. },
                ..
            }
            | Self::Decode { .. }
            | Self::Protocol { .. } => Code::InvalidArgument,
            Self::FrameTimeout { .. } => Code::DeadlineExceeded,
            _ => return None,
        };
        let reason = match self {
            Self::Frame { source, .. } => format!("this side refused a frame: {source}"),
            Self::Decode { source, .. } => {
                format!("this side could not decode an envelope: {source}")
            }
            other => other.to_string(),
        };
        Some(Status::new(code, reason))
    }
}
