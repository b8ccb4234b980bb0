//! Hand-written scenarios: fragmentation, channels, close, reset, timeouts
//! and loss recovery, and the helpers the other engine tests share.

use std::time::Duration;

use bytes::Bytes;

use super::link::{End, Faults, World};
use crate::udp::proto::{CloseReason, Config, Event, Lane, SendError};

const SECOND: Duration = Duration::from_secs(1);

/// A message whose bytes say which message it is, so corruption and mixups
/// are caught: a 4-byte id, then a pattern derived from it.
pub(super) fn payload(id: u32, len: usize) -> Bytes {
    let mut data = Vec::with_capacity(len.max(4));
    data.extend_from_slice(&id.to_be_bytes());
    for index in 4..len.max(4) {
        data.push((id as usize * 31 + index * 7) as u8);
    }
    Bytes::from(data)
}

/// The id of an intact [`payload`], or `None` when its bytes are wrong.
pub(super) fn payload_id(data: &[u8]) -> Option<u32> {
    let id = u32::from_be_bytes(data.get(..4)?.try_into().ok()?);
    let intact = data
        .iter()
        .enumerate()
        .skip(4)
        .all(|(index, &byte)| byte == (id as usize * 31 + index * 7) as u8);
    intact.then_some(id)
}

/// Queues [`payload`]s `ids` of `len` bytes from the client on `lane` and
/// `channel`.
pub(super) fn send_payloads(
    world: &mut World,
    lane: Lane,
    channel: u32,
    ids: std::ops::Range<u32>,
    len: usize,
) {
    let client = world.client_conn.expect("client");
    for id in ids {
        world
            .client
            .send(client, lane, channel, payload(id, len))
            .expect("send");
    }
}

pub(super) fn connected_world(config: Config, faults: Faults, seed: u64) -> World {
    let mut world = World::new(config, faults, seed);
    world.connect();
    assert!(
        world.run_until(10 * SECOND, |w| w.connected()),
        "handshake did not finish"
    );
    world
}

#[test]
fn a_large_message_is_fragmented_and_reassembled_intact() {
    let mut world = connected_world(Config::default(), Faults::none(), 7);
    let client = world.client_conn.expect("client");
    world
        .client
        .send(client, Lane::ReliableOrdered, 0, payload(1, 1 << 20))
        .expect("send");
    assert!(world.run_until(10 * SECOND, |w| !w.server_received.is_empty()));
    assert_eq!(world.server_received[0].data.len(), 1 << 20);
    assert_eq!(payload_id(&world.server_received[0].data), Some(1));
}

#[test]
fn a_64_mib_message_crosses_when_configured() {
    let config = Config {
        max_message_size: 64 << 20,
        receive_window: 64 << 20,
        send_buffer: 64 << 20,
        initial_datagram_size: 8192,
        ..Config::default()
    };
    let mut world = connected_world(config, Faults::none(), 8);
    let client = world.client_conn.expect("client");
    world
        .client
        .send(client, Lane::ReliableOrdered, 0, payload(5, 64 << 20))
        .expect("send");
    assert!(world.run_until(120 * SECOND, |w| !w.server_received.is_empty()));
    assert_eq!(payload_id(&world.server_received[0].data), Some(5));
}

#[test]
fn oversized_messages_and_missing_channels_are_refused_at_send() {
    let mut world = connected_world(Config::default(), Faults::none(), 9);
    let client = world.client_conn.expect("client");
    assert_eq!(
        world.client.send(
            client,
            Lane::Unreliable,
            0,
            Bytes::from(vec![0; (1 << 20) + 1])
        ),
        Err(SendError::TooLarge {
            len: (1 << 20) + 1,
            max: 1 << 20
        })
    );
    // The first channel past the configured count.
    let channels = world.client.config().channels;
    assert_eq!(
        world
            .client
            .send(client, Lane::ReliableOrdered, channels, payload(1, 10)),
        Err(SendError::NoSuchChannel {
            channel: channels,
            channels
        })
    );
}

#[test]
fn graceful_close_delivers_what_was_queued_then_both_sides_close() {
    let mut world = connected_world(
        Config::default(),
        Faults {
            loss: 0.1,
            ..Faults::none()
        },
        13,
    );
    let client = world.client_conn.expect("client");
    send_payloads(&mut world, Lane::ReliableOrdered, 0, 0..20, 3000);
    world.client.close(client, world.now, 7, "done");
    assert_eq!(
        world
            .client
            .send(client, Lane::ReliableOrdered, 0, payload(99, 10)),
        Err(SendError::Closed)
    );
    assert!(world.run_until(30 * SECOND, |w| w.server_events.len() == 2
        && w.client_events.len() == 2));
    assert_eq!(world.server_received.len(), 20);
    assert_eq!(
        world.client_events[1],
        Event::Closed(CloseReason::Local {
            code: 7,
            reason: "done".into()
        })
    );
    assert_eq!(
        world.server_events[1],
        Event::Closed(CloseReason::Peer {
            code: 7,
            reason: "done".into()
        })
    );
    world.run_until(30 * SECOND, |_| false);
    assert_eq!(world.client.connection_count(), 0);
    assert_eq!(world.server.connection_count(), 0);
}

/// A server endpoint with a fixed static key (as loaded from a key file).
fn keyed_server(world: &World, secret: u8, seed: u64) -> crate::udp::proto::Endpoint {
    let mut config = Config::default();
    config.security.static_key = Some(crate::udp::proto::crypto::StaticKey::from_secret(
        [secret; 32],
    ));
    let mut server =
        crate::udp::proto::Endpoint::new(config, world.now, seed).expect("valid config");
    server.listen(true);
    server
}

#[test]
fn a_restarted_server_makes_the_client_fail_fast_with_a_reset() {
    let mut world = World::new(Config::default(), Faults::none(), 14);
    world.server = keyed_server(&world, 5, 98);
    world.connect();
    assert!(world.run_until(SECOND, |w| w.connected()));
    let client = world.client_conn.expect("client");
    // The server restarts with the same key file: a new endpoint on the
    // same address, which derives the same reset tokens.
    world.server = keyed_server(&world, 5, 99);
    world.server_conn = None;
    world
        .client
        .send(client, Lane::ReliableOrdered, 0, payload(1, 100))
        .expect("send");
    assert!(world.run_until(SECOND, |w| w.client_events.len() == 2));
    assert_eq!(world.client_events[1], Event::Closed(CloseReason::Reset));
    assert!(world.server.stats().resets_sent >= 1);
}

#[test]
fn a_reset_from_anyone_but_the_server_is_dropped_and_the_connection_lives() {
    let mut world = World::new(Config::default(), Faults::none(), 15);
    world.server = keyed_server(&world, 5, 98);
    world.connect();
    assert!(world.run_until(SECOND, |w| w.connected()));
    let client = world.client_conn.expect("client");
    // Another endpoint (another key) answers on the server's address: its
    // resets carry the wrong token.
    world.server = keyed_server(&world, 6, 99);
    world.server_conn = None;
    world
        .client
        .send(client, Lane::ReliableOrdered, 0, payload(1, 100))
        .expect("send");
    world.run_until(2 * SECOND, |_| false);
    assert!(world.server.stats().resets_sent >= 1);
    assert_eq!(world.client_events.len(), 1, "{:?}", world.client_events);
    assert!(world.client.stats().forged_dropped >= 1);
    assert!(!world.client.connection(client).expect("alive").is_closed());
}

#[test]
fn a_vanished_peer_is_noticed_by_the_idle_timeout_and_keepalives_keep_a_quiet_one() {
    let config = Config {
        idle_timeout: 4 * SECOND,
        keepalive_interval: SECOND,
        ..Config::default()
    };
    let mut world = connected_world(config, Faults::none(), 15);
    // Quiet but alive: keepalives hold it open well past the idle timeout.
    world.run_until(20 * SECOND, |_| false);
    assert_eq!(world.client_events, vec![Event::Connected]);
    // The link dies: both sides time out.
    world.faults.loss = 1.0;
    assert!(world.run_until(10 * SECOND, |w| w.client_events.len() == 2
        && w.server_events.len() == 2));
    assert_eq!(
        world.client_events[1],
        Event::Closed(CloseReason::IdleTimeout(4 * SECOND))
    );
}

#[test]
fn a_stalled_ordered_channel_does_not_hold_up_another() {
    let mut world = connected_world(Config::default(), Faults::none(), 16);
    let client = world.client_conn.expect("client");
    // Channel 0's message is lost once; channel 1's goes through at once.
    world.faults.loss = 1.0;
    world
        .client
        .send(client, Lane::ReliableOrdered, 0, payload(0, 100))
        .expect("send");
    world.run_until(Duration::from_millis(1), |_| false);
    world.faults.loss = 0.0;
    world
        .client
        .send(client, Lane::ReliableOrdered, 1, payload(1, 100))
        .expect("send");
    assert!(world.run_until(Duration::from_millis(30), |w| !w.server_received.is_empty()));
    assert_eq!(world.server_received[0].channel, 1);
    assert!(world.run_until(5 * SECOND, |w| w.server_received.len() == 2));
    assert_eq!(world.server_received[1].channel, 0);
}

#[test]
fn acks_flow_when_only_one_side_sends() {
    let mut world = connected_world(Config::default(), Faults::none(), 17);
    let client = world.client_conn.expect("client");
    send_payloads(&mut world, Lane::ReliableUnordered, 0, 0..200, 1000);
    // Everything acknowledged, path-MTU probes included.
    assert!(world.run_until(10 * SECOND, |w| {
        !w.is_pending(End::Client)
            && w.client
                .connection(client)
                .is_some_and(|c| c.stats().bytes_in_flight == 0)
    }));
    assert_eq!(world.server_received.len(), 200);
    let stats = world.client.connection(client).expect("connection").stats();
    assert_eq!(stats.bytes_in_flight, 0);
    assert!(
        stats.rtt >= Duration::from_millis(10) && stats.rtt < Duration::from_millis(20),
        "{:?}",
        stats.rtt
    );
}

#[test]
fn corrupted_datagrams_are_dropped_not_delivered() {
    let mut world = connected_world(
        Config::default(),
        Faults {
            corrupt: 0.2,
            ..Faults::none()
        },
        18,
    );
    send_payloads(&mut world, Lane::ReliableOrdered, 0, 0..100, 2000);
    assert!(world.run_until(30 * SECOND, |w| w.server_received.len() == 100));
    for (index, message) in world.server_received.iter().enumerate() {
        assert_eq!(payload_id(&message.data), Some(index as u32));
    }
    assert!(world.counters.corrupted > 0);
    // Corruption fails authentication (or, in the connection id, routes
    // nowhere and is answered with a reset the client drops).
    let server = world.connection(End::Server).expect("server").stats();
    assert!(server.unauthentic_packets > 0, "{server:?}");
}

#[test]
fn an_aborted_connection_drains_within_three_probe_timeouts() {
    let mut world = connected_world(Config::default(), Faults::none(), 20);
    world.run_until(Duration::from_millis(100), |_| false);
    let server = world.server_conn.expect("server");
    let pto = {
        let stats = world.server.connection(server).expect("connection").stats();
        stats.rtt
            + (stats.rtt_variance * 4).max(Duration::from_millis(1))
            + Duration::from_millis(5)
    };
    let start = world.now;
    world.server.abort(server, world.now, 0, "bye");
    assert!(world.run_until(10 * SECOND, |w| w.server.connection_count() == 0));
    assert!(
        world.now - start <= pto * 3 + Duration::from_millis(1),
        "{:?} vs pto {pto:?}",
        world.now - start
    );
}

/// Sends five one-packet messages over a link with 5 ms of delay each way,
/// with the client's data packet `dropped` (0-based among those five) lost.
/// Checks that exactly that packet was declared lost and resent; returns
/// the world, how long until all five arrived, and the RTT.
fn lose_one_of_five(dropped: u64) -> (World, Duration, Duration) {
    // One message per packet: no larger datagrams to pack them into.
    let config = Config {
        mtu_discovery: false,
        ..Config::default()
    };
    let mut world = connected_world(config, Faults::none(), 21);
    let client = world.client_conn.expect("client");
    // Warm the RTT estimate up with a few exchanges.
    for id in 100..110 {
        world
            .client
            .send(client, Lane::ReliableOrdered, 1, payload(id, 100))
            .expect("send");
        world.run_until(Duration::from_millis(30), |_| false);
    }
    let rtt = world
        .client
        .connection(client)
        .expect("connection")
        .stats()
        .rtt;
    world.drop_client_data = Some((0, dropped));
    send_payloads(&mut world, Lane::ReliableOrdered, 0, 0..5, 1000);
    let start = world.now;
    assert!(world.run_until(5 * SECOND, |w| {
        w.server_received.iter().filter(|m| m.channel == 0).count() == 5
    }));
    let took = world.now - start;
    // Exactly the dropped packet was declared lost and its data resent.
    let stats = world.client.connection(client).expect("connection").stats();
    assert_eq!(stats.packets_lost, 1, "{stats:?}");
    assert_eq!(stats.packets_retransmitted, 1);
    (world, took, rtt)
}

#[test]
fn a_packet_three_below_the_largest_acked_is_lost_at_once() {
    // Packet 0 of 5 is dropped; the ack of packet 3 (three above it)
    // declares it lost by RFC 9002's packet threshold: one round trip to
    // learn of it, half of one for the resend.
    let (world, took, rtt) = lose_one_of_five(0);
    assert!(
        took <= rtt * 3 / 2 + Duration::from_millis(1),
        "took {took:?} with an RTT of {rtt:?}"
    );
    let ordered: Vec<_> = world
        .server_received
        .iter()
        .filter(|m| m.channel == 0)
        .collect();
    for (index, message) in ordered.iter().enumerate() {
        assert_eq!(payload_id(&message.data), Some(index as u32));
    }
}

#[test]
fn a_packet_with_too_few_acked_above_it_is_lost_after_nine_eighths_of_an_rtt() {
    // Packet 3 of 5 is dropped: only packet 4 is acked above it, short of
    // the packet threshold, so the time threshold declares it lost 9/8 RTT
    // after it was sent; the resend then takes half a round trip.
    let (_, took, rtt) = lose_one_of_five(3);
    let expected = rtt * 9 / 8 + rtt / 2;
    assert!(
        took >= expected && took <= expected + Duration::from_millis(2),
        "took {took:?}, expected about {expected:?} (RTT {rtt:?})"
    );
}
