//! The TCP transport on real loopback sockets: concurrency, backpressure,
//! bad peers, limits, restarts, retries and graceful shutdown.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use protowright::Method;
use protowright::codec::Delimited;
use protowright::net::{Listener, Net, Tokio};
use protowright::rpc::{self, CallOptions, Channel, Code, Service, Session, Status};
use protowright::tcp::{
    Backoff, Client, ClientConfig, ConnectionState, Server, ServerConfig, ServerHandle,
};
use protowright::v1::{Envelope, Kind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ECHO: Method = Method {
    id: 1,
    path: "/t.Probe/Echo",
    idempotent: true,
};
const SLEEP: Method = Method {
    id: 2,
    path: "/t.Probe/Sleep",
    idempotent: false,
};
const COUNT: Method = Method {
    id: 3,
    path: "/t.Probe/Count",
    idempotent: false,
};

/// Echoes, sleeps for the milliseconds in the body, or counts its calls.
#[derive(Clone, Default)]
struct Probe {
    counted: Arc<AtomicUsize>,
}

impl Service for Probe {
    async fn call(&self, method: u32, request: Bytes) -> Result<Bytes, Status> {
        match method {
            1 => Ok(request),
            2 => {
                let millis = u64::from_le_bytes(request[..8].try_into().unwrap_or_default());
                tokio::time::sleep(Duration::from_millis(millis)).await;
                Ok(Bytes::from_static(b"slept"))
            }
            3 => Ok(Bytes::from(
                (self.counted.fetch_add(1, Ordering::SeqCst) + 1)
                    .to_le_bytes()
                    .to_vec(),
            )),
            other => Err(Status::unimplemented(format!("no method {other}"))),
        }
    }
}

fn millis(ms: u64) -> Bytes {
    Bytes::copy_from_slice(&ms.to_le_bytes())
}

const LOOPBACK: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

async fn start(
    config: ServerConfig,
    probe: Probe,
) -> (SocketAddr, ServerHandle, tokio::task::JoinHandle<()>) {
    start_at(LOOPBACK, config, probe).await
}

async fn start_at(
    addr: SocketAddr,
    config: ServerConfig,
    probe: Probe,
) -> (SocketAddr, ServerHandle, tokio::task::JoinHandle<()>) {
    let server = Server::bind(Tokio, addr, probe, config)
        .await
        .expect("bind");
    let addr = server.local_addr();
    let handle = server.handle();
    (addr, handle, tokio::spawn(server.run()))
}

fn fast_client() -> ClientConfig {
    ClientConfig {
        backoff: Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(100),
            ..Backoff::default()
        },
        seed: Some(1),
        ..ClientConfig::default()
    }
}

#[tokio::test]
async fn many_concurrent_calls_share_one_connection() {
    let (addr, handle, _server) = start(ServerConfig::default(), Probe::default()).await;
    let client = Client::connect(Tokio, addr, fast_client()).unwrap();
    let calls: Vec<_> = (0..2000u32)
        .map(|n| {
            let client = client.clone();
            tokio::spawn(async move {
                let body = Bytes::from(n.to_le_bytes().to_vec());
                (n, client.call(&ECHO, body, CallOptions::default()).await)
            })
        })
        .collect();
    for call in calls {
        let (n, reply) = call.await.unwrap();
        assert_eq!(reply, Ok(Bytes::from(n.to_le_bytes().to_vec())));
    }
    assert_eq!(
        handle.stats().accepted,
        1,
        "one connection carried every call"
    );
    let stats = client.stats().connection.expect("connected");
    assert_eq!(stats.messages_out, 2000);
}

#[tokio::test]
async fn a_slow_reader_makes_senders_wait_and_memory_stays_bounded() {
    // A raw server that reads at most 64 KiB every 10 ms: slower than the
    // client can queue 16 KiB messages.
    let listener = Tokio.listen(LOOPBACK).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let mut config = fast_client();
    config.session.outgoing_queue = 8;
    config.session.heartbeat_interval = None;
    config.session.dead_peer_timeout = None;
    let client = Client::connect(Tokio, addr, config).unwrap();
    let mut refused = 0;
    let mut deepest = 0;
    for n in 0..2000 {
        match client.try_send(&ECHO, Bytes::from(vec![0u8; 16 * 1024])) {
            Ok(()) => {}
            Err(status) if status.code() == Code::ResourceExhausted => refused += 1,
            Err(status) if status.code() == Code::Unavailable => {}
            Err(status) => panic!("unexpected {status}"),
        }
        if let Some(stats) = client.stats().connection {
            deepest = deepest.max(stats.queue_depth);
        }
        if n % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    assert!(refused > 0, "the queue filled and try_send said so");
    assert!(
        deepest <= 8,
        "queued envelopes never exceed the bound ({deepest})"
    );
    // Where try_send was refused, send waits for room instead of failing.
    for _ in 0..32 {
        client
            .send(&ECHO, Bytes::from(vec![0u8; 16 * 1024]))
            .await
            .unwrap();
    }
}

/// Connects a raw socket, sends `bytes`, and returns whether the server
/// then closed the connection.
async fn raw_peer_sends(addr: SocketAddr, bytes: &[u8], then_close: bool) -> bool {
    let mut stream = TcpStream::connect(addr).await.expect("the server accepts");
    stream
        .write_all(bytes)
        .await
        .expect("the bytes are written");
    if then_close {
        drop(stream);
        return true;
    }
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn bad_peers_lose_their_connection_and_nobody_else_notices() {
    let (addr, handle, _server) = start(ServerConfig::default(), Probe::default()).await;
    let good = Client::connect(Tokio, addr, fast_client()).unwrap();
    assert!(
        good.call(&ECHO, Bytes::from_static(b"before"), CallOptions::default())
            .await
            .is_ok()
    );

    // An oversized length prefix (1 GiB, over the 4 MiB default).
    assert!(raw_peer_sends(addr, &[0x80, 0x80, 0x80, 0x80, 0x04], false).await);
    // A frame that is not an envelope.
    assert!(raw_peer_sends(addr, &[3, 0xff, 0xff, 0xff], false).await);
    // A peer that vanishes mid-frame.
    assert!(raw_peer_sends(addr, &[100, 1, 2, 3], true).await);

    assert_eq!(
        good.call(&ECHO, Bytes::from_static(b"after"), CallOptions::default())
            .await,
        Ok(Bytes::from_static(b"after"))
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while handle.stats().connections != 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        handle.stats().connections,
        1,
        "only the good client is left"
    );
}

#[tokio::test]
async fn a_python_style_raw_client_gets_answers() {
    // What any language's stock protobuf library does: write a delimited
    // Envelope, read a delimited Envelope.
    let (addr, _handle, _server) = start(ServerConfig::default(), Probe::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = Envelope {
        kind: Kind::Request as i32,
        call_id: 9,
        method: ECHO.id,
        body: Bytes::from_static(b"hi"),
        ..Envelope::default()
    };
    let mut frame = BytesMut::new();
    Delimited::default().encode(&request, &mut frame).unwrap();
    stream.write_all(&frame).await.unwrap();
    let mut buf = BytesMut::with_capacity(256);
    let mut codec = Delimited::default();
    let body = loop {
        stream.read_buf(&mut buf).await.unwrap();
        if let Some(body) = codec.decode(&mut buf).unwrap() {
            break body;
        }
    };
    let response: Envelope = prost::Message::decode(body).unwrap();
    assert_eq!(
        (response.kind, response.call_id, response.body),
        (Kind::Response as i32, 9, Bytes::from_static(b"hi"))
    );
}

#[tokio::test]
async fn connections_over_the_limit_are_refused_with_a_reason() {
    let config = ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    };
    let (addr, handle, _server) = start(config, Probe::default()).await;
    let first = Client::connect(Tokio, addr, fast_client()).unwrap();
    assert!(
        first
            .call(&ECHO, Bytes::new(), CallOptions::default())
            .await
            .is_ok()
    );
    let mut config = fast_client();
    config.backoff.max_attempts = Some(2);
    let second = Client::connect(Tokio, addr, config).unwrap();
    let status = second
        .call(
            &ECHO,
            Bytes::new(),
            CallOptions {
                timeout: Some(Duration::from_secs(2)),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(handle.stats().refused >= 1);
    assert!(
        status.message().contains("limit of 1 connections")
            || status.message().contains(&addr.to_string()),
        "{status}"
    );
    assert!(
        first
            .call(&ECHO, Bytes::new(), CallOptions::default())
            .await
            .is_ok(),
        "the first is untouched"
    );
}

#[tokio::test]
async fn a_client_reconnects_after_the_server_restarts() {
    let (addr, handle, server) = start(ServerConfig::default(), Probe::default()).await;
    let client = Client::connect(Tokio, addr, fast_client()).unwrap();
    assert!(
        client
            .call(&ECHO, Bytes::new(), CallOptions::default())
            .await
            .is_ok()
    );
    handle.shutdown().await;
    server.await.unwrap();
    let mut states = client.watch_state();
    states
        .wait_for(|s| !matches!(s, ConnectionState::Connected))
        .await
        .unwrap();
    // A call made while the server is down waits for it, within its deadline.
    let waiting = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .call(
                    &ECHO,
                    Bytes::from_static(b"patient"),
                    CallOptions {
                        timeout: Some(Duration::from_secs(10)),
                    },
                )
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, _, _restarted) = start_at(addr, ServerConfig::default(), Probe::default()).await;
    assert_eq!(waiting.await.unwrap(), Ok(Bytes::from_static(b"patient")));
    assert_eq!(client.stats().reconnects, 1);
    assert_eq!(client.state(), ConnectionState::Connected);
}

#[tokio::test]
async fn calls_fail_unavailable_once_the_client_gives_up() {
    let unused = std::net::TcpListener::bind(LOOPBACK)
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = fast_client();
    config.backoff.max_attempts = Some(3);
    let client = Client::connect(Tokio, unused, config).unwrap();
    let mut states = client.watch_state();
    states
        .wait_for(|s| matches!(s, ConnectionState::GaveUp { .. }))
        .await
        .unwrap();
    let status = client
        .call(&ECHO, Bytes::new(), CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains(&unused.to_string()), "{status}");
}

/// Accepts connections on `listener`: the first reads one frame and hangs
/// up without answering; later ones are served by `probe`.
async fn flaky_server<L: Listener>(listener: L, probe: Probe) {
    let (mut first, _) = listener.accept().await.expect("the client connects");
    let mut buf = [0u8; 256];
    let _ = first.read(&mut buf).await;
    drop(first);
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            return;
        };
        let session = Session::spawn(
            stream,
            peer.to_string(),
            probe.clone(),
            rpc::Config::default(),
        );
        tokio::spawn(session.closed());
    }
}

#[tokio::test]
async fn an_idempotent_call_is_retried_after_the_connection_drops() {
    let listener = Tokio.listen(LOOPBACK).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(flaky_server(listener, Probe::default()));
    let client = Client::connect(Tokio, addr, fast_client()).unwrap();
    let reply = client
        .call(&ECHO, Bytes::from_static(b"again"), CallOptions::default())
        .await;
    assert_eq!(reply, Ok(Bytes::from_static(b"again")));
    assert_eq!(client.stats().reconnects, 1);
}

#[tokio::test]
async fn a_non_idempotent_call_is_never_retried() {
    let listener = Tokio.listen(LOOPBACK).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let probe = Probe::default();
    tokio::spawn(flaky_server(listener, probe.clone()));
    let client = Client::connect(Tokio, addr, fast_client()).unwrap();
    let status = client
        .call(&COUNT, Bytes::new(), CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    // The client reconnects, but the call was not sent again.
    client
        .watch_state()
        .wait_for(|s| *s == ConnectionState::Connected)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(probe.counted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn graceful_shutdown_finishes_calls_in_flight_and_refuses_new_ones() {
    let (addr, handle, server) = start(ServerConfig::default(), Probe::default()).await;
    let client = Client::connect(Tokio, addr, fast_client()).unwrap();
    assert!(
        client
            .call(&ECHO, Bytes::new(), CallOptions::default())
            .await
            .is_ok()
    );
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .call(&SLEEP, millis(300), CallOptions::default())
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let shutdown = tokio::spawn(async move { handle.shutdown().await });
    assert_eq!(
        in_flight.await.unwrap(),
        Ok(Bytes::from_static(b"slept")),
        "the call in flight finished"
    );
    shutdown.await.unwrap();
    server.await.unwrap();
    let status = client
        .call(
            &ECHO,
            Bytes::new(),
            CallOptions {
                timeout: Some(Duration::from_millis(300)),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
}

#[tokio::test]
async fn shutdown_closes_connections_whose_calls_outlast_the_timeout() {
    let config = ServerConfig {
        shutdown_timeout: Duration::from_millis(100),
        ..ServerConfig::default()
    };
    let (addr, handle, server) = start(config, Probe::default()).await;
    let client = Client::connect(Tokio, addr, fast_client()).unwrap();
    let stuck = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .call(&SLEEP, millis(60_000), CallOptions::default())
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    handle.shutdown().await;
    server.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(stuck.await.unwrap().unwrap_err().code(), Code::Unavailable);
}

#[tokio::test]
async fn an_enormous_timeout_means_no_timeout_rather_than_a_panic() {
    let (addr, _handle, _server) = start(ServerConfig::default(), Probe::default()).await;
    let client = Client::connect(Tokio, addr, fast_client()).unwrap();
    let options = CallOptions {
        timeout: Some(Duration::MAX),
    };
    assert_eq!(
        client.call(&ECHO, Bytes::from_static(b"x"), options).await,
        Ok(Bytes::from_static(b"x"))
    );
}
