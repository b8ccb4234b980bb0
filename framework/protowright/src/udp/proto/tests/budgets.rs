//! Endpoint-wide limits: connections per source address and the pace of
//! stateless answers.

use std::net::SocketAddr;
use std::time::Duration;

use super::link::{Faults, World};
use crate::udp::proto::packet;
use crate::udp::proto::{CloseReason, Config, Endpoint, Event, RefuseReason};

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn a_server_holds_at_most_its_cap_of_connections_from_one_address_and_says_why() {
    let config = Config {
        max_connections_per_address: 2,
        ..Config::default()
    };
    let mut world = World::new(config, Faults::none(), 71);
    for _ in 0..2 {
        world
            .client
            .connect(world.now, world.server_addr)
            .expect("connect");
    }
    assert!(world.run_until(SECOND, |w| w.server_bytes.len() == 2));
    world.connect();
    assert!(world.run_until(SECOND, |w| !w.client_events.is_empty()));
    assert_eq!(world.server_bytes.len(), 2, "the third did not connect");
    let refusal = world.client_events.iter().find_map(|event| match event {
        Event::Closed(CloseReason::Refused { reason, detail }) => Some((*reason, detail.clone())),
        _ => None,
    });
    let (reason, detail) = refusal.expect("the third is refused");
    assert_eq!(reason, RefuseReason::Full);
    assert!(
        detail.contains("limit of 2 connections from 10.0.0.1"),
        "{detail}"
    );
    assert_eq!(world.server.stats().refused_per_address, 1);
    assert_eq!(world.server.connection_count(), 2);

    // Another address is not held to the first one's count.
    let mut other = Endpoint::new(Config::default(), world.now, 72).expect("config");
    let other_addr: SocketAddr = "10.0.0.3:5000".parse().expect("address");
    other
        .connect(world.now, world.server_addr)
        .expect("connect");
    let mut connected = false;
    for _ in 0..50 {
        world.now += Duration::from_millis(1);
        let mut buf = Vec::new();
        while let Some(transmit) = other.poll_transmit(world.now, &mut buf) {
            let datagram: Vec<u8> = buf.drain(..transmit.size).collect();
            world
                .server
                .handle_datagram(world.now, other_addr, &datagram);
        }
        while let Some(transmit) = world.server.poll_transmit(world.now, &mut buf) {
            let datagram: Vec<u8> = buf.drain(..transmit.size).collect();
            if transmit.destination == other_addr {
                other.handle_datagram(world.now, world.server_addr, &datagram);
            }
        }
        while let Some((_, event)) = other.poll_event() {
            connected |= event == Event::Connected;
        }
    }
    assert!(connected);
    assert_eq!(world.server.connection_count(), 3);
}

#[test]
fn stateless_answers_are_paced_by_a_token_bucket_and_counted() {
    let config = Config {
        stateless_rate: 100,
        stateless_burst: 10,
        ..Config::default()
    };
    let start = std::time::Instant::now();
    let mut server = Endpoint::new(config, start, 73).expect("config");
    server.listen(true);
    let from: SocketAddr = "10.0.0.9:4000".parse().expect("address");
    // Data for unknown connections: each would get a reset.
    let stray = |cid: u64| {
        let mut datagram = Vec::new();
        packet::encode_data_header(&mut datagram, cid, 1);
        // Larger than a reset, or it would not be answered at all.
        datagram.resize(datagram.len() + 40, 0);
        packet::seal(&mut datagram, 0);
        datagram
    };
    let mut sent = 0;
    let mut buf = Vec::new();
    // Two seconds of 1,000 strays a second.
    for ms in 0..2000u64 {
        let now = start + Duration::from_millis(ms);
        server.handle_datagram(now, from, &stray(ms + 1));
        while server.poll_transmit(now, &mut buf).is_some() {
            sent += 1;
        }
    }
    let stats = server.stats();
    // The burst, then 100 a second.
    assert!((205..=210).contains(&sent), "{sent} answers, {stats:?}");
    assert_eq!(stats.resets_sent, sent);
    assert_eq!(stats.stateless_limited, 2000 - sent);
}
