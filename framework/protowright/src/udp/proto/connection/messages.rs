//! The application's side of a connection: queueing messages, reading
//! them, and giving flow-control credit back as it consumes them.

use bytes::Bytes;

use super::Connection;
use super::state::State;
use crate::udp::proto::SendError;
use crate::udp::proto::budget::MemoryBudget;
use crate::udp::proto::frame::Lane;
use crate::udp::proto::recv::{Message, ReceiveBuffer};

impl Connection {
    /// Queues a message. Fails when the connection is closing, the message
    /// is larger than either side accepts, the channel does not exist, or
    /// the send buffer is full (wait for acks and try again).
    pub fn send(&mut self, lane: Lane, channel: u32, data: Bytes) -> Result<(), SendError> {
        if !self.state.is_open() {
            return Err(SendError::Closed);
        }
        let len = data.len() as u64;
        let max = self.max_message();
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        let channel = if lane == Lane::Session { 0 } else { channel };
        let needs_channel = matches!(lane, Lane::ReliableOrdered | Lane::UnreliableSequenced);
        if needs_channel && channel >= self.config.channels {
            return Err(SendError::NoSuchChannel {
                channel,
                channels: self.config.channels,
            });
        }
        self.sender
            .push(lane, channel, data, self.config.send_buffer)
    }

    /// Sets the priority of `channel` for messages queued on it from now
    /// on. Packets are filled from the highest priority with anything to
    /// send (default 0; higher first), resends included, so a small
    /// urgent message waits for at most the packet being built, never for
    /// a lower channel's backlog.
    pub fn set_priority(&mut self, channel: u32, priority: i32) {
        self.sender.set_priority(channel, priority);
    }

    /// The priority of `channel`.
    pub fn priority(&self, channel: u32) -> i32 {
        self.sender.priority(channel)
    }

    /// The largest message both sides accept.
    pub fn max_message(&self) -> u64 {
        if matches!(self.state, State::AwaitingWelcome(_)) {
            self.config.max_message_size
        } else {
            self.config.max_message_size.min(self.peer_max_message)
        }
    }

    /// Whether a message of `len` bytes fits the send buffer now.
    pub fn can_send(&self, len: u64) -> bool {
        let queued = self.sender.queued_bytes();
        queued == 0 || queued + len <= self.config.send_buffer
    }

    /// The next message for the application, on any lane but the
    /// session's (see [`recv_session`](Self::recv_session)). Reliable messages hold
    /// flow-control credit until [`release`](Self::release) is called with
    /// their length, so memory stays bounded while the application is slow.
    pub fn recv(&mut self) -> Option<Message> {
        self.receiver.pop()
    }

    /// The next session-lane message (one RPC envelope). Like
    /// [`recv`](Self::recv), it holds flow-control credit until released.
    pub fn recv_session(&mut self) -> Option<Bytes> {
        self.receiver.pop_session()
    }

    /// Whether a message is waiting for [`recv`](Self::recv).
    pub fn has_message(&self) -> bool {
        self.receiver.has_ready()
    }

    /// Whether a session-lane message is waiting for
    /// [`recv_session`](Self::recv_session).
    pub fn has_session_message(&self) -> bool {
        self.receiver.has_ready_session()
    }

    /// Gives `bytes` of reliable data back to the flow-control window: the
    /// application has consumed them.
    /// Returns whether a window update is now due to the peer (so a driver
    /// knows it has something to send).
    pub fn release(&mut self, bytes: u64) -> bool {
        self.released += bytes;
        // The overhead of the messages read comes back with what was read.
        let limit = self.released + self.receiver.overhead_read() + self.config.flow_window();
        // Announce a new limit once a quarter window has been consumed.
        if limit >= self.local_max_data + self.config.receive_window / 4 {
            self.local_max_data = limit;
            self.pending.max_data = true;
            return true;
        }
        false
    }

    /// What the receive side holds, by kind, measured buffer by buffer, and
    /// the most it may hold.
    pub fn receive_buffer(&self) -> ReceiveBuffer {
        self.receiver.buffer()
    }

    /// Whether every reliable message sent has been acknowledged.
    pub fn is_flushed(&self) -> bool {
        self.sender.all_acked()
    }

    /// Whether the peer's flow-control limit alone holds data back.
    pub fn is_flow_blocked(&self) -> bool {
        self.sender.is_flow_blocked(self.flow_allowance())
    }

    /// The application let go: drop what it did not read and deliver
    /// nothing more (see `Receiver::discard`).
    pub(crate) fn discard_unread(&mut self) {
        self.receiver.discard();
    }

    /// Charges what the receive side holds to the endpoint's `budget`.
    pub(crate) fn join_budget(&mut self, budget: &MemoryBudget) {
        self.receiver.join_budget(budget);
    }
}
