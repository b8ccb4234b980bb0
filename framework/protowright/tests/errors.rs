//! Errors made visible, on real loopback sockets: a call refused for its
//! size says why and is not retried, a peer that breaks the protocol is
//! told why before it is cut off, and the server counts each failed
//! connection.

#![allow(
    clippy::unwrap_used,
    reason = "an unwrap in test code is an assertion; clippy.toml allows it in #[test] functions, not in the scenarios and helpers they call"
)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, Bytes};
use prost::Message;
use protowright::net::Tokio;
use protowright::rpc::Code;
use protowright::v1::{Envelope, Kind};
use protowright::{Client, ClientConfig, Server, ServerConfig, ServerHandle, Transport};
use protowright_testing::Probe;
use protowright_testing::pb::{Probe as _, ProbeClient, ProbeServer};
use support::{LOOPBACK, payload};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(transport: Transport, config: ServerConfig) -> (ServerHandle, SocketAddr, Probe) {
    let server = Server::bind(Tokio, transport, LOOPBACK, config)
        .await
        .unwrap();
    let (handle, addr) = (server.handle(), server.local_addr());
    let probe = Probe::default();
    tokio::spawn(server.serve(ProbeServer::new(probe.clone())));
    (handle, addr, probe)
}

/// Waits (up to 5 s) until the server has counted `failed` failed
/// connections, then a little longer to see that no more follow.
async fn settle_failed(server: &ServerHandle, failed: u64) -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while server.stats().failed < failed && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.stats().failed
}

#[tokio::test]
async fn tcp_a_call_over_the_servers_frame_limit_says_why_and_is_not_retried() {
    let mut config = ServerConfig::default();
    config.session.max_frame = 1024;
    let (server, addr, probe) = start(Transport::Tcp, config).await;
    // The client's own limit (4 MiB) lets the request go.
    let client = Client::connect(Tokio, Transport::Tcp, addr, ClientConfig::default())
        .await
        .unwrap();
    // Echo is idempotent: a retryable failure would be retried.
    let status = ProbeClient::new(client.clone())
        .echo(payload(1, 10 * 1024))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(status.message().contains("refused a frame"), "{status}");
    assert!(
        status.message().contains("1024"),
        "names the limit: {status}"
    );
    assert_eq!(probe.finished() + probe.dropped(), 0, "no handler ran");
    // Each attempt would have cost the server a connection (the client
    // does reconnect: the server closed the connection).
    assert_eq!(settle_failed(&server, 1).await, 1, "not retried");
}

#[tokio::test]
async fn udp_a_call_over_the_limit_the_server_announced_fails_here() {
    let mut config = ServerConfig::default();
    config.udp.max_message_size = 1024;
    let (server, addr, probe) = start(Transport::Udp, config).await;
    let client = Client::connect(Tokio, Transport::Udp, addr, ClientConfig::default())
        .await
        .unwrap();
    let probe_client = ProbeClient::new(client.clone());
    let status = probe_client.echo(payload(1, 10 * 1024)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(
        status.message().contains("frame limit of 1024 bytes"),
        "{status}"
    );
    assert!(!status.is_from_peer(), "refused on this side: {status}");
    // Nothing reached the server, and the connection is fine.
    assert_eq!(probe.finished() + probe.dropped(), 0);
    assert_eq!(probe_client.echo(payload(2, 10)).await, Ok(payload(2, 10)));
    assert_eq!((server.stats().failed, client.stats().reconnects), (0, 0));
}

/// Sends `bytes` on a raw TCP connection and returns every envelope the
/// server wrote until it closed the connection.
async fn raw_peer_sends(addr: SocketAddr, bytes: &[u8]) -> Vec<Envelope> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received));
    read.await
        .expect("the server closes the connection")
        .unwrap();
    let mut received = Bytes::from(received);
    let mut envelopes = Vec::new();
    while received.has_remaining() {
        envelopes.push(Envelope::decode_length_delimited(&mut received).unwrap());
    }
    envelopes
}

/// The status of the GOAWAY among `envelopes`.
fn goaway(envelopes: &[Envelope]) -> (Code, String) {
    let goaway = envelopes
        .iter()
        .find(|e| e.kind == Kind::Goaway as i32)
        .unwrap_or_else(|| panic!("no GOAWAY in {envelopes:?}"));
    let status = goaway.status.clone().expect("a GOAWAY says why");
    (Code::try_from(status.code).unwrap(), status.message)
}

#[tokio::test]
async fn tcp_garbage_is_answered_with_a_goaway_saying_why_and_counted_as_failed() {
    let (server, addr, _probe) = start(Transport::Tcp, ServerConfig::default()).await;
    // A three-byte frame whose body is an invalid wire type.
    let told = raw_peer_sends(addr, &[3, 0xff, 0xff, 0xff]).await;
    let (code, why) = goaway(&told);
    assert_eq!(code, Code::InvalidArgument, "{why}");
    assert!(why.contains("could not decode an envelope"), "{why}");
    assert_eq!(settle_failed(&server, 1).await, 1);
}

#[tokio::test]
async fn tcp_an_oversized_length_prefix_is_answered_with_the_limit() {
    let (server, addr, _probe) = start(Transport::Tcp, ServerConfig::default()).await;
    // 1 GiB announced, over the default 4 MiB.
    let told = raw_peer_sends(addr, &[0x80, 0x80, 0x80, 0x80, 0x04]).await;
    let (code, why) = goaway(&told);
    assert_eq!(code, Code::ResourceExhausted, "{why}");
    assert!(
        why.contains(&(4 << 20).to_string()),
        "names the limit: {why}"
    );
    assert_eq!(settle_failed(&server, 1).await, 1);
}
