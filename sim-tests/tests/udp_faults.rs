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
use protowright_testing::Stream;
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
        let mut by_stream: BTreeMap<Stream, Vec<u64>> = BTreeMap::new();
        for &(stream, n) in &run.received {
            assert_eq!(route(n), stream, "{context}");
            by_stream.entry(stream).or_default().push(n);
        }
        for stream in Stream::ALL {
            let got = by_stream.remove(&stream).unwrap_or_default();
            let sent: Vec<u64> = (0..MESSAGES).filter(|&n| route(n) == stream).collect();
            match stream.delivery() {
                Delivery::ReliableOrdered => {
                    assert_eq!(got, sent, "{stream:?}: exactly once, in order; {context}")
                }
                Delivery::ReliableUnordered => {
                    let mut got = got;
                    got.sort_unstable();
                    assert_eq!(got, sent, "{stream:?}: exactly once; {context}");
                }
                Delivery::Unreliable => {
                    let count = got.len();
                    let mut got = got;
                    got.sort_unstable();
                    got.dedup();
                    assert_eq!(got.len(), count, "{stream:?}: at most once; {context}");
                }
                Delivery::UnreliableSequenced => assert!(
                    got.windows(2).all(|w| w[0] < w[1]),
                    "{stream:?}: never backwards; {context}"
                ),
            }
        }
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
        assert_eq!(
            run.server_saw_close.as_deref(),
            Some("clean"),
            "the server saw the graceful close; {context}"
        );
    }
}

#[test]
fn one_seed_always_gives_the_same_trace() {
    let seed = seeds()[0];
    let first = format!("{:?}", run(seed));
    let second = format!("{:?}", run(seed));
    assert!(!first.is_empty());
    assert_eq!(
        first,
        second,
        "seed {seed} diverged; replay: {}",
        replay_command("udp_faults", seed)
    );
}
