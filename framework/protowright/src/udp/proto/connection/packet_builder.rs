//! Building one `Data` packet: started (header and packet number), filled
//! by a writer in `transmit.rs`, finished (sealed), then recorded as sent.
//! Every `Data` packet this side sends goes through here, so sealing
//! happens in one place, [`PacketBuilder::finish`]: the AEAD (or, on a
//! plaintext connection, the checksum), through the connection's
//! `Protection`.

use std::time::Instant;

use super::Connection;
use super::recovery::Outgoing;
use super::transmit::Transmit;
use crate::udp::proto::crypto::Protection;

/// A `Data` packet being written at the end of a buffer.
#[derive(Debug)]
#[must_use = "a started packet must be finished"]
pub(super) struct PacketBuilder {
    /// Where the packet starts in the buffer.
    start: usize,
    /// Where the clear header ends: what the seal authenticates but does
    /// not encrypt.
    header_end: usize,
    number: u64,
    /// Where its frames must end, leaving room for the trailer within the
    /// datagram size.
    limit: usize,
}

impl PacketBuilder {
    /// Writes the header of packet `number`, for connection `remote_cid`,
    /// at the end of `buf`; the packet will be at most `datagram_size`
    /// bytes, its trailer (tag or checksum) included.
    fn start(
        buf: &mut Vec<u8>,
        protection: &Protection,
        remote_cid: u64,
        number: u64,
        datagram_size: usize,
    ) -> Self {
        let start = buf.len();
        let header_end = protection.start_packet(buf, remote_cid, number);
        let trailer = protection.overhead(number) - (header_end - start);
        Self {
            start,
            header_end,
            number,
            limit: (start + datagram_size - trailer).max(header_end),
        }
    }

    /// Where the frames must end in the buffer.
    pub(super) fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes left for frames.
    pub(super) fn room(&self, buf: &[u8]) -> usize {
        self.limit - buf.len()
    }

    /// Fills the rest of the packet with padding frames (zero bytes).
    pub(super) fn pad(&self, buf: &mut Vec<u8>) {
        buf.resize(self.limit, 0);
    }

    /// Seals the packet: the one place a `Data` packet is protected.
    /// Returns the datagram's size.
    fn finish(self, buf: &mut Vec<u8>, protection: &mut Protection) -> usize {
        protection.finish_packet(buf, self.start, self.header_end, self.number);
        buf.len() - self.start
    }
}

impl Connection {
    /// Starts the next `Data` packet, at most `datagram_size` bytes, at
    /// the end of `buf`.
    pub(super) fn start_packet(
        &mut self,
        buf: &mut Vec<u8>,
        datagram_size: usize,
    ) -> PacketBuilder {
        let number = self.recovery.next_number(&mut self.security.skips);
        PacketBuilder::start(
            buf,
            &self.security.protection,
            self.remote_cid,
            number,
            datagram_size,
        )
    }

    /// Finishes `packet` (seals it), records it with recovery when it is
    /// ack-eliciting (`sent`), and counts the datagram.
    pub(super) fn finish_packet(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
        packet: PacketBuilder,
        sent: Option<Outgoing>,
    ) -> Transmit {
        let number = packet.number;
        let size = packet.finish(buf, &mut self.security.protection);
        if let Some(sent) = sent {
            self.on_packet_sent(now, number, size, sent);
        }
        self.on_datagram_sent(size)
    }
}
