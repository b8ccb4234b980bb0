//! The members' shared notebook: who believes it is in the room, each
//! sender's current stretch of lines, and the flow that records each
//! (sender stretch, receiver membership) pair — see the crate docs of the
//! test for why lines are recorded per pair.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use protowright::Delivery;
use protowright_sim::Ctx;

use crate::{MEMBERS, ROOM};

/// The history stream's name: one per flow.
const STREAM: &str = "chat line";

pub(crate) type Shared = Arc<Mutex<Ledger>>;

pub(crate) fn lock(ledger: &Shared) -> MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A sender's stretch of lines: numbered from 0, on one connection.
#[derive(Debug, Clone, Copy)]
struct Segment {
    id: u64,
    next_line: u64,
}

/// The flow of one (sender segment, receiver membership) pair.
#[derive(Debug, Clone, Copy)]
struct Pair {
    flow: u64,
    /// The sender's first line the receiver is owed.
    first: u64,
    ended: bool,
}

/// What the members know of each other, to record lines per flow (see
/// the module docs). The simulation runs on one thread; the lock is only
/// for the types.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Each member's current membership, while it is in the room.
    membership: BTreeMap<String, Option<u64>>,
    /// Each member's current stretch of lines.
    speaking: BTreeMap<String, Segment>,
    /// (segment, membership) to the flow that records it.
    pairs: BTreeMap<(u64, u64), Pair>,
    next_id: u64,
    /// Whose last line each member has received.
    finals: BTreeMap<String, BTreeSet<String>>,
    /// The members whose last call has ended.
    pub(crate) spoken: BTreeSet<String>,
}

impl Ledger {
    pub(crate) fn shared() -> Shared {
        Arc::new(Mutex::new(Self::default()))
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// `me` is (back) in the room: a new membership and a new segment.
    pub(crate) fn joined(&mut self, me: &str) {
        let membership = self.fresh_id();
        self.membership.insert(me.to_owned(), Some(membership));
        let segment = Segment {
            id: self.fresh_id(),
            next_line: 0,
        };
        self.speaking.insert(me.to_owned(), segment);
    }

    /// `me`'s connection was lost: its membership and segment end.
    pub(crate) fn lost(&mut self, ctx: &Ctx, me: &str) {
        self.end_membership(ctx, me);
        self.membership.insert(me.to_owned(), None);
        if let Some(segment) = self.speaking.get(me).copied() {
            self.end_segment(ctx, me, segment.id);
        }
    }

    /// The server dropped events for `me`: its membership starts over.
    pub(crate) fn missed(&mut self, ctx: &Ctx, me: &str) {
        self.end_membership(ctx, me);
        let membership = self.fresh_id();
        self.membership.insert(me.to_owned(), Some(membership));
    }

    fn end_membership(&mut self, ctx: &Ctx, me: &str) {
        let Some(Some(membership)) = self.membership.get(me).copied() else {
            return;
        };
        self.end_pairs(ctx, |(_, m)| m == membership);
    }

    fn end_segment(&mut self, ctx: &Ctx, me: &str, segment: u64) {
        self.end_pairs(ctx, |(s, _)| s == segment);
        let fresh = Segment {
            id: self.fresh_id(),
            next_line: 0,
        };
        self.speaking.insert(me.to_owned(), fresh);
    }

    fn end_pairs(&mut self, ctx: &Ctx, matches: impl Fn((u64, u64)) -> bool) {
        for (key, pair) in &mut self.pairs {
            if matches(*key) && !pair.ended {
                pair.ended = true;
                ctx.history().flow_ended(pair.flow, false);
            }
        }
    }

    /// The text of `me`'s next line, recorded as sent to every other member
    /// in the room; and the segment it belongs to.
    pub(crate) fn line(&mut self, ctx: &Ctx, me: &str, last: bool) -> (String, u64) {
        let Some(segment) = self.speaking.get_mut(me) else {
            return (format!("{me} 0 0"), 0);
        };
        let (id, n) = (segment.id, segment.next_line);
        segment.next_line += 1;
        let receivers: Vec<u64> = self
            .membership
            .iter()
            .filter(|(name, _)| name.as_str() != me)
            .filter_map(|(_, membership)| *membership)
            .collect();
        for membership in receivers {
            let pair = self.pairs.entry((id, membership)).or_insert_with(|| Pair {
                flow: ctx.new_flow(),
                first: n,
                ended: false,
            });
            if !pair.ended {
                let seq = n - pair.first;
                ctx.history()
                    .sent(pair.flow, STREAM, Delivery::ReliableOrdered, seq);
            }
        }
        let marker = if last { " last" } else { "" };
        (format!("{me} {id} {n}{marker}"), id)
    }

    /// A line of `segment` failed: it may or may not have been said, so the
    /// segment ends (if it is still the current one).
    pub(crate) fn line_failed(&mut self, ctx: &Ctx, me: &str, segment: u64) {
        if self.speaking.get(me).is_some_and(|s| s.id == segment) {
            ctx.history().count("chat.failed_lines", 1);
            self.end_segment(ctx, me, segment);
        }
    }

    /// `me` received `said`: recorded on its flow if `me` is owed it.
    pub(crate) fn delivered(&mut self, ctx: &Ctx, me: &str, said: &chat::pb::Said) {
        let mut words = said.text.split(' ');
        let (Some(sender), Some(segment), Some(n)) = (words.next(), words.next(), words.next())
        else {
            return;
        };
        let (Ok(segment), Ok(n)) = (segment.parse::<u64>(), n.parse::<u64>()) else {
            return;
        };
        if words.next() == Some("last") {
            self.finals
                .entry(me.to_owned())
                .or_default()
                .insert(sender.to_owned());
        }
        let Some(Some(membership)) = self.membership.get(me).copied() else {
            return;
        };
        let Some(pair) = self.pairs.get(&(segment, membership)) else {
            return;
        };
        if n >= pair.first {
            let intact = said.nick == sender && said.room == ROOM;
            ctx.history().delivered(
                pair.flow,
                STREAM,
                Delivery::ReliableOrdered,
                n - pair.first,
                intact,
            );
        }
    }

    pub(crate) fn all_in(&self) -> bool {
        MEMBERS
            .iter()
            .all(|m| self.membership.get(*m).is_some_and(Option::is_some))
    }

    pub(crate) fn all_done(&self) -> bool {
        MEMBERS.iter().all(|me| {
            let got = self.finals.get(*me);
            MEMBERS
                .iter()
                .filter(|other| *other != me)
                .all(|other| got.is_some_and(|got| got.contains(*other)))
        })
    }
}
