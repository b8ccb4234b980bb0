//! A count of duplicate fragments made outside the engine: it reads the
//! fragments of the datagrams the link delivers, so a test can hold the
//! receiver's duplicate counter against what actually crossed the link.
//! It reads plaintext connections only (the debugging flag): encrypted
//! packets are opaque to it, as to anyone on the path.

use std::collections::{BTreeMap, BTreeSet};

use crate::udp::proto::frame::{Frame, Frames, Lane};
use crate::udp::proto::packet::{self, Packet};
use crate::udp::proto::ranges::RangeSet;

/// Every fragment delivered to one end, by message.
///
/// A fragment is a duplicate when every byte it carries arrived before in
/// an earlier packet; a packet whose number arrived before is a duplicate
/// packet and its fragments are not read (the engine drops it whole). The
/// count is exact for non-empty messages on a connection that is not
/// closing, and when fewer than the engine's 256 remembered packet-number
/// ranges are ever open at once.
#[derive(Debug, Default)]
pub(super) struct FragmentLog {
    /// Packet numbers seen, by destination connection id.
    packets: BTreeSet<(u64, u64)>,
    /// Bytes seen per message: lane, numbering channel, sequence.
    seen: BTreeMap<(Lane, u32, u64), RangeSet>,
    /// Fragments read.
    pub(super) fragments: u64,
    /// Fragments whose bytes had all arrived before.
    pub(super) duplicates: u64,
    /// Duplicate fragments by lane.
    pub(super) duplicates_by_lane: BTreeMap<Lane, u64>,
    /// Packets whose number had arrived before.
    pub(super) duplicate_packets: u64,
}

impl FragmentLog {
    /// Reads one delivered datagram.
    pub(super) fn observe(&mut self, datagram: &[u8]) {
        let Ok(Packet::Data {
            cid,
            number,
            frames,
        }) = packet::unseal(datagram).and_then(Packet::decode)
        else {
            return;
        };
        if !self.packets.insert((cid, number)) {
            self.duplicate_packets += 1;
            return;
        }
        for frame in Frames::new(frames).map_while(Result::ok) {
            let Frame::Fragment(fragment) = frame else {
                continue;
            };
            // The sender numbers ordered and sequenced messages per
            // channel, and each other lane's messages in one sequence.
            let channel = match fragment.lane {
                Lane::ReliableOrdered | Lane::UnreliableSequenced => fragment.channel,
                _ => 0,
            };
            let start = fragment.offset;
            let end = start + fragment.data.len() as u64;
            let seen = self
                .seen
                .entry((fragment.lane, channel, fragment.sequence))
                .or_default();
            self.fragments += 1;
            if seen.insert(start..end) == 0 {
                self.duplicates += 1;
                *self.duplicates_by_lane.entry(fragment.lane).or_default() += 1;
            }
        }
    }
}
