//! Property tests over the simulated link: with faults drawn per case
//! (loss, duplication, reordering, delay, corruption), every delivery
//! guarantee holds, memory stays bounded, and both sides converge to closed.
//!
//! `PROPTEST_CASES` raises the case count (`cargo xtask sim` runs more).

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::link::{End, Faults, World};
use super::scenarios::{payload, payload_id};
use crate::udp::proto::{Config, Event, Lane, SendError};

#[derive(Debug, Clone)]
struct Plan {
    faults: Faults,
    messages: Vec<(Lane, u32, usize)>,
    seed: u64,
}

fn lane() -> impl Strategy<Value = Lane> {
    prop_oneof![
        Just(Lane::ReliableOrdered),
        Just(Lane::ReliableUnordered),
        Just(Lane::Unreliable),
        Just(Lane::UnreliableSequenced),
    ]
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        0.0..0.3f64,
        0.0..0.2f64,
        0.0..0.05f64,
        1u64..30,
        0u64..20,
        prop_oneof![Just(1200usize), Just(1500), Just(4000)],
        proptest::collection::vec(
            (
                lane(),
                0u32..3,
                prop_oneof![0usize..200, 200usize..5000, 5000usize..20_000],
            ),
            1..30,
        ),
        any::<u64>(),
    )
        .prop_map(
            |(loss, duplicate, corrupt, delay, jitter, datagram, messages, seed)| Plan {
                faults: Faults {
                    loss,
                    duplicate,
                    corrupt,
                    delay: Duration::from_millis(delay),
                    jitter: Duration::from_millis(jitter),
                    // The path's MTU: the connection discovers it.
                    max_datagram: datagram,
                    bottleneck: None,
                },
                messages,
                seed,
            },
        )
}

/// Runs a plan: connect without faults, send every message from the client
/// while the faults are active, then heal and wait for every reliable
/// message. Checks the memory bound at every step.
fn run(plan: &Plan) -> Result<World, TestCaseError> {
    let config = Config {
        receive_window: 256 << 10,
        max_message_size: 64 << 10,
        unreliable_buffer: 64 << 10,
        ..Config::default()
    };
    let mut world = World::new(config, Faults::none(), plan.seed);
    let client = world.connect();
    prop_assert!(world.run_until(Duration::from_secs(5), |w| w.connected()));
    world.faults = plan.faults;
    let mut bound_ok = true;
    let mut next = 0;
    while next < plan.messages.len() {
        let (lane, channel, len) = plan.messages[next];
        match world
            .client
            .send(client, lane, channel, payload(next as u32, len.max(4)))
        {
            Ok(()) => next += 1,
            Err(SendError::Full) => {
                world.run_until(Duration::from_millis(50), |_| false);
            }
            Err(error) => return Err(TestCaseError::fail(format!("send failed: {error}"))),
        }
    }
    world.run_until(Duration::from_secs(5), |w| {
        bound_ok &= within_bounds(w);
        false
    });
    world.faults = Faults::none();
    let delivered = world.run_until(Duration::from_secs(120), |w| {
        bound_ok &= within_bounds(w);
        !w.is_pending(End::Client)
    });
    prop_assert!(bound_ok, "receive buffer exceeded its bound");
    prop_assert!(
        delivered,
        "reliable messages still unacknowledged after healing"
    );
    Ok(world)
}

fn within_bounds(world: &World) -> bool {
    let Some(server) = world.server_conn.and_then(|h| world.server.connection(h)) else {
        return true;
    };
    let buffer = server.receive_buffer();
    buffer.held() <= buffer.bound()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_channel_keeps_its_delivery_guarantee(plan in plan()) {
        let world = run(&plan)?;
        let mut sent_ordered: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        let mut sent_unordered = Vec::new();
        let mut sent_unreliable = Vec::new();
        let mut sent_sequenced: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (id, &(lane, channel, _)) in plan.messages.iter().enumerate() {
            let id = id as u32;
            match lane {
                Lane::ReliableOrdered => sent_ordered.entry(channel).or_default().push(id),
                Lane::ReliableUnordered => sent_unordered.push(id),
                Lane::Unreliable => sent_unreliable.push(id),
                Lane::UnreliableSequenced => sent_sequenced.entry(channel).or_default().push(id),
                Lane::Session => {}
            }
        }
        let mut got_ordered: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        let mut got_unordered = Vec::new();
        let mut got_unreliable = Vec::new();
        let mut got_sequenced: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for message in &world.server_received {
            let id = payload_id(&message.data);
            prop_assert!(id.is_some(), "corrupted message delivered on {:?}", message.lane);
            let id = id.unwrap_or_default();
            let (lane, channel, len) = plan.messages[id as usize];
            prop_assert_eq!(message.lane, lane);
            prop_assert_eq!(message.data.len(), len.max(4));
            match lane {
                Lane::ReliableOrdered => got_ordered.entry(channel).or_default().push(id),
                Lane::ReliableUnordered => got_unordered.push(id),
                Lane::Unreliable => got_unreliable.push(id),
                Lane::UnreliableSequenced => got_sequenced.entry(channel).or_default().push(id),
                Lane::Session => {}
            }
        }
        // Reliable ordered: exactly once, in order, per channel.
        prop_assert_eq!(got_ordered, sent_ordered);
        // Reliable unordered: exactly once.
        got_unordered.sort_unstable();
        prop_assert_eq!(got_unordered, sent_unordered);
        // Unreliable: at most once.
        let count = got_unreliable.len();
        got_unreliable.sort_unstable();
        got_unreliable.dedup();
        prop_assert_eq!(got_unreliable.len(), count, "an unreliable message arrived twice");
        // Sequenced: never backwards.
        for ids in got_sequenced.values() {
            prop_assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "sequenced went backwards: {:?}", ids);
        }
    }

    #[test]
    fn both_sides_converge_to_closed_after_close(plan in plan()) {
        let mut world = run(&plan)?;
        let client = world.client_conn.unwrap_or_else(|| unreachable!("connected"));
        world.faults = plan.faults;
        world.client.close(client, world.now, 0, "bye");
        world.run_until(Duration::from_secs(60), |w| {
            w.client.connection_count() == 0 && w.server.connection_count() == 0
        });
        prop_assert_eq!(world.client.connection_count(), 0);
        prop_assert_eq!(world.server.connection_count(), 0);
        let closed = |events: &[Event]| events.iter().filter(|e| matches!(e, Event::Closed(_))).count();
        prop_assert_eq!(closed(&world.client_events), 1);
        prop_assert_eq!(closed(&world.server_events), 1);
    }
}
