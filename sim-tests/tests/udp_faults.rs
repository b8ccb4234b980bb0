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
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use protowright::rpc::{self, CallOptions, Channel, Code, NoService, Service, Status};
use protowright::udp::{Config, Endpoint, Lane};
use protowright::{Delivery, Method};
use protowright_sim::Turmoil;
use sim_tests::{Trace, replay_command};

const ECHO: Method = Method {
    id: 1,
    path: "/sim.Echo/Echo",
    idempotent: true,
};
const PORT: u16 = 9000;
const MESSAGES: u32 = 400;

struct Echo;

impl Service for Echo {
    async fn call(&self, _method: u32, request: Bytes) -> Result<Bytes, Status> {
        Ok(request)
    }
}

fn config(seed: u64) -> Config {
    Config {
        seed: Some(seed),
        ..Config::default()
    }
}

/// The delivery and channel of message `n`.
fn route(n: u32) -> (Delivery, u32) {
    match n % 5 {
        0 | 1 => (Delivery::ReliableOrdered, n % 3),
        2 => (Delivery::ReliableUnordered, 0),
        3 => (Delivery::Unreliable, 0),
        _ => (Delivery::UnreliableSequenced, 1),
    }
}

/// What the server received, and the outcome of every call.
#[derive(Debug, Default)]
struct Run {
    received: Vec<(Lane, u32, u32)>,
    calls: Vec<(Duration, Result<(), Code>)>,
    trace: Vec<(Duration, String)>,
}

fn run(seed: u64) -> Run {
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(60))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(30))
        .build();
    let trace = Trace::default();
    let server_trace = trace.clone();
    sim.host("server", move || {
        let trace = server_trace.clone();
        async move {
            let endpoint =
                Endpoint::server(&Turmoil, (Ipv4Addr::UNSPECIFIED, PORT).into(), config(seed))
                    .await
                    .map_err(|e| e.to_string())?;
            while let Some(connection) = endpoint.accept().await {
                let _session = connection.rpc(Echo, rpc::Config::default());
                while let Ok(message) = connection.recv().await {
                    let n = u32::from_be_bytes(
                        message.data[..4].try_into().map_err(|_| "short message")?,
                    );
                    trace.record(format!("recv {:?} {} {n}", message.lane, message.channel));
                }
                trace.record(format!("closed {:?}", connection.closed().await));
            }
            Ok(())
        }
    });
    let client_trace = trace.clone();
    sim.client("client", async move {
        let server: SocketAddr = (turmoil::lookup("server"), PORT).into();
        let endpoint = Endpoint::client(
            &Turmoil,
            (Ipv4Addr::UNSPECIFIED, PORT + 1).into(),
            config(seed ^ 1),
        )
        .await?;
        let connection = endpoint.connect(server).await?;
        let session = connection.rpc(NoService, rpc::Config::default());
        let client = session.client();
        for n in 0..MESSAGES {
            let (delivery, channel) = route(n);
            let mut body = n.to_be_bytes().to_vec();
            body.resize(if n % 7 == 0 { 3000 } else { 64 }, 0);
            connection
                .send(delivery, channel, Bytes::from(body))
                .await?;
            if n % 4 == 0 {
                let options = CallOptions {
                    timeout: Some(Duration::from_millis(400)),
                };
                let outcome = client
                    .call(&ECHO, Bytes::from(n.to_be_bytes().to_vec()), options)
                    .await;
                let result = match outcome {
                    Ok(reply) => {
                        assert_eq!(
                            &reply[..],
                            &n.to_be_bytes(),
                            "call {n} got another call's response"
                        );
                        Ok(())
                    }
                    Err(status) => Err(status.code()),
                };
                client_trace.record(format!("call {n} {result:?}"));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        session.close();
        connection.close(0, "done");
        let reason = connection.closed().await;
        client_trace.record(format!("client closed {reason:?}"));
        // Give the server's side of the close time to land before the
        // simulation ends with this host.
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(())
    });
    let mut partitioned = false;
    let mut repaired = false;
    loop {
        let done = sim.step().unwrap_or_else(|error| {
            panic!(
                "seed {seed}: {error}\nreplay: {}",
                replay_command("udp_faults", seed)
            )
        });
        if !partitioned && sim.elapsed() >= Duration::from_secs(3) {
            sim.partition("client", "server");
            partitioned = true;
        }
        if !repaired && sim.elapsed() >= Duration::from_secs(5) {
            sim.repair("client", "server");
            repaired = true;
        }
        if done {
            break;
        }
    }
    let events = trace.events();
    let mut run = Run::default();
    for (at, event) in &events {
        let words: Vec<&str> = event.split(' ').collect();
        match words.as_slice() {
            ["recv", lane, channel, n] => {
                let lane = match *lane {
                    "ReliableOrdered" => Lane::ReliableOrdered,
                    "ReliableUnordered" => Lane::ReliableUnordered,
                    "Unreliable" => Lane::Unreliable,
                    _ => Lane::UnreliableSequenced,
                };
                run.received.push((
                    lane,
                    channel.parse().unwrap_or(99),
                    n.parse().unwrap_or(u32::MAX),
                ));
            }
            ["call", _, result] => run.calls.push((
                *at,
                if *result == "Ok(())" {
                    Ok(())
                } else {
                    Err(Code::Unavailable)
                },
            )),
            _ => {}
        }
    }
    run.trace = events;
    run
}

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
