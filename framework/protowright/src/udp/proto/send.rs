//! The sending half of a connection: queued messages, their sequence
//! numbers, which of their bytes are acknowledged, and what must be resent.
//!
//! A message stays here until every byte is acknowledged (reliable lanes) or
//! has been sent once (unreliable lanes). Lost fragments of reliable
//! messages go to a retransmission queue that is drained before new data
//! of the same priority; they are sent again in new packets, possibly cut
//! at other boundaries.
//!
//! Every channel has a priority (default 0; higher goes first). Queues are
//! kept per priority level, and a packet is filled from the highest level
//! that has something to send, so a 30 Hz game-state channel is never stuck
//! behind a file transfer on a lower one: it waits for at most the packet
//! being built, not the transfer's backlog.

use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};
use std::ops::{Bound, Range};

use bytes::Bytes;

use super::SendError;
use super::frame::{Fragment, Lane, put_fragment};
use super::ranges::RangeSet;
use super::recv::MESSAGE_OVERHEAD;

/// A fragment's place in its message, remembered per sent packet so an ack
/// or a loss can be applied to the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SentFragment {
    pub(crate) message: u64,
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

/// Queued messages by id. Ids count up and messages mostly leave in the
/// order they came, so they sit in a ring indexed by `id - base`, with
/// holes where a message left early: profiles of many small messages
/// showed a third of the sender's time in the B-tree this replaced (a
/// search per fragment written, an insert per message, a removal per
/// acknowledgement, among tens of thousands queued). A message that stays
/// while thousands behind it leave (one lost again and again, say) moves
/// to a side map, so the holes it held open go and the ring stays within
/// about four slots per queued message.
#[derive(Debug, Default)]
struct Queue {
    /// The id of the ring's first slot.
    base: u64,
    ring: VecDeque<Option<OutMessage>>,
    /// Messages older than `base`.
    stragglers: BTreeMap<u64, OutMessage>,
    /// Messages held, ring and side map.
    len: usize,
}

/// The ring is compacted only beyond this many slots.
const RING_SLACK: usize = 1024;

impl Queue {
    fn starting_at(base: u64) -> Self {
        Self {
            base,
            ..Self::default()
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    /// Adds message `id`, the next id after every one added before.
    fn push(&mut self, id: u64, message: OutMessage) {
        debug_assert_eq!(id, self.base + self.ring.len() as u64);
        self.ring.push_back(Some(message));
        self.len += 1;
    }

    fn get(&self, id: u64) -> Option<&OutMessage> {
        match id.checked_sub(self.base) {
            Some(index) => self.ring.get(usize::try_from(index).ok()?)?.as_ref(),
            None => self.stragglers.get(&id),
        }
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut OutMessage> {
        match id.checked_sub(self.base) {
            Some(index) => self.ring.get_mut(usize::try_from(index).ok()?)?.as_mut(),
            None => self.stragglers.get_mut(&id),
        }
    }

    fn remove(&mut self, id: u64) -> Option<OutMessage> {
        let message = match id.checked_sub(self.base) {
            Some(index) => self.ring.get_mut(usize::try_from(index).ok()?)?.take(),
            None => self.stragglers.remove(&id),
        }?;
        self.len -= 1;
        self.compact();
        Some(message)
    }

    /// Drops the holes at the ring's front; while the ring is mostly
    /// holes, moves its first message aside to let them go.
    fn compact(&mut self) {
        loop {
            while let Some(None) = self.ring.front() {
                self.ring.pop_front();
                self.base += 1;
            }
            let in_ring = self.len - self.stragglers.len();
            if self.ring.len() <= RING_SLACK || self.ring.len() <= 4 * in_ring {
                return;
            }
            if let Some(Some(first)) = self.ring.pop_front() {
                self.stragglers.insert(self.base, first);
            }
            self.base += 1;
        }
    }

    fn values(&self) -> impl Iterator<Item = &OutMessage> {
        self.ring.iter().flatten().chain(self.stragglers.values())
    }
}

#[derive(Debug)]
struct OutMessage {
    lane: Lane,
    channel: u32,
    priority: i32,
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

    /// The flow-control charge sending its next fresh byte costs (or, for
    /// an empty message, sending it): the first fragment also carries the
    /// message's [`MESSAGE_OVERHEAD`], as the receiver counts it.
    fn flow_need(&self) -> u64 {
        let started = self.unsent > 0;
        let overhead = if started { 0 } else { MESSAGE_OVERHEAD };
        overhead + u64::from(self.unsent < self.len())
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

/// What one priority level holds for sending.
#[derive(Debug, Default)]
struct Level {
    /// Reliable messages with bytes never sent, oldest first.
    fresh_reliable: VecDeque<u64>,
    /// Unreliable messages with bytes never sent, oldest first.
    fresh_unreliable: VecDeque<u64>,
    /// Lost ranges of reliable messages, to send before anything new.
    retransmit: VecDeque<SentFragment>,
}

impl Level {
    fn has_pending(&self, messages: &Queue, flow_allowance: u64) -> bool {
        !self.retransmit.is_empty()
            || !self.fresh_unreliable.is_empty()
            || self.is_reliable_sendable(messages, flow_allowance)
    }

    /// Whether the oldest fresh reliable message may send within
    /// `flow_allowance`.
    fn is_reliable_sendable(&self, messages: &Queue, flow_allowance: u64) -> bool {
        self.fresh_reliable
            .front()
            .and_then(|id| messages.get(*id))
            .is_some_and(|message| message.flow_need() <= flow_allowance)
    }
}

#[derive(Debug)]
pub(crate) struct Sender {
    messages: Queue,
    next_id: u64,
    /// Queues per priority, highest first.
    levels: BTreeMap<Reverse<i32>, Level>,
    /// Channels whose priority is not the default 0.
    priorities: BTreeMap<u32, i32>,
    /// Next sequence number per (lane, channel).
    sequences: BTreeMap<(Lane, u32), u64>,
    queued_bytes: u64,
    reliable_messages: usize,
    /// Reliable bytes sent for the first time, with [`MESSAGE_OVERHEAD`]
    /// per message: what the peer's flow-control limit is counted against.
    pub(crate) data_sent: u64,
    /// Whether the last packet left new unreliable data for later, so the
    /// next one starts with reliable data (alternation keeps either kind
    /// from starving the other).
    unreliable_turn: bool,
}

impl Sender {
    pub(crate) fn new() -> Self {
        Self {
            messages: Queue::default(),
            next_id: 0,
            levels: BTreeMap::new(),
            priorities: BTreeMap::new(),
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
        let priority = self.priority(channel);
        let sequence = self.sequences.entry((lane, numbering)).or_insert(0);
        let id = self.next_id;
        self.next_id += 1;
        self.messages.push(
            id,
            OutMessage {
                lane,
                channel,
                priority,
                sequence: *sequence,
                data,
                unsent: 0,
                acked: RangeSet::default(),
            },
        );
        *sequence += 1;
        self.queued_bytes += len;
        let level = self.levels.entry(Reverse(priority)).or_default();
        if lane.is_reliable() {
            self.reliable_messages += 1;
            level.fresh_reliable.push_back(id);
        } else {
            level.fresh_unreliable.push_back(id);
        }
        Ok(())
    }

    /// The priority of `channel`'s messages: higher is sent first.
    pub(crate) fn priority(&self, channel: u32) -> i32 {
        self.priorities.get(&channel).copied().unwrap_or(0)
    }

    /// Sets the priority of messages queued on `channel` from now on.
    pub(crate) fn set_priority(&mut self, channel: u32, priority: i32) {
        if priority == 0 {
            self.priorities.remove(&channel);
        } else {
            self.priorities.insert(channel, priority);
        }
    }

    /// Whether anything waits to be sent (not counting unacked data).
    pub(crate) fn has_pending(&self, flow_allowance: u64) -> bool {
        self.levels
            .values()
            .any(|level| level.has_pending(&self.messages, flow_allowance))
    }

    /// Whether lost data waits to be resent.
    pub(crate) fn has_retransmits(&self) -> bool {
        self.levels
            .values()
            .any(|level| !level.retransmit.is_empty())
    }

    /// Whether reliable data is blocked only by the peer's flow-control limit.
    pub(crate) fn is_flow_blocked(&self, flow_allowance: u64) -> bool {
        self.levels.values().any(|level| {
            !level.fresh_reliable.is_empty()
                && !level.is_reliable_sendable(&self.messages, flow_allowance)
        })
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
    /// returns what it covers. The highest priority level with something
    /// to send goes first; within a level, resends come first, then new
    /// data, with reliable and unreliable data taking turns per packet.
    /// `flow_allowance` is how many new reliable bytes the peer accepts;
    /// `first_in_packet` starts a packet's turn.
    pub(crate) fn write_fragment(
        &mut self,
        buf: &mut Vec<u8>,
        room: usize,
        flow_allowance: u64,
        first_in_packet: bool,
    ) -> Option<SentFragment> {
        if first_in_packet {
            self.unreliable_turn = !self.unreliable_turn;
        }
        let order = if self.unreliable_turn {
            [false, true]
        } else {
            [true, false]
        };
        let mut next = self.levels.keys().next().copied();
        while let Some(priority) = next {
            next = self
                .levels
                .range((Bound::Excluded(priority), Bound::Unbounded))
                .next()
                .map(|(key, _)| *key);
            match self.write_resends(buf, room, priority) {
                Resend::Written(fragment) => return Some(fragment),
                Resend::NoRoom => return None,
                Resend::Obsolete => {}
            }
            for reliable in order {
                if let Some(fragment) =
                    self.write_fresh(buf, room, priority, reliable, flow_allowance)
                {
                    return Some(fragment);
                }
            }
        }
        None
    }

    /// Resends the first still-unacknowledged lost range of a level;
    /// `Obsolete` when the level has none.
    fn write_resends(&mut self, buf: &mut Vec<u8>, room: usize, priority: Reverse<i32>) -> Resend {
        loop {
            let Some(lost) = self
                .levels
                .get(&priority)
                .and_then(|level| level.retransmit.front().copied())
            else {
                return Resend::Obsolete;
            };
            match self.write_resend(buf, room, priority, lost) {
                Resend::Obsolete => {
                    if let Some(level) = self.levels.get_mut(&priority) {
                        level.retransmit.pop_front();
                    }
                }
                done => return done,
            }
        }
    }

    fn write_resend(
        &mut self,
        buf: &mut Vec<u8>,
        room: usize,
        priority: Reverse<i32>,
        lost: SentFragment,
    ) -> Resend {
        let Some(message) = self.messages.get(lost.message) else {
            return Resend::Obsolete;
        };
        // Skip the acknowledged prefix of the lost range.
        let end = lost.offset + lost.len;
        let start = message.acked.first_gap_from(lost.offset).min(end);
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
        let Some(retransmit) = self.levels.get_mut(&priority).map(|l| &mut l.retransmit) else {
            return Resend::Written(written);
        };
        if start + len >= end {
            retransmit.pop_front();
        } else if let Some(front) = retransmit.front_mut() {
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
        priority: Reverse<i32>,
        reliable: bool,
        flow_allowance: u64,
    ) -> Option<SentFragment> {
        let level = self.levels.get_mut(&priority)?;
        let queue = if reliable {
            &mut level.fresh_reliable
        } else {
            &mut level.fresh_unreliable
        };
        let id = *queue.front()?;
        let message = self.messages.get_mut(id)?;
        let remaining = message.len() - message.unsent;
        let overhead = if reliable && message.unsent == 0 {
            MESSAGE_OVERHEAD
        } else {
            0
        };
        let wanted = if reliable {
            if message.flow_need() > flow_allowance {
                return None;
            }
            remaining.min(flow_allowance - overhead)
        } else {
            remaining
        };
        let len = fitting_len(message, message.unsent, wanted, room)?;
        let offset = message.unsent;
        write(buf, message, offset, len);
        message.unsent += len;
        let done = message.unsent >= message.len();
        if done {
            queue.pop_front();
        }
        if reliable {
            self.data_sent += overhead + len;
        } else if done {
            // Unreliable messages are forgotten once sent.
            if let Some(message) = self.messages.remove(id) {
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
        let Some(message) = self.messages.get_mut(fragment.message) else {
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
            self.messages.remove(fragment.message);
            self.queued_bytes -= len;
            self.reliable_messages -= 1;
        }
    }

    /// Applies a loss of `fragment`: reliable data is queued to be resent.
    pub(crate) fn on_lost(&mut self, fragment: SentFragment) {
        if let Some(message) = self.messages.get(fragment.message) {
            let range: Range<u64> = fragment.offset..fragment.offset + fragment.len;
            if message.lane.is_reliable() && !message.acked.covers(range) {
                self.levels
                    .entry(Reverse(message.priority))
                    .or_default()
                    .retransmit
                    .push_back(fragment);
            }
        }
    }

    /// Drops everything queued (the connection is gone).
    pub(crate) fn clear(&mut self) {
        self.messages = Queue::starting_at(self.next_id);
        self.levels.clear();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::udp::proto::frame::{Frame, Frames};

    /// The channel of the fragment `sender` writes next into a packet of
    /// `room` bytes.
    fn next_channel(sender: &mut Sender, room: usize) -> Option<(u32, SentFragment)> {
        let mut buf = Vec::new();
        let fragment = sender.write_fragment(&mut buf, room, u64::MAX, true)?;
        match Frames::new(&buf).next() {
            Some(Ok(Frame::Fragment(written))) => Some((written.channel, fragment)),
            other => panic!("not a fragment: {other:?}"),
        }
    }

    /// Queues a small reliable message on channel 0.
    fn queue_state(sender: &mut Sender) {
        let state = Bytes::from_static(b"state");
        sender
            .push(Lane::ReliableOrdered, 0, state, u64::MAX)
            .unwrap();
    }

    #[test]
    fn a_higher_priority_channel_goes_before_an_older_backlog() {
        let mut sender = Sender::new();
        sender.set_priority(0, 10);
        for _ in 0..4 {
            let bulk = Bytes::from(vec![1u8; 10_000]);
            sender
                .push(Lane::ReliableOrdered, 1, bulk, u64::MAX)
                .unwrap();
        }
        assert_eq!(next_channel(&mut sender, 1200).unwrap().0, 1);
        queue_state(&mut sender);
        assert_eq!(
            next_channel(&mut sender, 1200).unwrap().0,
            0,
            "jumps the backlog"
        );
        assert_eq!(next_channel(&mut sender, 1200).unwrap().0, 1);
    }

    #[test]
    fn a_lost_low_priority_fragment_waits_for_fresh_higher_priority_data() {
        let mut sender = Sender::new();
        sender.set_priority(0, 10);
        sender
            .push(
                Lane::ReliableOrdered,
                1,
                Bytes::from(vec![1u8; 3000]),
                u64::MAX,
            )
            .unwrap();
        let (_, lost) = next_channel(&mut sender, 1200).unwrap();
        sender.on_lost(lost);
        queue_state(&mut sender);
        assert_eq!(next_channel(&mut sender, 1200).unwrap().0, 0);
        let (channel, resent) = next_channel(&mut sender, 1200).unwrap();
        assert_eq!(
            (channel, resent.offset),
            (1, lost.offset),
            "then the resend"
        );
        assert_eq!(sender.priority(0), 10);
        assert_eq!(sender.priority(1), 0);
    }

    fn queued(id: u64) -> OutMessage {
        OutMessage {
            lane: Lane::ReliableOrdered,
            channel: 0,
            priority: 0,
            sequence: id,
            data: Bytes::new(),
            unsent: 0,
            acked: RangeSet::default(),
        }
    }

    #[test]
    fn a_message_that_stays_while_thousands_leave_keeps_the_ring_small_and_stays_reachable() {
        let mut queue = Queue::default();
        for id in 0..100_000 {
            queue.push(id, queued(id));
            // Message 0 stays; every other leaves a little later.
            if id > 10 {
                assert!(queue.remove(id - 10).is_some());
            }
            assert!(
                queue.ring.len() <= RING_SLACK.max(4 * queue.len()),
                "{} slots for {} messages",
                queue.ring.len(),
                queue.len()
            );
        }
        assert_eq!(queue.len(), 11);
        assert_eq!(
            queue.get(0).map(|m| m.sequence),
            Some(0),
            "moved aside, still there"
        );
        assert_eq!(queue.get(99_999).map(|m| m.sequence), Some(99_999));
        assert!(queue.get(50).is_none());
        assert_eq!(queue.values().count(), 11);
        assert!(queue.remove(0).is_some());
        assert_eq!(queue.len(), 10);
    }

    #[test]
    fn messages_leaving_in_order_leave_no_slots_behind() {
        let mut queue = Queue::starting_at(7);
        for id in 7..1_007 {
            queue.push(id, queued(id));
        }
        for id in 7..1_007 {
            assert_eq!(queue.remove(id).map(|m| m.sequence), Some(id));
        }
        assert_eq!((queue.len(), queue.ring.len(), queue.base), (0, 0, 1_007));
        assert!(queue.remove(7).is_none(), "gone is gone");
    }
}
