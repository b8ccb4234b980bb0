//! Graceful shutdown on both transports, in a turmoil simulation where the
//! order of events is certain: calls in flight finish, new calls are
//! refused with the reason, and connections whose calls outlast the drain
//! deadline (`ServerConfig::shutdown_timeout`) are closed then.

#![allow(
    clippy::unwrap_used,
    reason = "an unwrap in test code is an assertion; clippy.toml allows it in #[test] functions, not in the scenarios and helpers they call"
)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protowright::rpc::{Code, Status};
use protowright::{Client, ClientConfig, Server, ServerConfig, ServerStats, Transport};
use protowright_sim::Turmoil;
use protowright_testing::Probe;
use protowright_testing::pb::{Nap, Payload, Probe as _, ProbeClient, ProbeServer};

const PORT: u16 = 9000;
const SEED: u64 = 11;

/// Every simulated link takes this long, each way.
const LATENCY: Duration = Duration::from_millis(5);

/// When the server is told to shut down.
const SHUTDOWN: Duration = Duration::from_secs(2);

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

/// What the server saw: when its shutdown returned, and its counters then.
#[derive(Debug, Default)]
struct ServerSide {
    finished: Option<Duration>,
    stats: Option<ServerStats>,
    probe: Probe,
}

/// Runs a simulation whose server (with `shutdown_timeout`) is told to
/// shut down at [`SHUTDOWN`] while `client` runs; returns what the server
/// saw.
fn with_a_server_shutting_down<F>(
    transport: Transport,
    shutdown_timeout: Duration,
    client: impl Fn(SocketAddr) -> F + 'static,
) -> ServerSide
where
    F: Future<Output = turmoil::Result> + 'static,
{
    protowright_sim::reseed(SEED);
    let mut sim = turmoil::Builder::new()
        .rng_seed(SEED)
        .simulation_duration(Duration::from_secs(30))
        .min_message_latency(LATENCY)
        .max_message_latency(LATENCY)
        .build();
    let seen = Arc::new(Mutex::new(ServerSide::default()));
    let record = Arc::clone(&seen);
    sim.host("server", move || {
        let record = Arc::clone(&record);
        async move {
            let config = ServerConfig {
                shutdown_timeout,
                ..ServerConfig::default()
            };
            let any: SocketAddr = (Ipv4Addr::UNSPECIFIED, PORT).into();
            let server = Server::bind(Turmoil, transport, any, config).await?;
            let handle = server.handle();
            let probe = record.lock().unwrap().probe.clone();
            tokio::spawn(async move {
                tokio::time::sleep(SHUTDOWN.saturating_sub(now())).await;
                handle.shutdown().await;
                let mut seen = record.lock().unwrap();
                seen.finished = Some(now());
                seen.stats = Some(handle.stats());
            });
            server.serve(ProbeServer::new(probe)).await;
            Ok(())
        }
    });
    sim.client("client", async move {
        client((turmoil::lookup("server"), PORT).into()).await?;
        // Keep the simulation going until the server has surely finished.
        tokio::time::sleep(Duration::from_secs(10).saturating_sub(now())).await;
        Ok(())
    });
    sim.run()
        .unwrap_or_else(|error| panic!("{transport}, seed {SEED}: {error}"));
    let mut seen = seen.lock().unwrap();
    std::mem::take(&mut *seen)
}

/// What the client saw in [`calls_in_flight_finish_and_new_ones_are_refused`].
#[derive(Debug, Default)]
struct Drained {
    in_flight: Option<(Result<Payload, Status>, Duration)>,
    refused: Option<Status>,
    later: Option<Status>,
}

fn calls_in_flight_finish_and_new_ones_are_refused(transport: Transport) {
    let seen = Arc::new(Mutex::new(Drained::default()));
    let record = Arc::clone(&seen);
    let server = with_a_server_shutting_down(transport, Duration::from_secs(10), move |addr| {
        let record = Arc::clone(&record);
        async move {
            let client = Client::connect(Turmoil, transport, addr, ClientConfig::default()).await?;
            let connection = client.connection().await?;
            let probe = ProbeClient::new(client.clone());
            // In flight from 1.5 s to 2.5 s, across the shutdown at 2 s.
            tokio::time::sleep(ms(1500).saturating_sub(now())).await;
            let in_flight = tokio::spawn({
                let probe = probe.clone();
                async move {
                    let reply = probe.sleep(Nap { millis: 1000 }).await;
                    (reply, now())
                }
            });
            tokio::time::sleep(SHUTDOWN + ms(100) - now()).await;
            // A new call on the connection that said GOAWAY.
            let refused = ProbeClient::new(connection).echo(Payload::default()).await;
            let in_flight = in_flight.await?;
            // After the shutdown, through the client: nothing to connect to.
            let later = probe.with_timeout(ms(500)).echo(Payload::default()).await;
            let mut seen = record.lock().unwrap();
            seen.in_flight = Some(in_flight);
            seen.refused = refused.err();
            seen.later = later.err();
            drop(seen);
            client.close();
            Ok(())
        }
    });
    let seen = seen.lock().unwrap();
    let (reply, at) = seen.in_flight.clone().expect("the call in flight ended");
    assert_eq!(
        reply.map(|p| p.data),
        Ok("slept".into()),
        "{transport}: finished"
    );
    assert!(at >= ms(2500), "{transport}: ended at {at:?}");
    let refused = seen.refused.clone().expect("the new call was refused");
    assert_eq!(refused.code(), Code::Unavailable, "{transport}: {refused}");
    assert!(
        refused.message().contains("the server is shutting down"),
        "{transport}: {refused}"
    );
    let later = seen.later.clone().expect("no server, no answer");
    assert_eq!(later.code(), Code::Unavailable, "{transport}: {later}");
    // The drain ended when the last call did, not at the 10 s deadline.
    let finished = server.finished.expect("shutdown returned");
    assert!(
        finished < SHUTDOWN + ms(1500),
        "{transport}: shutdown took until {finished:?}"
    );
    let stats = server.stats.expect("counted");
    assert_eq!(
        (stats.accepted, stats.connections, stats.failed),
        (1, 0, 0),
        "{transport}: {stats:?}"
    );
    assert_eq!(
        server.probe.finished(),
        1,
        "{transport}: only the call in flight ran"
    );
}

fn stragglers_are_closed_at_the_drain_deadline(transport: Transport) {
    let seen = Arc::new(Mutex::new(None));
    let record = Arc::clone(&seen);
    let server = with_a_server_shutting_down(transport, Duration::from_secs(1), move |addr| {
        let record = Arc::clone(&record);
        async move {
            let client = Client::connect(Turmoil, transport, addr, ClientConfig::default()).await?;
            // A call that never finishes by itself.
            let stuck = ProbeClient::new(client.clone())
                .block(Payload::default())
                .await;
            *record.lock().unwrap() = Some((stuck.map(drop), now()));
            client.close();
            Ok(())
        }
    });
    let (stuck, at) = seen.lock().unwrap().take().expect("the stuck call ended");
    let status = stuck.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{transport}: {status}");
    // Told GOAWAY at 2 s, closed at the 1 s deadline.
    let deadline = SHUTDOWN + Duration::from_secs(1);
    assert!(
        (deadline..deadline + ms(100)).contains(&at),
        "{transport}: failed at {at:?}"
    );
    let finished = server.finished.expect("shutdown returned");
    assert!(
        finished >= deadline && finished < deadline + ms(1500),
        "{transport}: {finished:?}"
    );
    assert_eq!(
        (server.probe.dropped(), server.probe.finished()),
        (1, 0),
        "{transport}"
    );
    assert_eq!(server.stats.map(|s| s.connections), Some(0), "{transport}");
}

#[test]
fn tcp_calls_in_flight_finish_and_new_ones_are_refused() {
    calls_in_flight_finish_and_new_ones_are_refused(Transport::Tcp);
}

#[test]
fn udp_calls_in_flight_finish_and_new_ones_are_refused() {
    calls_in_flight_finish_and_new_ones_are_refused(Transport::Udp);
}

#[test]
fn tcp_stragglers_are_closed_at_the_drain_deadline() {
    stragglers_are_closed_at_the_drain_deadline(Transport::Tcp);
}

#[test]
fn udp_stragglers_are_closed_at_the_drain_deadline() {
    stragglers_are_closed_at_the_drain_deadline(Transport::Udp);
}
