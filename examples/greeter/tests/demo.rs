//! The demo's runs tell the same story: in memory, over both transports on
//! loopback, and over both in a simulation.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use greeter::pb::GreeterClient;
use greeter::{Host, Transcript, exercise, serve, visit};
use protowright::Transport;
use protowright::net::Tokio;
use protowright_sim::Turmoil;

fn expected(server: &str) -> Transcript {
    vec![
        "say_hello(Ada)        -> ok: Hello, Ada!".to_owned(),
        "say_hello(\"\")         -> error: INVALID_ARGUMENT: a name is required to say hello"
            .to_owned(),
        format!(
            "say_hello(slow, 50ms) -> error: DEADLINE_EXCEEDED: /greeter.v1.Greeter/SayHello got no response from {server} within 50ms"
        ),
        "100 concurrent visits -> 100 counted".to_owned(),
    ]
}

#[tokio::test(start_paused = true)]
async fn in_memory_the_greeter_greets_refuses_times_out_and_counts() {
    let transcript = exercise(&GreeterClient::in_memory(Host::default())).await;
    assert_eq!(transcript, expected("in-memory server"));
}

async fn over_loopback(transport: Transport) {
    let (server, handle) = serve(Tokio, transport, (Ipv4Addr::LOCALHOST, 0).into())
        .await
        .expect("the server binds");
    let transcript = visit(Tokio, transport, server)
        .await
        .expect("the visit completes");
    handle.shutdown().await;
    assert_eq!(transcript, expected(&server.to_string()), "{transport}");
}

#[tokio::test]
async fn over_loopback_tcp_the_greeter_behaves_the_same() {
    over_loopback(Transport::Tcp).await;
}

#[tokio::test]
async fn over_loopback_reliable_udp_the_same_generated_client_behaves_the_same() {
    over_loopback(Transport::Udp).await;
}

fn in_simulation(transport: Transport) {
    protowright_sim::reseed(3);
    let mut sim = turmoil::Builder::new()
        .rng_seed(3)
        .min_message_latency(Duration::from_millis(5))
        .max_message_latency(Duration::from_millis(20))
        .build();
    sim.host("server", move || async move {
        let _server = serve(Turmoil, transport, (Ipv4Addr::UNSPECIFIED, 9000).into())
            .await
            .map_err(|e| e.to_string())?;
        std::future::pending::<()>().await;
        Ok(())
    });
    let (sender, receiver) = std::sync::mpsc::channel();
    sim.client("client", async move {
        let server: SocketAddr = (turmoil::lookup("server"), 9000).into();
        let transcript = visit(Turmoil, transport, server)
            .await
            .map_err(|e| e.to_string())?;
        let _ = sender.send((server, transcript));
        Ok(())
    });
    sim.run().expect("the simulation completes");
    let (server, transcript) = receiver.recv().expect("the client's transcript");
    assert_eq!(transcript, expected(&server.to_string()), "{transport}");
}

#[test]
fn over_tcp_in_a_simulation_the_greeter_behaves_the_same() {
    in_simulation(Transport::Tcp);
}

#[test]
fn over_reliable_udp_in_a_simulation_the_greeter_behaves_the_same() {
    in_simulation(Transport::Udp);
}
