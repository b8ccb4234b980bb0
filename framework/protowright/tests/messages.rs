//! Protocol messages on one connection, in memory and in paused time: the
//! generated `Traffic` both ways (server push included) beside calls, the
//! end of the message stream, size limits, and backpressure measured in
//! virtual time. The same operations over TCP and reliable UDP are in
//! `one_api.rs`.

#![allow(
    clippy::unwrap_used,
    reason = "an unwrap in test code is an assertion; clippy.toml allows it in #[test] functions, not in the scenarios and helpers they call"
)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use protowright::rpc::{Config, NoService};
use protowright::{Connection, SendError, memory};
use protowright_testing::pb::{Burst, Probe as _, ProbeClient, ProbeServer, Small, Traffic};
use protowright_testing::{Probe, Stream};
use support::payload;

/// An in-memory connection to a probe that can push to it; returns the
/// client's end and the server's.
fn connect(config: Config) -> (Connection, Connection) {
    let probe = Probe::default();
    let mut server = None;
    let client = memory::connect_with(config, |connection| {
        server = Some(connection.clone());
        ProbeServer::new(probe.pushing_to(connection))
    });
    (client, server.expect("the service was built"))
}

/// Receives one message and says which stream it is and its number.
async fn next(connection: &Connection) -> (Stream, u64) {
    let message: Traffic = connection.recv().await.unwrap().expect("a message");
    let (stream, seq, intact) = Stream::read(&message).expect("a numbered message");
    assert!(intact, "message {seq} of {stream:?} arrived corrupted");
    (stream, seq)
}

#[tokio::test(start_paused = true)]
async fn messages_of_every_stream_arrive_in_the_order_sent_beside_calls() {
    let (client, server) = connect(Config::default());
    let probe = ProbeClient::new(client.clone());
    let mut sent = Vec::new();
    for seq in 0..100 {
        let stream = Stream::ALL[seq as usize % Stream::ALL.len()];
        client.send(stream.message(seq, 32)).await.unwrap();
        sent.push((stream, seq));
        if seq % 10 == 0 {
            assert_eq!(probe.echo(payload(seq, 4)).await, Ok(payload(seq, 4)));
        }
    }
    // In memory (as on TCP) one stream carries everything: every delivery
    // arrives, in the order sent.
    let mut received = Vec::new();
    for _ in 0..100 {
        received.push(next(&server).await);
    }
    assert_eq!(received, sent);
}

#[tokio::test(start_paused = true)]
async fn a_service_holding_its_connection_pushes_messages_to_the_caller() {
    let (client, _server) = connect(Config::default());
    let pushed = ProbeClient::new(client.clone())
        .push(Burst {
            count: 50,
            size: 10,
        })
        .await
        .unwrap();
    assert_eq!(pushed.id, 50);
    for seq in 0..50 {
        assert_eq!(next(&client).await, (Stream::OrderedA, seq));
    }
}

#[tokio::test(start_paused = true)]
async fn recv_returns_every_message_then_none_after_a_clean_close() {
    let (client, server) = connect(Config::default());
    for seq in 0..10 {
        client.send(Stream::OrderedB.message(seq, 8)).await.unwrap();
    }
    client.close();
    for seq in 0..10 {
        assert_eq!(next(&server).await, (Stream::OrderedB, seq));
    }
    assert_eq!(server.recv::<Traffic>().await, Ok(None));
    assert_eq!(
        client.recv::<Traffic>().await,
        Ok(None),
        "its own close is clean too"
    );
    assert!(server.closed().await.is_ok());
    let refused = client
        .send(Stream::OrderedB.message(10, 8))
        .await
        .unwrap_err();
    assert!(matches!(refused, SendError::Closed { .. }), "{refused}");
}

#[tokio::test(start_paused = true)]
async fn a_message_over_its_schema_max_size_is_not_sent() {
    let (client, server) = connect(Config::default());
    let small = Small {
        data: Bytes::from(vec![1; 100]),
    };
    let refused = client.send(small.clone()).await.unwrap_err();
    let SendError::TooLarge {
        message, max, len, ..
    } = refused
    else {
        panic!("expected TooLarge, got {refused}");
    };
    assert_eq!((message, max), ("testing.v1.Small", 64));
    assert!(len > 100, "{len}");
    assert!(matches!(
        client.try_send(small),
        Err(SendError::TooLarge { .. })
    ));
    client
        .send(Small {
            data: Bytes::from_static(b"fits"),
        })
        .await
        .unwrap();
    let received: Traffic = server.recv().await.unwrap().unwrap();
    assert_eq!(
        received,
        Traffic::from(Small {
            data: Bytes::from_static(b"fits")
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_message_over_the_connections_frame_limit_is_not_sent() {
    let config = Config {
        max_frame: 1024,
        ..Config::default()
    };
    let (client, server) = connect(config);
    let refused = client
        .send(Stream::OrderedA.message(0, 2000))
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            SendError::TooLarge {
                max: 1024,
                message: "testing.v1.OrderedA",
                ..
            }
        ),
        "{refused}"
    );
    client.send(Stream::OrderedA.message(1, 500)).await.unwrap();
    assert_eq!(
        next(&server).await,
        (Stream::OrderedA, 1),
        "the refused one never left"
    );
}

/// A config whose queues are small, so backpressure shows within a few
/// messages: 4 messages wait for the application, 4 envelopes for the
/// writer.
fn small_queues() -> Config {
    Config {
        message_queue: 4,
        outgoing_queue: 4,
        ..Config::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_receiver_that_does_not_read_makes_send_wait_until_it_does() {
    let (client, server) = connect(small_queues());
    let sent = Arc::new(AtomicU64::new(0));
    let sender = tokio::spawn({
        let (client, sent) = (client.clone(), Arc::clone(&sent));
        async move {
            for seq in 0..200 {
                client
                    .send(Stream::OrderedA.message(seq, 1024))
                    .await
                    .unwrap();
                sent.fetch_add(1, Ordering::SeqCst);
            }
            tokio::time::Instant::now()
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before_reading = sent.load(Ordering::SeqCst);
    // What left before the sender had to wait: the receiver's 4, the
    // pipe's 64 KiB, the sender's 4, and a batch in each direction's hands.
    assert!(
        (4..120).contains(&before_reading),
        "{before_reading} of 200 were sent to a receiver that reads nothing"
    );
    assert_eq!(
        server.stats().session.inbox_depth,
        4,
        "the receiver holds its bound"
    );
    let reading = tokio::time::Instant::now();
    for seq in 0..200 {
        assert_eq!(next(&server).await, (Stream::OrderedA, seq));
    }
    let finished = sender.await.unwrap();
    assert!(
        finished >= reading,
        "the sender finished only once the receiver read"
    );
}

#[tokio::test(start_paused = true)]
async fn the_message_stream_takes_batches_within_the_bound_and_loses_nothing() {
    let (client, server) = connect(small_queues());
    let probe = ProbeClient::new(client.clone());
    let sender = tokio::spawn({
        let client = client.clone();
        async move {
            for seq in 0..200 {
                client
                    .send(Stream::OrderedA.message(seq, 100))
                    .await
                    .unwrap();
                if seq % 50 == 0 {
                    // Calls travel between the messages, answered in turn.
                    assert_eq!(probe.echo(payload(seq, 4)).await, Ok(payload(seq, 4)));
                }
            }
            client.close();
        }
    });
    let mut messages = server.messages::<Traffic>();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        server.stats().session.inbox_depth,
        4,
        "before the stream takes any, the inbox holds its bound"
    );
    for expected in 0..200 {
        let message = messages.next().await.unwrap().expect("a message");
        let (stream, seq, intact) = Stream::read(&message).unwrap();
        assert!(intact);
        assert_eq!((stream, seq), (Stream::OrderedA, expected));
    }
    assert_eq!(messages.next().await, Ok(None));
    sender.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_reads_into_a_small_buffer_that_grows_when_the_peer_sends_fast() {
    let (client, server) = connect(Config::default());
    let probe = ProbeClient::new(client.clone());
    assert_eq!(probe.echo(payload(1, 8)).await, Ok(payload(1, 8)));
    let idle = server.stats().session.read_reserved;
    assert!(
        (1..=1024).contains(&idle),
        "an idle connection holds a small read buffer, not {idle} bytes"
    );
    let sender = tokio::spawn({
        let client = client.clone();
        async move {
            for seq in 0..2_000 {
                client
                    .send(Stream::OrderedA.message(seq, 1000))
                    .await
                    .unwrap();
            }
        }
    });
    let mut messages = server.messages::<Traffic>();
    for expected in 0..2_000 {
        let message = messages.next().await.unwrap().expect("a message");
        assert_eq!(Stream::read(&message).unwrap().1, expected);
    }
    sender.await.unwrap();
    let busy = server.stats().session.read_reserved;
    // Its capacity counts from where reading stands, so it reads below
    // the full `read_buffer` between reads.
    assert!(
        busy >= 16 * 1024,
        "a peer sending 2 MB made the read buffer grow, yet it holds {busy} bytes"
    );
}

#[tokio::test(start_paused = true)]
async fn try_send_says_full_instead_of_waiting() {
    let (client, server) = connect(small_queues());
    let mut accepted = 0;
    let full = loop {
        match client.try_send(Stream::OrderedA.message(accepted, 1024)) {
            Ok(()) => accepted += 1,
            Err(error) => break error,
        }
        assert!(accepted < 1000, "try_send never said the queue was full");
        tokio::task::yield_now().await;
    };
    assert!(matches!(full, SendError::Full { .. }), "{full}");
    assert!(client.stats().session.queue_depth <= 4);
    // Nothing that was accepted is lost.
    for seq in 0..accepted {
        assert_eq!(next(&server).await, (Stream::OrderedA, seq));
    }
}

#[tokio::test(start_paused = true)]
async fn a_connection_without_a_service_answers_calls_unimplemented() {
    let client = memory::connect(NoService, Config::default());
    let status = ProbeClient::new(client)
        .echo(payload(1, 0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), protowright::rpc::Code::Unimplemented);
}
