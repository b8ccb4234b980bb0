//! The TCP transport on real loopback sockets: many calls on one
//! connection, what a reader that does not read costs the server, bad
//! peers, a peer in another language, and a peer that vanishes mid-call.
//! (What both transports share is in `one_api.rs`, `connect.rs`,
//! `errors.rs`, `retries.rs`; shutdown and reconnects, whose order a clock
//! would decide here, run in turmoil: `shutdown.rs`, `reconnect.rs`.)

#![allow(
    clippy::unwrap_used,
    reason = "an unwrap in test code is an assertion; clippy.toml allows it in #[test] functions, not in the scenarios and helpers they call"
)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use prost::Message;
use protowright::net::{Listener, Net, Tokio};
use protowright::rpc::{self, Session};
use protowright::v1::{Envelope, Kind};
use protowright::{
    Client, ClientConfig, Connection, Server, ServerConfig, ServerHandle, Transport,
};
use protowright_testing::pb::{
    Payload, Probe as _, ProbeClient, ProbeServer, Traffic, probe_methods,
};
use protowright_testing::{Probe, Stream};
use support::{LOOPBACK, join_all, payload};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// A TCP server of a probe; the connections it accepts come out of the
/// receiver.
async fn start(
    config: ServerConfig,
) -> (
    ServerHandle,
    SocketAddr,
    mpsc::UnboundedReceiver<Connection>,
) {
    let mut server = Server::bind(Tokio, Transport::Tcp, LOOPBACK, config)
        .await
        .unwrap();
    let (handle, addr) = (server.handle(), server.local_addr());
    let (queue, accepted) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            let _ = queue.send(incoming.serve(ProbeServer::new(Probe::default())));
        }
    });
    (handle, addr, accepted)
}

async fn connect(addr: SocketAddr, config: ClientConfig) -> Client {
    Client::connect(Tokio, Transport::Tcp, addr, config)
        .await
        .unwrap()
}

#[tokio::test]
async fn many_concurrent_calls_share_one_connection() {
    let (server, addr, _) = start(ServerConfig::default()).await;
    let client = connect(addr, ClientConfig::default()).await;
    let probe = ProbeClient::new(client.clone());
    let calls = (0..2000).map(|n| {
        let probe = probe.clone();
        async move { (n, probe.echo(payload(n, 4)).await) }
    });
    for (n, reply) in join_all(calls).await {
        assert_eq!(reply, Ok(payload(n, 4)));
    }
    assert_eq!(
        server.stats().accepted,
        1,
        "one connection carried every call"
    );
    let stats = client.stats().connection.expect("connected").session;
    // Each way: the calls, and the connect's ping and its pong.
    assert_eq!((stats.messages_out, stats.messages_in), (2001, 2001));
}

#[tokio::test]
async fn a_reader_that_does_not_read_costs_the_server_only_its_bounds() {
    let mut config = ServerConfig::default();
    config.session.message_queue = 8;
    config.session.read_buffer = 64 * 1024;
    let (_server, addr, mut accepted) = start(config).await;
    let mut client_config = ClientConfig::default();
    client_config.session.outgoing_queue = 8;
    let client = connect(addr, client_config).await;
    let theirs = accepted.recv().await.expect("the connection");
    // 4,000 messages of 16 KiB: 64 MiB for a server that reads none.
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
    let started = Instant::now();
    let mut before = u64::MAX;
    while sent.load(Ordering::SeqCst) != before {
        before = sent.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the sender never stopped"
        );
    }
    // What the server read is what it holds (nothing was taken): its 8
    // messages and at most a read buffer and a frame more.
    let held = theirs.stats().session;
    assert!(held.inbox_depth <= 8, "{held:?}");
    let bound = 8 * 16_500 + 64 * 1024 + 16_500;
    assert!(
        held.bytes_in <= bound,
        "the server holds {} bytes: {held:?}",
        held.bytes_in
    );
    // The rest waits on the sender's side of the socket and in the
    // sender's bounded queue; the sender itself waits.
    assert!(client.stats().connection.unwrap().session.queue_depth <= 8);
    assert!(before < MESSAGES, "{before} sent");
    for seq in 0..MESSAGES {
        let message: Traffic = theirs.recv().await.unwrap().unwrap();
        assert_eq!(Stream::read(&message), Some((Stream::OrderedA, seq, true)));
    }
    sender.await.unwrap();
}

/// Connects a raw socket, sends `bytes` (then hangs up if `vanish`), and
/// returns the envelopes the server wrote before it closed the
/// connection.
async fn raw_peer_sends(addr: SocketAddr, bytes: &[u8], vanish: bool) -> Vec<Envelope> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    if vanish {
        return Vec::new();
    }
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

fn is_goaway(envelopes: &[Envelope]) -> bool {
    envelopes
        .last()
        .is_some_and(|e| e.kind == Kind::Goaway as i32 && e.status.is_some())
}

#[tokio::test]
async fn bad_peers_lose_their_connection_and_nobody_else_notices() {
    let (server, addr, _) = start(ServerConfig::default()).await;
    let good = ProbeClient::new(connect(addr, ClientConfig::default()).await);
    assert!(good.echo(payload(1, 0)).await.is_ok());

    // An oversized length prefix (1 GiB, over the 4 MiB default).
    assert!(is_goaway(
        &raw_peer_sends(addr, &[0x80, 0x80, 0x80, 0x80, 0x04], false).await
    ));
    // A frame that is not an envelope.
    assert!(is_goaway(
        &raw_peer_sends(addr, &[3, 0xff, 0xff, 0xff], false).await
    ));
    // A peer that vanishes mid-frame: nobody to tell, but a failure all
    // the same, not a clean close.
    raw_peer_sends(addr, &[100, 1, 2, 3], true).await;

    assert_eq!(good.echo(payload(2, 0)).await, Ok(payload(2, 0)));
    let started = Instant::now();
    while server.stats().failed < 3 && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = server.stats();
    assert_eq!(
        (stats.accepted, stats.failed, stats.connections),
        (4, 3, 1),
        "{stats:?}"
    );
}

#[tokio::test]
async fn a_client_in_another_language_gets_answers() {
    // What any language's stock protobuf library does: write a delimited
    // Envelope holding a Payload, read a delimited Envelope back.
    let (_server, addr, _) = start(ServerConfig::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = Envelope {
        kind: Kind::Request as i32,
        call_id: 9,
        method: probe_methods::ECHO.id,
        body: payload(9, 2).encode_to_vec().into(),
        ..Envelope::default()
    };
    stream
        .write_all(&request.encode_length_delimited_to_vec())
        .await
        .unwrap();
    let mut buf = BytesMut::with_capacity(256);
    let response = loop {
        stream.read_buf(&mut buf).await.unwrap();
        if let Ok(envelope) = Envelope::decode_length_delimited(&buf[..]) {
            break envelope;
        }
    };
    assert_eq!(
        (response.kind, response.call_id),
        (Kind::Response as i32, 9)
    );
    assert_eq!(Payload::decode(response.body).unwrap(), payload(9, 2));
}

/// Accepts connections on `listener`: the first reads once and drops the
/// socket without answering (a server that died mid-call); later ones are
/// served by `probe`.
async fn dies_mid_call_once<L: Listener>(listener: L, probe: Probe) {
    let (mut first, _) = listener.accept().await.expect("the client connects");
    // Answer the connect's ping, then die when the first call arrives.
    let mut codec = protowright::codec::Delimited::default();
    let mut buf = bytes::BytesMut::new();
    'serving: loop {
        if first.read_buf(&mut buf).await.unwrap_or(0) == 0 {
            break;
        }
        while let Ok(Some(frame)) = codec.decode(&mut buf) {
            let envelope = Envelope::decode(frame).expect("an envelope");
            if envelope.kind != Kind::Ping as i32 {
                break 'serving;
            }
            let pong = Envelope {
                kind: Kind::Pong as i32,
                call_id: envelope.call_id,
                ..Envelope::default()
            };
            let _ = first
                .write_all(&pong.encode_length_delimited_to_vec())
                .await;
        }
    }
    drop(first);
    while let Ok((stream, peer)) = listener.accept().await {
        let service = ProbeServer::new(probe.clone());
        let session = Session::spawn(stream, peer.to_string(), service, rpc::Config::default());
        tokio::spawn(session.closed());
    }
}

#[tokio::test]
async fn an_idempotent_call_is_retried_after_the_server_dies_mid_call() {
    let listener = Tokio.listen(LOOPBACK).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let probe = Probe::default();
    tokio::spawn(dies_mid_call_once(listener, probe.clone()));
    let mut config = ClientConfig::default();
    config.backoff.initial = Duration::from_millis(10);
    let client = connect(addr, config).await;
    let reply = ProbeClient::new(client.clone()).echo(payload(5, 3)).await;
    assert_eq!(reply, Ok(payload(5, 3)));
    assert_eq!((probe.echoed(), client.stats().reconnects), (vec![5], 1));
}

#[tokio::test]
async fn an_enormous_timeout_means_no_timeout_rather_than_a_panic() {
    let (_server, addr, _) = start(ServerConfig::default()).await;
    let client = connect(addr, ClientConfig::default()).await;
    let probe = ProbeClient::new(client).with_timeout(Duration::MAX);
    assert_eq!(probe.echo(payload(1, 1)).await, Ok(payload(1, 1)));
}
