//! Calls on one session, through the generated `ProbeClient` and
//! `ProbeServer`, in memory and in paused time: responses, statuses,
//! deadlines, cancellation, the limits each side keeps, and what the caller
//! sees when the peer goes away.

mod support;

use std::time::Duration;

use protowright::memory;
use protowright::rpc::{Code, Config, NoService, Session};
use protowright_testing::Probe;
use protowright_testing::pb::{
    Absent as _, AbsentClient, Nap, Probe as _, ProbeClient, ProbeServer,
};
use support::{join_all, payload};

/// A client of `probe` through an in-memory pipe with `config` on both ends.
fn in_memory(probe: &Probe, config: Config) -> ProbeClient<protowright::Connection> {
    ProbeClient::new(memory::connect(ProbeServer::new(probe.clone()), config))
}

/// Two sessions over a pipe: `probe` served with `server_config` on one
/// end, a client with `client_config` on the other (named `peer` in its
/// errors). The server's session is returned to keep or close.
fn over_pipe(
    probe: &Probe,
    server_config: Config,
    peer: &str,
    client_config: Config,
) -> (Session, ProbeClient<protowright::rpc::Client>) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let server = Session::spawn(a, "client", ProbeServer::new(probe.clone()), server_config);
    let client = Session::spawn(b, peer, NoService, client_config).client();
    (server, ProbeClient::new(client))
}

#[tokio::test(start_paused = true)]
async fn a_call_returns_the_handlers_response() {
    let client = in_memory(&Probe::default(), Config::default());
    let reply = client.echo(payload(7, 5)).await;
    assert_eq!(reply, Ok(payload(7, 5)));
}

#[tokio::test(start_paused = true)]
async fn a_handlers_status_reaches_the_caller_with_its_message() {
    let client = in_memory(&Probe::default(), Config::default());
    let status = client.fail(payload(1, 0)).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(status.message(), "the probe always fails");
    assert!(status.is_from_peer(), "the callee answered: {status}");
}

#[tokio::test(start_paused = true)]
async fn a_method_the_callee_does_not_serve_is_unimplemented() {
    let connection = memory::connect(ProbeServer::new(Probe::default()), Config::default());
    let status = AbsentClient::new(connection)
        .missing(payload(1, 0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    assert!(
        status.message().contains("testing.v1.Probe has no method"),
        "{status}"
    );
}

#[tokio::test(start_paused = true)]
async fn many_concurrent_calls_each_get_their_own_response() {
    let client = in_memory(&Probe::default(), Config::default());
    let calls = (0..500u64).map(|n| {
        let client = client.clone();
        async move { (n, client.echo(payload(n, 8)).await) }
    });
    for (n, reply) in join_all(calls).await {
        assert_eq!(reply, Ok(payload(n, 8)));
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_past_its_deadline_fails_and_the_handler_is_stopped() {
    let probe = Probe::default();
    let client = in_memory(&probe, Config::default()).with_timeout(Duration::from_millis(100));
    let started = tokio::time::Instant::now();
    let status = client.sleep(Nap { millis: 10_000 }).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(started.elapsed(), Duration::from_millis(100));
    // The callee learns of the deadline too (from the request and from the
    // cancel), so the handler never runs to completion.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!((probe.dropped(), probe.finished()), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn dropping_a_call_cancels_the_handler() {
    let probe = Probe::default();
    let client = in_memory(&probe, Config::default());
    // Poll the call long enough for the request to reach the handler.
    let call = tokio::time::timeout(Duration::from_millis(10), client.block(payload(1, 0)));
    assert!(call.await.is_err(), "the block call waits for its release");
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!((probe.dropped(), probe.running()), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn calls_in_flight_are_bounded_by_the_callers_limit() {
    let probe = Probe::default();
    let config = Config {
        max_in_flight: 3,
        ..Config::default()
    };
    let client = in_memory(&probe, config);
    let calls = (0..10).map(|_| {
        let client = client.clone();
        async move { client.sleep(Nap { millis: 5 }).await }
    });
    for reply in join_all(calls).await {
        assert!(reply.is_ok(), "{reply:?}");
    }
    assert_eq!((probe.peak(), probe.finished()), (3, 10));
}

#[tokio::test(start_paused = true)]
async fn requests_beyond_the_callees_limit_are_refused_at_once() {
    let probe = Probe::default();
    let server_config = Config {
        max_concurrent_requests: 2,
        ..Config::default()
    };
    let (_server, client) = over_pipe(&probe, server_config, "server", Config::default());
    let blocked: Vec<_> = (0..2)
        .map(|n| {
            let client = client.clone();
            tokio::spawn(async move { client.block(payload(n, 0)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(probe.running(), 2);
    let status = client.echo(payload(9, 0)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status
            .message()
            .contains("2 calls are already being served"),
        "{status}"
    );
    probe.release_blocked();
    for call in blocked {
        assert!(call.await.unwrap().is_ok());
    }
}

#[tokio::test(start_paused = true)]
async fn an_oversized_request_fails_without_closing_the_session() {
    let probe = Probe::default();
    let config = Config {
        max_frame: 1024,
        ..Config::default()
    };
    let client = in_memory(&probe, config);
    let status = client.echo(payload(1, 2048)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("frame limit of 1024 bytes"),
        "{status}"
    );
    assert_eq!(client.echo(payload(2, 2)).await, Ok(payload(2, 2)));
    assert_eq!(probe.echoed(), [2], "the oversized request never left");
}

#[tokio::test(start_paused = true)]
async fn an_oversized_response_becomes_a_resource_exhausted_status() {
    let server_config = Config {
        max_frame: 1024,
        ..Config::default()
    };
    let probe = Probe::default();
    let (_server, client) = over_pipe(&probe, server_config, "server", Config::default());
    // The request fits the callee's limit but the doubled response does not.
    let status = client.double(payload(1, 600)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.is_from_peer(), "the callee said so: {status}");
    assert_eq!(client.echo(payload(2, 0)).await, Ok(payload(2, 0)));
}

#[tokio::test(start_paused = true)]
async fn both_ends_of_a_session_serve_and_call() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (left_probe, right_probe) = (Probe::default(), Probe::default());
    let left = Session::spawn(
        a,
        "right",
        ProbeServer::new(left_probe.clone()),
        Config::default(),
    );
    let right = Session::spawn(
        b,
        "left",
        ProbeServer::new(right_probe.clone()),
        Config::default(),
    );
    let (left, right) = (
        ProbeClient::new(left.client()),
        ProbeClient::new(right.client()),
    );
    let (l, r) = tokio::join!(left.echo(payload(1, 1)), right.echo(payload(2, 1)));
    assert_eq!((l, r), (Ok(payload(1, 1)), Ok(payload(2, 1))));
    // Each call was served by the other end.
    assert_eq!(
        (left_probe.echoed(), right_probe.echoed()),
        (vec![2], vec![1])
    );
}

#[tokio::test(start_paused = true)]
async fn waiting_calls_fail_unavailable_when_the_peer_goes_away() {
    let probe = Probe::default();
    let (server, client) = over_pipe(
        &probe,
        Config::default(),
        "server 10.0.0.7:4000",
        Config::default(),
    );
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.block(payload(1, 0)).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(probe.running(), 1);
    server.close();
    let status = call.await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("10.0.0.7:4000"), "{status}");
    assert!(!status.is_from_peer(), "made on this side: {status}");
    // Calls made afterwards fail at once, and the handler was stopped.
    let later = client.echo(payload(2, 0)).await.unwrap_err();
    assert_eq!(later.code(), Code::Unavailable);
    assert!(client.channel().is_closed());
    assert_eq!((probe.running(), probe.dropped()), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_closes_the_session_cleanly() {
    let (server, client) = over_pipe(
        &Probe::default(),
        Config::default(),
        "server",
        Config::default(),
    );
    drop(client);
    assert!(server.closed().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn counters_track_bytes_and_envelopes_both_ways() {
    let connection = memory::connect(ProbeServer::new(Probe::default()), Config::default());
    let client = ProbeClient::new(connection.clone());
    for n in 0..10 {
        client.echo(payload(n, 100)).await.unwrap();
    }
    let stats = connection.stats().session;
    assert_eq!((stats.messages_out, stats.messages_in), (10, 10));
    assert!(
        stats.bytes_out >= 10 * 100 && stats.bytes_in >= 10 * 100,
        "{stats:?}"
    );
    assert_eq!((stats.queue_depth, stats.inbox_depth), (0, 0));
    assert_eq!(connection.stats().udp, None, "in memory");
}
