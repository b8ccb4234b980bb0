//! Spoofed connection attempts against a server's memory, measured with a
//! counting global allocator: `Initial`s from ever-changing source
//! addresses (an off-path attacker's flood) must leave the server's live
//! heap flat and no connection state behind, and a legitimate client must
//! still connect afterwards. Prints the packets handled per second.
//!
//! 20,000 hellos here (a debug build in CI); `cargo xtask hostile` runs a
//! million in a release build (`PROTOWRIGHT_HELLOS`).
//!
//! This file holds one test, so no other test's allocations are counted.

use std::alloc::System;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cap::Cap;
use protowright::udp::proto::{Config, Endpoint, Event, fuzz_seal};

/// The system allocator, counting the bytes live and their peak.
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// A hello as an attacker would write it: a client's first packet with a
/// made-up handshake message, padded to 1,200 bytes. Taken from a real
/// client and given a new connection id, so it is well-formed.
fn hello_template(now: Instant, server: SocketAddr) -> Vec<u8> {
    let mut client = Endpoint::new(Config::default(), now, 7).expect("config");
    client.connect(now, server).expect("connect");
    let mut buf = Vec::new();
    let transmit = client.poll_transmit(now, &mut buf).expect("a hello");
    buf.truncate(transmit.size);
    buf
}

/// What one flood did.
struct Flood {
    server: Endpoint,
    now: Instant,
}

/// Floods a server of `config` with `hellos` spoofed hellos and checks
/// that it kept nothing; prints what it cost.
fn flood(config: Config, hellos: u32, what: &str) -> Flood {
    let start = Instant::now();
    let server_addr: SocketAddr = SERVER.parse().expect("address");
    let mut server = Endpoint::new(config, start, 1).expect("config");
    server.listen(true);
    let template = hello_template(start, server_addr);
    let mut unsealed = template[..template.len() - 4].to_vec();
    let mut buf = Vec::with_capacity(2048);
    // Warm up the server's queues once, then measure from there.
    server.handle_datagram(start, "192.0.2.1:1".parse().expect("address"), &template);
    while server.poll_transmit(start, &mut buf).is_some() {
        buf.clear();
    }
    let baseline = ALLOCATOR.allocated();
    let mut peak = baseline;
    let mut now = start;
    let clock = Instant::now();
    for i in 0..hellos {
        // The checksum covers the id, so a new id means a new checksum:
        // patch both as an attacker's generator would.
        unsealed.copy_from_slice(&template[..template.len() - 4]);
        unsealed[2..10].copy_from_slice(&(u64::from(i) + 2).to_be_bytes());
        let datagram = fuzz_seal(&unsealed);
        let from = SocketAddr::from((
            [198, 18 + (i >> 24) as u8, (i >> 16) as u8, (i >> 8) as u8],
            1024 + (i % 60_000) as u16,
        ));
        server.handle_datagram(now, from, &datagram);
        while server.poll_transmit(now, &mut buf).is_some() {
            buf.clear();
        }
        if i % 1024 == 0 {
            peak = peak.max(ALLOCATOR.allocated());
            now += Duration::from_millis(1);
        }
    }
    let elapsed = clock.elapsed();
    let stats = server.stats();
    let growth = ALLOCATOR.allocated().saturating_sub(baseline);
    let peak_growth = peak.saturating_sub(baseline);
    println!(
        "{what}: {hellos} spoofed hellos in {:.2} s: {:.0} packets/s handled; live heap \
         +{growth} B (peak +{peak_growth} B); {} retries, {} over the stateless rate limit; \
         {} connections",
        elapsed.as_secs_f64(),
        f64::from(hellos) / elapsed.as_secs_f64(),
        stats.retries_sent,
        stats.stateless_limited,
        server.connection_count(),
    );
    assert_eq!(
        server.connection_count(),
        0,
        "{what}: state kept for a spoofed source"
    );
    assert_eq!(server.timer_entries(), 0, "{what}");
    assert_eq!(
        stats.retries_sent + stats.stateless_limited,
        u64::from(hellos) + 1,
        "{what}: every hello was answered or counted"
    );
    assert!(
        peak_growth < 64 << 10,
        "{what}: the heap grew by {peak_growth} bytes"
    );
    Flood { server, now }
}

const SERVER: &str = "10.0.0.1:9000";

#[test]
fn spoofed_hellos_leave_the_heap_flat_and_a_real_client_still_connects() {
    let hellos: u32 = std::env::var("PROTOWRIGHT_HELLOS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(20_000);
    // Every hello answered with a cookie: the full cost of each.
    let unlimited = Config {
        stateless_rate: u32::MAX,
        stateless_burst: u32::MAX,
        ..Config::default()
    };
    flood(unlimited, hellos, "no rate limit");
    // As configured by default: most answers are rate-limited.
    let Flood {
        mut server,
        mut now,
    } = flood(Config::default(), hellos, "default rate limit");

    // A real client, after the flood, connects.
    let server_addr: SocketAddr = SERVER.parse().expect("address");
    let client_addr: SocketAddr = "10.0.0.2:5000".parse().expect("address");
    let mut buf = Vec::new();
    let mut client = Endpoint::new(Config::default(), now, 9).expect("config");
    client.connect(now, server_addr).expect("connect");
    let mut connected = false;
    for _ in 0..2000 {
        now += Duration::from_millis(5);
        client.handle_timeout(now);
        server.handle_timeout(now);
        while let Some(transmit) = client.poll_transmit(now, &mut buf) {
            let sent: Vec<u8> = buf.drain(..transmit.size).collect();
            server.handle_datagram(now, client_addr, &sent);
        }
        while let Some(transmit) = server.poll_transmit(now, &mut buf) {
            let sent: Vec<u8> = buf.drain(..transmit.size).collect();
            client.handle_datagram(now, server_addr, &sent);
        }
        while server.poll_event().is_some() {}
        if let Some((_, Event::Connected)) = client.poll_event() {
            connected = true;
            break;
        }
    }
    assert!(
        connected,
        "a legitimate client could not connect after the flood"
    );
}
