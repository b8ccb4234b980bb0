//! The handshake: the stateless cookie exchange, what the server sends
//! before an address is validated, refusals, timeouts and the first RTT
//! sample.

use std::time::Duration;

use super::link::{Faults, World};
use super::scenarios::connected_world;
use crate::udp::proto::{CloseReason, Config, Event, MIN_INITIAL_SIZE, RefuseReason};

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
fn before_validation_the_server_sends_less_than_three_times_what_it_received() {
    let mut world = World::new(Config::default(), Faults::none(), 2);
    world.connect();
    world.run_until(Duration::from_millis(6), |_| false);
    let stats = world
        .client
        .connection(world.client_conn.expect("client"))
        .expect("connection")
        .stats();
    // The client sent one Initial; the server answered with one Retry.
    assert_eq!(stats.bytes_sent, MIN_INITIAL_SIZE as u64);
    assert_eq!(world.counters.delivered, 1);
    world.run_until(Duration::from_millis(5), |_| false);
    assert_eq!(world.counters.delivered, 2);
    // What the client received is the Retry: far under 3 × 1200.
    assert!(world.server.stats().retries_sent == 1);
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
