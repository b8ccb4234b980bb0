//! The standard reliable-UDP simulation scenario, shared by the
//! `udp_faults` suite and the `sim-seeds` benchmark.
//!
//! A client sends 400 messages across the four deliveries and makes an RPC
//! call every 100 ms while turmoil's latency spread (1-30 ms) reorders
//! datagrams and the link is cut from 3 s to 5 s; then it closes
//! gracefully. The server records what it received.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use protowright::rpc::{self, CallOptions, Channel, Code, NoService, Service, Status};
use protowright::udp::{Config, Endpoint, Lane};
use protowright::{Delivery, Method};
use protowright_sim::Turmoil;

use crate::Trace;

const ECHO: Method = Method {
    id: 1,
    path: "/sim.Echo/Echo",
    idempotent: true,
};
const PORT: u16 = 9000;
/// How many messages the client sends.
pub const MESSAGES: u32 = 400;

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
pub fn route(n: u32) -> (Delivery, u32) {
    match n % 5 {
        0 | 1 => (Delivery::ReliableOrdered, n % 3),
        2 => (Delivery::ReliableUnordered, 0),
        3 => (Delivery::Unreliable, 0),
        _ => (Delivery::UnreliableSequenced, 1),
    }
}

/// What the server received, and the outcome of every call.
#[derive(Debug, Default)]
pub struct Run {
    /// What the server received: lane, channel, message number.
    pub received: Vec<(Lane, u32, u32)>,
    /// When each call was made and how it ended.
    pub calls: Vec<(Duration, Result<(), Code>)>,
    /// Every event, stamped with simulated time.
    pub trace: Vec<(Duration, String)>,
}

/// Runs the scenario with `seed` and returns what happened.
pub fn run(seed: u64) -> Run {
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
