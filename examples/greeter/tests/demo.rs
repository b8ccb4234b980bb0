//! The demo's three runs tell the same story.

use std::net::Ipv4Addr;

use greeter::pb::GreeterClient;
use greeter::{Host, Transcript, exercise, serve, visit};
use protowright::net::Tokio;

fn expected() -> Transcript {
    vec![
        "say_hello(Ada)        -> ok: Hello, Ada!".to_owned(),
        "say_hello(\"\")         -> error: INVALID_ARGUMENT: a name is required to say hello".to_owned(),
        "say_hello(slow, 50ms) -> error: DEADLINE_EXCEEDED: /greeter.v1.Greeter/SayHello got no response from in-memory server within 50ms".to_owned(),
        "100 concurrent visits -> 100 counted".to_owned(),
    ]
}

#[tokio::test(start_paused = true)]
async fn in_memory_the_greeter_greets_refuses_times_out_and_counts() {
    let transcript = exercise(&GreeterClient::in_memory(Host::default())).await;
    assert_eq!(transcript, expected());
}

#[tokio::test]
async fn over_loopback_tcp_the_greeter_behaves_the_same() {
    let (server, handle) = serve(Tokio, (Ipv4Addr::LOCALHOST, 0).into()).await.unwrap();
    let transcript = visit(Tokio, server, 1).await.unwrap();
    handle.shutdown().await;
    let expected: Transcript = expected()
        .into_iter()
        .map(|line| line.replace("in-memory server", &server.to_string()))
        .collect();
    assert_eq!(transcript, expected);
}

#[tokio::test]
async fn over_reliable_udp_the_same_generated_client_behaves_the_same() {
    let endpoint = greeter::serve_udp(Tokio, (Ipv4Addr::LOCALHOST, 0).into())
        .await
        .unwrap();
    let server = endpoint.local_addr();
    let transcript = greeter::visit_udp(Tokio, server, 1).await.unwrap();
    endpoint.shutdown();
    let expected: Transcript = expected()
        .into_iter()
        .map(|line| line.replace("in-memory server", &server.to_string()))
        .collect();
    assert_eq!(transcript, expected);
}

#[test]
fn over_reliable_udp_in_a_simulation_the_greeter_behaves_the_same() {
    use std::net::SocketAddr;
    use std::time::Duration;

    use protowright_sim::Turmoil;

    let mut sim = turmoil::Builder::new()
        .rng_seed(3)
        .min_message_latency(Duration::from_millis(5))
        .max_message_latency(Duration::from_millis(20))
        .build();
    sim.host("server", || async {
        let _endpoint = greeter::serve_udp(Turmoil, (Ipv4Addr::UNSPECIFIED, 9000).into())
            .await
            .map_err(|e| e.to_string())?;
        std::future::pending::<()>().await;
        Ok(())
    });
    let (sender, receiver) = std::sync::mpsc::channel();
    sim.client("client", async move {
        let server: SocketAddr = (turmoil::lookup("server"), 9000).into();
        let transcript = greeter::visit_udp(Turmoil, server, 3)
            .await
            .map_err(|e| e.to_string())?;
        let _ = sender.send((server, transcript));
        Ok(())
    });
    sim.run().unwrap();
    let (server, transcript) = receiver.recv().unwrap();
    let expected: Transcript = expected()
        .into_iter()
        .map(|line| line.replace("in-memory server", &server.to_string()))
        .collect();
    assert_eq!(transcript, expected);
}
