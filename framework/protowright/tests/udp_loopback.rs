//! The reliable-UDP transport on real loopback sockets, through the one
//! API: each schema delivery on its lane, large messages, calls beside
//! messages, refusals, a server that vanished and came back, close, and
//! many clients on one server socket.

#![allow(
    clippy::unwrap_used,
    reason = "an unwrap in test code is an assertion; clippy.toml allows it in #[test] functions, not in the scenarios and helpers they call"
)]

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prost::Message;
use protowright::net::Tokio;
use protowright::udp::{CloseReason, Lane};
use protowright::{
    Client, ClientConfig, Connection, ConnectionError, Error, Server, ServerConfig, Transport,
};
use protowright_testing::pb::{Probe as _, ProbeClient, ProbeServer, Traffic};
use protowright_testing::{Probe, Stream};
use support::{LOOPBACK, join_all, payload};
use tokio::sync::mpsc;

/// A UDP server of a probe at `addr`; the connections it accepts come out
/// of the receiver.
async fn start_at(
    addr: SocketAddr,
    config: ServerConfig,
) -> (Server, mpsc::UnboundedReceiver<Connection>) {
    let server = Server::bind(Tokio, Transport::Udp, addr, config)
        .await
        .unwrap();
    let (_queue, accepted) = mpsc::unbounded_channel();
    (server, accepted)
}

/// Serves `server` with a probe, handing out each connection.
fn serve(mut server: Server) -> mpsc::UnboundedReceiver<Connection> {
    let (queue, accepted) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            let _ = queue.send(incoming.serve(ProbeServer::new(Probe::default())));
        }
    });
    accepted
}

async fn start(config: ServerConfig) -> (SocketAddr, mpsc::UnboundedReceiver<Connection>) {
    let (server, _) = start_at(LOOPBACK, config).await;
    let addr = server.local_addr();
    (addr, serve(server))
}

/// A server configuration with a fixed static key, as loaded from a key
/// file: a restarted server keeps its identity and its reset secret.
fn keyed_config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.udp.security.static_key = Some(protowright::udp::StaticKey::from_secret([7; 32]));
    config
}

async fn connect(addr: SocketAddr) -> Client {
    Client::connect(Tokio, Transport::Udp, addr, ClientConfig::default())
        .await
        .unwrap()
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("{what} in time"))
}

#[tokio::test]
async fn every_schema_delivery_travels_on_its_lane_and_channel() {
    let (addr, mut accepted) = start(ServerConfig::default()).await;
    let client = connect(addr).await;
    let theirs = within("a connection", accepted.recv()).await.unwrap();
    for stream in Stream::ALL {
        client.send(stream.message(1, 100)).await.unwrap();
    }
    // The raw lanes under the connection say where each arrived.
    let raw = theirs.udp().expect("a UDP connection");
    let mut seen = BTreeSet::new();
    for _ in Stream::ALL {
        let message = within("a message", raw.recv()).await.unwrap();
        let traffic = Traffic::decode(message.data).unwrap();
        let (stream, seq, intact) = Stream::read(&traffic).unwrap();
        assert!(intact && seq == 1);
        seen.insert((stream, message.lane, message.channel));
    }
    let expected = BTreeSet::from([
        (Stream::OrderedA, Lane::ReliableOrdered, 0),
        (Stream::OrderedB, Lane::ReliableOrdered, 1),
        (Stream::Unordered, Lane::ReliableUnordered, 0),
        (Stream::Unreliable, Lane::Unreliable, 0),
        (Stream::Sequenced, Lane::UnreliableSequenced, 2),
    ]);
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn ten_megabytes_of_ordered_messages_arrive_intact_and_in_order() {
    let (addr, mut accepted) = start(ServerConfig::default()).await;
    let client = connect(addr).await;
    let theirs = within("a connection", accepted.recv()).await.unwrap();
    let sender = tokio::spawn({
        let client = client.clone();
        async move {
            for seq in 0..40 {
                client
                    .send(Stream::OrderedA.message(seq, 256 * 1024))
                    .await
                    .unwrap();
            }
        }
    });
    for seq in 0..40 {
        let message: Traffic = within("a message", theirs.recv()).await.unwrap().unwrap();
        assert_eq!(Stream::read(&message), Some((Stream::OrderedA, seq, true)));
    }
    sender.await.unwrap();
    let stats = client.stats().connection.unwrap().udp.unwrap();
    assert!(stats.bytes_sent > 10 << 20, "{stats:?}");
    // Path MTU discovery found that loopback carries the default ceiling
    // of 16 KiB.
    assert!(
        (16_384 - 16..=16_384).contains(&stats.datagram_size),
        "{stats:?}"
    );
}

#[tokio::test]
async fn a_receiver_that_does_not_read_holds_at_most_its_receive_window() {
    let mut config = ServerConfig::default();
    config.udp.max_message_size = 64 * 1024;
    config.udp.receive_window = 1 << 20;
    let (addr, mut accepted) = start(config).await;
    let mut config = ClientConfig::default();
    config.udp.send_buffer = 1 << 20;
    let client = Client::connect(Tokio, Transport::Udp, addr, config)
        .await
        .unwrap();
    let theirs = within("a connection", accepted.recv()).await.unwrap();
    // 1,000 messages of 16 KiB: 16 MiB for a receiver that reads none.
    const MESSAGES: u64 = 1000;
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
    let started = std::time::Instant::now();
    let mut before = u64::MAX;
    while sent.load(Ordering::SeqCst) != before {
        before = sent.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the sender never stopped"
        );
    }
    // The receiver holds what its flow-control window let in, the sender
    // what its send buffer holds; the rest was never sent.
    let held = theirs.stats().udp.unwrap();
    assert!(held.unread_messages * 16 * 1024 <= 1 << 20, "{held:?}");
    let queued = client.stats().connection.unwrap().udp.unwrap().queues;
    assert!(queued.bytes <= (1 << 20) + 16 * 1024, "{queued:?}");
    assert!(before < MESSAGES / 4, "{before} sent");
    for seq in 0..MESSAGES {
        let message: Traffic = within("a message", theirs.recv()).await.unwrap().unwrap();
        assert_eq!(Stream::read(&message), Some((Stream::OrderedA, seq, true)));
    }
    sender.await.unwrap();
}

#[tokio::test]
async fn calls_run_on_the_session_lane_beside_application_messages() {
    let (addr, mut accepted) = start(ServerConfig::default()).await;
    let client = connect(addr).await;
    let theirs = within("a connection", accepted.recv()).await.unwrap();
    let probe = ProbeClient::new(client.clone());
    let calls: Vec<_> = (0..200)
        .map(|n| {
            let probe = probe.clone();
            async move { (n, probe.echo(payload(n, 64)).await) }
        })
        .collect();
    let calls = tokio::spawn(join_all(calls));
    for seq in 0..200 {
        client
            .send(Stream::OrderedB.message(seq, 64))
            .await
            .unwrap();
    }
    for (n, reply) in calls.await.unwrap() {
        assert_eq!(reply, Ok(payload(n, 64)));
    }
    for seq in 0..200 {
        let message: Traffic = within("a message", theirs.recv()).await.unwrap().unwrap();
        assert_eq!(Stream::read(&message), Some((Stream::OrderedB, seq, true)));
    }
}

#[tokio::test]
async fn a_schema_mismatch_is_refused_with_a_clear_error() {
    let mut config = ServerConfig::default();
    config.udp.schema_hash = 1;
    let (addr, _accepted) = start(config).await;
    let mut config = ClientConfig::default();
    config.udp.schema_hash = 2;
    let error = Client::connect(Tokio, Transport::Udp, addr, config)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error}");
    assert!(error.to_string().contains("schema hash"), "{error}");
}

/// Runs a UDP server of a probe on a runtime of its own, on its own
/// thread, until `stop` is dropped; then drops that runtime, so the server
/// vanishes without a word: no close, no GOAWAY.
fn server_on_its_own_runtime(
    addr: SocketAddr,
) -> (
    SocketAddr,
    std::sync::mpsc::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let (bound, address) = std::sync::mpsc::channel();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(Server::bind(Tokio, Transport::Udp, addr, keyed_config()));
        let server = server.unwrap();
        bound.send(server.local_addr()).unwrap();
        runtime.spawn(server.serve(ProbeServer::new(Probe::default())));
        let _ = stopped.recv();
        drop(runtime);
    });
    (address.recv().unwrap(), stop, thread)
}

#[tokio::test]
async fn a_server_that_vanished_and_restarted_resets_the_connection_at_once() {
    let (addr, stop, thread) = server_on_its_own_runtime(LOOPBACK);
    let client = connect(addr).await;
    let old = client.connection().await.unwrap();
    assert!(
        ProbeClient::new(old.clone())
            .echo(payload(1, 0))
            .await
            .is_ok()
    );
    // The server's process dies: its socket closes, nothing is said.
    drop(stop);
    thread.join().unwrap();
    // A new one starts on the same port with the same key file, knowing
    // nothing of the connection but deriving the same reset tokens.
    let (_restarted, _accepted) = start_at(addr, keyed_config()).await;
    let started = std::time::Instant::now();
    // The client's next packet gets a reset, not the 15 s idle timeout.
    let _ = old.send(Stream::OrderedA.message(0, 10)).await;
    let error = within("the reset", old.closed()).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(
            &error,
            ConnectionError::Udp {
                reason: CloseReason::Reset,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("reset"), "{error}");
    assert!(elapsed < Duration::from_secs(2), "reset after {elapsed:?}");
}

#[tokio::test]
async fn close_delivers_what_was_queued_then_ends_the_stream() {
    let (addr, mut accepted) = start(ServerConfig::default()).await;
    let client = connect(addr).await;
    let theirs = within("a connection", accepted.recv()).await.unwrap();
    for seq in 0..100 {
        client
            .send(Stream::OrderedA.message(seq, 10_000))
            .await
            .unwrap();
    }
    client.close();
    for seq in 0..100 {
        let message: Traffic = within("a message", theirs.recv()).await.unwrap().unwrap();
        assert_eq!(Stream::read(&message), Some((Stream::OrderedA, seq, true)));
    }
    assert_eq!(theirs.recv::<Traffic>().await, Ok(None));
    let raw = theirs.udp().unwrap();
    assert!(matches!(
        raw.closed().await,
        CloseReason::Peer { code: 0, .. }
    ));
}

#[tokio::test]
async fn a_hundred_clients_share_one_server_socket() {
    let (server, _) = start_at(LOOPBACK, ServerConfig::default()).await;
    let (addr, handle) = (server.local_addr(), server.handle());
    let mut accepted = serve(server);
    let mut clients = Vec::new();
    for n in 0..100 {
        let client = connect(addr).await;
        client.send(Stream::OrderedA.message(n, 4)).await.unwrap();
        clients.push(client);
    }
    let mut seen = Vec::new();
    for _ in 0..100 {
        let theirs = within("a connection", accepted.recv()).await.unwrap();
        let message: Traffic = within("a message", theirs.recv()).await.unwrap().unwrap();
        seen.push(Stream::read(&message).unwrap().1);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..100).collect::<Vec<_>>());
    assert_eq!(handle.stats().connections, 100);
}
