//! The session's byte budgets: what the peer's queued requests
//! (`request_bytes`) and one-way messages (`one_way_bytes`) may hold on
//! this side. Counting messages alone let a few large ones hold
//! `count × max_frame`; past a budget, reading pauses (the sender waits)
//! and nothing is refused or lost. Over an in-memory pipe in paused time.

mod support;

use std::time::Duration;

use protowright::rpc::{Config, NoService, Session, encode};
use protowright_testing::Probe;
use protowright_testing::pb::{Probe as _, ProbeClient, ProbeServer, probe_methods};
use support::payload;

/// Bytes of each request's data.
const BODY: usize = 16 * 1024;
/// The budget under test: room for three such requests with their
/// bookkeeping, not four.
const BUDGET: usize = 64 * 1024;

/// A probe served with `server` on one end of a pipe, and a session with
/// default settings on the other.
fn pair(probe: &Probe, server: Config) -> (Session, Session) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let server = Session::spawn(a, "client", ProbeServer::new(probe.clone()), server);
    let client = Session::spawn(b, "server", NoService, Config::default());
    (server, client)
}

/// Releases blocked handlers until `done` of them finished.
async fn release_until(probe: &Probe, done: usize) {
    while probe.finished() < done {
        probe.release_blocked();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn requests_past_the_byte_budget_wait_unread_and_all_are_answered() {
    let probe = Probe::default();
    let server = Config {
        request_bytes: BUDGET,
        ..Config::default()
    };
    let (server, client) = pair(&probe, server);
    let client = ProbeClient::new(client.client());
    let calls: Vec<_> = (0..20)
        .map(|n| {
            let client = client.clone();
            tokio::spawn(async move { client.block(payload(n, BODY)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // 1,024 handler slots, but the bytes of three requests fill the budget.
    assert_eq!(probe.running(), 3, "handlers running on 64 KiB");
    let read = server.stats().messages_in;
    println!(
        "requests: {} handlers running, {read} of 20 read",
        probe.running()
    );
    assert!(
        read <= 4,
        "reading paused at the budget: {read} of 20 requests were read"
    );
    release_until(&probe, 20).await;
    for (n, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.unwrap(), Ok(payload(n as u64, BODY)));
    }
    assert_eq!(probe.peak(), 3, "never more than the budget held at once");
}

#[tokio::test(start_paused = true)]
async fn one_way_messages_past_the_byte_budget_wait_unread_and_none_is_lost() {
    let probe = Probe::default();
    // Room for 1,024 queued messages, but only 64 KiB of them.
    let server = Config {
        one_way_bytes: BUDGET,
        ..Config::default()
    };
    let (server, client) = pair(&probe, server);
    let client = client.client();
    for n in 0..40 {
        client
            .send(&probe_methods::BLOCK, encode(&payload(n, BODY)))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let read = server.stats().messages_in;
    println!("one-way: {read} of 40 read");
    // One being handled, three queued, and the batch waiting for room: a
    // read brings at most a 64 KiB buffer's worth (four).
    assert!(
        read <= 8,
        "reading paused at the budget: {read} of 40 one-way messages were read"
    );
    assert_eq!(probe.running(), 1, "one at a time");
    release_until(&probe, 40).await;
    assert_eq!(probe.dropped(), 0, "nothing was lost");
    assert_eq!(server.stats().messages_in, 40);
}
