//! Liveness of a session: heartbeats and the round trips they measure, a
//! peer that falls silent, idle and stalled connections, and GOAWAY
//! draining. Paused tokio time over a pipe, where a clock decides; turmoil
//! with a fixed latency where a round trip is measured.

#![allow(
    clippy::unwrap_used,
    reason = "an unwrap in test code is an assertion; clippy.toml allows it in #[test] functions, not in the scenarios and helpers they call"
)]

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protowright::rpc::{self, Code, Config, NoService, Session, Status, encode};
use protowright::{Client, ClientConfig, ConnectionError, Server, ServerConfig, Transport, memory};
use protowright_sim::Turmoil;
use protowright_testing::Probe;
use protowright_testing::pb::{Nap, Probe as _, ProbeClient, ProbeServer, probe_methods};
use support::payload;

const SECOND: Duration = Duration::from_secs(1);

/// Heartbeats every second; a peer silent for 3 s is dead.
fn quiet() -> Config {
    Config {
        heartbeat_interval: Some(SECOND),
        dead_peer_timeout: Some(3 * SECOND),
        ..Config::default()
    }
}

/// A probe served with `config` on one end of a pipe, a session with the
/// same config on the other; returns both sessions.
fn pair(probe: &Probe, config: Config) -> (Session, Session) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let server = Session::spawn(a, "client", ProbeServer::new(probe.clone()), config.clone());
    let client = Session::spawn(b, "server", NoService, config);
    (server, client)
}

#[tokio::test(start_paused = true)]
async fn heartbeats_keep_a_quiet_connection_alive() {
    let (_server, client) = pair(&Probe::default(), quiet());
    assert_eq!(client.stats().rtt, None);
    tokio::time::sleep(SECOND + SECOND / 2).await;
    let stats = client.stats();
    assert!(stats.rtt.is_some(), "a heartbeat was answered: {stats:?}");
    assert!(
        stats.messages_out >= 1 && stats.messages_in >= 1,
        "{stats:?}"
    );
    // A minute of silence from the application, far past the dead-peer
    // bound: the heartbeats keep it open.
    tokio::time::sleep(60 * SECOND).await;
    let client = ProbeClient::new(client.client());
    assert!(!client.channel().is_closed());
    assert_eq!(client.echo(payload(1, 10)).await, Ok(payload(1, 10)));
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_falls_silent_is_declared_dead_at_the_bound() {
    // The raw end stays open but never answers: TCP would not notice.
    let (a, _silent) = tokio::io::duplex(64 * 1024);
    let session = Session::spawn(a, "silent peer", NoService, quiet());
    let started = tokio::time::Instant::now();
    let error = session.closed().await.unwrap_err();
    assert!(matches!(error, ConnectionError::Timeout { .. }), "{error}");
    assert!(error.to_string().contains("silent peer"), "{error}");
    assert_eq!(started.elapsed(), 3 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn calls_waiting_on_a_dead_peer_fail_unavailable_with_why() {
    let (a, _silent) = tokio::io::duplex(64 * 1024);
    let client = ProbeClient::new(Session::spawn(a, "silent peer", NoService, quiet()).client());
    let status = client.echo(payload(1, 0)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("no data from silent peer"),
        "{status}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_closes_cleanly_after_the_idle_timeout() {
    let config = Config {
        idle_timeout: Some(30 * SECOND),
        ..quiet()
    };
    let (server, client) = pair(&Probe::default(), config);
    let client = ProbeClient::new(client.client());
    assert!(client.echo(payload(1, 0)).await.is_ok());
    let started = tokio::time::Instant::now();
    assert!(server.closed().await.is_ok(), "an idle close is clean");
    let idle = started.elapsed();
    assert!((29 * SECOND..=31 * SECOND).contains(&idle), "{idle:?}");
}

#[tokio::test(start_paused = true)]
async fn a_call_in_progress_keeps_an_idle_connection_open() {
    let config = Config {
        idle_timeout: Some(SECOND),
        ..quiet()
    };
    let client = ProbeClient::new(memory::connect(ProbeServer::new(Probe::default()), config));
    let reply = client.sleep(Nap { millis: 5_000 }).await.unwrap();
    assert_eq!(reply.data, "slept");
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_only_receives_is_not_idle() {
    let config = Config {
        idle_timeout: Some(SECOND),
        ..quiet()
    };
    let probe = Probe::default();
    let (server, client) = pair(&probe, config);
    let client = client.client();
    // One-way messages for 5 s: the server only ever receives.
    for n in 0..50 {
        let body = encode(&payload(n, 4));
        client.send(&probe_methods::ECHO, body).await.unwrap();
        tokio::time::sleep(SECOND / 10).await;
    }
    assert!(!server.client().is_closed(), "receiving calls is traffic");
    assert_eq!(probe.echoed().len(), 50);
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_stops_reading_stalls_the_writer_and_ends_the_connection() {
    let config = Config {
        write_stall_timeout: Some(2 * SECOND),
        heartbeat_interval: None,
        dead_peer_timeout: None,
        ..Config::default()
    };
    // A tiny pipe whose far end is never read.
    let (a, _unread) = tokio::io::duplex(64);
    let session = Session::spawn(a, "stuck reader", NoService, config);
    let client = session.client();
    let started = tokio::time::Instant::now();
    tokio::spawn(async move {
        let body = encode(&payload(1, 4096));
        let _ = client.send(&probe_methods::ECHO, body).await;
    });
    let error = session.closed().await.unwrap_err();
    assert!(
        matches!(error, ConnectionError::WriteStalled { .. }),
        "{error}"
    );
    assert_eq!(started.elapsed(), 2 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn go_away_refuses_new_calls_lets_calls_in_flight_finish_then_closes() {
    let probe = Probe::default();
    let (server, client) = pair(&probe, Config::default());
    let client = ProbeClient::new(client.client());
    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.sleep(Nap { millis: 500 }).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(probe.running(), 1, "the call is in flight");
    server
        .go_away(Status::unavailable("shutting down for maintenance"))
        .await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(!client.channel().is_accepting_calls());
    let refused = client.echo(payload(1, 0)).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);
    assert!(
        refused.message().contains("shutting down for maintenance"),
        "{refused}"
    );
    let slow = slow.await.unwrap().unwrap();
    assert_eq!(slow.data, "slept", "the call in flight finished");
    let started = tokio::time::Instant::now();
    assert!(server.closed().await.is_ok());
    assert!(
        started.elapsed() < Duration::from_millis(10),
        "closed once drained"
    );
    assert_eq!(
        probe.echoed(),
        Vec::<u64>::new(),
        "the refused call never ran"
    );
}

/// The latency of every simulated link, each way.
const LATENCY: Duration = Duration::from_millis(10);

/// Measures, in a turmoil simulation whose links all take [`LATENCY`], a
/// `ping` on a fresh connection over `transport`, and the round trip the
/// heartbeats measured 1.5 s later (`None` when heartbeats are off, as
/// they are over reliable UDP, which keeps itself alive).
fn round_trips(transport: Transport, seed: u64) -> (Duration, Option<Duration>) {
    protowright_sim::reseed(seed);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .min_message_latency(LATENCY)
        .max_message_latency(LATENCY)
        .build();
    let session = rpc::Config {
        heartbeat_interval: Some(SECOND),
        dead_peer_timeout: Some(3 * SECOND),
        ..rpc::Config::default()
    };
    let server_session = session.clone();
    sim.host("server", move || {
        let session = server_session.clone();
        async move {
            let config = ServerConfig {
                session,
                ..ServerConfig::default()
            };
            let any: SocketAddr = (Ipv4Addr::UNSPECIFIED, 9000).into();
            let server = Server::bind(Turmoil, transport, any, config).await?;
            server.serve(ProbeServer::new(Probe::default())).await;
            Ok(())
        }
    });
    let measured = Arc::new(Mutex::new(None));
    let record = Arc::clone(&measured);
    sim.client("client", async move {
        let server = (turmoil::lookup("server"), 9000).into();
        let config = ClientConfig {
            session,
            ..ClientConfig::default()
        };
        let client = Client::connect(Turmoil, transport, server, config).await?;
        let connection = client.connection().await?;
        let ping = connection.ping().await?;
        tokio::time::sleep(SECOND + SECOND / 2).await;
        let heartbeat = connection.stats().session.rtt;
        *record.lock().unwrap() = Some((ping, heartbeat));
        client.close();
        Ok(())
    });
    sim.run().unwrap();
    measured.lock().unwrap().expect("the client measured")
}

#[test]
fn ping_and_heartbeats_measure_the_paths_round_trip() {
    let expected = 2 * LATENCY..2 * LATENCY + Duration::from_millis(3);
    for transport in [Transport::Tcp, Transport::Udp] {
        let (ping, heartbeat) = round_trips(transport, 7);
        assert!(expected.contains(&ping), "{transport}: ping took {ping:?}");
        match transport {
            Transport::Tcp => {
                let heartbeat = heartbeat.expect("a heartbeat was answered");
                assert!(
                    expected.contains(&heartbeat),
                    "heartbeat measured {heartbeat:?}"
                );
            }
            Transport::Udp => assert_eq!(heartbeat, None, "no session heartbeats over UDP"),
        }
    }
}
