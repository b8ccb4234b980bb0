//! The sending half of a connection: queued messages, their sequence
//! numbers, which of their bytes are acknowledged, and what must be resent.
//!
//! A message stays here until every byte is acknowledged (reliable lanes) or
//! has been sent once (unreliable lanes). Lost fragments of reliable
//! messages go to a retransmission queue that is drained before new data;
//! they are sent again in new packets, possibly cut at other boundaries.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;

use bytes::Bytes;

use super::SendError;
use super::frame::{Fragment, Lane, put_fragment};
use super::ranges::RangeSet;

/// A fragment's place in its message, remembered per sent packet so an ack
/// or a loss can be applied to the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SentFragment {
    pub(crate) message: u64,
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

#[derive(Debug)]
struct OutMessage {
    lane: Lane,
    channel: u32,
    sequence: u64,
    data: Bytes,
    /// The first byte never sent.
    unsent: u64,
    /// Acknowledged bytes (reliable lanes only).
    acked: RangeSet,
}

impl OutMessage {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }
}

/// What the send side holds, for stats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueDepths {
    /// Messages not yet fully acknowledged on reliable lanes.
    pub reliable: usize,
    /// Unreliable messages not yet fully sent.
    pub unreliable: usize,
    /// Bytes held for sending or resending.
    pub bytes: u64,
    /// Messages held per lane and channel (only those holding any).
    pub per_channel: Vec<ChannelDepth>,
}

/// Messages one channel of one lane holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelDepth {
    /// The lane.
    pub lane: Lane,
    /// The channel.
    pub channel: u32,
    /// Messages held (unsent, or sent and unacknowledged).
    pub messages: usize,
}

#[derive(Debug)]
pub(crate) struct Sender {
    messages: BTreeMap<u64, OutMessage>,
    next_id: u64,
    /// Reliable messages with bytes never sent, oldest first.
    fresh_reliable: VecDeque<u64>,
    /// Unreliable messages with bytes never sent, oldest first.
    fresh_unreliable: VecDeque<u64>,
    /// Lost ranges of reliable messages, to send before anything new.
    retransmit: VecDeque<SentFragment>,
    /// Next sequence number per (lane, channel).
    sequences: BTreeMap<(Lane, u32), u64>,
    queued_bytes: u64,
    reliable_messages: usize,
    /// Reliable bytes sent for the first time: what the peer's flow-control
    /// limit is counted against.
    pub(crate) data_sent: u64,
    /// Whether the last packet left new unreliable data for later, so the
    /// next one starts with reliable data (alternation keeps either kind
    /// from starving the other).
    unreliable_turn: bool,
}

impl Sender {
    pub(crate) fn new() -> Self {
        Self {
            messages: BTreeMap::new(),
            next_id: 0,
            fresh_reliable: VecDeque::new(),
            fresh_unreliable: VecDeque::new(),
            retransmit: VecDeque::new(),
            sequences: BTreeMap::new(),
            queued_bytes: 0,
            reliable_messages: 0,
            data_sent: 0,
            unreliable_turn: false,
        }
    }

    /// Queues a message. The caller has checked lane, channel and size.
    pub(crate) fn push(
        &mut self,
        lane: Lane,
        channel: u32,
        data: Bytes,
        send_buffer: u64,
    ) -> Result<(), SendError> {
        let len = data.len() as u64;
        if self.queued_bytes > 0 && self.queued_bytes + len > send_buffer {
            return Err(SendError::Full);
        }
        // Ordered and sequenced channels number their messages apart; the
        // unordered lanes share one numbering, which their receivers use to
        // drop duplicates.
        let numbering = if matches!(lane, Lane::ReliableOrdered | Lane::UnreliableSequenced) {
            channel
        } else {
            0
        };
        let sequence = self.sequences.entry((lane, numbering)).or_insert(0);
        let id = self.next_id;
        self.next_id += 1;
        self.messages.insert(
            id,
            OutMessage {
                lane,
                channel,
                sequence: *sequence,
                data,
                unsent: 0,
                acked: RangeSet::default(),
            },
        );
        *sequence += 1;
        self.queued_bytes += len;
        if lane.is_reliable() {
            self.reliable_messages += 1;
            self.fresh_reliable.push_back(id);
        } else {
            self.fresh_unreliable.push_back(id);
        }
        Ok(())
    }

    /// Whether anything waits to be sent (not counting unacked data).
    pub(crate) fn has_pending(&self, flow_allowance: u64) -> bool {
        !self.retransmit.is_empty()
            || !self.fresh_unreliable.is_empty()
            || (!self.fresh_reliable.is_empty() && flow_allowance > 0)
    }

    /// Whether lost data waits to be resent.
    pub(crate) fn has_retransmits(&self) -> bool {
        !self.retransmit.is_empty()
    }

    /// Whether reliable data is blocked only by the peer's flow-control limit.
    pub(crate) fn is_flow_blocked(&self, flow_allowance: u64) -> bool {
        flow_allowance == 0 && !self.fresh_reliable.is_empty()
    }

    /// Whether every reliable message has been fully acknowledged.
    pub(crate) fn all_acked(&self) -> bool {
        self.reliable_messages == 0
    }

    pub(crate) fn queued_bytes(&self) -> u64 {
        self.queued_bytes
    }

    pub(crate) fn depths(&self) -> QueueDepths {
        let mut per_channel: BTreeMap<(Lane, u32), usize> = BTreeMap::new();
        for message in self.messages.values() {
            *per_channel
                .entry((message.lane, message.channel))
                .or_default() += 1;
        }
        QueueDepths {
            reliable: self.reliable_messages,
            unreliable: self.messages.len() - self.reliable_messages,
            bytes: self.queued_bytes,
            per_channel: per_channel
                .into_iter()
                .map(|((lane, channel), messages)| ChannelDepth {
                    lane,
                    channel,
                    messages,
                })
                .collect(),
        }
    }

    /// Writes one fragment into `buf`, using at most `room` bytes, and
    /// returns what it covers. Resends come first, then new data, with
    /// reliable and unreliable data taking turns per packet.
    /// `flow_allowance` is how many new reliable bytes the peer accepts;
    /// `first_in_packet` starts a packet's turn.
    pub(crate) fn write_fragment(
        &mut self,
        buf: &mut Vec<u8>,
        room: usize,
        flow_allowance: u64,
        first_in_packet: bool,
    ) -> Option<SentFragment> {
        while let Some(lost) = self.retransmit.front().copied() {
            match self.write_resend(buf, room, lost) {
                Resend::Written(fragment) => return Some(fragment),
                Resend::Obsolete => {
                    self.retransmit.pop_front();
                }
                Resend::NoRoom => return None,
            }
        }
        if first_in_packet {
            self.unreliable_turn = !self.unreliable_turn;
        }
        let order = if self.unreliable_turn {
            [false, true]
        } else {
            [true, false]
        };
        for reliable in order {
            if let Some(fragment) = self.write_fresh(buf, room, reliable, flow_allowance) {
                return Some(fragment);
            }
        }
        None
    }

    fn write_resend(&mut self, buf: &mut Vec<u8>, room: usize, lost: SentFragment) -> Resend {
        let Some(message) = self.messages.get(&lost.message) else {
            return Resend::Obsolete;
        };
        // Skip the acknowledged prefix of the lost range.
        let mut start = lost.offset;
        let end = lost.offset + lost.len;
        while start < end && message.acked.contains(start) {
            start += 1;
        }
        if start >= end || message.acked.covers(start..end) {
            return Resend::Obsolete;
        }
        let Some(len) = fitting_len(message, start, end - start, room) else {
            return Resend::NoRoom;
        };
        write(buf, message, start, len);
        let written = SentFragment {
            message: lost.message,
            offset: start,
            len,
        };
        if start + len >= end {
            self.retransmit.pop_front();
        } else if let Some(front) = self.retransmit.front_mut() {
            *front = SentFragment {
                message: lost.message,
                offset: start + len,
                len: end - start - len,
            };
        }
        Resend::Written(written)
    }

    fn write_fresh(
        &mut self,
        buf: &mut Vec<u8>,
        room: usize,
        reliable: bool,
        flow_allowance: u64,
    ) -> Option<SentFragment> {
        let queue = if reliable {
            &mut self.fresh_reliable
        } else {
            &mut self.fresh_unreliable
        };
        let id = *queue.front()?;
        let message = self.messages.get_mut(&id)?;
        let remaining = message.len() - message.unsent;
        let wanted = if reliable {
            remaining.min(flow_allowance)
        } else {
            remaining
        };
        if wanted == 0 && remaining > 0 {
            return None;
        }
        let len = fitting_len(message, message.unsent, wanted, room)?;
        let offset = message.unsent;
        write(buf, message, offset, len);
        message.unsent += len;
        let done = message.unsent >= message.len();
        if done {
            queue.pop_front();
        }
        if reliable {
            self.data_sent += len;
        } else if done {
            // Unreliable messages are forgotten once sent.
            if let Some(message) = self.messages.remove(&id) {
                self.queued_bytes -= message.len();
            }
        }
        Some(SentFragment {
            message: id,
            offset,
            len,
        })
    }

    /// Applies an acknowledgement of `fragment`.
    pub(crate) fn on_acked(&mut self, fragment: SentFragment) {
        let Some(message) = self.messages.get_mut(&fragment.message) else {
            return;
        };
        if !message.lane.is_reliable() {
            return;
        }
        message
            .acked
            .insert(fragment.offset..fragment.offset + fragment.len);
        if message.acked.covers(0..message.len()) {
            let len = message.len();
            self.messages.remove(&fragment.message);
            self.queued_bytes -= len;
            self.reliable_messages -= 1;
        }
    }

    /// Applies a loss of `fragment`: reliable data is queued to be resent.
    pub(crate) fn on_lost(&mut self, fragment: SentFragment) {
        if let Some(message) = self.messages.get(&fragment.message) {
            let range: Range<u64> = fragment.offset..fragment.offset + fragment.len;
            if message.lane.is_reliable() && !message.acked.covers(range) {
                self.retransmit.push_back(fragment);
            }
        }
    }

    /// Drops everything queued (the connection is gone).
    pub(crate) fn clear(&mut self) {
        self.messages.clear();
        self.fresh_reliable.clear();
        self.fresh_unreliable.clear();
        self.retransmit.clear();
        self.queued_bytes = 0;
        self.reliable_messages = 0;
    }
}

enum Resend {
    Written(SentFragment),
    Obsolete,
    NoRoom,
}

/// How many bytes of `message` from `offset` (at most `wanted`) fit in
/// `room` bytes with the fragment header; `None` when fewer than one would.
fn fitting_len(message: &OutMessage, offset: u64, wanted: u64, room: usize) -> Option<u64> {
    let total = message.len();
    let overhead = Fragment::overhead(message.channel, message.sequence, total, offset, wanted);
    let available = (room as u64).checked_sub(overhead as u64)?;
    let len = wanted.min(available);
    // An empty message is sent as one empty fragment.
    if len == 0 && !(total == 0 && wanted == 0) {
        return None;
    }
    Some(len)
}

fn write(buf: &mut Vec<u8>, message: &OutMessage, offset: u64, len: u64) {
    let start = offset as usize;
    let end = (offset + len) as usize;
    put_fragment(
        buf,
        &Fragment {
            lane: message.lane,
            channel: message.channel,
            sequence: message.sequence,
            total: message.len(),
            offset,
            data: &message.data[start..end],
        },
    );
}
