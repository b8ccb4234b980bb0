//! Which failed calls a client retries, on both transports over real
//! loopback sockets: an idempotent call whose connection was lost before
//! the callee answered is retried on the next connection, within the retry
//! policy; a call the callee answered (even with UNAVAILABLE) and a call
//! that is not idempotent are not. A retry happens inside the call, so when
//! the call returns, every attempt it made is over: the counts below are
//! final, with no clock deciding.

#![allow(
    clippy::unwrap_used,
    reason = "an unwrap in test code is an assertion; clippy.toml allows it in #[test] functions, not in the scenarios and helpers they call"
)]

#[macro_use]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use protowright::net::Tokio;
use protowright::rpc::{Code, Service, Status};
use protowright::{Backoff, Client, ClientConfig, Connection, Server, ServerConfig, Transport};
use protowright_testing::Probe;
use protowright_testing::pb::{Nap, Probe as _, ProbeClient, ProbeServer};
use support::{LOOPBACK, payload};

/// Serves a probe, but hangs up (closes the connection with the call still
/// in flight) on the first call of each of its first `hang_ups`
/// connections.
#[derive(Clone)]
struct HangUp {
    probe: ProbeServer<Probe>,
    connection: Connection,
    hang_ups: Arc<AtomicUsize>,
}

impl Service for HangUp {
    async fn call(&self, method: u32, request: Bytes) -> Result<Bytes, Status> {
        let take = |left: usize| left.checked_sub(1);
        if self
            .hang_ups
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, take)
            .is_ok()
        {
            self.connection.close();
            // The handler is stopped when the connection ends.
            std::future::pending::<()>().await;
        }
        self.probe.call(method, request).await
    }
}

/// A server whose first `hang_ups` connections are hung up on; returns its
/// address and the probe behind it.
async fn flaky_server(
    transport: Transport,
    hang_ups: usize,
) -> (SocketAddr, Probe, Arc<AtomicUsize>) {
    let mut server = Server::bind(Tokio, transport, LOOPBACK, ServerConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr();
    let probe = Probe::default();
    let left = Arc::new(AtomicUsize::new(hang_ups));
    let (serving, hanging) = (probe.clone(), Arc::clone(&left));
    tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            incoming.serve_with(|connection| HangUp {
                probe: ProbeServer::new(serving.clone()),
                connection: connection.clone(),
                hang_ups: Arc::clone(&hanging),
            });
        }
    });
    (addr, probe, left)
}

async fn client(transport: Transport, addr: SocketAddr) -> Client {
    let config = ClientConfig {
        backoff: Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
            ..Backoff::default()
        },
        ..ClientConfig::default()
    };
    Client::connect(Tokio, transport, addr, config)
        .await
        .unwrap()
}

async fn an_unavailable_the_callee_answered_is_not_retried(transport: Transport) {
    let (addr, probe, _) = flaky_server(transport, 0).await;
    let client = client(transport, addr).await;
    // `Overloaded` is idempotent, and its handler answers UNAVAILABLE.
    let status = ProbeClient::new(client.clone())
        .overloaded(payload(1, 0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.is_from_peer(), "{status}");
    assert_eq!(status.message(), "the handler is overloaded");
    assert_eq!(probe.finished(), 1, "called exactly once");
}

async fn an_idempotent_call_whose_connection_was_lost_is_retried(transport: Transport) {
    let (addr, probe, hang_ups) = flaky_server(transport, 1).await;
    let client = client(transport, addr).await;
    let reply = ProbeClient::new(client.clone()).echo(payload(7, 10)).await;
    assert_eq!(reply, Ok(payload(7, 10)), "succeeded after the reconnect");
    assert_eq!(
        hang_ups.load(Ordering::SeqCst),
        0,
        "the first attempt was hung up on"
    );
    assert_eq!(probe.echoed(), [7], "served once, by the second connection");
    assert_eq!(client.stats().reconnects, 1);
}

async fn a_call_that_is_not_idempotent_is_never_retried(transport: Transport) {
    let (addr, probe, hang_ups) = flaky_server(transport, 1).await;
    let client = client(transport, addr).await;
    // `Sleep` is not marked idempotent.
    let status = ProbeClient::new(client.clone())
        .sleep(Nap { millis: 1 })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    assert!(!status.is_from_peer(), "the connection was lost: {status}");
    assert_eq!(hang_ups.load(Ordering::SeqCst), 0);
    assert_eq!(probe.finished() + probe.running(), 0, "never sent again");
}

async fn retries_stop_at_the_policys_limit(transport: Transport) {
    let (addr, probe, hang_ups) = flaky_server(transport, 10).await;
    let client = client(transport, addr).await;
    let status = ProbeClient::new(client.clone())
        .echo(payload(1, 0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    // The default policy: the first attempt and 2 retries, each hung up on.
    assert_eq!(10 - hang_ups.load(Ordering::SeqCst), 3, "{status}");
    assert!(probe.echoed().is_empty());
}

on_both_transports!(
    an_unavailable_the_callee_answered_is_not_retried,
    an_idempotent_call_whose_connection_was_lost_is_retried,
    a_call_that_is_not_idempotent_is_never_retried,
    retries_stop_at_the_policys_limit,
);
