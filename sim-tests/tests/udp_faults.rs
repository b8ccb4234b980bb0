//! The reliable-UDP transport in a turmoil simulation: the very endpoint,
//! driver and RPC code that runs on real sockets, under turmoil's latency
//! spread (which reorders datagrams) and a partition.
//!
//! A client sends 400 messages across the four deliveries and makes an RPC
//! call every 100 ms while the link is cut for two seconds; then it closes
//! gracefully. Every delivery guarantee must hold at the server, calls must
//! succeed again once the link heals, and one seed must always give the
//! same trace. `PROTOWRIGHT_SEED=n` replays one seed.

use std::collections::BTreeMap;
use std::time::Duration;

use protowright::Delivery;
use protowright::udp::Lane;
use sim_tests::replay_command;
use sim_tests::udp_scenario::{MESSAGES, route, run};

fn seeds() -> Vec<u64> {
    match std::env::var("PROTOWRIGHT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![seed],
        None => vec![1, 2, 3],
    }
}

#[test]
fn every_delivery_keeps_its_guarantee_through_reordering_and_a_partition() {
    for seed in seeds() {
        let context = format!(
            "seed {seed}, replay: {}",
            replay_command("udp_faults", seed)
        );
        let run = run(seed);
        let mut ordered: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        let mut unordered = Vec::new();
        let mut unreliable = Vec::new();
        let mut sequenced = Vec::new();
        for &(lane, channel, n) in &run.received {
            assert_eq!(
                (Lane::from(route(n).0), route(n).1),
                (lane, channel),
                "{context}"
            );
            match lane {
                Lane::ReliableOrdered => ordered.entry(channel).or_default().push(n),
                Lane::ReliableUnordered => unordered.push(n),
                Lane::Unreliable => unreliable.push(n),
                _ => sequenced.push(n),
            }
        }
        let mut expected: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for n in 0..MESSAGES {
            if route(n).0 == Delivery::ReliableOrdered {
                expected.entry(route(n).1).or_default().push(n);
            }
        }
        assert_eq!(
            ordered, expected,
            "reliable ordered: exactly once, in order; {context}"
        );
        unordered.sort_unstable();
        let expected: Vec<u32> = (0..MESSAGES).filter(|n| n % 5 == 2).collect();
        assert_eq!(
            unordered, expected,
            "reliable unordered: exactly once; {context}"
        );
        let count = unreliable.len();
        unreliable.sort_unstable();
        unreliable.dedup();
        assert_eq!(
            unreliable.len(),
            count,
            "unreliable: at most once; {context}"
        );
        assert!(
            sequenced.windows(2).all(|w| w[0] < w[1]),
            "sequenced went backwards; {context}"
        );
        // Calls made well after the partition healed all succeeded.
        let late: Vec<_> = run
            .calls
            .iter()
            .filter(|(at, _)| *at > Duration::from_secs(7))
            .collect();
        assert!(
            !late.is_empty() && late.iter().all(|(_, r)| r.is_ok()),
            "calls after healing: {late:?}; {context}"
        );
        let during: Vec<_> = run
            .calls
            .iter()
            .filter(|(at, _)| {
                *at > Duration::from_millis(3500) && *at < Duration::from_millis(4500)
            })
            .collect();
        assert!(
            during.iter().any(|(_, r)| r.is_err()),
            "the partition cut nothing: {during:?}; {context}"
        );
        assert!(
            run.trace.iter().any(|(_, e)| e.starts_with("closed Peer")),
            "the server saw the graceful close; {context}"
        );
    }
}

#[test]
fn one_seed_always_gives_the_same_trace() {
    let seed = seeds()[0];
    let first = run(seed).trace;
    let second = run(seed).trace;
    assert!(!first.is_empty());
    assert_eq!(
        first,
        second,
        "seed {seed} diverged; replay: {}",
        replay_command("udp_faults", seed)
    );
}
