//! Bounded memory: the receive window stops a sender at a reader that
//! does not release, the send buffer refuses what it cannot hold, and
//! unreliable reassembly stays within its budget.

use std::time::Duration;

use super::link::{End, Faults};
use super::scenarios::{connected_world, payload, payload_id, send_payloads};
use crate::udp::proto::{Config, Lane, ReceiveBuffer, SendError};

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn a_reader_that_does_not_release_stops_the_sender_at_the_window() {
    let config = Config {
        receive_window: 1 << 20,
        max_message_size: 64 << 10,
        send_buffer: 8 << 20,
        ..Config::default()
    };
    let mut world = connected_world(config, Faults::none(), 10);
    world.release = false;
    let client = world.client_conn.expect("client");
    send_payloads(&mut world, Lane::ReliableOrdered, 0, 0..64, 64 << 10);
    world.run_until(10 * SECOND, |_| false);
    let received: usize = world.server_received.iter().map(|m| m.data.len()).sum();
    // Each message is charged 128 bytes of overhead besides its 64 KiB, so
    // 15 fit the 1 MiB window and the 16th stops 1,920 bytes short.
    assert_eq!(received, 15 * (64 << 10), "the sender went past the window");
    let connection = world.client.connection(client).expect("connection");
    assert!(connection.is_flow_blocked());
    // Releasing lets the rest through.
    world.release = true;
    let server = world.server_conn.expect("server");
    world.server.release(server, received as u64);
    assert!(world.run_until(10 * SECOND, |w| w.server_received.len() == 64));
}

#[test]
fn the_send_buffer_is_bounded() {
    let config = Config {
        send_buffer: 100_000,
        ..Config::default()
    };
    let mut world = connected_world(config, Faults::none(), 11);
    let client = world.client_conn.expect("client");
    world
        .client
        .send(client, Lane::ReliableOrdered, 0, payload(0, 60_000))
        .expect("send");
    assert_eq!(
        world
            .client
            .send(client, Lane::ReliableOrdered, 0, payload(1, 60_000)),
        Err(SendError::Full)
    );
    assert!(world.run_until(10 * SECOND, |w| !w.is_pending(End::Client)));
    world
        .client
        .send(client, Lane::ReliableOrdered, 0, payload(1, 60_000))
        .expect("room again");
}

#[test]
fn an_unreliable_message_that_loses_a_fragment_is_dropped_whole_and_a_stalled_reader_holds_at_most_the_budget()
 {
    const BUDGET: u64 = 32 << 10;
    const LEN: usize = 5000;
    const MESSAGES: u32 = 80;
    // 1200-byte datagrams: each message is five fragments.
    let config = Config {
        unreliable_buffer: BUDGET,
        mtu_discovery: false,
        ..Config::default()
    };
    let mut world = connected_world(config, Faults::none(), 12);
    world.faults.loss = 0.15;
    // The reader stalls while 400 KB arrive, over six times the 64 KiB
    // the unreliable lanes may hold: about half the messages lose a
    // fragment and wait for it in vain, the other half complete and wait
    // to be read.
    world.read = false;
    send_payloads(&mut world, Lane::Unreliable, 0, 0..MESSAGES, LEN);
    let mut peak = ReceiveBuffer::default();
    world.run_until(5 * SECOND, |w| {
        let buffer = w
            .connection(End::Server)
            .expect("connection")
            .receive_buffer();
        assert!(buffer.unreliable_partial <= BUDGET, "{buffer:?}");
        assert!(buffer.unreliable_unread <= BUDGET, "{buffer:?}");
        assert!(buffer.unreliable() <= buffer.unreliable_bound, "{buffer:?}");
        peak.unreliable_partial = peak.unreliable_partial.max(buffer.unreliable_partial);
        peak.unreliable_unread = peak.unreliable_unread.max(buffer.unreliable_unread);
        false
    });
    // Both budgets were filled to within one message: without them the
    // reader would have held several times as much.
    assert!(peak.unreliable_partial > BUDGET - LEN as u64, "{peak:?}");
    assert!(peak.unreliable_unread > BUDGET - LEN as u64, "{peak:?}");
    let stats = world.connection(End::Server).expect("connection").stats();
    assert!(stats.unreliable_dropped > 0, "{stats:?}");

    // What was delivered is whole and intact.
    world.read = true;
    world.run_until(SECOND, |_| false);
    let delivered = world.server_received.len();
    assert!(
        delivered > 0 && delivered < MESSAGES as usize,
        "{delivered}"
    );
    let stats = world.connection(End::Server).expect("connection").stats();
    assert_eq!(stats.messages_delivered, delivered as u64);
    for message in &world.server_received {
        assert_eq!(message.data.len(), LEN);
        assert!(
            payload_id(&message.data).is_some(),
            "a partial or corrupted message was delivered"
        );
    }
}
