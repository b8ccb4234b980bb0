//! Duplicates: copies of messages the receiver already delivered, resent
//! because the acks that would have stopped the sender were lost, are
//! counted and dropped on every reliable lane: never stored, never
//! delivered again, also after the application let go of the connection.
//! The engine's counters are held against a count made outside it, from
//! the fragments that crossed the link.

use std::collections::BTreeSet;
use std::ops::Range;
use std::time::Duration;

use super::link::{End, Faults, World};
use super::scenarios::{connected_world, payload, payload_id};
use super::tap::FragmentLog;
use crate::udp::proto::{Config, Lane};

const SECOND: Duration = Duration::from_secs(1);

/// What the client sends: small messages that all fit in its first
/// packet, so every probe timeout resends every one of them.
const TRAFFIC: [(Lane, u32, Range<u32>); 4] = [
    (Lane::ReliableOrdered, 0, 0..4),
    (Lane::ReliableOrdered, 3, 4..7),
    (Lane::ReliableUnordered, 0, 7..10),
    (Lane::Session, 0, 10..12),
];
const MESSAGES: usize = 12;
const LEN: usize = 40;

/// A connected pair whose server's datagrams never reach the client: the
/// client hears no ack and keeps resending what the server already has.
/// The server's incoming fragments are logged.
fn acks_lost(seed: u64) -> World {
    // Plaintext, so the log can read the fragments on the link.
    let mut config = Config::default();
    config.security.insecure_plaintext_for_debugging = true;
    let mut world = connected_world(config, Faults::none(), seed);
    world.log_to_server = Some(FragmentLog::default());
    world.cut_to = Some(End::Client);
    for (lane, channel, ids) in TRAFFIC {
        for id in ids {
            world
                .send_from(End::Client, lane, channel, payload(id, LEN))
                .expect("send");
        }
    }
    // Everything arrives in the first packet; nothing is a duplicate yet.
    assert!(world.run_until(SECOND, |w| w.server_received.len() == MESSAGES));
    assert_eq!(log(&world).duplicates, 0);
    world
}

fn log(world: &World) -> &FragmentLog {
    world.log_to_server.as_ref().expect("logging")
}

/// Each message once, and each ordered stream in the order sent.
fn assert_delivered_once_in_order(world: &World) {
    let ids: Vec<u32> = world
        .server_received
        .iter()
        .map(|message| payload_id(&message.data).expect("intact"))
        .collect();
    let distinct: BTreeSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), MESSAGES, "lost or repeated: {ids:?}");
    assert_eq!(ids.len(), MESSAGES, "delivered twice: {ids:?}");
    for (lane, _, sent) in TRAFFIC {
        if lane == Lane::ReliableUnordered {
            continue;
        }
        let got: Vec<u32> = ids.iter().copied().filter(|id| sent.contains(id)).collect();
        assert_eq!(got, sent.collect::<Vec<_>>(), "{lane:?} out of order");
    }
}

#[test]
fn resent_copies_of_delivered_messages_are_counted_as_duplicates_and_never_held() {
    let mut world = acks_lost(81);
    // Three seconds of probe timeouts: each resends all twelve.
    world.run_until(3 * SECOND, |_| false);
    world.cut_to = None;
    assert!(world.run_until(5 * SECOND, |w| !w.is_pending(End::Client)));

    assert_delivered_once_in_order(&world);
    let log = log(&world);
    for (lane, messages) in [
        (Lane::ReliableOrdered, 7),
        (Lane::ReliableUnordered, 3),
        (Lane::Session, 2),
    ] {
        let resent = log.duplicates_by_lane.get(&lane).copied().unwrap_or(0);
        assert!(resent >= messages, "{lane:?}: only {resent} copies resent");
    }
    let connection = world.connection(End::Server).expect("connection");
    let stats = connection.stats();
    assert_eq!(stats.duplicate_fragments, log.duplicates);
    assert_eq!(stats.duplicate_packets, 0);
    assert_eq!(stats.duplicates, log.duplicates);
    assert_eq!(stats.messages_delivered, MESSAGES as u64);
    assert_eq!(
        connection.receive_buffer().held(),
        0,
        "{:?}",
        connection.receive_buffer()
    );
}

#[test]
fn after_the_application_lets_go_resent_copies_are_still_duplicates_and_nothing_is_held() {
    let mut world = acks_lost(82);
    // The server's application replies (the reply cannot be acknowledged,
    // so the graceful close waits for it), closes and lets go, as dropping
    // a `udp::Connection` does; nobody reads the connection any more.
    let server = world.server_conn.expect("server");
    world
        .server
        .send(server, Lane::ReliableOrdered, 0, payload(99, LEN))
        .expect("send");
    world.server.close(server, world.now, 0, "done");
    world.server.discard(server);
    world.server_bytes.remove(&server);
    world.run_until(3 * SECOND, |_| false);

    let log = log(&world);
    assert!(log.duplicates >= MESSAGES as u64, "{log:?}");
    let connection = world
        .server
        .connection(server)
        .expect("still waiting for its reply to be acknowledged");
    let stats = connection.stats();
    assert_eq!(stats.duplicate_fragments, log.duplicates);
    assert_eq!(
        stats.messages_delivered, MESSAGES as u64,
        "a resent copy was delivered again"
    );
    assert_eq!(stats.unread_messages, 0);
    assert_eq!(
        connection.receive_buffer().held(),
        0,
        "{:?}",
        connection.receive_buffer()
    );
}
