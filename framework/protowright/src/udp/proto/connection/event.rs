//! What a connection tells its application: lifecycle events, why it
//! ended, and the close codes on the wire.

use std::time::Duration;

use crate::udp::proto::packet::RefuseReason;

/// The close code of a close the application asked for without one.
pub const CLOSE_NORMAL: u64 = 0;
/// The close code sent when the peer broke the protocol.
pub const CLOSE_PROTOCOL_VIOLATION: u64 = 1;

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// This side closed it.
    #[error("closed locally (code {code}): {reason}")]
    Local {
        /// The close code.
        code: u64,
        /// The explanation sent to the peer.
        reason: String,
    },
    /// The peer closed it.
    #[error("closed by the peer (code {code}): {reason}")]
    Peer {
        /// The peer's close code.
        code: u64,
        /// The peer's explanation.
        reason: String,
    },
    /// Nothing was heard from the peer for the idle timeout.
    #[error("the peer went silent for {0:?}")]
    IdleTimeout(Duration),
    /// The server never answered.
    #[error("no answer from the server within {0:?}")]
    HandshakeTimeout(Duration),
    /// The peer holds no such connection (it restarted or forgot it).
    #[error("the peer reset the connection: it holds no such connection (restarted?)")]
    Reset,
    /// The server refused the connection.
    #[error("the server refused the connection ({reason:?}): {detail}")]
    Refused {
        /// Why.
        reason: RefuseReason,
        /// The server's explanation.
        detail: String,
    },
    /// The peer broke the protocol; this side closed the connection.
    #[error("the peer broke the protocol: {0}")]
    ProtocolViolation(String),
}

/// Something that happened to a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake finished: messages can flow.
    Connected,
    /// The connection ended; nothing more will be delivered or sent.
    Closed(CloseReason),
}
