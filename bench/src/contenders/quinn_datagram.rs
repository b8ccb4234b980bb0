//! `quinn-datagram`'s `msgs64-unreliable`: one prost `Payload` message per
//! QUIC DATAGRAM frame (RFC 9221). Datagrams are congestion controlled but
//! never resent; quinn packs several into one packet.
//!
//! The sender waits for room in quinn's datagram buffer
//! (`send_datagram_wait`) rather than letting quinn drop the oldest
//! unsent ones, so whatever is lost is lost between the two ends (or in
//! the receiver's buffer when it cannot keep up), never on the sender
//! before it was sent. It lets its buffer drain before it closes, so the
//! close overtakes nothing; the receiver reads what it holds before it
//! sees the close.

use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use quinn::Connection;
use tokio::time::Instant;

use super::{Meter, next_or_quiet};
use crate::pb::Payload;
use crate::{DATA, Report};

/// Counts and decodes datagrams until the sender closes (or, should the
/// close be lost, until none came for a while); the rate runs from the
/// first to the last that arrived.
pub(super) async fn receive(connection: &Connection) -> anyhow::Result<()> {
    let mut meter = Meter::default();
    let end = loop {
        let next = next_or_quiet(connection.read_datagram(), &meter).await;
        match next.item {
            Some(Ok(datagram)) => {
                let payload = Payload::decode(datagram)?;
                debug_assert_eq!(payload.data.len(), DATA.len());
                meter.add(1);
            }
            // Closed (every datagram that arrived before was read), or quiet.
            Some(Err(_)) | None => break next.waited,
        }
    };
    meter.finish_at(end.unwrap_or_else(Instant::now));
    meter.report().print();
    Ok(())
}

/// Sends datagrams for `duration`, then reports how many.
pub(super) async fn send(connection: &Connection, duration: Duration) -> anyhow::Result<()> {
    let payload = Payload {
        data: Bytes::from_static(&DATA),
    };
    let capacity = connection.datagram_send_buffer_space();
    let end = Instant::now() + duration;
    let mut sent = 0u64;
    while Instant::now() < end {
        for _ in 0..256 {
            connection
                .send_datagram_wait(Bytes::from(payload.encode_to_vec()))
                .await?;
        }
        sent += 256;
    }
    // Let every buffered datagram go out before the close (which would
    // discard them), and the last packets leave the socket.
    while connection.datagram_send_buffer_space() < capacity {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    Report::SentMessages { messages: sent }.print();
    Ok(())
}
