//! The standard reliable-UDP simulation scenario, shared by the
//! `udp_faults` suite and the `sim-seeds` benchmark.
//!
//! A client sends 400 numbered messages across the four deliveries and
//! makes an RPC call every 100 ms while turmoil's latency spread (1-30 ms)
//! reorders datagrams and the link is cut from 3 s to 5 s; then it closes
//! gracefully. The server records what it received.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use protowright::rpc::Code;
use protowright::{Client, ClientConfig, Server, ServerConfig, Transport};
use protowright_sim::Turmoil;
use protowright_testing::pb::{Payload, ProbeClient, ProbeServer, Traffic};
use protowright_testing::{Probe, Stream};

const PORT: u16 = 9000;
/// How many messages the client sends.
pub const MESSAGES: u64 = 400;

/// The stream of message `n`.
pub fn route(n: u64) -> Stream {
    match n % 5 {
        0 => Stream::OrderedA,
        1 => Stream::OrderedB,
        2 => Stream::Unordered,
        3 => Stream::Unreliable,
        _ => Stream::Sequenced,
    }
}

/// What the server received, and the outcome of every call.
#[derive(Debug, Default, Clone)]
pub struct Run {
    /// What the server received: stream and message number, in order.
    pub received: Vec<(Stream, u64)>,
    /// When each call was made and how it ended.
    pub calls: Vec<(Duration, Result<(), Code>)>,
    /// How the server saw the connection end.
    pub server_saw_close: Option<String>,
}

/// Runs the scenario with `seed` and returns what happened.
pub fn run(seed: u64) -> Run {
    protowright_sim::reseed(seed);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(60))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(30))
        .build();
    let run = Arc::new(Mutex::new(Run::default()));
    let server_run = Arc::clone(&run);
    sim.host("server", move || {
        let run = Arc::clone(&server_run);
        async move {
            let mut server = Server::bind(
                Turmoil,
                Transport::Udp,
                (Ipv4Addr::UNSPECIFIED, PORT).into(),
                ServerConfig::default(),
            )
            .await?;
            while let Some(incoming) = server.accept().await {
                let connection = incoming.serve(ProbeServer::new(Probe::default()));
                loop {
                    match connection.recv::<Traffic>().await {
                        Ok(Some(message)) => {
                            if let Some((stream, seq, _)) = Stream::read(&message) {
                                lock(&run).received.push((stream, seq));
                            }
                        }
                        Ok(None) => {
                            lock(&run).server_saw_close = Some("clean".into());
                            break;
                        }
                        Err(error) => {
                            lock(&run).server_saw_close = Some(error.to_string());
                            break;
                        }
                    }
                }
            }
            Ok(())
        }
    });
    let client_run = Arc::clone(&run);
    sim.client("client", async move {
        let server: SocketAddr = (turmoil::lookup("server"), PORT).into();
        let client =
            Client::connect(Turmoil, Transport::Udp, server, ClientConfig::default()).await?;
        let probe = ProbeClient::new(client.clone()).with_timeout(Duration::from_millis(400));
        for n in 0..MESSAGES {
            let size = if n % 7 == 0 { 3000 } else { 64 };
            client.send(route(n).message(n, size)).await?;
            if n % 4 == 0 {
                let at = turmoil::sim_elapsed().unwrap_or_default();
                let outcome = protowright_testing::pb::Probe::echo(
                    &probe,
                    Payload {
                        id: n,
                        ..Payload::default()
                    },
                )
                .await;
                let result = match outcome {
                    Ok(reply) => {
                        assert_eq!(reply.id, n, "call {n} got another call's response");
                        Ok(())
                    }
                    Err(status) => Err(status.code()),
                };
                lock(&client_run).calls.push((at, result));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let connection = client.connection().await?;
        client.close();
        let _ = connection.closed().await;
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
                crate::replay_command("udp_faults", seed)
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
    let run = lock(&run).clone();
    run
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
