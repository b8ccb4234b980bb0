//! One-way calls (the wire's ONE_WAY envelopes, `rpc::Client::send`): run
//! one at a time in arrival order, with backpressure on the sender instead
//! of loss, and still handled when the session drains. In paused time, so
//! a wait is measured exactly.

mod support;

use std::time::Duration;

use protowright::rpc::{Config, NoService, Session, Status, encode};
use protowright_testing::Probe;
use protowright_testing::pb::{Nap, ProbeServer, probe_methods};
use support::payload;

/// A probe served with `server` on one end of a pipe of `pipe` bytes, and a
/// session with `client` on the other.
fn pair(probe: &Probe, pipe: usize, server: Config, client: Config) -> (Session, Session) {
    let (a, b) = tokio::io::duplex(pipe);
    let server = Session::spawn(a, "client", ProbeServer::new(probe.clone()), server);
    let client = Session::spawn(b, "server", NoService, client);
    (server, client)
}

#[tokio::test(start_paused = true)]
async fn one_way_calls_run_their_handlers_in_arrival_order_without_a_response() {
    let probe = Probe::default();
    let (_server, client) = pair(&probe, 64 * 1024, Config::default(), Config::default());
    let client = client.client();
    for n in 0..500 {
        client
            .send(&probe_methods::ECHO, encode(&payload(n, 8)))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(probe.echoed(), (0..500).collect::<Vec<_>>());
    let stats = client.stats();
    assert_eq!(
        (stats.messages_out, stats.messages_in),
        (500, 0),
        "no responses"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_one_way_handler_makes_the_sender_wait_and_loses_nothing() {
    let probe = Probe::default();
    let server = Config {
        one_way_queue: 2,
        heartbeat_interval: Some(Duration::from_millis(100)),
        dead_peer_timeout: Some(Duration::from_millis(300)),
        ..Config::default()
    };
    // A small queue and pipe on the sender, so what it cannot hand over is
    // not hidden in buffers.
    let client = Config {
        outgoing_queue: 4,
        ..server.clone()
    };
    let (_server, client) = pair(&probe, 64, server, client);
    let client = client.client();
    // 100 naps of 20 ms take 2 s to handle: far past the dead-peer bound,
    // during which the server mostly has its reading paused.
    let started = tokio::time::Instant::now();
    for _ in 0..100 {
        let nap = encode(&Nap { millis: 20 });
        client.send(&probe_methods::SLEEP, nap).await.unwrap();
    }
    let sending = started.elapsed();
    assert!(
        sending >= Duration::from_millis(1500),
        "the sender waited for the handler: sending took {sending:?} of the 2 s of handling"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(probe.finished(), 100, "nothing was lost");
    assert!(!client.is_closed(), "nobody was declared dead");
}

#[tokio::test(start_paused = true)]
async fn one_way_calls_queued_when_the_server_says_goaway_are_still_handled() {
    let probe = Probe::default();
    let (server, client) = pair(&probe, 64 * 1024, Config::default(), Config::default());
    let client = client.client();
    for _ in 0..20 {
        let nap = encode(&Nap { millis: 5 });
        client.send(&probe_methods::SLEEP, nap).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    server.go_away(Status::unavailable("maintenance")).await;
    assert!(server.closed().await.is_ok());
    assert_eq!(probe.finished(), 20);
}
