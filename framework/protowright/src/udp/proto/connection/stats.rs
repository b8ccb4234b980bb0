//! A connection's counters, and the snapshot of them and of its estimates
//! that applications read ([`ConnectionStats`]).

use std::time::Duration;

use super::Connection;
use crate::udp::proto::send::QueueDepths;

/// Counters and estimates for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Smoothed round-trip time.
    pub rtt: Duration,
    /// The smallest round-trip time seen.
    pub min_rtt: Duration,
    /// Round-trip time variance.
    pub rtt_variance: Duration,
    /// The congestion window in bytes.
    pub congestion_window: u64,
    /// The congestion controller's name.
    pub congestion_controller: &'static str,
    /// Bytes sent and not yet acknowledged or declared lost.
    pub bytes_in_flight: u64,
    /// Packets sent.
    pub packets_sent: u64,
    /// Packets received (duplicates and undecodable ones excluded).
    pub packets_received: u64,
    /// Packets declared lost.
    pub packets_lost: u64,
    /// Packets that carried resent data.
    pub packets_retransmitted: u64,
    /// Datagram bytes sent.
    pub bytes_sent: u64,
    /// Datagram bytes received.
    pub bytes_received: u64,
    /// The datagram size in use.
    pub datagram_size: usize,
    /// What the send side holds.
    pub queues: QueueDepths,
    /// Messages ready for the application and not yet read.
    pub unread_messages: usize,
    /// Messages delivered to the application's queue, every lane: each
    /// message at most once, none after the application let go of the
    /// connection.
    pub messages_delivered: u64,
    /// Unreliable messages dropped on receipt (lost fragment, full buffer).
    pub unreliable_dropped: u64,
    /// Duplicates ignored: `duplicate_packets + duplicate_fragments`.
    pub duplicates: u64,
    /// Packets whose number had already arrived (the path duplicated
    /// them), dropped before their frames were read.
    pub duplicate_packets: u64,
    /// Fragments of messages already delivered or held, or of bytes already
    /// held (resends after a lost ack), dropped without being stored.
    pub duplicate_fragments: u64,
    /// Unreliable fragments that came too late to use: older than the
    /// newest sequenced message delivered, or than the replay window.
    pub stale_fragments: u64,
    /// Ordered messages that arrived ahead of an earlier one and waited in
    /// the early buffer for it: reordering put right.
    pub early_buffered: u64,
    /// Reliable fragments refused for lack of room (too far ahead, too
    /// many messages waiting, the endpoint's receive budget spent): their
    /// packets went unacknowledged, so the peer resends them.
    pub refused_fragments: u64,
    /// Whether packets are encrypted (false only with the plaintext
    /// debugging flag).
    pub encrypted: bool,
    /// The peer's static key, when the handshake proved it (see
    /// [`Connection::peer_key`](super::Connection::peer_key)).
    pub peer_key: Option<crate::udp::proto::crypto::PublicKey>,
    /// Packets dropped unread because they did not authenticate (forged,
    /// corrupted, or sealed with other keys) or did not decode.
    pub unauthentic_packets: u64,
    /// On a server that requires connect tokens, the client id the
    /// client's token admitted.
    pub client_id: Option<u64>,
}

/// What the connection counts as it goes.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counters {
    pub(super) packets_sent: u64,
    pub(super) packets_received: u64,
    pub(super) packets_lost: u64,
    pub(super) packets_retransmitted: u64,
    pub(super) bytes_sent: u64,
    pub(super) bytes_received: u64,
    pub(super) duplicate_packets: u64,
}

impl Connection {
    /// Counters and estimates.
    pub fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            rtt: self.rtt.smoothed(),
            min_rtt: self.rtt.min(),
            rtt_variance: self.rtt.variance(),
            congestion_window: self.controller.window(),
            congestion_controller: self.controller.name(),
            bytes_in_flight: self.recovery.in_flight,
            packets_sent: self.stats.packets_sent,
            packets_received: self.stats.packets_received,
            packets_lost: self.stats.packets_lost,
            packets_retransmitted: self.stats.packets_retransmitted,
            bytes_sent: self.stats.bytes_sent,
            bytes_received: self.stats.bytes_received,
            datagram_size: self.mtu.current(),
            queues: self.sender.depths(),
            unread_messages: self.receiver.ready_len(),
            messages_delivered: self.receiver.messages_delivered(),
            unreliable_dropped: self.receiver.unreliable_dropped,
            duplicates: self.receiver.duplicate_fragments + self.stats.duplicate_packets,
            duplicate_packets: self.stats.duplicate_packets,
            duplicate_fragments: self.receiver.duplicate_fragments,
            stale_fragments: self.receiver.stale_fragments,
            early_buffered: self.receiver.early_buffered,
            refused_fragments: self.receiver.refused_fragments,
            encrypted: self.security.protection.is_encrypted(),
            peer_key: self.security.peer_key,
            unauthentic_packets: self.security.unauthentic_packets,
            client_id: self.security.client_id,
        }
    }
}
