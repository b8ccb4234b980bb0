//! The receiving half of a connection: reassembly of fragments, duplicate
//! suppression and ordering per lane, under bounded memory.
//!
//! Every message held is charged its bookkeeping overhead besides its
//! payload, so many tiny messages cost what they really cost:
//!
//! - Reliable lanes are bounded by flow control, which charges each message
//!   [`MESSAGE_OVERHEAD`] bytes besides its payload (the sender charges the
//!   same, so zero-length messages use up the window too). A partly
//!   received message reserves its full length against the window (plus
//!   one maximum message, for the one a sender may have begun at the edge
//!   of the window), while its buffer grows only with the data that
//!   arrived (`recv/partial.rs`).
//! - A reliable message ahead of the one its lane waits for is taken only
//!   within `max_sequence_lead` of it, while fewer than `max_early_messages`
//!   messages wait to be delivered, and while the endpoint's receive
//!   budget has room; otherwise the fragment is *refused*: the connection
//!   leaves its packet unacknowledged, so the sender resends it later as
//!   if it had been lost. The message a lane waits for is refused only
//!   when the budget is spent and nothing waits behind it, so refusals
//!   never stall a lane for good.
//! - Unreliable lanes have their own budget; when it is full the oldest
//!   partial message is dropped whole.
//!
//! Everything held is charged to an [`Account`] shared with the endpoint
//! (`budget.rs`), and given back when it leaves.
//!
//! A fragment of a message this side already has (delivered, or complete
//! and waiting for an earlier one) is a duplicate: it is counted and
//! dropped, never stored. Once the application lets go of the connection
//! ([`Receiver::discard`]) nothing more is delivered, but the positions
//! that tell a duplicate from a new message are kept.

mod partial;

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use self::partial::{PARTIAL_OVERHEAD, Partial};
use super::budget::{Account, MemoryBudget};
use super::frame::{Fragment, Lane};
use super::ranges::RangeSet;

/// How far behind the newest unreliable sequence number a message may be
/// and still be delivered; older ones may be replays.
const REPLAY_WINDOW: u64 = 4096;

/// The most gaps the reliable-unordered lane tracks between delivered
/// messages (`max_sequence_lead` keeps an honest peer well below it).
const MAX_UNORDERED_GAPS: usize = 1 << 17;

/// Bytes every message is charged besides its payload: by flow control on
/// reliable lanes (a wire contract: the sender charges the same, in
/// `send.rs`), and by the unreliable budget. An upper estimate of what
/// holding one message costs: its queue slot or map entry and the header
/// of its allocation (measured at 70 to 90 bytes with a counting
/// allocator).
pub(crate) const MESSAGE_OVERHEAD: u64 = 128;

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
    /// Reliable messages held and not yet deliverable (`max_early_messages`).
    pub(crate) max_early: usize,
    /// How far ahead of the awaited sequence a message may be
    /// (`max_sequence_lead`).
    pub(crate) max_lead: u64,
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
    /// Queues `message` for whoever reads its lane, charging `account`
    /// for it; `false` (and dropped) once discarding.
    fn deliver(&mut self, message: Message, account: &mut Account) -> bool {
        if self.discarding {
            return false;
        }
        account.hold(message.data.len() as u64 + MESSAGE_OVERHEAD);
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
    /// Reliable messages being reassembled: the buffers they hold so far
    /// (each grows with the data, up to the message's length).
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
    /// Bytes reserved by partly received reliable messages: their lengths
    /// and [`MESSAGE_OVERHEAD`] each.
    reliable_reserved: u64,
    /// Bytes reserved by partly received unreliable messages: their
    /// lengths and `PARTIAL_OVERHEAD` each.
    unreliable_reserved: u64,
    /// Bytes of unreliable messages delivered but not yet read, with
    /// [`MESSAGE_OVERHEAD`] each.
    unreliable_unread: u64,
    /// New reliable bytes received in all, with [`MESSAGE_OVERHEAD`] per
    /// message: what the flow-control limit is counted against.
    pub(crate) data_received: u64,
    /// Reliable messages first seen and not yet delivered (partial, or
    /// waiting for an earlier one).
    undelivered: usize,
    /// Flow-control credit of the reliable messages read: their overhead,
    /// which the application does not know of, so does not release.
    overhead_read: u64,
    /// What everything held is charged to.
    account: Account,
    inbox: Inbox,
    /// A fragment was refused since [`take_refused`](Self::take_refused)
    /// last ran: its packet must not be acknowledged.
    refused: bool,
    /// Reliable fragments refused for lack of room (beyond the lead, the
    /// early-message cap, the endpoint's budget or a message's runs), to
    /// be resent by the peer.
    pub(crate) refused_fragments: u64,
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

/// Where a reliable fragment stands against its lane.
#[derive(Debug, Clone, Copy)]
struct Position {
    /// How far past the message the lane waits for (0: it is that one).
    lead: u64,
    /// Whether this is the first fragment seen of its message.
    is_new: bool,
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
            undelivered: 0,
            overhead_read: 0,
            account: Account::default(),
            inbox: Inbox::default(),
            refused: false,
            refused_fragments: 0,
            unreliable_dropped: 0,
            duplicate_fragments: 0,
            stale_fragments: 0,
            early_buffered: 0,
        }
    }

    /// Charges what this receiver holds, from now on, to the endpoint's
    /// `budget`.
    pub(crate) fn join_budget(&mut self, budget: &MemoryBudget) {
        self.account.join(budget);
    }

    /// Bytes charged for what this receiver holds, overhead included.
    #[cfg(test)]
    pub(crate) fn charged(&self) -> u64 {
        self.account.held()
    }

    /// Whether a fragment was refused since the last call: the packet that
    /// carried it must go unacknowledged so the peer resends it.
    pub(crate) fn take_refused(&mut self) -> bool {
        std::mem::take(&mut self.refused)
    }

    /// Flow-control credit for the overhead of the reliable messages read,
    /// in all: added to what the application releases.
    pub(crate) fn overhead_read(&self) -> u64 {
        self.overhead_read
    }

    /// Messages delivered to the application's queue in all.
    pub(crate) fn messages_delivered(&self) -> u64 {
        self.inbox.delivered
    }

    /// The next message for the application.
    pub(crate) fn pop(&mut self) -> Option<Message> {
        let message = self.inbox.ready.pop_front()?;
        let cost = message.data.len() as u64 + MESSAGE_OVERHEAD;
        self.account.free(cost);
        if message.lane.is_reliable() {
            self.overhead_read += MESSAGE_OVERHEAD;
        } else {
            self.unreliable_unread -= cost;
        }
        Some(message)
    }

    /// The next session-lane message, for the RPC session.
    pub(crate) fn pop_session(&mut self) -> Option<Bytes> {
        let envelope = self.inbox.ready_session.pop_front()?;
        self.account.free(envelope.len() as u64 + MESSAGE_OVERHEAD);
        self.overhead_read += MESSAGE_OVERHEAD;
        Some(envelope)
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
    /// any of it is counted or delivered. A fragment refused for lack of
    /// room is reported by [`take_refused`](Self::take_refused).
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

    /// Whether a reliable fragment at `position` must be refused for lack
    /// of room; counts it if so. The message a lane waits for is refused
    /// only when the endpoint's budget is spent and this connection holds
    /// nothing it could release: while messages wait, it is always taken,
    /// so no lane stalls for good.
    fn refuses(&mut self, position: Position, len: u64) -> bool {
        let entry = if position.is_new { PARTIAL_OVERHEAD } else { 0 };
        let room = self.account.has_room(len + entry);
        let refuse = if position.lead == 0 {
            self.undelivered == 0 && !room
        } else {
            position.lead > self.limits.max_lead
                || (position.is_new && self.undelivered >= self.limits.max_early)
                || !room
        };
        if refuse {
            self.refused = true;
            self.refused_fragments += 1;
        }
        refuse
    }

    /// The books a reliable fragment is entered in.
    fn ledger(&mut self, max_data: u64) -> Ledger<'_> {
        Ledger {
            reserved: &mut self.reliable_reserved,
            // What a peer within flow control can make this side reserve:
            // the window with its one message's charge (the flow window),
            // plus the rest of one message sent up to the limit, with its
            // own charge. Partials reserve their length and the charge.
            budget: self.limits.window + self.limits.max_message + 2 * MESSAGE_OVERHEAD,
            data_received: &mut self.data_received,
            limit: max_data,
            duplicates: &mut self.duplicate_fragments,
            refused: &mut self.refused_fragments,
            refused_now: &mut self.refused,
            undelivered: &mut self.undelivered,
            account: &mut self.account,
        }
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
        let seq = fragment.sequence;
        let channel = self.ordered.entry(key).or_default();
        if seq < channel.next || channel.early.contains_key(&seq) {
            self.duplicate_fragments += 1;
            return Ok(());
        }
        let position = Position {
            lead: seq - channel.next,
            is_new: !channel.partial.contains_key(&seq),
        };
        if self.refuses(position, fragment.data.len() as u64) {
            return Ok(());
        }
        let mut partials = std::mem::take(&mut self.ordered.entry(key).or_default().partial);
        let complete = self.ledger(max_data).assemble(&mut partials, fragment);
        let channel = self.ordered.entry(key).or_default();
        channel.partial = partials;
        let Some(data) = complete? else {
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
            self.account.hold(data.len() as u64 + MESSAGE_OVERHEAD);
            channel.early.insert(seq, data);
            self.early_buffered += 1;
            return Ok(());
        }
        let lane = fragment.lane;
        let channel_id = key.1;
        let mut data = Some(data);
        while let Some(message) = data {
            self.undelivered -= 1;
            self.inbox.deliver(
                Message {
                    lane,
                    channel: channel_id,
                    data: message,
                },
                &mut self.account,
            );
            channel.next += 1;
            data = channel.early.remove(&channel.next);
            if let Some(early) = &data {
                self.account.free(early.len() as u64 + MESSAGE_OVERHEAD);
            }
        }
        Ok(())
    }

    fn on_unordered(&mut self, fragment: &Fragment<'_>, max_data: u64) -> Result<(), Violation> {
        let seq = fragment.sequence;
        let lane = &self.unordered;
        if seq < lane.floor || lane.delivered.contains(seq) {
            self.duplicate_fragments += 1;
            return Ok(());
        }
        let position = Position {
            lead: seq - lane.floor,
            is_new: !lane.partial.contains_key(&seq),
        };
        if self.refuses(position, fragment.data.len() as u64) {
            return Ok(());
        }
        let mut partials = std::mem::take(&mut self.unordered.partial);
        let complete = self.ledger(max_data).assemble(&mut partials, fragment);
        let lane = &mut self.unordered;
        lane.partial = partials;
        let Some(data) = complete? else {
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
        self.undelivered -= 1;
        self.inbox.deliver(
            Message {
                lane: Lane::ReliableUnordered,
                channel: fragment.channel,
                data,
            },
            &mut self.account,
        );
        Ok(())
    }

    /// The books an unreliable fragment is entered in.
    fn unreliable_ledger(&mut self) -> UnreliableLedger<'_> {
        UnreliableLedger {
            reserved: &mut self.unreliable_reserved,
            budget: self.limits.unreliable_budget,
            dropped: &mut self.unreliable_dropped,
            duplicates: &mut self.duplicate_fragments,
            account: &mut self.account,
        }
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
        let mut partials = std::mem::take(&mut lane.partial);
        let mut ledger = self.unreliable_ledger();
        ledger.drop_below(&mut partials, floor);
        let complete = ledger.assemble(&mut partials, fragment);
        self.unreliable.partial = partials;
        let Some(data) = complete else {
            return;
        };
        self.unreliable.delivered.insert(seq..seq + 1);
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
        let mut partials = std::mem::take(&mut channel.partial);
        let mut ledger = self.unreliable_ledger();
        let complete = ledger.assemble(&mut partials, fragment);
        if complete.is_some() {
            // Older partial messages can never be delivered now.
            ledger.drop_below(&mut partials, seq);
        }
        let channel = self.sequenced.entry(fragment.channel).or_default();
        channel.partial = partials;
        let Some(data) = complete else {
            return;
        };
        channel.newest = Some(seq);
        self.deliver_unreliable(Lane::UnreliableSequenced, fragment.channel, data);
    }

    fn deliver_unreliable(&mut self, lane: Lane, channel: u32, data: Bytes) {
        let cost = data.len() as u64 + MESSAGE_OVERHEAD;
        if self.unreliable_unread + cost > self.limits.unreliable_budget
            || !self.account.has_room(cost)
        {
            self.unreliable_dropped += 1;
            return;
        }
        let message = Message {
            lane,
            channel,
            data,
        };
        if self.inbox.deliver(message, &mut self.account) {
            self.unreliable_unread += cost;
        }
    }

    /// What this side holds, measured buffer by buffer.
    pub(crate) fn buffer(&self) -> ReceiveBuffer {
        fn partial_bytes(partials: &BTreeMap<u64, Partial>) -> u64 {
            partials.values().map(Partial::buffered).sum()
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

    /// What [`charged`](Self::charged) should be, counted entry by entry,
    /// for tests of the account.
    #[cfg(test)]
    fn cost_walked(&self) -> u64 {
        let partials = |partials: &BTreeMap<u64, Partial>| -> u64 {
            partials.values().map(Partial::cost).sum()
        };
        let message = |len: usize| len as u64 + MESSAGE_OVERHEAD;
        let mut cost = partials(&self.unordered.partial) + partials(&self.unreliable.partial);
        for channel in self.ordered.values() {
            cost += partials(&channel.partial);
            cost += channel
                .early
                .values()
                .map(|data| message(data.len()))
                .sum::<u64>();
        }
        for channel in self.sequenced.values() {
            cost += partials(&channel.partial);
        }
        cost += self
            .inbox
            .ready
            .iter()
            .map(|m| message(m.data.len()))
            .sum::<u64>();
        cost += self
            .inbox
            .ready_session
            .iter()
            .map(|d| message(d.len()))
            .sum::<u64>();
        cost
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
        while self.pop().is_some() {}
        while self.pop_session().is_some() {}
        self.unreliable_unread = 0;
        for channel in self.ordered.values_mut() {
            for data in channel.early.values_mut() {
                self.account.free(data.len() as u64);
                *data = Bytes::new();
            }
        }
    }
}

/// The counters a reliable fragment is entered in.
struct Ledger<'a> {
    /// Bytes reserved by partial messages, and the most they may reserve.
    reserved: &'a mut u64,
    budget: u64,
    /// Flow-controlled bytes received, and the limit this side advertised.
    data_received: &'a mut u64,
    limit: u64,
    duplicates: &'a mut u64,
    refused: &'a mut u64,
    /// Set when a fragment is refused: its packet must go unacknowledged.
    refused_now: &'a mut bool,
    undelivered: &'a mut usize,
    account: &'a mut Account,
}

impl Ledger<'_> {
    fn past_limit(&self, fresh: u64) -> Violation {
        Violation::FlowControl {
            received: *self.data_received + fresh,
            limit: self.limit,
        }
    }

    /// Adds a reliable fragment to its message; returns the message when
    /// it is complete. A fragment whose new bytes (with the message's
    /// overhead, for its first fragment) would pass the flow-control limit
    /// is refused, and none of it is counted or delivered. Refusing a
    /// fragment for lack of room leaves `Ok(None)` and counts it.
    fn assemble(
        &mut self,
        partials: &mut BTreeMap<u64, Partial>,
        fragment: &Fragment<'_>,
    ) -> Result<Option<Bytes>, Violation> {
        let len = fragment.data.len() as u64;
        let seq = fragment.sequence;
        let partial = match partials.entry(seq) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let whole = fragment.offset == 0 && len == fragment.total;
                let first = MESSAGE_OVERHEAD + if whole { len } else { 0 };
                if *self.data_received + first > self.limit {
                    return Err(self.past_limit(first));
                }
                if whole {
                    *self.data_received += first;
                    *self.undelivered += 1;
                    return Ok(Some(Bytes::copy_from_slice(fragment.data)));
                }
                let reserve = fragment.total + MESSAGE_OVERHEAD;
                if *self.reserved + reserve > self.budget {
                    return Err(Violation::FlowControl {
                        received: *self.reserved + reserve,
                        limit: self.budget,
                    });
                }
                *self.reserved += reserve;
                *self.data_received += MESSAGE_OVERHEAD;
                *self.undelivered += 1;
                self.account.hold(PARTIAL_OVERHEAD);
                entry.insert(Partial::new(fragment.total))
            }
        };
        if partial.total() != fragment.total {
            return Err(Violation::Inconsistent);
        }
        if partial.would_scatter(fragment) {
            *self.refused += 1;
            *self.refused_now = true;
            return Ok(None);
        }
        let (fresh, grown) = partial.fill(fragment);
        self.account.hold(grown);
        if fresh == 0 {
            *self.duplicates += 1;
        }
        if *self.data_received + fresh > self.limit {
            // The connection closes; what was copied in is never delivered.
            return Err(self.past_limit(fresh));
        }
        *self.data_received += fresh;
        if !partial.is_complete() {
            return Ok(None);
        }
        let Some(done) = partials.remove(&seq) else {
            return Ok(None);
        };
        *self.reserved -= done.total() + MESSAGE_OVERHEAD;
        self.account.free(done.cost());
        Ok(Some(done.into_bytes()))
    }
}

/// The counters an unreliable fragment is entered in.
struct UnreliableLedger<'a> {
    /// Bytes reserved by partial messages, and the most they may reserve.
    reserved: &'a mut u64,
    budget: u64,
    dropped: &'a mut u64,
    duplicates: &'a mut u64,
    account: &'a mut Account,
}

impl UnreliableLedger<'_> {
    /// Forgets a partial message, giving back what it held.
    fn forget(&mut self, partial: &Partial) {
        *self.reserved -= partial.total() + PARTIAL_OVERHEAD;
        self.account.free(partial.cost());
        *self.dropped += 1;
    }

    /// Adds an unreliable fragment to its message; returns the message when
    /// it is complete. A message that does not fit the budget is dropped,
    /// after dropping older partial messages to make room.
    fn assemble(
        &mut self,
        partials: &mut BTreeMap<u64, Partial>,
        fragment: &Fragment<'_>,
    ) -> Option<Bytes> {
        let len = fragment.data.len() as u64;
        let seq = fragment.sequence;
        if fragment.offset == 0 && len == fragment.total && !partials.contains_key(&seq) {
            return Some(Bytes::copy_from_slice(fragment.data));
        }
        let reserve = fragment.total + PARTIAL_OVERHEAD;
        if !partials.contains_key(&seq) {
            if reserve > self.budget || !self.account.has_room(PARTIAL_OVERHEAD + len) {
                *self.dropped += 1;
                return None;
            }
            while *self.reserved + reserve > self.budget {
                let Some((_, oldest)) = partials.pop_first() else {
                    // The budget is held by another lane's partial messages.
                    *self.dropped += 1;
                    return None;
                };
                self.forget(&oldest);
            }
            *self.reserved += reserve;
            self.account.hold(PARTIAL_OVERHEAD);
            partials.insert(seq, Partial::new(fragment.total));
        }
        let partial = partials.get_mut(&seq)?;
        if partial.total() != fragment.total || partial.would_scatter(fragment) {
            // Corrupt or hostile: drop the message whole.
            let removed = partials.remove(&seq)?;
            self.forget(&removed);
            return None;
        }
        let (fresh, grown) = partial.fill(fragment);
        self.account.hold(grown);
        if fresh == 0 {
            *self.duplicates += 1;
        }
        if !partial.is_complete() {
            return None;
        }
        let done = partials.remove(&seq)?;
        *self.reserved -= done.total() + PARTIAL_OVERHEAD;
        self.account.free(done.cost());
        Some(done.into_bytes())
    }

    /// Drops the partial messages below `floor`: they can never be
    /// delivered now.
    fn drop_below(&mut self, partials: &mut BTreeMap<u64, Partial>, floor: u64) {
        while let Some(entry) = partials.first_entry() {
            if *entry.key() >= floor {
                break;
            }
            let partial = entry.remove();
            self.forget(&partial);
        }
    }
}

#[cfg(test)]
mod tests;
