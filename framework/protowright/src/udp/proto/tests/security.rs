//! Packet protection under attack: what an on-path attacker records reveals
//! no message, and nothing forged, altered or replayed takes effect; the
//! handshake admits only the clients the server's rules admit.

use std::net::SocketAddr;
use std::time::Duration;

use super::link::{End, Faults, World};
use super::scenarios::{connected_world, payload, payload_id};
use crate::udp::proto::crypto::{ConnectTokenKey, StaticKey, TokenPolicy};
use crate::udp::proto::frame;
use crate::udp::proto::packet::{self, RefuseReason};
use crate::udp::proto::{CloseReason, Config, Endpoint, Event, Lane};

const SECOND: Duration = Duration::from_secs(1);

/// A world whose client runs `client` and server `server`.
fn world_with(client: Config, server: Config, seed: u64) -> World {
    let mut world = World::new(client, Faults::none(), seed);
    let mut endpoint = Endpoint::new(server, world.now, seed ^ 0x77).expect("valid config");
    endpoint.listen(true);
    world.server = endpoint;
    world
}

/// A server configuration with a fixed static key.
fn keyed(secret: u8) -> Config {
    let mut config = Config::default();
    config.security.static_key = Some(StaticKey::from_secret([secret; 32]));
    config
}

/// A client configuration that pins `server`'s key.
fn pinning(server: &Config) -> Config {
    let mut config = Config::default();
    config.security.server_key = server
        .security
        .static_key
        .as_ref()
        .map(StaticKey::public_key);
    config
}

/// What an attacker on the path recorded toward the server since
/// `world.captured` was set; recording stops.
fn recorded_to_server(world: &mut World) -> Vec<Vec<u8>> {
    world
        .captured
        .take()
        .expect("recording")
        .into_iter()
        .filter(|(to, _)| *to == End::Server)
        .map(|(_, datagram)| datagram)
        .collect()
}

/// The refusal that ended the client's attempt.
fn refusal(world: &mut World) -> (RefuseReason, String) {
    assert!(world.run_until(5 * SECOND, |w| !w.client_events.is_empty()));
    match &world.client_events[0] {
        Event::Closed(CloseReason::Refused { reason, detail }) => (*reason, detail.clone()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn no_byte_of_a_message_is_visible_on_the_path_and_both_sides_say_encrypted() {
    let mut world = connected_world(Config::default(), Faults::none(), 41);
    world.captured = Some(Vec::new());
    let secret = b"the launch code is 0000".repeat(40);
    let client = world.client_conn.expect("client");
    world
        .client
        .send(client, Lane::ReliableOrdered, 0, secret.clone().into())
        .expect("send");
    assert!(world.run_until(SECOND, |w| !w.server_received.is_empty()));
    assert_eq!(&world.server_received[0].data[..], &secret[..]);
    let captured = world.captured.take().expect("captured");
    assert!(!captured.is_empty());
    for (_, datagram) in &captured {
        assert!(
            !datagram.windows(12).any(|w| w == b"launch code "),
            "plaintext on the wire"
        );
    }
    let server_key = world.server.public_key();
    for end in [End::Client, End::Server] {
        let stats = world.connection(end).expect("connection").stats();
        assert!(stats.encrypted, "{end:?}");
    }
    // The client learned (NX) and reports the key the server proved.
    let client_side = world.connection(End::Client).expect("client");
    assert_eq!(client_side.peer_key(), Some(server_key));
}

#[test]
fn a_client_that_pins_the_key_connects_and_the_server_learns_the_client_key() {
    let server = keyed(3);
    let mut world = world_with(pinning(&server), server, 42);
    world.connect();
    assert!(world.run_until(SECOND, |w| w.connected()));
    let server_side = world.connection(End::Server).expect("server");
    assert_eq!(server_side.peer_key(), Some(world.client.public_key()));
}

#[test]
fn a_client_that_pins_another_key_is_refused_for_security() {
    let server = keyed(3);
    let impostor_pin = pinning(&keyed(4));
    let mut world = world_with(impostor_pin, server, 43);
    world.connect();
    let (reason, detail) = refusal(&mut world);
    assert_eq!(reason, RefuseReason::Security);
    assert!(detail.contains("handshake failed"), "{detail}");
    assert_eq!(world.server.connection_count(), 0);
    assert_eq!(world.server.stats().handshakes_failed, 1);
}

#[test]
fn a_pre_shared_key_must_match_on_both_sides() {
    for (client_psk, admitted) in [(Some([9; 32]), true), (Some([8; 32]), false), (None, false)] {
        let mut server = keyed(3);
        server.security.pre_shared_key = Some([9; 32]);
        let mut client = pinning(&server);
        client.security.pre_shared_key = client_psk;
        let mut world = world_with(client, server, 44);
        world.connect();
        if admitted {
            assert!(world.run_until(SECOND, |w| w.connected()));
        } else {
            assert_eq!(refusal(&mut world).0, RefuseReason::Security);
        }
    }
}

#[test]
fn connect_tokens_admit_only_valid_unexpired_tokens_for_this_server() {
    let key = ConnectTokenKey::from_bytes([5; 32]);
    let server_addr: SocketAddr = "10.0.0.2:6000".parse().expect("address");
    let other_addr: SocketAddr = "10.0.0.3:6000".parse().expect("address");
    let now_unix = Duration::from_secs(1_800_000_000);
    let token = |addr, expires| Some(key.issue_with_nonce(addr, 77, expires, [1; 12]));
    let cases = [
        ("valid", token(server_addr, now_unix + 60 * SECOND), None),
        ("none", None, Some("connect token")),
        (
            "expired",
            token(server_addr, now_unix - SECOND),
            Some("expired"),
        ),
        (
            "another server",
            token(other_addr, now_unix + 60 * SECOND),
            Some("not valid"),
        ),
    ];
    for (what, presented, refused) in cases {
        let mut server = keyed(3);
        server.security.connect_tokens = Some(TokenPolicy {
            key: key.clone(),
            server_address: server_addr,
        });
        let mut client = pinning(&server);
        client.security.connect_token = presented;
        let mut world = world_with(client, server, 45);
        let now = world.now;
        world.server.set_unix_time(now, now_unix);
        world.connect();
        match refused {
            None => {
                assert!(world.run_until(SECOND, |w| w.connected()), "{what}");
                let server_side = world.connection(End::Server).expect("server");
                assert_eq!(server_side.client_id(), Some(77), "{what}");
                assert_eq!(server_side.stats().client_id, Some(77), "{what}");
            }
            Some(why) => {
                let (reason, detail) = refusal(&mut world);
                assert_eq!(reason, RefuseReason::Security, "{what}");
                assert!(detail.contains(why), "{what}: {detail}");
            }
        }
    }
}

#[test]
fn a_connect_token_is_never_sent_to_a_server_whose_key_is_not_pinned() {
    let key = ConnectTokenKey::from_bytes([5; 32]);
    let addr: SocketAddr = "10.0.0.2:6000".parse().expect("address");
    let mut client = Config::default();
    client.security.connect_token = Some(key.issue_with_nonce(addr, 1, SECOND, [1; 12]));
    let mut world = World::new(client, Faults::none(), 60);
    let error = world
        .client
        .connect(world.now, addr)
        .expect_err("refused before anything is sent");
    assert!(error.to_string().contains("pinned"), "{error}");
}

#[test]
fn plaintext_runs_only_when_both_sides_ask_for_it() {
    let mut plaintext = Config::default();
    plaintext.security.insecure_plaintext_for_debugging = true;
    let mut world = world_with(plaintext.clone(), plaintext.clone(), 46);
    world.connect();
    assert!(world.run_until(SECOND, |w| w.connected()));
    let stats = world.connection(End::Server).expect("server").stats();
    assert!(!stats.encrypted);

    let mut world = world_with(plaintext, Config::default(), 47);
    world.connect();
    let (reason, detail) = refusal(&mut world);
    assert_eq!(reason, RefuseReason::Security);
    assert!(detail.contains("requires encryption"), "{detail}");
}

#[test]
fn altered_and_forged_packets_are_dropped_counted_and_change_nothing() {
    let mut world = connected_world(Config::default(), Faults::none(), 48);
    world.captured = Some(Vec::new());
    let client = world.client_conn.expect("client");
    world
        .client
        .send(client, Lane::ReliableOrdered, 0, payload(1, 200))
        .expect("send");
    assert!(world.run_until(SECOND, |w| w.server_received.len() == 1));
    let genuine = recorded_to_server(&mut world);
    let before = world.connection(End::Server).expect("server").stats();
    let mut injected = 0;
    for datagram in &genuine {
        // Flip one bit of the header, of the middle, of the tag.
        for at in [3, 10, datagram.len() / 2, datagram.len() - 1] {
            let mut altered = datagram.clone();
            altered[at] ^= 0x04;
            world
                .server
                .handle_datagram(world.now, world.client_addr, &altered);
            injected += 1;
        }
    }
    // A forged close: a data packet for the connection under made-up keys.
    let server_cid = world.connection(End::Server).expect("server").local_cid();
    let mut forged = Vec::new();
    packet::encode_protected_header(&mut forged, server_cid, None, 1 << 12);
    frame::put_close(&mut forged, 0, "forged");
    forged.extend_from_slice(&[0xab; 16]);
    world
        .server
        .handle_datagram(world.now, world.client_addr, &forged);
    injected += 1;
    world.run_until(SECOND, |_| false);
    let after = world.connection(End::Server).expect("server").stats();
    let stray = world.server.stats();
    // Each is dropped: as unauthentic, as a replay when the change made
    // its number one already seen, or (a changed connection id) as a
    // packet for no connection, answered with a reset.
    assert_eq!(
        after.unauthentic_packets - before.unauthentic_packets
            + (after.duplicate_packets - before.duplicate_packets)
            + stray.resets_sent,
        injected
    );
    assert!(after.unauthentic_packets > before.unauthentic_packets);
    assert_eq!(world.server_received.len(), 1, "nothing delivered");
    assert_eq!(
        world.server_events,
        vec![Event::Connected],
        "nothing closed"
    );
    assert!(
        world
            .connection(End::Server)
            .expect("server")
            .is_established()
    );
}

#[test]
fn a_replayed_packet_is_dropped_and_its_message_not_delivered_twice() {
    let mut world = connected_world(Config::default(), Faults::none(), 49);
    world.captured = Some(Vec::new());
    let client = world.client_conn.expect("client");
    for id in 0..5 {
        world
            .client
            .send(client, Lane::ReliableUnordered, 0, payload(id, 100))
            .expect("send");
    }
    assert!(world.run_until(SECOND, |w| w.server_received.len() == 5));
    let recorded = recorded_to_server(&mut world);
    let before = world.connection(End::Server).expect("server").stats();
    for datagram in &recorded {
        world
            .server
            .handle_datagram(world.now, world.client_addr, datagram);
    }
    world.run_until(SECOND, |_| false);
    let after = world.connection(End::Server).expect("server").stats();
    assert_eq!(
        after.duplicate_packets - before.duplicate_packets,
        recorded.len() as u64
    );
    assert_eq!(world.server_received.len(), 5);
    assert_eq!(after.messages_delivered, 5);
}

#[test]
fn forged_retries_answers_refusals_and_resets_do_not_disturb_a_client() {
    let mut world = World::new(Config::default(), Faults::none(), 50);
    let handle = world.connect();
    let client_cid = world.client.connection(handle).expect("client").local_cid();
    // Before the server answers: a retry that does not echo the attempt,
    // and a handshake answer that is noise.
    let mut retry = Vec::new();
    packet::encode_retry(&mut retry, client_cid, &[1; 37], b"not-this");
    packet::seal(&mut retry, 0);
    world
        .client
        .handle_datagram(world.now, world.server_addr, &retry);
    let mut answer = Vec::new();
    packet::encode_protected_header(&mut answer, client_cid, Some(&[7; 48]), 0);
    answer.extend_from_slice(&[0; 40]);
    world
        .client
        .handle_datagram(world.now, world.server_addr, &answer);
    assert_eq!(world.client.stats().forged_dropped, 1);
    assert_eq!(
        world
            .client
            .connection(handle)
            .expect("client")
            .stats()
            .unauthentic_packets,
        1
    );
    // The genuine handshake still completes.
    assert!(world.run_until(SECOND, |w| w.connected()));
    // Once established, a refusal and a reset without the token do nothing.
    let mut refuse = Vec::new();
    packet::encode_refuse(&mut refuse, client_cid, RefuseReason::Full, "forged");
    packet::seal(&mut refuse, 0);
    let server_cid = world.connection(End::Server).expect("server").local_cid();
    let mut reset = Vec::new();
    packet::encode_reset(&mut reset, server_cid, &[0; 16]);
    packet::seal(&mut reset, 0);
    for forged in [&refuse, &reset] {
        world
            .client
            .handle_datagram(world.now, world.server_addr, forged);
    }
    world.run_until(SECOND, |_| false);
    assert_eq!(world.client_events, vec![Event::Connected]);
    assert!(
        world
            .client
            .connection(handle)
            .expect("client")
            .is_established()
    );
    assert_eq!(world.client.stats().forged_dropped, 2);
}

#[test]
fn an_ack_of_a_skipped_packet_number_closes_the_connection() {
    let mut world = connected_world(Config::default(), Faults::none(), 51);
    let server = world.server_conn.expect("server");
    // The server sends until it has skipped a number.
    let mut id = 0;
    while world
        .connection(End::Server)
        .expect("server")
        .skipped_numbers()
        .is_empty()
    {
        world
            .server
            .send(server, Lane::ReliableOrdered, 0, payload(id, 1000))
            .expect("send");
        world.run_until(Duration::from_millis(2), |_| false);
        id += 1;
        assert!(id < 5000, "no packet number was skipped");
    }
    let skipped = world
        .connection(End::Server)
        .expect("server")
        .skipped_numbers()[0];
    // The client, holding the real keys, acknowledges it.
    let mut ack = Vec::new();
    assert!(frame::put_ack(
        &mut ack,
        std::iter::once(skipped..skipped + 1),
        0,
        100
    ));
    let client = world.client_conn.expect("client");
    let mut datagram = Vec::new();
    world
        .client
        .seal_frames_as(client, &ack, &mut datagram)
        .expect("sealed");
    world
        .server
        .handle_datagram(world.now, world.client_addr, &datagram);
    world.run_until(SECOND, |_| false);
    let closed = world
        .server_events
        .iter()
        .find_map(|event| match event {
            Event::Closed(CloseReason::ProtocolViolation(why)) => Some(why.clone()),
            _ => None,
        })
        .expect("closed for a violation");
    assert!(closed.contains("never sent"), "{closed}");
}

#[test]
fn keys_update_by_the_client_s_count_and_data_keeps_flowing() {
    // The server keeps the default interval: the client's, carried in the
    // handshake, is the one both use.
    let client = Config {
        mtu_discovery: false,
        security: crate::udp::proto::crypto::Security {
            key_update_packets: 1024,
            ..Default::default()
        },
        ..Config::default()
    };
    let server = Config {
        mtu_discovery: false,
        ..Config::default()
    };
    let mut world = world_with(client, server, 52);
    world.connect();
    assert!(world.run_until(SECOND, |w| w.connected()));
    let client = world.client_conn.expect("client");
    for id in 0..40 {
        world
            .client
            .send(client, Lane::ReliableOrdered, 0, payload(id, 100_000))
            .expect("send");
    }
    assert!(world.run_until(60 * SECOND, |w| w.server_received.len() == 40));
    for (index, message) in world.server_received.iter().enumerate() {
        assert_eq!(payload_id(&message.data), Some(index as u32));
    }
    let (sending, _) = world
        .connection(End::Client)
        .expect("client")
        .key_generations()
        .expect("keys");
    let (_, receiving) = world
        .connection(End::Server)
        .expect("server")
        .key_generations()
        .expect("keys");
    assert!(sending >= 3, "client sent under generation {sending}");
    assert_eq!(receiving, sending, "the server followed every update");
}

#[test]
fn spoofed_hellos_from_many_sources_leave_no_state_and_a_real_client_still_connects() {
    let mut world = World::new(Config::default(), Faults::none(), 53);
    let mut datagram = Vec::new();
    let mut buf = Vec::new();
    let hello = packet::Hello {
        schema_hash: 0,
        max_data: 1 << 20,
        max_message: 1 << 16,
        cookie: &[],
        security: 2,
        cipher: 1,
        key_update: 1 << 22,
        handshake: &[0x42; 32],
    };
    const SPOOFED: u32 = 20_000;
    for i in 0..SPOOFED {
        datagram.clear();
        packet::encode_initial(&mut datagram, u64::from(i) + 1, &hello);
        packet::seal(&mut datagram, 0);
        let from = SocketAddr::from((
            [198, 18, (i >> 8) as u8, i as u8],
            1024 + (i % 60_000) as u16,
        ));
        world.server.handle_datagram(world.now, from, &datagram);
        while world.server.poll_transmit(world.now, &mut buf).is_some() {
            buf.clear();
        }
    }
    assert_eq!(world.server.connection_count(), 0);
    assert_eq!(world.server.timer_entries(), 0);
    let stats = world.server.stats();
    assert_eq!(
        stats.retries_sent + stats.stateless_limited,
        u64::from(SPOOFED)
    );
    world.connect();
    assert!(world.run_until(5 * SECOND, |w| w.connected()));
}

#[test]
fn a_recorded_initial_replayed_after_its_connection_ended_is_dropped() {
    let server = keyed(3);
    let mut world = world_with(pinning(&server), server, 61);
    world.captured = Some(Vec::new());
    let client = world.connect();
    assert!(world.run_until(SECOND, |w| w.connected()));
    let initials: Vec<Vec<u8>> = recorded_to_server(&mut world)
        .into_iter()
        .filter(|datagram| datagram.get(1) == Some(&0))
        .collect();
    assert!(!initials.is_empty());
    // The connection ends and both sides forget it.
    world.client.close(client, world.now, 0, "bye");
    assert!(world.run_until(5 * SECOND, |w| w.server.connection_count() == 0));
    let connected_before = world.server_events.len();
    let dropped_before = world.server.stats().forged_dropped;
    for datagram in &initials {
        world
            .server
            .handle_datagram(world.now, world.client_addr, datagram);
    }
    world.run_until(SECOND, |_| false);
    assert_eq!(world.server.connection_count(), 0);
    assert_eq!(
        world.server_events.len(),
        connected_before,
        "{:?}",
        world.server_events
    );
    assert!(world.server.stats().forged_dropped > dropped_before);
}
