//! Heartbeats, dead peers, idle and stalled connections, GOAWAY draining,
//! backpressure on one-way sends, and the counters.

use super::*;

fn quiet_config() -> Config {
    Config {
        heartbeat_interval: Some(Duration::from_secs(1)),
        dead_peer_timeout: Some(Duration::from_secs(3)),
        ..Config::default()
    }
}

#[tokio::test(start_paused = true)]
async fn heartbeats_measure_the_round_trip_of_a_quiet_connection() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let _server = Session::spawn(a, "client", Probe::default(), quiet_config());
    let client = Session::spawn(b, "server", NoService, quiet_config());
    assert_eq!(client.stats().rtt, None);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stats = client.stats();
    assert!(stats.rtt.is_some(), "{stats:?}");
    assert!(
        stats.messages_out >= 1 && stats.messages_in >= 1,
        "{stats:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_quiet_but_live_connection_stays_open() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let _server = Session::spawn(a, "client", Probe::default(), quiet_config());
    let client = Session::spawn(b, "server", NoService, quiet_config()).client();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!client.is_closed());
    let reply = client
        .call(
            &ECHO,
            Bytes::from_static(b"still here"),
            CallOptions::default(),
        )
        .await;
    assert_eq!(reply, Ok(Bytes::from_static(b"still here")));
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_falls_silent_is_declared_dead_within_the_bound() {
    // The raw end stays open but never answers: TCP would not notice.
    let (a, _silent) = tokio::io::duplex(1 << 16);
    let session = Session::spawn(a, "silent peer", NoService, quiet_config());
    let started = tokio::time::Instant::now();
    let error = session.closed().await.unwrap_err();
    assert!(matches!(error, ConnectionError::Timeout { .. }), "{error}");
    assert!(error.to_string().contains("silent peer"), "{error}");
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn calls_waiting_on_a_dead_peer_fail_unavailable() {
    let (a, _silent) = tokio::io::duplex(1 << 16);
    let client = Session::spawn(a, "silent peer", NoService, quiet_config()).client();
    let status = client
        .call(&ECHO, Bytes::new(), CallOptions { timeout: None })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("no data from silent peer"),
        "{status}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_closes_cleanly_after_the_idle_timeout() {
    let config = Config {
        idle_timeout: Some(Duration::from_secs(30)),
        ..quiet_config()
    };
    let (a, b) = tokio::io::duplex(1 << 16);
    let server = Session::spawn(a, "client", Probe::default(), config.clone());
    let client = Session::spawn(b, "server", NoService, config);
    let client_handle = client.client();
    assert!(
        client_handle
            .call(&ECHO, Bytes::new(), CallOptions::default())
            .await
            .is_ok()
    );
    let started = tokio::time::Instant::now();
    assert!(server.closed().await.is_ok(), "an idle close is clean");
    assert!(
        started.elapsed() >= Duration::from_secs(29),
        "{:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() <= Duration::from_secs(31),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_in_progress_keeps_an_idle_connection_open() {
    let config = Config {
        idle_timeout: Some(Duration::from_secs(1)),
        ..quiet_config()
    };
    let client = memory::connect(Probe::default(), config);
    let reply = client
        .call(&SLEEP, millis(5_000), CallOptions::default())
        .await;
    assert_eq!(reply, Ok(Bytes::from_static(b"slept")));
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_stops_reading_stalls_the_writer_and_ends_the_connection() {
    let config = Config {
        write_stall_timeout: Some(Duration::from_secs(2)),
        heartbeat_interval: None,
        dead_peer_timeout: None,
        ..Config::default()
    };
    // A tiny pipe whose far end is never read.
    let (a, _unread) = tokio::io::duplex(64);
    let session = Session::spawn(a, "stuck reader", NoService, config);
    let client = session.client();
    tokio::spawn(async move {
        let _ = client.send(&ECHO, Bytes::from(vec![0u8; 4096])).await;
    });
    let error = session.closed().await.unwrap_err();
    assert!(
        matches!(error, ConnectionError::WriteStalled { .. }),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn try_send_fails_at_once_when_the_outgoing_queue_is_full() {
    let config = Config {
        outgoing_queue: 4,
        write_stall_timeout: None,
        heartbeat_interval: None,
        dead_peer_timeout: None,
        ..Config::default()
    };
    let (a, _unread) = tokio::io::duplex(64);
    let client = Session::spawn(a, "stuck reader", NoService, config).client();
    let mut refused = None;
    for n in 0..100 {
        if let Err(status) = client.try_send(&ECHO, Bytes::from(vec![1u8; 512])) {
            refused = Some((n, status));
            break;
        }
        tokio::task::yield_now().await;
    }
    let (n, status) = refused.expect("the queue fills up");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(n < 10, "refused after {n} sends: memory stays bounded");
    assert!(client.stats().queue_depth <= 4);
}

#[tokio::test(start_paused = true)]
async fn go_away_refuses_new_calls_lets_calls_in_flight_finish_then_closes() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let server = Session::spawn(a, "client", Probe::default(), Config::default());
    let client = Session::spawn(b, "server", NoService, Config::default()).client();
    let slow = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .call(&SLEEP, millis(500), CallOptions::default())
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    server
        .go_away(Status::unavailable("shutting down for maintenance"))
        .await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(!client.is_accepting_calls());
    let refused = client
        .call(&ECHO, Bytes::new(), CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);
    assert!(
        refused.message().contains("shutting down for maintenance"),
        "{refused}"
    );
    assert_eq!(slow.await.unwrap(), Ok(Bytes::from_static(b"slept")));
    assert!(server.closed().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn counters_track_bytes_and_messages_both_ways() {
    let client = memory::connect(Probe::default(), Config::default());
    for _ in 0..10 {
        client
            .call(&ECHO, Bytes::from_static(&[7; 100]), CallOptions::default())
            .await
            .unwrap();
    }
    let stats = client.stats();
    assert_eq!(stats.messages_out, 10);
    assert_eq!(stats.messages_in, 10);
    assert!(
        stats.bytes_out >= 10 * 100 && stats.bytes_in >= 10 * 100,
        "{stats:?}"
    );
    assert_eq!(stats.queue_depth, 0);
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_only_receives_messages_is_not_idle() {
    let config = Config {
        idle_timeout: Some(Duration::from_secs(1)),
        ..quiet_config()
    };
    let (a, b) = tokio::io::duplex(1 << 16);
    let server = Session::spawn(a, "client", Probe::default(), config.clone()).client();
    let client = Session::spawn(b, "server", NoService, config).client();
    // One-way messages for 5 s: the server only ever receives.
    for _ in 0..50 {
        client
            .send(&ECHO, Bytes::from_static(b"tick"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!server.is_closed(), "receiving calls is traffic");
}
