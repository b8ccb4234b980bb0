//! The handshake: the stateless cookie exchange, what the server sends
//! before an address is validated, refusals, timeouts and the first RTT
//! sample.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::link::{End, Faults, World};
use super::scenarios::connected_world;
use crate::udp::proto::coding::Put;
use crate::udp::proto::packet::{self, Hello, PacketType};
use crate::udp::proto::{
    CloseReason, Config, Endpoint, Event, MIN_INITIAL_SIZE, RefuseReason, VERSION,
};

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn the_handshake_takes_a_cookie_round_trip_and_the_server_keeps_no_state_before_it() {
    let mut world = World::new(Config::default(), Faults::none(), 1);
    world.connect();
    // Let exactly the first Initial reach the server and its Retry leave.
    world.run_until(Duration::from_millis(6), |_| false);
    assert_eq!(world.server.stats().retries_sent, 1);
    assert_eq!(
        world.server.connection_count(),
        0,
        "state kept before the cookie returned"
    );
    assert!(world.run_until(SECOND, |w| w.connected()));
    assert_eq!(world.server.connection_count(), 1);
    assert_eq!(world.server_events, vec![Event::Connected]);
    assert_eq!(world.client_events, vec![Event::Connected]);
}

#[test]
fn before_validation_the_server_sends_less_than_three_times_the_bytes_it_received() {
    let mut world = World::new(Config::default(), Faults::none(), 2);
    // The server's answers are lost for a while: the client sends its
    // Initial again and again, and each is answered with a Retry.
    world.cut_to = Some(End::Client);
    world.connect();
    let mut checked = 0;
    let mut within = |w: &mut World| {
        let stats = w.server.stats();
        if stats.accepted == 0 {
            checked += 1;
            assert!(
                stats.bytes_sent < 3 * stats.bytes_received || stats.bytes_sent == 0,
                "{stats:?}"
            );
            // Every byte that reached the server was counted.
            assert_eq!(stats.bytes_received, w.counters.bytes_to_server);
        }
    };
    world.run_until(SECOND, |w| {
        within(w);
        false
    });
    world.cut_to = None;
    assert!(world.run_until(SECOND, |w| {
        within(w);
        w.connected()
    }));
    let stats = world.server.stats();
    assert!(stats.retries_sent >= 3, "{stats:?}");
    assert!(checked >= 6, "checked {checked} steps");
}

/// A client's `Initial` from a spoofed source, with `cookie`, claiming
/// `version`; padded to the minimum size or as small as it can be.
fn initial(version: u8, cookie: &[u8], padded: bool) -> Vec<u8> {
    let mut datagram = Vec::new();
    let hello = Hello {
        schema_hash: Config::default().schema_hash,
        max_data: 0,
        max_message: 0,
        cookie,
        security: 2,
        cipher: 1,
        key_update: 1 << 22,
        handshake: &[0x42; 32],
    };
    if padded {
        packet::encode_initial(&mut datagram, 0x5eed, &hello);
    } else {
        packet::put_header(&mut datagram, PacketType::Initial, 0x5eed);
        datagram.put_u64(hello.schema_hash);
        datagram.put_varint(hello.max_data);
        datagram.put_varint(hello.max_message);
        datagram.put_blob(hello.cookie);
        datagram.push(hello.security);
        datagram.push(hello.cipher);
        datagram.put_varint(hello.key_update);
        datagram.put_blob(hello.handshake);
    }
    datagram[0] = version;
    packet::seal(&mut datagram, 0);
    datagram
}

/// A `Data` packet for a connection the server does not hold.
fn stray_data(padding: usize) -> Vec<u8> {
    let mut datagram = Vec::new();
    packet::encode_data_header(&mut datagram, 0xdead, 1);
    datagram.resize(datagram.len() + padding, 0);
    packet::seal(&mut datagram, 0);
    datagram
}

#[test]
fn to_an_address_it_has_not_validated_the_server_answers_with_fewer_bytes_than_it_received() {
    let now = Instant::now();
    let mut server = Endpoint::new(Config::default(), now, 7).expect("valid config");
    // Each from its own spoofed address: (what, listening, datagram).
    let datagrams = [
        ("an initial", true, initial(VERSION, &[], true)),
        ("a forged cookie", true, initial(VERSION, &[7; 16], true)),
        ("another version", true, initial(9, &[], true)),
        ("an undersized initial", true, initial(VERSION, &[], false)),
        (
            "an initial while not listening",
            false,
            initial(VERSION, &[], true),
        ),
        ("the smallest stray data packet", true, stray_data(0)),
        ("a large stray data packet", true, stray_data(1000)),
        ("garbage", true, vec![0xff; 40]),
    ];
    let mut buf = Vec::new();
    for (index, (what, listening, datagram)) in datagrams.iter().enumerate() {
        let from: SocketAddr = format!("192.0.2.{}:4000", index + 1)
            .parse()
            .expect("address");
        server.listen(*listening);
        let before = server.stats();
        server.handle_datagram(now, from, datagram);
        let mut answered = 0;
        while let Some(transmit) = server.poll_transmit(now, &mut buf) {
            assert_eq!(transmit.destination, from, "{what}");
            answered += transmit.size as u64;
        }
        let after = server.stats();
        let received = datagram.len() as u64;
        assert_eq!(
            after.bytes_received - before.bytes_received,
            received,
            "{what}"
        );
        assert_eq!(after.bytes_sent - before.bytes_sent, answered, "{what}");
        // RFC 9000 §8's bound is three times; answers here are smaller
        // than what they answer, since an Initial below the minimum size
        // is not answered at all.
        assert!(
            answered < 3 * received,
            "{what}: {answered} bytes for {received}"
        );
        assert!(
            answered < received || answered == 0,
            "{what}: {answered} bytes for {received}"
        );
        assert_eq!(server.connection_count(), 0, "{what}: state kept");
    }
    // Each kind of answer was given (the smallest stray packet is not
    // worth a reset: it is no larger than one), and nothing is due later.
    let stats = server.stats();
    assert_eq!(
        (stats.retries_sent, stats.refused, stats.resets_sent),
        (2, 2, 1),
        "{stats:?}"
    );
    assert_eq!(server.poll_timeout(), None);
}

#[test]
fn a_schema_mismatch_is_refused_with_both_hashes() {
    let client_config = Config {
        schema_hash: 0xaaaa,
        ..Config::default()
    };
    let mut world = World::new(client_config, Faults::none(), 3);
    world.server = {
        let mut server = crate::udp::proto::Endpoint::new(
            Config {
                schema_hash: 0xbbbb,
                ..Config::default()
            },
            world.now,
            9,
        )
        .expect("valid config");
        server.listen(true);
        server
    };
    world.connect();
    assert!(world.run_until(SECOND, |w| !w.client_events.is_empty()));
    let Event::Closed(CloseReason::Refused { reason, detail }) = &world.client_events[0] else {
        panic!("expected a refusal, got {:?}", world.client_events);
    };
    assert_eq!(*reason, RefuseReason::Schema);
    assert!(
        detail.contains("000000000000bbbb") && detail.contains("000000000000aaaa"),
        "{detail}"
    );
    assert_eq!(world.server.connection_count(), 0);
}

#[test]
fn another_protocol_version_is_refused_by_name() {
    let mut world = World::new(Config::default(), Faults::none(), 4);
    let handle = world.connect();
    // Rewrite the client's first Initial to claim version 9.
    let mut buf = Vec::new();
    let transmit = world
        .client
        .poll_transmit(world.now, &mut buf)
        .expect("initial");
    assert_eq!(transmit.size, MIN_INITIAL_SIZE);
    buf[0] = 9;
    world
        .server
        .handle_datagram(world.now, world.client_addr, &buf);
    buf.clear();
    let refusal = world
        .server
        .poll_transmit(world.now, &mut buf)
        .expect("refusal");
    world
        .client
        .handle_datagram(world.now, world.server_addr, &buf[..refusal.size]);
    let event = world.client.poll_event().expect("closed");
    assert_eq!(event.0, handle);
    let Event::Closed(CloseReason::Refused { reason, detail }) = event.1 else {
        panic!("expected a refusal, got {:?}", event.1);
    };
    assert_eq!(reason, RefuseReason::Version);
    assert!(detail.contains("version 9"), "{detail}");
}

#[test]
fn a_server_that_is_not_listening_refuses() {
    let mut world = World::new(Config::default(), Faults::none(), 5);
    world.server.listen(false);
    world.connect();
    assert!(world.run_until(SECOND, |w| !w.client_events.is_empty()));
    assert!(matches!(
        world.client_events[0],
        Event::Closed(CloseReason::Refused {
            reason: RefuseReason::NotListening,
            ..
        })
    ));
}

#[test]
fn a_silent_server_times_the_handshake_out() {
    let config = Config {
        handshake_timeout: 3 * SECOND,
        ..Config::default()
    };
    let faults = Faults {
        loss: 1.0,
        ..Faults::none()
    };
    let mut world = World::new(config, faults, 6);
    world.connect();
    assert!(world.run_until(10 * SECOND, |w| !w.client_events.is_empty()));
    assert_eq!(
        world.client_events,
        vec![Event::Closed(CloseReason::HandshakeTimeout(3 * SECOND))]
    );
    assert_eq!(world.client.connection_count(), 0);
}

#[test]
fn both_sides_take_an_rtt_sample_during_the_handshake() {
    let world = connected_world(Config::default(), Faults::none(), 19);
    let mut world = world;
    world.run_until(Duration::from_millis(100), |_| false);
    for (endpoint, handle) in [
        (&world.client, world.client_conn),
        (&world.server, world.server_conn),
    ] {
        let stats = endpoint
            .connection(handle.expect("handle"))
            .expect("connection")
            .stats();
        assert!(stats.rtt < Duration::from_millis(20), "{stats:?}");
    }
}

#[test]
fn clients_whose_hellos_were_lost_together_retry_at_different_times() {
    let faults = Faults {
        loss: 1.0,
        ..Faults::none()
    };
    let mut world = World::new(Config::default(), faults, 22);
    let handles: Vec<_> = (0..20)
        .map(|_| {
            world
                .client
                .connect(world.now, world.server_addr)
                .expect("connect")
        })
        .collect();
    world.run_until(Duration::from_millis(1), |_| false);
    let mut resends: Vec<_> = handles
        .iter()
        .map(|&handle| {
            let connection = world.client.connection(handle).expect("connection");
            connection.poll_timeout().expect("a resend is due")
        })
        .collect();
    resends.sort();
    resends.dedup();
    // Spread over half the 100 ms backoff: almost every client differs.
    assert!(
        resends.len() >= 15,
        "{} distinct resend times",
        resends.len()
    );
    let spread = *resends.last().unwrap() - resends[0];
    assert!(spread >= Duration::from_millis(20), "spread {spread:?}");
}
