//! The TCP transport under network faults, in a turmoil simulation: the
//! very server and client code that runs on real sockets.
//!
//! A client calls an echo server every 100 ms while the test partitions,
//! holds or crashes the network. Every call must end in its own response or
//! a typed error (never someone else's response), errors must stop once the
//! fault heals, and the client must reconnect by itself. (Simulated TCP
//! never retransmits, so links are faulted with partitions, holds and
//! crashes, never `fail_rate`.)

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protowright::rpc::{self, Code};
use protowright::{Backoff, Client, ClientConfig, Server, ServerConfig, Transport};
use protowright_sim::Turmoil;
use protowright_testing::Probe;
use protowright_testing::pb::{Payload, Probe as _, ProbeClient, ProbeServer};
use sim_tests::replay_command;

const PORT: u16 = 9000;

/// A fault the test applies at a point in simulated time.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Partition,
    Repair,
    Hold,
    Release,
    Crash,
    Bounce,
}

/// One call: when it was made, and how it ended.
#[derive(Debug, Clone)]
struct Outcome {
    issued: Duration,
    took: Duration,
    result: Result<(), Code>,
}

/// What the client saw.
#[derive(Debug, Default)]
struct Observed {
    outcomes: Vec<Outcome>,
    reconnects: u64,
}

fn session() -> rpc::Config {
    rpc::Config {
        heartbeat_interval: Some(Duration::from_millis(250)),
        dead_peer_timeout: Some(Duration::from_secs(1)),
        ..rpc::Config::default()
    }
}

fn client_config() -> ClientConfig {
    ClientConfig {
        session: session(),
        connect_timeout: Duration::from_millis(500),
        backoff: Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
            ..Backoff::default()
        },
        ..ClientConfig::default()
    }
}

/// Runs 15 s of calls under `faults` and returns what the client saw.
fn run(seed: u64, faults: &[(Duration, Fault)]) -> Observed {
    protowright_sim::reseed(seed);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(60))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(10))
        .build();
    sim.host("server", || async {
        let config = ServerConfig {
            session: session(),
            ..ServerConfig::default()
        };
        Server::bind(
            Turmoil,
            Transport::Tcp,
            (Ipv4Addr::UNSPECIFIED, PORT).into(),
            config,
        )
        .await?
        .serve(ProbeServer::new(Probe::default()))
        .await;
        Ok(())
    });
    let observed = Arc::new(Mutex::new(Observed::default()));
    let record = Arc::clone(&observed);
    sim.client("client", async move {
        let server: SocketAddr = (turmoil::lookup("server"), PORT).into();
        let client = Client::connect(Turmoil, Transport::Tcp, server, client_config()).await?;
        let probe = ProbeClient::new(client.clone()).with_timeout(Duration::from_millis(500));
        for n in 0u64..150 {
            let issued = turmoil::sim_elapsed().unwrap_or_default();
            let request = Payload {
                id: n,
                ..Payload::default()
            };
            let result = match probe.echo(request).await {
                Ok(reply) => {
                    assert_eq!(reply.id, n, "call {n} got another call's response");
                    Ok(())
                }
                Err(status) => Err(status.code()),
            };
            let took = turmoil::sim_elapsed()
                .unwrap_or_default()
                .saturating_sub(issued);
            record
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .outcomes
                .push(Outcome {
                    issued,
                    took,
                    result,
                });
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        record.lock().unwrap_or_else(|e| e.into_inner()).reconnects = client.stats().reconnects;
        client.close();
        Ok(())
    });
    let mut pending = faults.to_vec();
    loop {
        let done = sim.step().unwrap_or_else(|error| {
            panic!(
                "seed {seed}: {error}\nreplay: {}",
                replay_command("tcp_faults", seed)
            )
        });
        while let Some(&(at, fault)) = pending.first() {
            if sim.elapsed() < at {
                break;
            }
            pending.remove(0);
            match fault {
                Fault::Partition => sim.partition("client", "server"),
                Fault::Repair => sim.repair("client", "server"),
                Fault::Hold => sim.hold("client", "server"),
                Fault::Release => sim.release("client", "server"),
                Fault::Crash => sim.crash("server"),
                Fault::Bounce => sim.bounce("server"),
            }
        }
        if done {
            break;
        }
    }
    Arc::try_unwrap(observed)
        .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .unwrap_or_default()
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

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// The outcomes of calls issued in `[from, to)`.
fn between(observed: &Observed, from: f64, to: f64) -> Vec<&Outcome> {
    observed
        .outcomes
        .iter()
        .filter(|o| o.issued >= secs(from) && o.issued < secs(to))
        .collect()
}

fn all_ok(outcomes: &[&Outcome]) -> bool {
    !outcomes.is_empty() && outcomes.iter().all(|o| o.result.is_ok())
}

/// Failures are typed as the caller can act on them: the peer is
/// unreachable, or the deadline passed.
fn all_typed(outcomes: &[&Outcome]) -> bool {
    outcomes.iter().all(|o| {
        matches!(
            o.result,
            Ok(()) | Err(Code::Unavailable | Code::DeadlineExceeded)
        )
    })
}

/// Checks one outage: calls succeed before `fault`, fail with typed errors
/// (and some do fail) while it lasts, succeed again from `recovered` on,
/// and the client replaced its connection.
fn assert_outage_healed(seed: u64, fault: (f64, f64), recovered: f64, observed: &Observed) {
    let context = format!(
        "seed {seed}, replay: {}",
        replay_command("tcp_faults", seed)
    );
    assert!(
        all_ok(&between(observed, 0.5, fault.0)),
        "healthy before: {context}"
    );
    let during = between(observed, fault.0, fault.1);
    assert!(
        during.iter().any(|o| o.result.is_err()),
        "the fault was felt: {context}"
    );
    assert!(all_typed(&during), "typed failures: {during:?} {context}");
    assert!(
        all_ok(&between(observed, recovered, 15.0)),
        "recovered: {context}"
    );
    assert!(
        observed.reconnects >= 1,
        "the dead connection was replaced: {context}"
    );
}

#[test]
fn a_partition_fails_calls_with_typed_errors_and_the_client_recovers_after_repair() {
    for seed in seeds() {
        let observed = run(
            seed,
            &[(secs(3.0), Fault::Partition), (secs(8.0), Fault::Repair)],
        );
        assert_outage_healed(seed, (3.0, 8.0), 11.0, &observed);
    }
}

#[test]
fn a_crashed_and_restarted_server_is_reconnected_to() {
    for seed in seeds() {
        let observed = run(
            seed,
            &[(secs(3.0), Fault::Crash), (secs(6.0), Fault::Bounce)],
        );
        assert_outage_healed(seed, (3.0, 6.0), 9.0, &observed);
    }
}

#[test]
fn a_short_hold_delays_calls_without_breaking_the_connection() {
    for seed in seeds() {
        // Held for 300 ms: under both the call timeout and the dead-peer bound.
        let observed = run(
            seed,
            &[(secs(3.0), Fault::Hold), (secs(3.3), Fault::Release)],
        );
        let context = format!(
            "seed {seed}, replay: {}",
            replay_command("tcp_faults", seed)
        );
        assert!(
            all_ok(&between(&observed, 0.5, 15.0)),
            "no call failed: {:?} {context}",
            observed.outcomes
        );
        let held = between(&observed, 2.9, 3.3);
        assert!(
            held.iter().any(|o| o.took >= secs(0.15)),
            "the hold delayed a call: {held:?} {context}"
        );
        assert_eq!(observed.reconnects, 0, "the connection survived: {context}");
    }
}

#[test]
fn a_long_hold_is_detected_by_heartbeats_and_healed_by_reconnecting() {
    for seed in seeds() {
        // Held for 4 s: past the 1 s dead-peer bound.
        let observed = run(
            seed,
            &[(secs(3.0), Fault::Hold), (secs(7.0), Fault::Release)],
        );
        let context = format!(
            "seed {seed}, replay: {}",
            replay_command("tcp_faults", seed)
        );
        let held = between(&observed, 3.0, 7.0);
        assert!(
            held.iter().any(|o| o.result.is_err()),
            "the hold was felt: {held:?} {context}"
        );
        assert!(all_typed(&held), "typed failures: {context}");
        assert!(
            observed.reconnects >= 1,
            "heartbeats declared the held connection dead and it was replaced: {context}"
        );
        assert!(
            all_ok(&between(&observed, 10.0, 15.0)),
            "recovered after release: {context}"
        );
    }
}
