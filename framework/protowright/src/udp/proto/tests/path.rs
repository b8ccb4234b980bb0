//! The path: MTU discovery and its black-hole fallback, and congestion
//! control sharing a bandwidth-limited bottleneck fairly.

use std::time::Duration;

use super::link::{Bottleneck, Faults, World};
use super::scenarios::{connected_world, payload, payload_id, send_payloads};
use crate::udp::proto::{Config, CongestionControl, ConnectionHandle, Lane};

const SECOND: Duration = Duration::from_secs(1);

fn datagram_size(world: &World) -> usize {
    let handle = world.client_conn.expect("client");
    world
        .client
        .connection(handle)
        .expect("connection")
        .stats()
        .datagram_size
}

/// Sends `count` messages of 64 KiB and waits until all arrived intact.
fn transfer(world: &mut World, ids: std::ops::Range<u32>) {
    let count = ids.len();
    send_payloads(world, Lane::ReliableOrdered, 0, ids.clone(), 64 << 10);
    assert!(
        world.run_until(60 * SECOND, |w| w.server_received.len() >= ids.end as usize),
        "only {} of {count} arrived",
        world.server_received.len()
    );
}

fn assert_intact(world: &World, count: usize) {
    assert_eq!(world.server_received.len(), count);
    for (index, message) in world.server_received.iter().enumerate() {
        assert_eq!(
            payload_id(&message.data),
            Some(index as u32),
            "message {index}"
        );
    }
}

#[test]
fn path_mtu_discovery_finds_the_largest_datagram_the_path_carries() {
    for (path, ceiling, seed) in [(1500, 16_384, 1), (9000, 16_384, 2), (65_535, 65_527, 3)] {
        let faults = Faults {
            max_datagram: path,
            ..Faults::none()
        };
        let config = Config {
            max_datagram_size: ceiling,
            ..Config::default()
        };
        let mut world = connected_world(config, faults, seed);
        let started = world.now;
        transfer(&mut world, 0..32);
        assert_intact(&world, 32);
        // The search stops within 16 bytes of the largest size that gets
        // through, or at the configured ceiling. Probing goes on when the
        // connection is idle (10 ms RTT here).
        let largest = path.min(ceiling);
        world.run_until(5 * SECOND, |w| datagram_size(w) + 16 > largest);
        eprintln!(
            "path {path}: {} after {:?}",
            datagram_size(&world),
            world.now - started
        );
        let found = datagram_size(&world);
        assert!(
            found <= largest && found + 16 > largest,
            "path {path}: settled on {found}"
        );
    }
}

#[test]
fn with_discovery_off_the_initial_size_is_kept() {
    let config = Config {
        mtu_discovery: false,
        ..Config::default()
    };
    let mut world = connected_world(config, Faults::none(), 4);
    transfer(&mut world, 0..8);
    assert_eq!(datagram_size(&world), 1200);
}

#[test]
fn a_path_that_stops_carrying_large_datagrams_falls_back_and_loses_nothing() {
    let faults = Faults {
        max_datagram: 9000,
        ..Faults::none()
    };
    let mut world = connected_world(Config::default(), faults, 5);
    transfer(&mut world, 0..16);
    assert!(world.run_until(5 * SECOND, |w| datagram_size(w) > 8900));
    // The route changes: now only 1,500 bytes get through, and nothing
    // says so (no ICMP), as behind a misconfigured tunnel.
    world.faults.max_datagram = 1500;
    transfer(&mut world, 16..48);
    assert_intact(&world, 48);
    // It fell back to 1,200 bytes and searches again below 9,000.
    world.run_until(5 * SECOND, |w| datagram_size(w) >= 1485);
    let size = datagram_size(&world);
    assert!((1485..=1500).contains(&size), "settled on {size}");
}

/// Keeps `bytes` queued on each of the client's connections.
fn top_up(world: &mut World, connections: &[ConnectionHandle], next_id: &mut u32, bytes: u64) {
    for &handle in connections {
        let queued = world
            .client
            .connection(handle)
            .expect("connection")
            .stats()
            .queues
            .bytes;
        let mut missing = bytes.saturating_sub(queued);
        while missing > 0 {
            world
                .client
                .send(
                    handle,
                    Lane::ReliableOrdered,
                    0,
                    payload(*next_id, 16 << 10),
                )
                .expect("send");
            *next_id += 1;
            missing = missing.saturating_sub(16 << 10);
        }
    }
}

/// Two flows through one bottleneck of 4 MB/s with a one-BDP queue and a
/// 20 ms RTT, the second starting 2 s after the first. Returns the bytes
/// each delivered over the last 10 s of a 20 s run.
fn share_bottleneck(control: CongestionControl, seed: u64) -> (u64, u64) {
    const RATE: u64 = 4_000_000;
    let config = Config {
        congestion_control: control,
        ..Config::default()
    };
    let faults = Faults {
        delay: Duration::from_millis(10),
        max_datagram: 1500,
        bottleneck: Some(Bottleneck {
            rate: RATE,
            queue: RATE / 50,
        }),
        ..Faults::none()
    };
    let mut world = connected_world(config, faults, seed);
    let first = world.client_conn.expect("client");
    let mut flows = vec![first];
    let mut next_id = 0;
    let step = Duration::from_millis(50);
    let mut elapsed = Duration::ZERO;
    let mut at_half: Option<Vec<u64>> = None;
    while elapsed < 22 * SECOND {
        if elapsed >= 2 * SECOND && flows.len() == 1 {
            flows.push(
                world
                    .client
                    .connect(world.now, world.server_addr)
                    .expect("connect"),
            );
        }
        if elapsed >= 12 * SECOND && at_half.is_none() {
            at_half = Some(world.server_bytes.values().copied().collect());
        }
        top_up(&mut world, &flows, &mut next_id, 256 << 10);
        world.run_until(step, |_| false);
        elapsed += step;
    }
    let start = at_half.expect("measured");
    let end: Vec<u64> = world.server_bytes.values().copied().collect();
    assert_eq!(end.len(), 2, "both flows connected");
    (end[0] - start[0], end[1] - start[1])
}

/// Jain's fairness index of two shares: 1 when equal, 0.5 when one flow
/// has everything.
fn fairness(a: u64, b: u64) -> f64 {
    let (a, b) = (a as f64, b as f64);
    (a + b).powi(2) / (2.0 * (a * a + b * b))
}

#[test]
fn two_flows_through_one_bottleneck_converge_to_a_fair_share() {
    for control in [CongestionControl::Bbr, CongestionControl::NewReno] {
        let (a, b) = share_bottleneck(control, 21);
        let index = fairness(a, b);
        let utilisation = (a + b) as f64 / (10.0 * 4_000_000.0);
        assert!(
            index >= 0.9,
            "{control:?}: shares {a} and {b} bytes, fairness {index:.3}"
        );
        assert!(
            utilisation >= 0.8,
            "{control:?}: the flows used {:.0}% of the bottleneck",
            utilisation * 100.0
        );
        eprintln!(
            "{control:?}: shares {a} / {b}, fairness {index:.3}, utilisation {utilisation:.2}"
        );
    }
}

#[test]
fn the_model_based_controller_keeps_its_rate_under_random_loss() {
    // 5% random loss on an 8 MB/s bottleneck with a 20 ms RTT: loss that is
    // not congestion. BBR keeps most of the rate; NewReno halves on every
    // loss.
    let run = |control| {
        let config = Config {
            congestion_control: control,
            ..Config::default()
        };
        let faults = Faults {
            delay: Duration::from_millis(10),
            loss: 0.05,
            max_datagram: 1500,
            bottleneck: Some(Bottleneck {
                rate: 8_000_000,
                queue: 160_000,
            }),
            ..Faults::none()
        };
        let mut world = connected_world(config, faults, 31);
        let flows = [world.client_conn.expect("client")];
        let mut next_id = 0;
        for _ in 0..100 {
            top_up(&mut world, &flows, &mut next_id, 512 << 10);
            world.run_until(Duration::from_millis(50), |_| false);
        }
        world.server_bytes.values().sum::<u64>()
    };
    let bbr = run(CongestionControl::Bbr);
    let new_reno = run(CongestionControl::NewReno);
    eprintln!("5% loss, 5 s: bbr {bbr} bytes, newreno {new_reno} bytes");
    assert!(bbr as f64 >= 0.6 * 5.0 * 8_000_000.0, "bbr delivered {bbr}");
    assert!(bbr > 2 * new_reno, "bbr {bbr}, newreno {new_reno}");
}
