//! A client whose server goes away, on both transports, in a turmoil
//! simulation where the order of events is certain: it tries again at the
//! pace its backoff allows, reconnects once the server is back (a call made
//! meanwhile waits for it), and gives up when its policy says so.

#![allow(
    clippy::unwrap_used,
    reason = "an unwrap in test code is an assertion; clippy.toml allows it in #[test] functions, not in the scenarios and helpers they call"
)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protowright::rpc::Code;
use protowright::{
    Backoff, Client, ClientConfig, ConnectionState, Server, ServerConfig, Transport,
};
use protowright_sim::Turmoil;
use protowright_testing::Probe;
use protowright_testing::pb::{Payload, Probe as _, ProbeClient, ProbeServer};

const PORT: u16 = 9000;

/// Every simulated link takes this long, each way.
const LATENCY: Duration = Duration::from_millis(5);

fn simulation(seed: u64) -> turmoil::Sim<'static> {
    protowright_sim::reseed(seed);
    turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(60))
        .min_message_latency(LATENCY)
        .max_message_latency(LATENCY)
        .build()
}

/// A host named "server" serving a probe on `transport`; it binds again
/// when bounced.
fn serve(sim: &mut turmoil::Sim<'_>, transport: Transport) {
    sim.host("server", move || async move {
        let any: SocketAddr = (Ipv4Addr::UNSPECIFIED, PORT).into();
        let server = Server::bind(Turmoil, transport, any, ServerConfig::default()).await?;
        server.serve(ProbeServer::new(Probe::default())).await;
        Ok(())
    });
}

fn server_addr() -> SocketAddr {
    (turmoil::lookup("server"), PORT).into()
}

/// Notices a lost server within a second on either transport, gives one
/// attempt 100 ms, and backs off from 100 ms up to 1 s.
fn client_config() -> ClientConfig {
    let mut config = ClientConfig {
        connect_timeout: Duration::from_millis(100),
        backoff: Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            ..Backoff::default()
        },
        ..ClientConfig::default()
    };
    config.session.heartbeat_interval = Some(Duration::from_millis(250));
    config.session.dead_peer_timeout = Some(Duration::from_secs(1));
    config.udp.keepalive_interval = Duration::from_millis(250);
    config.udp.idle_timeout = Duration::from_secs(1);
    config
}

/// Something done to the simulation at a moment of simulated time.
type Fault = (Duration, fn(&mut turmoil::Sim<'_>));

/// Steps `sim` until it ends, applying `faults` on the way.
fn run(mut sim: turmoil::Sim<'_>, seed: u64, faults: &[Fault]) {
    let mut pending = faults.to_vec();
    loop {
        let done = sim
            .step()
            .unwrap_or_else(|error| panic!("seed {seed}: {error}"));
        while let Some(&(at, fault)) = pending.first() {
            if sim.elapsed() < at {
                break;
            }
            pending.remove(0);
            fault(&mut sim);
        }
        if done {
            return;
        }
    }
}

fn crash(sim: &mut turmoil::Sim<'_>) {
    sim.crash("server");
}

fn bounce(sim: &mut turmoil::Sim<'_>) {
    sim.bounce("server");
}

/// The outage the backoff test watches: the server crashes at 2 s and
/// stays down; attempts are counted from 2 s to 12 s.
const CRASH: Duration = Duration::from_secs(2);
const OUTAGE: Duration = Duration::from_secs(10);

/// Connection attempts the client made while its server was down for
/// [`OUTAGE`].
fn attempts_during_an_outage(transport: Transport, seed: u64) -> u64 {
    let mut sim = simulation(seed);
    serve(&mut sim, transport);
    let samples = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&samples);
    sim.client("client", async move {
        let client = Client::connect(Turmoil, transport, server_addr(), client_config()).await?;
        while turmoil::sim_elapsed().unwrap_or_default() < CRASH + OUTAGE + Duration::from_secs(1) {
            let at = turmoil::sim_elapsed().unwrap_or_default();
            record.lock().unwrap().push((at, client.stats().attempts));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        client.close();
        Ok(())
    });
    run(sim, seed, &[(CRASH, crash)]);
    let samples = samples.lock().unwrap();
    let at = |time: Duration| {
        samples
            .iter()
            .take_while(|(at, _)| *at <= time)
            .last()
            .map_or(0, |(_, attempts)| *attempts)
    };
    assert_eq!(at(CRASH), 1, "seed {seed}: one attempt before the outage");
    at(CRASH + OUTAGE) - at(CRASH)
}

#[test]
fn a_client_without_its_server_tries_again_at_the_pace_of_its_backoff() {
    for transport in [Transport::Tcp, Transport::Udp] {
        for seed in 1..=8 {
            let attempts = attempts_during_an_outage(transport, seed);
            // Each wait is drawn from zero up to a ceiling that doubles
            // from 100 ms to 1 s: at most 1.5 s of ceilings go by before
            // the waits reach 1 s, so 10 s of outage hold at least 7
            // attempts after the loss is noticed (within 1 s). Full jitter
            // has no floor, so the most is what these seeds drew: 14 to
            // 21, 30 allowed. Without the waits every attempt lasts its
            // 100 ms connect timeout (a crashed host answers nothing on
            // either transport): 100 of them.
            assert!(
                (7..=30).contains(&attempts),
                "{transport}, seed {seed}: {attempts} attempts in {OUTAGE:?}"
            );
        }
    }
}

/// Makes a call while the server is down (it crashes at 2 s and comes back
/// at 4 s); returns the call's outcome, and the client's reconnects and
/// state after it.
fn a_call_during_a_restart(
    transport: Transport,
    seed: u64,
) -> (Result<Payload, Code>, u64, ConnectionState) {
    let mut sim = simulation(seed);
    serve(&mut sim, transport);
    let outcome = Arc::new(Mutex::new(None));
    let record = Arc::clone(&outcome);
    sim.client("client", async move {
        let client = Client::connect(Turmoil, transport, server_addr(), client_config()).await?;
        let probe = ProbeClient::new(client.clone()).with_timeout(Duration::from_secs(10));
        assert!(probe.echo(Payload::default()).await.is_ok());
        let mut states = client.watch_state();
        states
            .wait_for(|s| *s != ConnectionState::Connected)
            .await?;
        // Made while the server is down: it waits for the server, within
        // its deadline.
        let patient = Payload {
            id: 7,
            ..Payload::default()
        };
        let reply = probe.echo(patient).await.map_err(|status| status.code());
        let stats = client.stats();
        *record.lock().unwrap() = Some((reply, stats.reconnects, stats.state));
        client.close();
        Ok(())
    });
    run(
        sim,
        seed,
        &[(CRASH, crash), (CRASH + Duration::from_secs(2), bounce)],
    );
    outcome.lock().unwrap().take().expect("the client finished")
}

#[test]
fn a_client_reconnects_once_when_its_server_restarts() {
    for transport in [Transport::Tcp, Transport::Udp] {
        let (reply, reconnects, state) = a_call_during_a_restart(transport, 3);
        assert_eq!(reply.map(|p| p.id), Ok(7), "{transport}");
        assert_eq!(reconnects, 1, "{transport}");
        assert_eq!(state, ConnectionState::Connected, "{transport}");
    }
}

#[test]
fn calls_fail_unavailable_with_the_reason_once_the_client_gives_up() {
    for transport in [Transport::Tcp, Transport::Udp] {
        let seed = 5;
        let mut sim = simulation(seed);
        serve(&mut sim, transport);
        let outcome = Arc::new(Mutex::new(None));
        let record = Arc::clone(&outcome);
        sim.client("client", async move {
            let mut config = client_config();
            config.backoff.max_attempts = Some(3);
            let client = Client::connect(Turmoil, transport, server_addr(), config).await?;
            let mut states = client.watch_state();
            states
                .wait_for(|s| matches!(s, ConnectionState::GaveUp { .. }))
                .await?;
            let status = ProbeClient::new(client.clone())
                .echo(Payload::default())
                .await
                .unwrap_err();
            *record.lock().unwrap() = Some((status, client.stats().attempts));
            Ok(())
        });
        run(sim, seed, &[(CRASH, crash)]);
        let (status, attempts) = outcome.lock().unwrap().take().expect("the client gave up");
        assert_eq!(status.code(), Code::Unavailable, "{transport}: {status}");
        assert!(
            status.message().contains(":9000"),
            "names the server: {status}"
        );
        // Three failures in a row: losing the first connection, then two
        // attempts to reopen it.
        assert_eq!(attempts, 3, "{transport}: {status}");
    }
}
