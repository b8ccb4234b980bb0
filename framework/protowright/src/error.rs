//! Why a connection ended.

use std::io;

use thiserror::Error;

use crate::codec::FrameError;

/// Why a connection ended with an error. Names the peer and the cause.
///
/// The connection is gone when this is reported; calls that were waiting on
/// it fail with `UNAVAILABLE` carrying the same explanation. Other
/// connections are not affected.
#[derive(Debug, Error)]
pub enum ConnectionError {
    /// Reading from or writing to the socket failed (reset, broken pipe...).
    #[error("i/o error on the connection with {peer}: {source}")]
    Io {
        /// Who was on the other end.
        peer: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
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
    /// Writing to the peer made no progress for the write-stall timeout: it
    /// stopped reading.
    #[error("writing to {peer} made no progress for {stalled:?}: the peer stopped reading")]
    WriteStalled {
        /// Who stopped reading.
        peer: String,
        /// How long the write was stuck.
        stalled: std::time::Duration,
    },
    /// The session's task was stopped before it could report (its runtime
    /// shut down).
    #[error("the session with {peer} was stopped by its runtime")]
    Aborted {
        /// Who was on the other end.
        peer: String,
    },
}
