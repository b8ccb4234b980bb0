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
