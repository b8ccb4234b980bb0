//! The one API behaves the same on both transports: every scenario here
//! runs, unchanged, over TCP and over reliable UDP on real loopback sockets
//! (`tcp::...` and `udp::...` tests). Typed messages both ways with server
//! push, calls both ways through the generated clients, the same
//! `SendError`s at the same limits, the same end of the message stream, and
//! the same backpressure. (Retries, reconnects, the first connection and
//! shutdown run on both transports too: `retries.rs`, `reconnect.rs`,
//! `connect.rs`, `shutdown.rs`.)

#![allow(
    clippy::unwrap_used,
    reason = "an unwrap in test code is an assertion; clippy.toml allows it in #[test] functions, not in the scenarios and helpers they call"
)]

#[macro_use]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use protowright::net::Tokio;
use protowright::{
    Client, ClientConfig, Connection, RecvError, SendError, Server, ServerConfig, ServerHandle,
    Transport,
};
use protowright_testing::pb::{Burst, Probe as _, ProbeClient, ProbeServer, Small, Traffic};
use protowright_testing::{Probe, Stream};
use support::{LOOPBACK, payload};
use tokio::sync::mpsc;

/// A running server whose connections each serve a probe that pushes to
/// them; the connections it accepts come out of `accepted`.
struct Served {
    handle: ServerHandle,
    addr: SocketAddr,
    probe: Probe,
    accepted: mpsc::UnboundedReceiver<Connection>,
}

impl Served {
    async fn start(transport: Transport, config: ServerConfig) -> Self {
        let mut server = Server::bind(Tokio, transport, LOOPBACK, config)
            .await
            .unwrap();
        let (handle, addr) = (server.handle(), server.local_addr());
        let probe = Probe::default();
        let (queue, accepted) = mpsc::unbounded_channel();
        let serving = probe.clone();
        tokio::spawn(async move {
            while let Some(incoming) = server.accept().await {
                let connection = incoming
                    .serve_with(|connection| ProbeServer::new(serving.pushing_to(connection)));
                let _ = queue.send(connection);
            }
        });
        Self {
            handle,
            addr,
            probe,
            accepted,
        }
    }

    async fn next_connection(&mut self) -> Connection {
        let wait = tokio::time::timeout(Duration::from_secs(5), self.accepted.recv());
        wait.await
            .expect("a connection in time")
            .expect("the server runs")
    }
}

/// Receives one message and says which stream it is and its number.
async fn next(connection: &Connection) -> (Stream, u64) {
    let wait = tokio::time::timeout(Duration::from_secs(10), connection.recv::<Traffic>());
    let message = wait
        .await
        .expect("a message in time")
        .unwrap()
        .expect("a message");
    let (stream, seq, intact) = Stream::read(&message).expect("a numbered message");
    assert!(intact, "message {seq} of {stream:?} arrived corrupted");
    (stream, seq)
}

async fn messages_and_calls_travel_both_ways(transport: Transport) {
    let mut served = Served::start(transport, ServerConfig::default()).await;
    let mine = Probe::default();
    let client = Client::connect_serving(
        Tokio,
        transport,
        served.addr,
        ProbeServer::new(mine.clone()),
        ClientConfig::default(),
    )
    .await
    .unwrap();
    let theirs = served.next_connection().await;
    assert_eq!(theirs.transport(), Some(transport));
    assert_eq!(
        client.connection().await.unwrap().transport(),
        Some(transport)
    );

    // Messages from the client, on two ordered channels.
    for seq in 0..20 {
        client
            .send(Stream::OrderedA.message(seq, 100))
            .await
            .unwrap();
        client
            .send(Stream::OrderedB.message(seq, 100))
            .await
            .unwrap();
    }
    let mut received: Vec<_> = Vec::new();
    for _ in 0..40 {
        received.push(next(&theirs).await);
    }
    for stream in [Stream::OrderedA, Stream::OrderedB] {
        let seqs: Vec<_> = received
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(seqs, (0..20).collect::<Vec<_>>(), "{stream:?} in order");
    }

    // Calls both ways through the generated clients.
    let to_server = ProbeClient::new(client.clone());
    assert_eq!(to_server.echo(payload(1, 10)).await, Ok(payload(1, 10)));
    let to_client = ProbeClient::new(theirs.clone());
    assert_eq!(to_client.echo(payload(2, 10)).await, Ok(payload(2, 10)));
    assert_eq!((served.probe.echoed(), mine.echoed()), (vec![1], vec![2]));

    // Server push, from the handler of a service that holds its connection.
    let pushed = to_server
        .push(Burst {
            count: 20,
            size: 1000,
        })
        .await
        .unwrap();
    assert_eq!(pushed.id, 20);
    for seq in 0..20 {
        let message: Traffic = client.recv().await.unwrap().expect("a pushed message");
        assert_eq!(Stream::read(&message), Some((Stream::OrderedA, seq, true)));
    }
}

async fn messages_over_a_limit_are_refused_with_the_limit_they_broke(transport: Transport) {
    let limit = 64 * 1024;
    let mut server = ServerConfig::default();
    server.udp.max_message_size = limit;
    let mut config = ClientConfig::default();
    config.session.max_frame = limit as usize;
    config.udp.max_message_size = limit;
    let mut served = Served::start(transport, server).await;
    let client = Client::connect(Tokio, transport, served.addr, config)
        .await
        .unwrap();
    let theirs = served.next_connection().await;

    // The schema's `max_size` of `Small` is 64 bytes.
    let small = Small {
        data: vec![0; 100].into(),
    };
    let refused = client.send(small).await.unwrap_err();
    assert!(
        matches!(
            refused,
            SendError::TooLarge {
                max: 64,
                message: "testing.v1.Small",
                ..
            }
        ),
        "{refused}"
    );
    // The connection's limit.
    let refused = client
        .send(Stream::OrderedA.message(0, 100 * 1024))
        .await
        .unwrap_err();
    let SendError::TooLarge { max, message, .. } = refused else {
        panic!("expected TooLarge, got {refused}");
    };
    assert_eq!((max, message), (limit as usize, "testing.v1.OrderedA"));
    // Nothing was sent; what fits still goes.
    client
        .send(Stream::OrderedA.message(1, 1000))
        .await
        .unwrap();
    assert_eq!(next(&theirs).await, (Stream::OrderedA, 1));
}

/// Limits small enough for a receiver that does not read to stop the
/// sender within a few hundred messages, on either transport.
fn small_queues() -> (ServerConfig, ClientConfig) {
    let mut server = ServerConfig::default();
    server.session.message_queue = 4;
    server.udp.max_message_size = 64 * 1024;
    server.udp.receive_window = 256 * 1024;
    let mut client = ClientConfig::default();
    client.session.outgoing_queue = 4;
    client.udp.send_buffer = 128 * 1024;
    (server, client)
}

async fn a_receiver_that_does_not_read_stops_the_sender(transport: Transport) {
    let (server, config) = small_queues();
    let mut served = Served::start(transport, server).await;
    let client = Client::connect(Tokio, transport, served.addr, config)
        .await
        .unwrap();
    let theirs = served.next_connection().await;
    // A sender with far more to say than every buffer on the way holds.
    const MESSAGES: u64 = 4000;
    let sent = Arc::new(AtomicU64::new(0));
    let sender = tokio::spawn({
        let (client, sent) = (client.clone(), Arc::clone(&sent));
        async move {
            for seq in 0..MESSAGES {
                client
                    .send(Stream::OrderedA.message(seq, 16 * 1024))
                    .await
                    .unwrap();
                sent.store(seq + 1, Ordering::SeqCst);
            }
        }
    });
    // It stops, and stays stopped, while the receiver reads nothing.
    let started = std::time::Instant::now();
    let mut before = u64::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = sent.load(Ordering::SeqCst);
        if now == before {
            break;
        }
        before = now;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the sender never stopped"
        );
    }
    assert!(
        before < MESSAGES,
        "the sender was stopped before the end: {before} sent"
    );
    assert!(!sender.is_finished());
    let full = client
        .try_send(Stream::OrderedA.message(MESSAGES, 16 * 1024))
        .unwrap_err();
    assert!(matches!(full, SendError::Full { .. }), "{full}");
    // Once the receiver reads, the sender goes on, and nothing is lost.
    for seq in 0..MESSAGES {
        assert_eq!(next(&theirs).await, (Stream::OrderedA, seq));
    }
    sender.await.unwrap();
}

/// A server with default settings and a client connected to it: the
/// server, the client, the server's connection and the client's.
async fn connected(transport: Transport) -> (Served, Client, Connection, Connection) {
    let mut served = Served::start(transport, ServerConfig::default()).await;
    let client = Client::connect(Tokio, transport, served.addr, ClientConfig::default())
        .await
        .unwrap();
    let theirs = served.next_connection().await;
    let mine = client.connection().await.unwrap();
    (served, client, theirs, mine)
}

async fn recv_ends_with_none_after_a_clean_close(transport: Transport) {
    let (served, client, theirs, mine) = connected(transport).await;
    for seq in 0..5 {
        mine.send(Stream::OrderedB.message(seq, 10)).await.unwrap();
    }
    client.close();
    for seq in 0..5 {
        assert_eq!(next(&theirs).await, (Stream::OrderedB, seq));
    }
    assert_eq!(theirs.recv::<Traffic>().await, Ok(None));
    assert_eq!(mine.recv::<Traffic>().await, Ok(None));
    assert!(theirs.closed().await.is_ok());
    // Counted as a clean end by the server.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(served.handle.stats().failed, 0);
}

async fn the_message_stream_reads_in_order_then_ends_with_none(transport: Transport) {
    let (_served, client, theirs, mine) = connected(transport).await;
    const MESSAGES: u64 = 3_000;
    let sender = tokio::spawn(async move {
        for seq in 0..MESSAGES {
            mine.send(Stream::OrderedA.message(seq, 40)).await.unwrap();
        }
        client.close();
    });
    let mut messages = theirs.messages::<Traffic>();
    for expected in 0..MESSAGES {
        let message = messages.next().await.unwrap().expect("a message");
        let (stream, seq, intact) = Stream::read(&message).expect("a numbered message");
        assert!(intact, "message {seq} arrived corrupted");
        assert_eq!((stream, seq), (Stream::OrderedA, expected));
    }
    assert_eq!(messages.next().await, Ok(None));
    sender.await.unwrap();
}

/// Connects a client on a runtime of its own that sends one message and
/// then freezes (its thread blocks) until `thaw` is dropped: a peer that
/// fell silent without closing anything.
fn freezing_client(
    transport: Transport,
    server: SocketAddr,
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (thaw, frozen) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let config = ClientConfig::default();
            let client = Client::connect(Tokio, transport, server, config)
                .await
                .unwrap();
            client.send(Stream::OrderedA.message(0, 10)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            // Blocks the runtime's only thread: nothing is read or sent.
            let _ = frozen.recv_timeout(Duration::from_secs(10));
        });
    });
    (thaw, thread)
}

async fn recv_reports_a_failed_connection_as_closed(transport: Transport) {
    let mut server = ServerConfig::default();
    server.session.heartbeat_interval = Some(Duration::from_millis(100));
    server.session.dead_peer_timeout = Some(Duration::from_millis(500));
    server.udp.keepalive_interval = Duration::from_millis(100);
    server.udp.idle_timeout = Duration::from_millis(500);
    let mut served = Served::start(transport, server).await;
    let (thaw, thread) = freezing_client(transport, served.addr);
    let theirs = served.next_connection().await;
    assert_eq!(next(&theirs).await, (Stream::OrderedA, 0));
    let started = std::time::Instant::now();
    let failed = theirs.recv::<Traffic>().await.unwrap_err();
    assert!(matches!(failed, RecvError::Closed { .. }), "{failed}");
    let silent = started.elapsed();
    assert!(silent < Duration::from_secs(3), "noticed after {silent:?}");
    assert!(theirs.closed().await.is_err());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(served.handle.stats().failed, 1, "{failed}");
    drop(thaw);
    thread.join().unwrap();
}

on_both_transports!(
    messages_and_calls_travel_both_ways,
    messages_over_a_limit_are_refused_with_the_limit_they_broke,
    a_receiver_that_does_not_read_stops_the_sender,
    recv_ends_with_none_after_a_clean_close,
    recv_reports_a_failed_connection_as_closed,
    the_message_stream_reads_in_order_then_ends_with_none,
);
