//! A connection's counters.

use crate::rpc;
use crate::udp;

/// A snapshot of one connection's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionStats {
    /// The session's counters: envelopes and bytes each way, queue depths,
    /// the heartbeat round trip (TCP).
    pub session: rpc::Stats,
    /// The reliable-UDP connection's counters (round trip, congestion
    /// window, packets sent, lost and resent, duplicates, datagram size);
    /// `None` on other transports or once the connection is forgotten.
    pub udp: Option<udp::ConnectionStats>,
}
