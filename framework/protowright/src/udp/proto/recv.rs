//! The receiving half of a connection: reassembly of fragments, duplicate
//! suppression and ordering per lane, under bounded memory.
//!
//! Reliable lanes are bounded by flow control: the peer may not send more
//! new bytes than the limit this side advertised, and a partly received
//! message reserves its full length against the window (plus one maximum
//! message, for the one a sender may have begun at the edge of the window).
//! Unreliable lanes have their own budget; when it is full the oldest
//! partial message is dropped whole.

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

/// Puts a complete message in the queue of whoever reads its lane: the
/// session's for the session lane, the application's for the others.
fn deliver(ready: &mut VecDeque<Message>, ready_session: &mut VecDeque<Bytes>, message: Message) {
    if message.lane == Lane::Session {
        ready_session.push_back(message.data);
    } else {
        ready.push_back(message);
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
    /// Messages ready for the application (every lane but the session's).
    ready: VecDeque<Message>,
    /// Session-lane messages ready for the RPC session: kept apart so the
    /// session and the application each take only their own.
    ready_session: VecDeque<Bytes>,
    /// Unreliable messages dropped: a lost fragment, a full budget, or too
    /// old to tell from a replay.
    pub(crate) unreliable_dropped: u64,
    /// Duplicate fragments ignored.
    pub(crate) duplicates: u64,
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
            ready: VecDeque::new(),
            ready_session: VecDeque::new(),
            unreliable_dropped: 0,
            duplicates: 0,
        }
    }

    /// The next message for the application.
    pub(crate) fn pop(&mut self) -> Option<Message> {
        let message = self.ready.pop_front()?;
        if !message.lane.is_reliable() {
            self.unreliable_unread -= message.data.len() as u64;
        }
        Some(message)
    }

    /// The next session-lane message, for the RPC session.
    pub(crate) fn pop_session(&mut self) -> Option<Bytes> {
        self.ready_session.pop_front()
    }

    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    pub(crate) fn has_ready_session(&self) -> bool {
        !self.ready_session.is_empty()
    }

    pub(crate) fn ready_len(&self) -> usize {
        self.ready.len() + self.ready_session.len()
    }

    /// Hands a complete message to the queue of whoever reads its lane.
    fn deliver(&mut self, message: Message) {
        deliver(&mut self.ready, &mut self.ready_session, message);
    }

    /// Takes in one fragment. `max_data` is the flow-control limit this side
    /// advertised.
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
        let result = match fragment.lane {
            Lane::ReliableOrdered | Lane::Session => self.on_ordered(fragment),
            Lane::ReliableUnordered => self.on_unordered(fragment),
            Lane::Unreliable => {
                self.on_unreliable(fragment);
                Ok(())
            }
            Lane::UnreliableSequenced => {
                self.on_sequenced(fragment);
                Ok(())
            }
        };
        if self.data_received > max_data {
            return Err(Violation::FlowControl {
                received: self.data_received,
                limit: max_data,
            });
        }
        result
    }

    fn reliable_budget(&self) -> u64 {
        self.limits.window + self.limits.max_message
    }

    fn on_ordered(&mut self, fragment: &Fragment<'_>) -> Result<(), Violation> {
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
            self.duplicates += 1;
            return Ok(());
        }
        let complete = assemble(
            &mut channel.partial,
            fragment,
            &mut self.reliable_reserved,
            self.limits.window + self.limits.max_message,
            &mut self.data_received,
            &mut self.duplicates,
        )?;
        let Some(data) = complete else {
            return Ok(());
        };
        if seq != channel.next {
            channel.early.insert(seq, data);
            return Ok(());
        }
        let lane = fragment.lane;
        let channel_id = key.1;
        deliver(
            &mut self.ready,
            &mut self.ready_session,
            Message {
                lane,
                channel: channel_id,
                data,
            },
        );
        channel.next += 1;
        while let Some(data) = channel.early.remove(&channel.next) {
            deliver(
                &mut self.ready,
                &mut self.ready_session,
                Message {
                    lane,
                    channel: channel_id,
                    data,
                },
            );
            channel.next += 1;
        }
        Ok(())
    }

    fn on_unordered(&mut self, fragment: &Fragment<'_>) -> Result<(), Violation> {
        let seq = fragment.sequence;
        let lane = &mut self.unordered;
        if seq < lane.floor || lane.delivered.contains(seq) {
            self.duplicates += 1;
            return Ok(());
        }
        let budget = self.limits.window + self.limits.max_message;
        let complete = assemble(
            &mut lane.partial,
            fragment,
            &mut self.reliable_reserved,
            budget,
            &mut self.data_received,
            &mut self.duplicates,
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
        self.deliver(Message {
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
        if seq < floor || lane.delivered.contains(seq) {
            self.duplicates += 1;
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
        ) else {
            return;
        };
        lane.delivered.insert(seq..seq + 1);
        self.deliver_unreliable(Lane::Unreliable, fragment.channel, data);
    }

    fn on_sequenced(&mut self, fragment: &Fragment<'_>) {
        let seq = fragment.sequence;
        let channel = self.sequenced.entry(fragment.channel).or_default();
        if channel.newest.is_some_and(|newest| seq <= newest) {
            self.duplicates += 1;
            return;
        }
        let Some(data) = assemble_unreliable(
            &mut channel.partial,
            fragment,
            &mut self.unreliable_reserved,
            self.limits.unreliable_budget,
            &mut self.unreliable_dropped,
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
        self.unreliable_unread += len;
        self.deliver(Message {
            lane,
            channel,
            data,
        });
    }

    /// Bytes held for reassembly and unread delivery, for the memory bound.
    pub(crate) fn buffered_bytes(&self) -> u64 {
        let early: u64 = self
            .ordered
            .values()
            .flat_map(|channel| channel.early.values())
            .map(|data| data.len() as u64)
            .sum();
        let ready: u64 = self
            .ready
            .iter()
            .map(|message| message.data.len() as u64)
            .chain(self.ready_session.iter().map(|data| data.len() as u64))
            .sum();
        self.reliable_reserved + self.unreliable_reserved + early + ready
    }

    /// The most [`buffered_bytes`](Self::buffered_bytes) may reach.
    pub(crate) fn buffer_bound(&self) -> u64 {
        // Reliable: reservations plus completed-unread, all within the
        // window plus one message; unreliable: its budget twice (partial
        // plus unread).
        2 * self.reliable_budget() + 2 * self.limits.unreliable_budget
    }

    pub(crate) fn clear(&mut self) {
        self.ordered.clear();
        self.unordered = Unordered::default();
        self.unreliable = Unreliable::default();
        self.sequenced.clear();
        self.ready.clear();
        self.ready_session.clear();
        self.reliable_reserved = 0;
        self.unreliable_reserved = 0;
        self.unreliable_unread = 0;
    }
}

/// Adds a reliable fragment to its message; returns the message when it is
/// complete.
fn assemble(
    partials: &mut BTreeMap<u64, Partial>,
    fragment: &Fragment<'_>,
    reserved: &mut u64,
    budget: u64,
    data_received: &mut u64,
    duplicates: &mut u64,
) -> Result<Option<Bytes>, Violation> {
    let len = fragment.data.len() as u64;
    if fragment.offset == 0 && len == fragment.total && !partials.contains_key(&fragment.sequence) {
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
    partial.fill(fragment);
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
