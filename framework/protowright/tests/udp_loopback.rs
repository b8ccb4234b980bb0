//! The reliable-UDP transport on real loopback sockets: every delivery,
//! large messages, RPC over the session lane, refusals, resets and close.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use protowright::Delivery;
use protowright::net::Tokio;
use protowright::rpc::{self, CallOptions, Channel, NoService, Service, Status};
use protowright::schema::Method;
use protowright::udp::proto::{CloseReason, RefuseReason};
use protowright::udp::{Config, Endpoint, Error, Lane};

fn localhost() -> SocketAddr {
    (Ipv4Addr::LOCALHOST, 0).into()
}

async fn pair(config: Config) -> (Endpoint, Endpoint) {
    let server = Endpoint::server(&Tokio, localhost(), config.clone())
        .await
        .expect("server");
    let client = Endpoint::client(&Tokio, localhost(), config)
        .await
        .expect("client");
    (server, client)
}

#[tokio::test]
async fn every_delivery_crosses_loopback() {
    let (server, client) = pair(Config::default()).await;
    let connection = client.connect(server.local_addr()).await.expect("connect");
    let accepted = server.accept().await.expect("accept");
    assert_eq!(accepted.peer_addr(), client.local_addr());
    let deliveries = [
        (Delivery::ReliableOrdered, 3),
        (Delivery::ReliableUnordered, 0),
        (Delivery::Unreliable, 0),
        (Delivery::UnreliableSequenced, 2),
    ];
    for (delivery, channel) in deliveries {
        connection
            .send(delivery, channel, Bytes::from(format!("{delivery:?}")))
            .await
            .expect("send");
    }
    let mut seen = Vec::new();
    for _ in 0..4 {
        let message = tokio::time::timeout(Duration::from_secs(5), accepted.recv())
            .await
            .expect("in time")
            .expect("message");
        seen.push((
            message.lane,
            message.channel,
            String::from_utf8_lossy(&message.data).into_owned(),
        ));
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (Lane::ReliableOrdered, 3, "ReliableOrdered".to_owned()),
            (Lane::ReliableUnordered, 0, "ReliableUnordered".to_owned()),
            (Lane::Unreliable, 0, "Unreliable".to_owned()),
            (
                Lane::UnreliableSequenced,
                2,
                "UnreliableSequenced".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn ten_megabytes_of_ordered_messages_arrive_intact_and_in_order() {
    let (server, client) = pair(Config::default()).await;
    let connection = client.connect(server.local_addr()).await.expect("connect");
    let accepted = server.accept().await.expect("accept");
    let sender = tokio::spawn(async move {
        for index in 0u32..40 {
            let data: Vec<u8> = (0..256 * 1024).map(|i| (i as u32 ^ index) as u8).collect();
            connection
                .send(Delivery::ReliableOrdered, 0, Bytes::from(data))
                .await
                .expect("send");
        }
        connection
    });
    for index in 0u32..40 {
        let message = tokio::time::timeout(Duration::from_secs(20), accepted.recv())
            .await
            .expect("in time")
            .expect("message");
        assert_eq!(message.data.len(), 256 * 1024);
        assert!(
            message
                .data
                .iter()
                .enumerate()
                .all(|(i, &b)| b == (i as u32 ^ index) as u8),
            "message {index} corrupted"
        );
    }
    let connection = sender.await.expect("sender");
    let stats = connection.stats().expect("stats");
    assert!(stats.bytes_sent > 10 << 20, "{stats:?}");
    // Path MTU discovery found that loopback (MTU 65,536) carries the
    // default ceiling of 16 KiB.
    assert!(
        stats.datagram_size > 16_384 - 16 && stats.datagram_size <= 16_384,
        "{stats:?}"
    );
}

#[derive(Clone)]
struct Echo;

impl Service for Echo {
    async fn call(&self, _method: u32, request: Bytes) -> Result<Bytes, Status> {
        Ok(request)
    }
}

static ECHO: Method = Method {
    id: 7,
    path: "/test.Echo/Echo",
    idempotent: true,
};

#[tokio::test]
async fn an_rpc_session_runs_over_the_session_lane_beside_application_messages() {
    let (server, client) = pair(Config::default()).await;
    let connection = client.connect(server.local_addr()).await.expect("connect");
    let accepted = server.accept().await.expect("accept");
    let _serving = accepted.rpc(Echo, rpc::Config::default());
    let session = connection.rpc(NoService, rpc::Config::default());
    let calls = (0..200u32).map(|i| {
        let client = session.client();
        tokio::spawn(async move {
            client
                .call(
                    &ECHO,
                    Bytes::from(i.to_be_bytes().to_vec()),
                    CallOptions::default(),
                )
                .await
        })
    });
    // Application messages flow at the same time on their own lanes.
    connection
        .send(Delivery::ReliableOrdered, 0, Bytes::from_static(b"beside"))
        .await
        .expect("send");
    for (i, call) in calls.enumerate() {
        let reply = call.await.expect("task").expect("call");
        assert_eq!(&reply[..], &(i as u32).to_be_bytes());
    }
    let message = accepted.recv().await.expect("message");
    assert_eq!(&message.data[..], b"beside");
}

#[tokio::test]
async fn a_schema_mismatch_is_refused_with_a_clear_error() {
    let server = Endpoint::server(
        &Tokio,
        localhost(),
        Config {
            schema_hash: 1,
            ..Config::default()
        },
    )
    .await
    .expect("server");
    let client = Endpoint::client(
        &Tokio,
        localhost(),
        Config {
            schema_hash: 2,
            ..Config::default()
        },
    )
    .await
    .expect("client");
    let error = client
        .connect(server.local_addr())
        .await
        .expect_err("refused");
    let Error::Closed {
        reason: CloseReason::Refused { reason, detail },
        ..
    } = &error
    else {
        panic!("expected a refusal, got {error}");
    };
    assert_eq!(*reason, RefuseReason::Schema);
    assert!(
        error.to_string().contains("schema hash"),
        "{error}: {detail}"
    );
}

#[tokio::test]
async fn oversized_messages_are_refused_before_sending() {
    let (server, client) = pair(Config::default()).await;
    let connection = client.connect(server.local_addr()).await.expect("connect");
    let error = connection
        .send(
            Delivery::ReliableOrdered,
            0,
            Bytes::from(vec![0; (1 << 20) + 1]),
        )
        .await
        .expect_err("too large");
    assert!(
        error
            .to_string()
            .contains("larger than the 1048576-byte limit"),
        "{error}"
    );
}

#[tokio::test]
async fn a_restarted_server_makes_the_client_fail_fast() {
    let server = Endpoint::server(&Tokio, localhost(), Config::default())
        .await
        .expect("server");
    let addr = server.local_addr();
    let client = Endpoint::client(&Tokio, localhost(), Config::default())
        .await
        .expect("client");
    let connection = client.connect(addr).await.expect("connect");
    let accepted = server.accept().await.expect("accept");
    // The server goes away without a word and comes back on the same port.
    accepted.abort(0, "");
    drop(accepted);
    drop(server);
    let started = std::time::Instant::now();
    let restarted = loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        match Endpoint::server(&Tokio, addr, Config::default()).await {
            Ok(endpoint) => break endpoint,
            Err(error) if started.elapsed() > Duration::from_secs(3) => panic!("rebind: {error}"),
            Err(_) => {}
        }
    };
    eprintln!("rebound after {:?}", started.elapsed());
    connection
        .send(Delivery::ReliableOrdered, 0, Bytes::from_static(b"anyone?"))
        .await
        .ok();
    let reason = tokio::time::timeout(Duration::from_secs(3), connection.closed())
        .await
        .expect("failed fast, not after the idle timeout");
    assert!(
        matches!(reason, CloseReason::Reset | CloseReason::Peer { .. }),
        "{reason:?}"
    );
    drop(restarted);
}

#[tokio::test]
async fn close_delivers_queued_messages_then_tells_the_peer() {
    let (server, client) = pair(Config::default()).await;
    let connection = client.connect(server.local_addr()).await.expect("connect");
    let accepted = server.accept().await.expect("accept");
    for i in 0..100u32 {
        connection
            .send(
                Delivery::ReliableOrdered,
                0,
                Bytes::from(vec![i as u8; 10_000]),
            )
            .await
            .expect("send");
    }
    connection.close(5, "all done");
    for i in 0..100u32 {
        let message = accepted.recv().await.expect("queued message");
        assert_eq!(message.data[0], i as u8);
    }
    let reason = accepted.closed().await;
    assert_eq!(
        reason,
        CloseReason::Peer {
            code: 5,
            reason: "all done".into()
        }
    );
    assert!(matches!(accepted.recv().await, Err(Error::Closed { .. })));
}

#[tokio::test]
async fn a_hundred_clients_share_one_server_socket() {
    let server = Endpoint::server(&Tokio, localhost(), Config::default())
        .await
        .expect("server");
    let client = Endpoint::client(&Tokio, localhost(), Config::default())
        .await
        .expect("client");
    let mut connections = Vec::new();
    for _ in 0..100 {
        connections.push(client.connect(server.local_addr()).await.expect("connect"));
    }
    for (i, connection) in connections.iter().enumerate() {
        connection
            .send(
                Delivery::ReliableOrdered,
                0,
                Bytes::from((i as u32).to_be_bytes().to_vec()),
            )
            .await
            .expect("send");
    }
    let mut seen = Vec::new();
    for _ in 0..100 {
        let accepted = server.accept().await.expect("accept");
        let message = accepted.recv().await.expect("message");
        seen.push(u32::from_be_bytes(
            message.data[..].try_into().expect("4 bytes"),
        ));
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..100).collect::<Vec<_>>());
    assert_eq!(server.connection_count(), 100);
}
