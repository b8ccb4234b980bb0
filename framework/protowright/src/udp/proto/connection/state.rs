//! Where a connection is in its life, each state holding only its own data.
//!
//! | from | on | to |
//! | --- | --- | --- |
//! | `AwaitingWelcome` | the welcome | `Established` |
//! | `AwaitingWelcome` | close, abort, refusal, handshake timeout | `Drained` |
//! | `Established` | close | `Flushing` |
//! | `Flushing` | every reliable message acknowledged | `Closing` |
//! | `Established`, `Flushing` | abort | `Closing` |
//! | `AwaitingWelcome`, `Established`, `Flushing` | a protocol violation | `Closing` |
//! | `AwaitingWelcome`, `Established`, `Flushing` | the peer's close | `Draining` |
//! | `Established`, `Flushing` | idle timeout | `Drained` |
//! | `Closing`, `Draining` | the drain period ends | `Drained` |
//! | any | the peer reset the connection | `Drained` |
//!
//! The transitions are made in `close.rs` (closing, draining, refusal and
//! reset), `handshake.rs` (the welcome) and `timeout.rs` (timeouts and the
//! end of the drain period).

use super::handshake::ClientHandshake;
use super::timer::Timer;

/// A connection's state.
#[derive(Debug)]
pub(super) enum State {
    /// A client waiting for the server's welcome.
    AwaitingWelcome(ClientHandshake),
    /// Messages flow both ways.
    Established,
    /// Closing gracefully: no new sends; waiting for every reliable
    /// message to be acknowledged before the close goes out.
    Flushing {
        /// The close code to send.
        code: u64,
        /// The explanation to send.
        reason: String,
    },
    /// Close sent; answering late packets with it until the drain ends.
    Closing {
        /// The close code sent.
        code: u64,
        /// The explanation sent.
        reason: String,
        /// The close is to be sent (again) with the next transmit.
        resend: bool,
    },
    /// Close received; silent until the drain ends.
    Draining,
    /// Gone; the endpoint forgets it.
    Drained,
}

impl State {
    /// The timers that run in this state, in the order they are handled.
    /// A timer armed in another state waits (an ack deadline set before
    /// the welcome runs once established) or is ignored.
    pub(super) fn timers(&self) -> &'static [Timer] {
        match self {
            Self::AwaitingWelcome(_) => &[Timer::Handshake, Timer::Hello],
            Self::Established | Self::Flushing { .. } => &[
                Timer::Ack,
                Timer::Idle,
                Timer::Pacing,
                Timer::KeepAlive,
                Timer::LossTime,
                Timer::Pto,
            ],
            Self::Closing { .. } => &[Timer::Drain, Timer::Close],
            Self::Draining => &[Timer::Drain],
            Self::Drained => &[],
        }
    }

    /// Whether the connection has ended: the `Closed` event was emitted on
    /// the way into each of these states, and only then.
    pub(super) fn is_closed(&self) -> bool {
        matches!(self, Self::Closing { .. } | Self::Draining | Self::Drained)
    }

    /// Whether the connection may still send: a close has not begun.
    pub(super) fn is_open(&self) -> bool {
        matches!(self, Self::AwaitingWelcome(_) | Self::Established)
    }
}
