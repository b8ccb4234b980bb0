//! Making the first connection, on both transports over real loopback
//! sockets: a wrong port fails fast and says what to check, a client is
//! connected when `connect` returns, and a server at its connection limit
//! refuses with the reason and counts it.

#![allow(
    clippy::unwrap_used,
    reason = "an unwrap in test code is an assertion; clippy.toml allows it in #[test] functions, not in the scenarios and helpers they call"
)]

#[macro_use]
mod support;

use std::time::{Duration, Instant};

use protowright::net::Tokio;
use protowright::{
    Client, ClientConfig, ConnectionState, Error, Server, ServerConfig, ServerHandle, Transport,
};
use protowright_testing::pb::{Probe as _, ProbeClient, ProbeServer};
use protowright_testing::{Probe, Stream};
use support::{LOOPBACK, payload, unused_port};

async fn a_wrong_port_fails_fast_with_a_hint(transport: Transport) {
    let nobody = unused_port();
    let started = Instant::now();
    let error = Client::connect(Tokio, transport, nobody, ClientConfig::default())
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(error, Error::Connect { addr, .. } if addr == nobody),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.contains(&format!(
            "is a protowright server listening on {nobody} over {transport}?"
        )),
        "{text}"
    );
    // Refused by the system (TCP: a reset; UDP: the ICMP port unreachable
    // through the connected socket), not a timeout of 5 or 10 s.
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}: {text}");
}

async fn start(transport: Transport, config: ServerConfig) -> (ServerHandle, std::net::SocketAddr) {
    let server = Server::bind(Tokio, transport, LOOPBACK, config)
        .await
        .unwrap();
    let handle = server.handle();
    let addr = server.local_addr();
    tokio::spawn(server.serve(ProbeServer::new(Probe::default())));
    (handle, addr)
}

async fn a_client_is_connected_when_connect_returns(transport: Transport) {
    let (_server, addr) = start(transport, ServerConfig::default()).await;
    let client = Client::connect(Tokio, transport, addr, ClientConfig::default())
        .await
        .unwrap();
    // No yield between: what `connect` promised holds at once.
    assert_eq!(client.state(), ConnectionState::Connected);
    let stats = client.stats();
    assert_eq!((stats.attempts, stats.reconnects), (1, 0));
    assert!(stats.connection.is_some(), "{stats:?}");
    client.try_send(Stream::OrderedA.message(0, 10)).unwrap();
}

async fn connections_over_the_limit_are_refused_with_the_reason(transport: Transport) {
    let config = ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    };
    let (server, addr) = start(transport, config).await;
    let first = ProbeClient::new(
        Client::connect(Tokio, transport, addr, ClientConfig::default())
            .await
            .unwrap(),
    );
    assert!(first.echo(payload(1, 0)).await.is_ok());

    let mut config = ClientConfig::default();
    config.backoff.max_attempts = Some(1);
    let why = match Client::connect(Tokio, transport, addr, config).await {
        // Refused in the handshake (reliable UDP).
        Err(error) => error.to_string(),
        // Connected, then told why and closed (TCP has no handshake of
        // its own): the call fails with the server's reason.
        Ok(second) => {
            let second = ProbeClient::new(second).with_timeout(Duration::from_secs(2));
            let status = second.echo(payload(2, 0)).await.unwrap_err();
            status.to_string()
        }
    };
    // TCP: "the server is at its limit of 1 connections"; UDP: "the server
    // holds its maximum of 1 connections".
    assert!(why.contains("of 1 connections"), "{transport}: {why}");
    let stats = server.stats();
    assert_eq!(
        (stats.accepted, stats.refused, stats.connections),
        (1, 1, 1),
        "{stats:?}"
    );
    assert!(
        first.echo(payload(3, 0)).await.is_ok(),
        "the first is untouched"
    );
}

#[tokio::test]
async fn tcp_a_client_refused_by_the_limit_fails_connect_saying_why() {
    let config = ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    };
    let (_server, addr) = start(Transport::Tcp, config).await;
    let _first = Client::connect(Tokio, Transport::Tcp, addr, ClientConfig::default())
        .await
        .unwrap();
    // TCP connects, but the connect's round trip meets the server's GOAWAY
    // (with its reason) and the close: connect fails, saying why, and does
    // not ask whether a server listens (one did, and answered).
    let error = Client::connect(Tokio, Transport::Tcp, addr, ClientConfig::default())
        .await
        .expect_err("the server is at its limit");
    let protowright::Error::Connect {
        reason,
        unreachable,
        ..
    } = &error
    else {
        panic!("{error}");
    };
    assert!(reason.contains("at its limit of 1 connections"), "{error}");
    assert!(!unreachable, "{error}");
    assert!(!error.to_string().contains("server listening"), "{error}");
}

on_both_transports!(
    a_wrong_port_fails_fast_with_a_hint,
    a_client_is_connected_when_connect_returns,
    connections_over_the_limit_are_refused_with_the_reason,
);
