//! A hostile peer against a server's memory, measured with a counting
//! global allocator: one authenticated peer (several connections, each
//! from its own address) floods a sans-IO server endpoint with zero-length
//! messages, one-byte messages, messages far ahead of what its lanes wait
//! for, and first fragments of large messages it never completes, while
//! the server's application reads nothing. The live heap must stay under
//! the endpoint's receive budget plus the fixed cost of its connections.
//!
//! This file holds one test, so no other test's allocations are counted.

use std::alloc::System;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cap::Cap;
use protowright::udp::proto::{
    self, Config, ConnectionHandle, Endpoint, Event, Lane, TestFragment,
};

/// The system allocator, counting the bytes live and their peak.
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

fn live() -> usize {
    ALLOCATOR.allocated()
}

const SERVER: &str = "10.0.0.1:9000";
const WINDOW: u64 = 1 << 20;
const MAX_MESSAGE: u64 = 64 << 10;
const UNRELIABLE: u64 = 64 << 10;
const BUDGET: u64 = 4 << 20;
const CONNECTIONS: usize = 8;

fn config() -> Config {
    Config {
        receive_window: WINDOW,
        max_message_size: MAX_MESSAGE,
        unreliable_buffer: UNRELIABLE,
        receive_budget: BUDGET,
        ..Config::default()
    }
}

/// A server and the hostile peer's connections to it.
struct Attack {
    now: Instant,
    server: Endpoint,
    server_addr: SocketAddr,
    /// Per connection: the peer's address, its own endpoint and handle
    /// (whose keys seal the crafted frames: the attacker is an
    /// authenticated peer), and the server's handle.
    peers: Vec<(SocketAddr, Endpoint, ConnectionHandle, ConnectionHandle)>,
    scratch: Vec<u8>,
    packets: u64,
    bytes: u64,
    /// The most bytes live after any packet was taken in.
    peak: usize,
}

impl Attack {
    /// Connects `CONNECTIONS` clients, each from its own address, with an
    /// honest client endpoint; then the attacker takes over their ids.
    fn new() -> Self {
        let now = Instant::now();
        let server_addr: SocketAddr = SERVER.parse().expect("address");
        let mut server = Endpoint::new(config(), now, 1).expect("config");
        server.listen(true);
        let mut attack = Self {
            now,
            server,
            server_addr,
            peers: Vec::new(),
            scratch: Vec::new(),
            packets: 0,
            bytes: 0,
            peak: 0,
        };
        for index in 0..CONNECTIONS {
            let addr: SocketAddr = format!("10.0.1.{}:5000", index + 1)
                .parse()
                .expect("address");
            let mut client = Endpoint::new(config(), now, 100 + index as u64).expect("config");
            let own = client.connect(now, server_addr).expect("connect");
            let handle = attack.handshake(&mut client, addr);
            attack.peers.push((addr, client, own, handle));
        }
        attack
    }

    fn handshake(&mut self, client: &mut Endpoint, addr: SocketAddr) -> ConnectionHandle {
        for _ in 0..100 {
            self.now += Duration::from_millis(1);
            let mut buf = Vec::new();
            while let Some(transmit) = client.poll_transmit(self.now, &mut buf) {
                let datagram: Vec<u8> = buf.drain(..transmit.size).collect();
                self.server.handle_datagram(self.now, addr, &datagram);
            }
            while let Some(transmit) = self.server.poll_transmit(self.now, &mut buf) {
                let datagram: Vec<u8> = buf.drain(..transmit.size).collect();
                client.handle_datagram(self.now, self.server_addr, &datagram);
            }
            while let Some((handle, event)) = self.server.poll_event() {
                if event == Event::Connected {
                    return handle;
                }
            }
        }
        panic!("the handshake did not finish");
    }

    /// Sends one crafted packet on connection `peer`, and lets the server
    /// answer into the void.
    fn send(&mut self, peer: usize, fragments: &[TestFragment<'_>]) {
        let (addr, client, own, _) = &mut self.peers[peer];
        let frames = proto::test_fragment_frames(fragments);
        let mut datagram = Vec::new();
        client
            .seal_frames_as(*own, &frames, &mut datagram)
            .expect("the attacker's connection");
        let addr = *addr;
        self.packets += 1;
        self.bytes += datagram.len() as u64;
        self.now += Duration::from_micros(10);
        self.server.handle_datagram(self.now, addr, &datagram);
        self.peak = self.peak.max(live());
        self.server.handle_timeout(self.now);
        self.scratch.clear();
        while self
            .server
            .poll_transmit(self.now, &mut self.scratch)
            .is_some()
        {
            self.scratch.clear();
        }
        while self.server.poll_event().is_some() {}
    }

    fn is_open(&self, peer: usize) -> bool {
        self.server
            .connection(self.peers[peer].3)
            .is_some_and(|connection| !connection.is_closed())
    }
}

/// Packets of `per_packet` fragments, `count` in all, built by `make`.
fn flood(
    attack: &mut Attack,
    peer: usize,
    count: u64,
    per_packet: u64,
    make: impl Fn(u64) -> (Lane, u32, u64, u64, u64, &'static [u8]),
) {
    let mut start = 0;
    while start < count && attack.is_open(peer) {
        let pieces: Vec<TestFragment<'_>> = (start..(start + per_packet).min(count))
            .map(|i| {
                let (lane, channel, sequence, total, offset, data) = make(i);
                TestFragment {
                    lane,
                    channel,
                    sequence,
                    total,
                    offset,
                    data,
                }
            })
            .collect();
        attack.send(peer, &pieces);
        start += per_packet;
    }
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

#[test]
fn a_hostile_peer_cannot_grow_the_servers_heap_past_its_receive_budget() {
    static ONE: [u8; 1] = [1];
    static KILO: [u8; 1000] = [2; 1000];
    let mut attack = Attack::new();
    let baseline = live();
    attack.peak = baseline;
    let mut report = Vec::new();
    let mut step = |attack: &mut Attack, name: &str, run: &dyn Fn(&mut Attack)| {
        let packets = attack.packets;
        let bytes = attack.bytes;
        run(attack);
        report.push(format!(
            "{name}: {} packets, {:.1} MiB sent; live heap +{:.2} MiB (peak +{:.2} MiB), \
             budget in use {:.2} MiB",
            attack.packets - packets,
            (attack.bytes - bytes) as f64 / (1 << 20) as f64,
            mib(live().saturating_sub(baseline)),
            mib(attack.peak.saturating_sub(baseline)),
            mib(attack.server.receive_budget_used() as usize),
        ));
    };
    // Zero-length messages in order, on two connections: before, they
    // passed flow control and queued without limit.
    for peer in 0..2 {
        step(&mut attack, "zero-length, in order", &|attack| {
            flood(attack, peer, 200_000, 100, |i| {
                (Lane::ReliableOrdered, 0, i, 0, 0, &[])
            });
        });
    }
    // One-byte messages on the unordered lane.
    step(&mut attack, "one-byte, unordered", &|attack| {
        flood(attack, 2, 200_000, 80, |i| {
            (Lane::ReliableUnordered, 0, i, 1, 0, &ONE)
        });
    });
    // Zero-length messages ahead of a sequence 0 never sent, then ones
    // absurdly far ahead.
    step(&mut attack, "ahead of a missing message", &|attack| {
        flood(attack, 3, 200_000, 100, |i| {
            (
                Lane::ReliableOrdered,
                (i % 200) as u32,
                1 + i / 200,
                0,
                0,
                &[],
            )
        });
    });
    step(&mut attack, "far ahead", &|attack| {
        flood(attack, 4, 200_000, 100, |i| {
            (Lane::Session, 0, u64::MAX / 2 + i, 0, 0, &[])
        });
    });
    // First fragments of large messages never completed, reliable and
    // unreliable.
    step(
        &mut attack,
        "first fragments of large reliable messages",
        &|attack| {
            flood(attack, 5, 100_000, 1, |i| {
                (
                    Lane::ReliableOrdered,
                    (i % 256) as u32,
                    i / 256,
                    MAX_MESSAGE,
                    0,
                    &KILO,
                )
            });
        },
    );
    step(
        &mut attack,
        "first fragments of large unreliable messages",
        &|attack| {
            flood(attack, 6, 100_000, 1, |i| {
                (Lane::Unreliable, 0, i, UNRELIABLE - 1024, 0, &KILO)
            });
        },
    );
    // The last fragments of large messages (which used to allocate the
    // whole message), ahead of the awaited one.
    step(&mut attack, "last fragments, far apart", &|attack| {
        flood(attack, 7, 100_000, 1, |i| {
            (
                Lane::ReliableUnordered,
                0,
                1 + i,
                MAX_MESSAGE,
                MAX_MESSAGE - 1000,
                &KILO,
            )
        });
    });
    let peak = attack.peak - baseline;
    let process_peak = ALLOCATOR.max_allocated() - baseline;
    let stats = attack.server.stats();
    let closed = (0..CONNECTIONS).filter(|&p| !attack.is_open(p)).count();
    let refused: u64 = attack
        .peers
        .iter()
        .filter_map(|peer| attack.server.connection(peer.3))
        .map(|connection| connection.stats().refused_fragments)
        .sum();
    // Every crafted packet authenticated: the floods reached the engine.
    let unauthentic: u64 = attack
        .peers
        .iter()
        .filter_map(|peer| attack.server.connection(peer.3))
        .map(|connection| connection.stats().unauthentic_packets)
        .sum();
    assert_eq!(unauthentic, 0);
    assert!(closed >= 1, "the zero-length flood closes its connection");
    assert!(refused > 0 || closed >= 3, "the caps refused fragments");
    for line in &report {
        println!("{line}");
    }
    // The stated bound: the endpoint's receive budget, plus what the
    // connections' own bookkeeping (ack ranges, lane positions) may reach,
    // one maximum message per connection for the messages the budget lets
    // through to keep lanes moving, and scratch space: 12 MiB.
    let bound = BUDGET as usize + CONNECTIONS * (MAX_MESSAGE as usize + (512 << 10));
    println!(
        "peak live heap above the connected baseline: {:.2} MiB of a {:.2} MiB bound \
         ({} packets, {:.1} MiB sent; {closed} connections closed for violations, \
         {refused} fragments refused on open ones; {stats:?})",
        mib(peak),
        mib(bound),
        attack.packets,
        attack.bytes as f64 / (1 << 20) as f64,
    );
    println!(
        "the process's own peak, between packets too: {:.2} MiB above the baseline",
        mib(process_peak)
    );
    assert!(peak <= bound, "peak {peak} above {bound}");
    assert!(process_peak <= bound, "peak {process_peak} above {bound}");
    assert!(attack.server.receive_budget_used() <= BUDGET + CONNECTIONS as u64 * MAX_MESSAGE);
}
