//! The receiving half of a connection: reassembly of fragments, duplicate
//! suppression and ordering per lane, under bounded memory.
//!
//! Reliable lanes are bounded by flow control: the peer may not send more
//! new bytes than the limit this side advertised, and a partly received
//! message reserves its full length against the window (plus one maximum
//! message, for the one a sender may have begun at the edge of the window).
//! Unreliable lanes have their own budget; when it is full the oldest
//! partial message is dropped whole.
//!
//! A fragment of a message this side already has (delivered, or complete
//! and waiting for an earlier one) is a duplicate: it is counted and
//! dropped, never stored. Once the application lets go of the connection
//! ([`Receiver::discard`]) nothing more is delivered, but the positions
//! that tell a duplicate from a new message are kept.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use super::frame::{Fragment, Lane};
use super::ranges::RangeSet;

/// How far behind the newest unreliable sequence number a message may be
/// and still be delivered; older ones may be replays.
const REPLAY_WINDOW: u64 = 4096;

/// The most gaps the reliable-unordered lane tracks between delivered
/// messages.
const MAX_UNORDERED_GAPS: usize = 65_536;

/// A message delivered to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// How it travelled.
    pub lane: Lane,
    /// Its channel (ordered stream) within the lane.
    pub channel: u32,
    /// Its bytes.
    pub data: Bytes,
}

/// Why the peer's data broke the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Violation {
    FlowControl { received: u64, limit: u64 },
    TooLarge { len: u64, max: u64 },
    Channel { channel: u32, channels: u32 },
    Inconsistent,
    TooManyGaps,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FlowControl { received, limit } => {
                write!(
                    f,
                    "peer sent {received} bytes of reliable data past a limit of {limit}"
                )
            }
            Self::TooLarge { len, max } => {
                write!(f, "peer sent a {len}-byte message; the limit is {max}")
            }
            Self::Channel { channel, channels } => {
                write!(f, "peer used channel {channel}; this side has {channels}")
            }
            Self::Inconsistent => write!(
                f,
                "peer sent fragments of one message with different lengths"
            ),
            Self::TooManyGaps => write!(f, "peer left too many gaps between reliable messages"),
        }
    }
}

/// Limits the receiver enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecvLimits {
    pub(crate) max_message: u64,
    pub(crate) channels: u32,
    pub(crate) window: u64,
    pub(crate) unreliable_budget: u64,
}

#[derive(Debug)]
struct Partial {
    buf: Vec<u8>,
    have: RangeSet,
}

impl Partial {
    fn new(total: u64) -> Self {
        Self {
            buf: vec![0; total as usize],
            have: RangeSet::default(),
        }
    }

    /// Copies `fragment` in; returns how many bytes were new.
    fn fill(&mut self, fragment: &Fragment<'_>) -> u64 {
        let start = fragment.offset as usize;
        self.buf[start..start + fragment.data.len()].copy_from_slice(fragment.data);
        self.have
            .insert(fragment.offset..fragment.offset + fragment.data.len() as u64)
    }

    fn is_complete(&self) -> bool {
        self.have.covers(0..self.buf.len() as u64)
    }

    fn total(&self) -> u64 {
        self.buf.len() as u64
    }
}

/// One ordered channel: the next sequence to deliver and what arrived early.
/// Every sequence below `next` was delivered: its fragments are duplicates.
#[derive(Debug, Default)]
struct OrderedChannel {
    next: u64,
    early: BTreeMap<u64, Bytes>,
    partial: BTreeMap<u64, Partial>,
}

#[derive(Debug, Default)]
struct Unordered {
    /// Every sequence below this was delivered.
    floor: u64,
    delivered: RangeSet,
    partial: BTreeMap<u64, Partial>,
}

#[derive(Debug, Default)]
struct Unreliable {
    newest: Option<u64>,
    delivered: RangeSet,
    partial: BTreeMap<u64, Partial>,
}

#[derive(Debug, Default)]
struct Sequenced {
    newest: Option<u64>,
    partial: BTreeMap<u64, Partial>,
}

/// Where complete messages go: the application's queue or the RPC
/// session's (session-lane messages, kept apart so each takes only its
/// own), or nowhere once the application has let go of the connection.
#[derive(Debug, Default)]
struct Inbox {
    /// Messages ready for the application (every lane but the session's).
    ready: VecDeque<Message>,
    /// Session-lane messages (one RPC envelope each) ready for the session.
    ready_session: VecDeque<Bytes>,
    /// Messages queued in all.
    delivered: u64,
    /// The application let go: deliver nothing more.
    discarding: bool,
}

impl Inbox {
    /// Queues `message` for whoever reads its lane; `false` (and dropped)
    /// once discarding.
    fn deliver(&mut self, message: Message) -> bool {
        if self.discarding {
            return false;
        }
        self.delivered += 1;
        if message.lane == Lane::Session {
            self.ready_session.push_back(message.data);
        } else {
            self.ready.push_back(message);
        }
        true
    }
}

/// What a connection's receive side holds, in bytes of message data, and
/// the most it may hold. Measured by walking every buffer rather than read
/// from the counters that enforce the limits, so a test of the limits does
/// not trust what it tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiveBuffer {
    /// Reliable messages being reassembled: each holds a buffer of its
    /// full length from its first fragment on.
    pub reliable_partial: u64,
    /// Complete reliable messages waiting for an earlier one on their
    /// ordered channel.
    pub reliable_early: u64,
    /// Reliable messages delivered and not yet read.
    pub reliable_unread: u64,
    /// Unreliable messages being reassembled.
    pub unreliable_partial: u64,
    /// Unreliable messages delivered and not yet read.
    pub unreliable_unread: u64,
    /// The most the three reliable fields may sum to: partial messages
    /// reserve at most the window plus one maximum message, and complete
    /// unread ones are within the window plus one maximum message too.
    pub reliable_bound: u64,
    /// The most the two unreliable fields may sum to: the unreliable
    /// budget for partial messages plus the budget for unread ones.
    pub unreliable_bound: u64,
}

impl ReceiveBuffer {
    /// Bytes held for reliable lanes.
    pub fn reliable(&self) -> u64 {
        self.reliable_partial + self.reliable_early + self.reliable_unread
    }

    /// Bytes held for unreliable lanes.
    pub fn unreliable(&self) -> u64 {
        self.unreliable_partial + self.unreliable_unread
    }

    /// Bytes held in all.
    pub fn held(&self) -> u64 {
        self.reliable() + self.unreliable()
    }

    /// The most [`held`](Self::held) may reach.
    pub fn bound(&self) -> u64 {
        self.reliable_bound + self.unreliable_bound
    }
}

#[derive(Debug)]
pub(crate) struct Receiver {
    limits: RecvLimits,
    ordered: BTreeMap<(Lane, u32), OrderedChannel>,
    unordered: Unordered,
    unreliable: Unreliable,
    sequenced: BTreeMap<u32, Sequenced>,
    /// Bytes reserved by partly received reliable messages.
    reliable_reserved: u64,
    /// Bytes reserved by partly received unreliable messages.
    unreliable_reserved: u64,
    /// Bytes of unreliable messages delivered but not yet read.
    unreliable_unread: u64,
    /// New reliable bytes received in all.
    pub(crate) data_received: u64,
    inbox: Inbox,
    /// Unreliable messages dropped: a lost fragment or a full budget.
    pub(crate) unreliable_dropped: u64,
    /// Fragments of messages already delivered or held, or of bytes
    /// already held: dropped, never stored.
    pub(crate) duplicate_fragments: u64,
    /// Unreliable fragments that came too late to use: older than the
    /// newest sequenced message delivered, or than the replay window.
    pub(crate) stale_fragments: u64,
    /// Ordered messages that arrived ahead of an earlier one and waited
    /// for it in the early buffer: reordering the receiver put right.
    pub(crate) early_buffered: u64,
}

impl Receiver {
    pub(crate) fn new(limits: RecvLimits) -> Self {
        Self {
            limits,
            ordered: BTreeMap::new(),
            unordered: Unordered::default(),
            unreliable: Unreliable::default(),
            sequenced: BTreeMap::new(),
            reliable_reserved: 0,
            unreliable_reserved: 0,
            unreliable_unread: 0,
            data_received: 0,
            inbox: Inbox::default(),
            unreliable_dropped: 0,
            duplicate_fragments: 0,
            stale_fragments: 0,
            early_buffered: 0,
        }
    }

    /// Messages delivered to the application's queue in all.
    pub(crate) fn messages_delivered(&self) -> u64 {
        self.inbox.delivered
    }

    /// The next message for the application.
    pub(crate) fn pop(&mut self) -> Option<Message> {
        let message = self.inbox.ready.pop_front()?;
        if !message.lane.is_reliable() {
            self.unreliable_unread -= message.data.len() as u64;
        }
        Some(message)
    }

    /// The next session-lane message, for the RPC session.
    pub(crate) fn pop_session(&mut self) -> Option<Bytes> {
        self.inbox.ready_session.pop_front()
    }

    pub(crate) fn has_ready(&self) -> bool {
        !self.inbox.ready.is_empty()
    }

    pub(crate) fn has_ready_session(&self) -> bool {
        !self.inbox.ready_session.is_empty()
    }

    pub(crate) fn ready_len(&self) -> usize {
        self.inbox.ready.len() + self.inbox.ready_session.len()
    }

    /// Takes in one fragment. `max_data` is the flow-control limit this side
    /// advertised: a reliable fragment that would pass it is refused before
    /// any of it is counted or delivered.
    pub(crate) fn on_fragment(
        &mut self,
        fragment: &Fragment<'_>,
        max_data: u64,
    ) -> Result<(), Violation> {
        if fragment.total > self.limits.max_message {
            return Err(Violation::TooLarge {
                len: fragment.total,
                max: self.limits.max_message,
            });
        }
        let needs_channel = matches!(
            fragment.lane,
            Lane::ReliableOrdered | Lane::UnreliableSequenced
        );
        if needs_channel && fragment.channel >= self.limits.channels {
            return Err(Violation::Channel {
                channel: fragment.channel,
                channels: self.limits.channels,
            });
        }
        match fragment.lane {
            Lane::ReliableOrdered | Lane::Session => self.on_ordered(fragment, max_data),
            Lane::ReliableUnordered => self.on_unordered(fragment, max_data),
            Lane::Unreliable => {
                self.on_unreliable(fragment);
                Ok(())
            }
            Lane::UnreliableSequenced => {
                self.on_sequenced(fragment);
                Ok(())
            }
        }
    }

    fn reliable_budget(&self) -> u64 {
        self.limits.window + self.limits.max_message
    }

    fn on_ordered(&mut self, fragment: &Fragment<'_>, max_data: u64) -> Result<(), Violation> {
        let key = (
            fragment.lane,
            if fragment.lane == Lane::Session {
                0
            } else {
                fragment.channel
            },
        );
        let channel = self.ordered.entry(key).or_default();
        let seq = fragment.sequence;
        if seq < channel.next || channel.early.contains_key(&seq) {
            self.duplicate_fragments += 1;
            return Ok(());
        }
        let complete = assemble(
            &mut channel.partial,
            fragment,
            &mut self.reliable_reserved,
            self.limits.window + self.limits.max_message,
            (&mut self.data_received, max_data),
            &mut self.duplicate_fragments,
        )?;
        let Some(data) = complete else {
            return Ok(());
        };
        if seq != channel.next {
            // Once discarding, only the sequence is kept: it will never be
            // delivered, but its resends must still count as duplicates.
            let data = if self.inbox.discarding {
                Bytes::new()
            } else {
                data
            };
            channel.early.insert(seq, data);
            self.early_buffered += 1;
            return Ok(());
        }
        let lane = fragment.lane;
        let channel_id = key.1;
        self.inbox.deliver(Message {
            lane,
            channel: channel_id,
            data,
        });
        channel.next += 1;
        while let Some(data) = channel.early.remove(&channel.next) {
            self.inbox.deliver(Message {
                lane,
                channel: channel_id,
                data,
            });
            channel.next += 1;
        }
        Ok(())
    }

    fn on_unordered(&mut self, fragment: &Fragment<'_>, max_data: u64) -> Result<(), Violation> {
        let seq = fragment.sequence;
        let lane = &mut self.unordered;
        if seq < lane.floor || lane.delivered.contains(seq) {
            self.duplicate_fragments += 1;
            return Ok(());
        }
        let budget = self.limits.window + self.limits.max_message;
        let complete = assemble(
            &mut lane.partial,
            fragment,
            &mut self.reliable_reserved,
            budget,
            (&mut self.data_received, max_data),
            &mut self.duplicate_fragments,
        )?;
        let Some(data) = complete else {
            return Ok(());
        };
        lane.delivered.insert(seq..seq + 1);
        if lane.delivered.min() == Some(lane.floor)
            && let Some(range) = lane.delivered.pop_min()
        {
            lane.floor = range.end;
        }
        if lane.delivered.len() > MAX_UNORDERED_GAPS {
            return Err(Violation::TooManyGaps);
        }
        self.inbox.deliver(Message {
            lane: Lane::ReliableUnordered,
            channel: fragment.channel,
            data,
        });
        Ok(())
    }

    fn on_unreliable(&mut self, fragment: &Fragment<'_>) {
        let seq = fragment.sequence;
        let lane = &mut self.unreliable;
        let newest = lane.newest.unwrap_or(0).max(seq);
        let floor = newest.saturating_sub(REPLAY_WINDOW);
        if lane.delivered.contains(seq) {
            self.duplicate_fragments += 1;
            return;
        }
        if seq < floor {
            self.stale_fragments += 1;
            return;
        }
        lane.newest = Some(newest);
        lane.delivered.remove_below(floor);
        drop_partials_below(
            &mut lane.partial,
            floor,
            &mut self.unreliable_reserved,
            &mut self.unreliable_dropped,
        );
        let Some(data) = assemble_unreliable(
            &mut lane.partial,
            fragment,
            &mut self.unreliable_reserved,
            self.limits.unreliable_budget,
            &mut self.unreliable_dropped,
            &mut self.duplicate_fragments,
        ) else {
            return;
        };
        lane.delivered.insert(seq..seq + 1);
        self.deliver_unreliable(Lane::Unreliable, fragment.channel, data);
    }

    fn on_sequenced(&mut self, fragment: &Fragment<'_>) {
        let seq = fragment.sequence;
        let channel = self.sequenced.entry(fragment.channel).or_default();
        match channel.newest {
            Some(newest) if seq == newest => {
                self.duplicate_fragments += 1;
                return;
            }
            Some(newest) if seq < newest => {
                self.stale_fragments += 1;
                return;
            }
            _ => {}
        }
        let Some(data) = assemble_unreliable(
            &mut channel.partial,
            fragment,
            &mut self.unreliable_reserved,
            self.limits.unreliable_budget,
            &mut self.unreliable_dropped,
            &mut self.duplicate_fragments,
        ) else {
            return;
        };
        channel.newest = Some(seq);
        // Older partial messages can never be delivered now.
        drop_partials_below(
            &mut channel.partial,
            seq,
            &mut self.unreliable_reserved,
            &mut self.unreliable_dropped,
        );
        self.deliver_unreliable(Lane::UnreliableSequenced, fragment.channel, data);
    }

    fn deliver_unreliable(&mut self, lane: Lane, channel: u32, data: Bytes) {
        let len = data.len() as u64;
        if self.unreliable_unread + len > self.limits.unreliable_budget {
            self.unreliable_dropped += 1;
            return;
        }
        let message = Message {
            lane,
            channel,
            data,
        };
        if self.inbox.deliver(message) {
            self.unreliable_unread += len;
        }
    }

    /// What this side holds, measured buffer by buffer.
    pub(crate) fn buffer(&self) -> ReceiveBuffer {
        fn partial_bytes(partials: &BTreeMap<u64, Partial>) -> u64 {
            partials.values().map(Partial::total).sum()
        }
        let mut held = ReceiveBuffer {
            reliable_bound: 2 * self.reliable_budget(),
            unreliable_bound: 2 * self.limits.unreliable_budget,
            ..ReceiveBuffer::default()
        };
        for channel in self.ordered.values() {
            held.reliable_partial += partial_bytes(&channel.partial);
            held.reliable_early += channel
                .early
                .values()
                .map(|data| data.len() as u64)
                .sum::<u64>();
        }
        held.reliable_partial += partial_bytes(&self.unordered.partial);
        held.unreliable_partial += partial_bytes(&self.unreliable.partial);
        for channel in self.sequenced.values() {
            held.unreliable_partial += partial_bytes(&channel.partial);
        }
        for message in &self.inbox.ready {
            let len = message.data.len() as u64;
            if message.lane.is_reliable() {
                held.reliable_unread += len;
            } else {
                held.unreliable_unread += len;
            }
        }
        for envelope in &self.inbox.ready_session {
            held.reliable_unread += envelope.len() as u64;
        }
        held
    }

    /// The application let go of the connection: drops what it did not
    /// read and delivers nothing more. Keeps every position (the next
    /// ordered sequence, the delivered sets) so that resends of what was
    /// already delivered are still recognised as duplicates: forgetting
    /// them would deliver those messages again, hold them until the
    /// connection drained, and count their bytes against flow control a
    /// second time.
    pub(crate) fn discard(&mut self) {
        self.inbox.discarding = true;
        self.inbox.ready.clear();
        self.inbox.ready_session.clear();
        self.unreliable_unread = 0;
        for channel in self.ordered.values_mut() {
            for data in channel.early.values_mut() {
                *data = Bytes::new();
            }
        }
    }
}

/// Adds a reliable fragment to its message; returns the message when it is
/// complete. `received` is the new reliable bytes received so far and the
/// flow-control limit they may reach: a fragment whose new bytes would
/// pass it is refused, and none of it is counted or delivered.
fn assemble(
    partials: &mut BTreeMap<u64, Partial>,
    fragment: &Fragment<'_>,
    reserved: &mut u64,
    budget: u64,
    (data_received, limit): (&mut u64, u64),
    duplicates: &mut u64,
) -> Result<Option<Bytes>, Violation> {
    let past_limit = |fresh: u64| Violation::FlowControl {
        received: *data_received + fresh,
        limit,
    };
    let len = fragment.data.len() as u64;
    if fragment.offset == 0 && len == fragment.total && !partials.contains_key(&fragment.sequence) {
        if *data_received + len > limit {
            return Err(past_limit(len));
        }
        *data_received += len;
        return Ok(Some(Bytes::copy_from_slice(fragment.data)));
    }
    let partial = match partials.entry(fragment.sequence) {
        std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
        std::collections::btree_map::Entry::Vacant(entry) => {
            if *reserved + fragment.total > budget {
                return Err(Violation::FlowControl {
                    received: *reserved + fragment.total,
                    limit: budget,
                });
            }
            *reserved += fragment.total;
            entry.insert(Partial::new(fragment.total))
        }
    };
    if partial.total() != fragment.total {
        return Err(Violation::Inconsistent);
    }
    let fresh = partial.fill(fragment);
    if fresh == 0 {
        *duplicates += 1;
    }
    if *data_received + fresh > limit {
        // The connection closes; what was copied in is never delivered.
        return Err(past_limit(fresh));
    }
    *data_received += fresh;
    if !partial.is_complete() {
        return Ok(None);
    }
    let Some(done) = partials.remove(&fragment.sequence) else {
        return Ok(None);
    };
    *reserved -= done.total();
    Ok(Some(Bytes::from(done.buf)))
}

/// Adds an unreliable fragment to its message; returns the message when it
/// is complete. A message that does not fit the budget is dropped, after
/// dropping older partial messages to make room.
fn assemble_unreliable(
    partials: &mut BTreeMap<u64, Partial>,
    fragment: &Fragment<'_>,
    reserved: &mut u64,
    budget: u64,
    dropped: &mut u64,
    duplicates: &mut u64,
) -> Option<Bytes> {
    let len = fragment.data.len() as u64;
    if fragment.offset == 0 && len == fragment.total && !partials.contains_key(&fragment.sequence) {
        return Some(Bytes::copy_from_slice(fragment.data));
    }
    if fragment.total > budget {
        *dropped += 1;
        return None;
    }
    if !partials.contains_key(&fragment.sequence) {
        while *reserved + fragment.total > budget {
            let Some((_, oldest)) = partials.pop_first() else {
                // The budget is held by another lane's partial messages.
                *dropped += 1;
                return None;
            };
            *reserved -= oldest.total();
            *dropped += 1;
        }
        *reserved += fragment.total;
        partials.insert(fragment.sequence, Partial::new(fragment.total));
    }
    let partial = partials.get_mut(&fragment.sequence)?;
    if partial.total() != fragment.total {
        // Corrupt or hostile: drop the message whole.
        let removed = partials.remove(&fragment.sequence)?;
        *reserved -= removed.total();
        *dropped += 1;
        return None;
    }
    if partial.fill(fragment) == 0 {
        *duplicates += 1;
    }
    if !partial.is_complete() {
        return None;
    }
    let done = partials.remove(&fragment.sequence)?;
    *reserved -= done.total();
    Some(Bytes::from(done.buf))
}

fn drop_partials_below(
    partials: &mut BTreeMap<u64, Partial>,
    floor: u64,
    reserved: &mut u64,
    dropped: &mut u64,
) {
    while let Some(entry) = partials.first_entry() {
        if *entry.key() >= floor {
            break;
        }
        *reserved -= entry.remove().total();
        *dropped += 1;
    }
}

#[cfg(test)]
mod tests;
