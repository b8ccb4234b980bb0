//! An established, encrypted connection fed arbitrary frames that get
//! past packet protection: the fuzzer plays a peer that holds the real
//! keys, so its bytes reach acks, fragments, flow control and close.

use std::time::Duration;

use bytes::Bytes;

use super::input::Input;
use super::pair::{Pair, client_addr, server_addr};
use crate::udp::proto::Lane;

/// Rounds both sides exchange after each chunk.
const ROUNDS_PER_CHUNK: usize = 3;
/// How far time may move in one of those rounds.
const ROUND: Duration = Duration::from_millis(30);
/// Rounds at the end, long enough for loss timers to fire.
const SETTLE_ROUNDS: usize = 16;
/// How far time may move in one of those.
const SETTLE_ROUND: Duration = Duration::from_millis(250);

/// Drives an established, encrypted connection with arbitrary frames.
///
/// The handshake runs in memory first (fixed seeds, default
/// configuration), and each side queues a reliable and an unreliable
/// message so packets are in flight. `data` is then read as chunks: a
/// byte whose top bit picks the sender (clear: the client, set: the
/// server) and whose low seven bits give a length, then that many bytes of
/// frames. Each chunk is sealed as the sender's next data packet under the
/// real keys ([`Endpoint::seal_frames_as`](crate::udp::proto::Endpoint::seal_frames_as))
/// and delivered, the raw chunk is delivered too (unsealed), and both
/// sides exchange for a few rounds, time advancing.
///
/// Returns whether the handshake completed, so the input reached an
/// established connection. Never panics, whatever `data` holds.
#[doc(hidden)]
pub fn fuzz_session(data: &[u8]) -> bool {
    run(data).is_some()
}

/// [`fuzz_session`], handing back the pair at the end; `None` when the
/// handshake did not complete.
pub(super) fn run(data: &[u8]) -> Option<Pair> {
    let mut pair = Pair::connected()?;
    let server_conn = pair.server_conn?;
    let client_conn = pair.client_conn;
    for (endpoint, handle) in [
        (&mut pair.client, client_conn),
        (&mut pair.server, server_conn),
    ] {
        let _ = endpoint.send(handle, Lane::ReliableOrdered, 0, Bytes::from(vec![7; 3000]));
        let _ = endpoint.send(handle, Lane::Unreliable, 0, Bytes::from(vec![9; 300]));
    }
    let mut input = Input::new(data);
    let mut sealed = Vec::new();
    while !input.is_empty() {
        let head = input.byte();
        let frames = input.bytes(usize::from(head & 0x7f));
        let from_server = head & 0x80 != 0;
        sealed.clear();
        if from_server {
            if pair
                .server
                .seal_frames_as(server_conn, frames, &mut sealed)
                .is_some()
            {
                pair.client
                    .handle_datagram(pair.now, server_addr(), &sealed);
            }
            pair.client.handle_datagram(pair.now, server_addr(), frames);
        } else {
            if pair
                .client
                .seal_frames_as(client_conn, frames, &mut sealed)
                .is_some()
            {
                pair.server
                    .handle_datagram(pair.now, client_addr(), &sealed);
            }
            pair.server.handle_datagram(pair.now, client_addr(), frames);
        }
        for _ in 0..ROUNDS_PER_CHUNK {
            pair.step(ROUND);
        }
    }
    for _ in 0..SETTLE_ROUNDS {
        pair.step(SETTLE_ROUND);
    }
    Some(pair)
}
