//! Checkers for the property tests: every lane's guarantee in both
//! directions, the receive buffers against their bounds at every step,
//! and the counters against what the applications and the link saw.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::link::{End, World};
use super::scenarios::payload_id;
use crate::udp::proto::{Lane, ReceiveBuffer};

/// One message of a plan: which end sends it, how, and how long it is.
#[derive(Debug, Clone, Copy)]
pub(super) struct Send {
    pub(super) from: End,
    pub(super) lane: Lane,
    pub(super) channel: u32,
    pub(super) len: usize,
}

impl Send {
    /// The stream whose guarantee it falls under: ordered and sequenced
    /// lanes per channel, every other lane as one stream.
    fn stream(&self) -> (Lane, u32) {
        match self.lane {
            Lane::ReliableOrdered | Lane::UnreliableSequenced => (self.lane, self.channel),
            _ => (self.lane, 0),
        }
    }

    /// The channel it arrives on: the session lane has only channel 0.
    fn arrives_on(&self) -> u32 {
        if self.lane == Lane::Session {
            0
        } else {
            self.channel
        }
    }
}

/// Checks what each end read against what the other sent (`messages[id]`
/// is sent with `payload(id, len)`): every message intact, on its lane and
/// channel, at the end it was sent to, and each lane's guarantee:
/// reliable ordered and session exactly once in order; reliable unordered
/// exactly once; unreliable at most once; sequenced never going back.
pub(super) fn check_guarantees(messages: &[Send], world: &World) -> Result<(), TestCaseError> {
    for to in [End::Client, End::Server] {
        let from = to.peer();
        let mut sent: BTreeMap<(Lane, u32), Vec<u32>> = BTreeMap::new();
        for (id, send) in messages.iter().enumerate() {
            if send.from == from {
                sent.entry(send.stream()).or_default().push(id as u32);
            }
        }
        let mut got: BTreeMap<(Lane, u32), Vec<u32>> = BTreeMap::new();
        for message in world.received(to) {
            let Some(id) = payload_id(&message.data) else {
                return Err(TestCaseError::fail(format!(
                    "a corrupted message reached the {to:?} on {:?}",
                    message.lane
                )));
            };
            let Some(send) = messages.get(id as usize) else {
                return Err(TestCaseError::fail(format!("message {id} was never sent")));
            };
            prop_assert_eq!(send.from, from, "message {} came back to its sender", id);
            prop_assert_eq!(message.lane, send.lane, "message {}", id);
            prop_assert_eq!(message.channel, send.arrives_on(), "message {}", id);
            prop_assert_eq!(message.data.len(), send.len.max(4), "message {}", id);
            got.entry(send.stream()).or_default().push(id);
        }
        for (stream, sent) in sent {
            let got = got.remove(&stream).unwrap_or_default();
            check_stream(to, stream, &sent, got)?;
        }
    }
    Ok(())
}

/// One stream's guarantee: `sent` in the order sent, `got` as read.
fn check_stream(
    to: End,
    (lane, channel): (Lane, u32),
    sent: &[u32],
    mut got: Vec<u32>,
) -> Result<(), TestCaseError> {
    let increasing = |ids: &[u32]| ids.windows(2).all(|pair| pair[0] < pair[1]);
    match lane {
        Lane::ReliableOrdered | Lane::Session => prop_assert_eq!(
            &got,
            sent,
            "{:?} channel {} to the {:?}: not exactly once in order",
            lane,
            channel,
            to
        ),
        Lane::ReliableUnordered => {
            got.sort_unstable();
            prop_assert_eq!(&got, sent, "reliable unordered to the {:?}", to);
        }
        Lane::Unreliable => {
            got.sort_unstable();
            prop_assert!(
                increasing(&got),
                "unreliable to the {:?} twice: {:?}",
                to,
                got
            );
        }
        Lane::UnreliableSequenced => prop_assert!(
            increasing(&got),
            "sequenced channel {} to the {:?} went back: {:?}",
            channel,
            to,
            got
        ),
    }
    Ok(())
}

/// The most an end's receive side held at any one step.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Peak {
    pub(super) reliable: u64,
    pub(super) unreliable_unread: u64,
    pub(super) held: u64,
    /// The end's bounds (the held fields are the last seen).
    pub(super) last: ReceiveBuffer,
}

/// Watches both ends' receive buffers at every step: the peaks, and the
/// first step at which one went past its bound.
#[derive(Debug, Default)]
pub(super) struct BufferWatch {
    pub(super) client: Peak,
    pub(super) server: Peak,
    pub(super) steps: u64,
    violation: Option<String>,
}

impl BufferWatch {
    pub(super) fn observe(&mut self, world: &World) {
        self.steps += 1;
        for end in [End::Client, End::Server] {
            let Some(connection) = world.connection(end) else {
                continue;
            };
            let buffer = connection.receive_buffer();
            let past = buffer.reliable() > buffer.reliable_bound
                || buffer.unreliable() > buffer.unreliable_bound;
            if past && self.violation.is_none() {
                self.violation = Some(format!(
                    "the {end:?}'s receive buffer went past its bound at step {}: {buffer:?}",
                    self.steps
                ));
            }
            let peak = self.peak_mut(end);
            peak.reliable = peak.reliable.max(buffer.reliable());
            peak.unreliable_unread = peak.unreliable_unread.max(buffer.unreliable_unread);
            peak.held = peak.held.max(buffer.held());
            peak.last = buffer;
        }
    }

    pub(super) fn peak(&self, end: End) -> Peak {
        match end {
            End::Client => self.client,
            End::Server => self.server,
        }
    }

    fn peak_mut(&mut self, end: End) -> &mut Peak {
        match end {
            End::Client => &mut self.client,
            End::Server => &mut self.server,
        }
    }

    /// Fails if a buffer ever went past its bound.
    pub(super) fn check(&self) -> Result<(), TestCaseError> {
        match &self.violation {
            Some(violation) => Err(TestCaseError::fail(violation.clone())),
            None => Ok(()),
        }
    }
}

/// The counters against what the applications and the link saw: each end
/// delivered exactly what its application read; `duplicates` is the sum
/// of its parts; every datagram the link duplicated intact was noticed as
/// a duplicate packet; a duplicate fragment only follows a resend.
pub(super) fn check_counters(world: &World) -> Result<(), TestCaseError> {
    let mut duplicate_packets = 0;
    for end in [End::Client, End::Server] {
        let (Some(connection), Some(peer)) = (world.connection(end), world.connection(end.peer()))
        else {
            return Err(TestCaseError::fail(format!(
                "the {end:?} has no connection"
            )));
        };
        let (stats, peer) = (connection.stats(), peer.stats());
        prop_assert_eq!(
            stats.messages_delivered,
            world.received(end).len() as u64,
            "the {:?}'s delivered counter",
            end
        );
        prop_assert_eq!(
            stats.duplicates,
            stats.duplicate_packets + stats.duplicate_fragments
        );
        prop_assert!(
            stats.duplicate_fragments == 0 || peer.packets_retransmitted > 0,
            "the {:?} counted {} duplicate fragments, but nothing was resent",
            end,
            stats.duplicate_fragments
        );
        duplicate_packets += stats.duplicate_packets;
    }
    prop_assert!(
        duplicate_packets >= world.counters.duplicated_intact,
        "the link duplicated {} datagrams intact; {} duplicate packets counted",
        world.counters.duplicated_intact,
        duplicate_packets
    );
    Ok(())
}
