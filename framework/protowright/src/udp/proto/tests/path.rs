//! The path: MTU discovery and its black-hole fallback, congestion control
//! sharing a bandwidth-limited bottleneck fairly and keeping its rate under
//! random loss, channel priorities keeping game state ahead of a bulk
//! transfer, and one endpoint holding ten thousand connections.

use std::time::{Duration, Instant};

use bytes::Bytes;

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
fn a_connection_searches_for_larger_datagrams_only_once_it_has_more_to_send_than_one_carries() {
    let mut world = connected_world(Config::default(), Faults::none(), 5);
    let handle = world.client_conn.expect("client");
    let sent_before = world
        .client
        .connection(handle)
        .expect("connection")
        .stats()
        .packets_sent;
    // Idle, then small messages: nothing a larger datagram would help.
    world.run_until(3 * SECOND, |_| false);
    for id in 0..20 {
        send_payloads(&mut world, Lane::ReliableOrdered, 0, id..id + 1, 100);
        world.run_until(SECOND, |w| w.server_received.len() > id as usize);
    }
    world.run_until(2 * SECOND, |_| false);
    assert_eq!(datagram_size(&world), 1200, "no probes for small traffic");
    let small_traffic = world
        .client
        .connection(handle)
        .expect("connection")
        .stats()
        .packets_sent
        - sent_before;
    assert!(
        small_traffic < 60,
        "{small_traffic} packets for 20 small messages and keepalives: no probes among them"
    );
    // A transfer that needs larger datagrams starts the search.
    transfer(&mut world, 20..40);
    world.run_until(5 * SECOND, |w| datagram_size(w) > 8000);
    assert!(
        datagram_size(&world) > 8000,
        "settled on {}",
        datagram_size(&world)
    );
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

/// A path with a 20 ms RTT, an MTU of 1500 and a bottleneck of `rate`
/// bytes per second behind a drop-tail queue of one bandwidth-delay
/// product.
fn bottleneck_path(rate: u64) -> Faults {
    Faults {
        delay: Duration::from_millis(10),
        max_datagram: 1500,
        bottleneck: Some(Bottleneck {
            rate,
            queue: rate / 50,
        }),
        ..Faults::none()
    }
}

/// Keeps `bytes` queued on channel `channel` of each of the client's
/// connections.
fn top_up(
    world: &mut World,
    connections: &[ConnectionHandle],
    channel: u32,
    next_id: &mut u32,
    bytes: u64,
) {
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
                    channel,
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
    let faults = bottleneck_path(RATE);
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
        top_up(&mut world, &flows, 0, &mut next_id, 256 << 10);
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
            loss: 0.05,
            ..bottleneck_path(8_000_000)
        };
        let mut world = connected_world(config, faults, 31);
        let flows = [world.client_conn.expect("client")];
        let mut next_id = 0;
        for _ in 0..100 {
            top_up(&mut world, &flows, 0, &mut next_id, 512 << 10);
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

/// A bulk transfer on channel 1 (reliable ordered, 1 MiB kept queued) and
/// a 30 Hz stream of 64-byte unreliable-sequenced messages on channel 0,
/// one connection, through an 8 MB/s bottleneck with a one-BDP queue and a
/// 20 ms idle RTT. Returns the small messages' latencies, send to
/// delivery, after the first second, and the bytes delivered in all.
fn game_beside_bulk(game_priority: i32) -> (Vec<Duration>, u64) {
    let faults = bottleneck_path(8_000_000);
    let mut world = connected_world(Config::default(), faults, 41);
    let client = world.client_conn.expect("client");
    world.client.set_priority(client, 0, game_priority);
    let flows = [client];
    let start = world.now;
    let mut next_id = 0;
    let mut sent_at: Vec<Instant> = Vec::new();
    let mut latencies = Vec::new();
    let tick = Duration::from_secs(1) / 30;
    for _ in 0..300 {
        top_up(&mut world, &flows, 1, &mut next_id, 1 << 20);
        let mut game = vec![0u8; 64];
        game[..4].copy_from_slice(&(sent_at.len() as u32).to_be_bytes());
        sent_at.push(world.now);
        world
            .client
            .send(client, Lane::UnreliableSequenced, 0, Bytes::from(game))
            .expect("send");
        world.run_until(tick, |_| false);
        // Keep the game messages' arrival times; drop the bulk data.
        for (message, at) in world
            .server_received
            .drain(..)
            .zip(world.server_received_at.drain(..))
        {
            if message.channel != 0 {
                continue;
            }
            let index = u32::from_be_bytes(message.data[..4].try_into().expect("id")) as usize;
            if sent_at[index] >= start + SECOND {
                latencies.push(at - sent_at[index]);
            }
        }
    }
    latencies.sort();
    (latencies, world.server_bytes.values().sum())
}

#[test]
fn game_state_on_a_higher_priority_channel_is_not_stuck_behind_a_bulk_transfer() {
    // Stated bound: the 99th percentile stays within the idle one-way
    // delay (10 ms) plus one idle RTT (20 ms) of queueing at the
    // bottleneck: 30 ms.
    let (prioritised, delivered) = game_beside_bulk(10);
    let p99 = prioritised[prioritised.len() * 99 / 100];
    let p50 = prioritised[prioritised.len() / 2];
    // Unreliable: the bottleneck's drop-tail queue may take a few.
    assert!(
        prioritised.len() >= 260,
        "{} of 270 arrived",
        prioritised.len()
    );
    assert!(p99 <= Duration::from_millis(30), "p50 {p50:?}, p99 {p99:?}");
    // While the transfer kept the bottleneck busy: 10 s at 8 MB/s.
    let utilisation = delivered as f64 / 80_000_000.0;
    assert!(
        utilisation >= 0.8,
        "the transfer used {:.0}%",
        utilisation * 100.0
    );
    eprintln!(
        "game beside bulk: p50 {p50:?}, p99 {p99:?}, bottleneck {:.0}% used",
        utilisation * 100.0
    );
}

#[test]
fn one_endpoint_holds_ten_thousand_idle_connections_with_one_timer_entry_each() {
    const CONNECTIONS: usize = 10_000;
    // Every client shares one address here, and they arrive faster than
    // the default pace of stateless answers.
    let config = Config {
        max_connections_per_address: CONNECTIONS,
        stateless_rate: 100_000,
        stateless_burst: 10_000,
        ..Config::default()
    };
    let mut world = World::new(config, Faults::none(), 51);
    // Clients arrive 500 per 20 ms, as a busy server sees them.
    for _ in 0..CONNECTIONS / 500 {
        for _ in 0..500 {
            world
                .client
                .connect(world.now, world.server_addr)
                .expect("connect");
        }
        world.run_until(Duration::from_millis(20), |_| false);
    }
    assert!(
        world.run_until(10 * SECOND, |w| w.server_bytes.len() == CONNECTIONS),
        "{} connected",
        world.server_bytes.len()
    );
    // Idle for two keepalive intervals: every connection stays up, and
    // each costs one entry in its endpoint's timer queue.
    world.run_until(11 * SECOND, |_| false);
    assert_eq!(world.server.connection_count(), CONNECTIONS);
    assert_eq!(world.client.connection_count(), CONNECTIONS);
    assert_eq!(world.server.timer_entries(), CONNECTIONS);
    assert_eq!(world.client.timer_entries(), CONNECTIONS);
    // Compact state: the connection's fixed part, before any message.
    let size = std::mem::size_of::<crate::udp::proto::connection::Connection>();
    assert!(size <= 2048, "a connection is {size} bytes");
}
