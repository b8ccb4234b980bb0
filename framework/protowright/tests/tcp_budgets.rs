//! What a hostile TCP peer can make a server hold, and for how long, in a
//! turmoil simulation (virtual time: deadlines are checked to the
//! millisecond, however loaded the machine). A frame must arrive whole
//! within `frame_timeout` of its first byte, so trickling bytes no longer
//! keeps a connection alive; and a partial frame costs the server what
//! arrived, never what its length prefix announced (read through the
//! session's `read_reserved` gauge, the read buffer's capacity).

#![allow(
    clippy::unwrap_used,
    reason = "an unwrap in test code is an assertion; clippy.toml allows it in #[test] functions, not in the scenarios and helpers they call"
)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes};
use prost::Message;
use protowright::codec::DEFAULT_MAX_FRAME;
use protowright::rpc::Code;
use protowright::v1::{Envelope, Kind};
use protowright::{Connection, ConnectionError, Server, ServerConfig, Transport};
use protowright_sim::Turmoil;
use protowright_testing::Probe;
use protowright_testing::pb::ProbeServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turmoil::net::TcpStream;

const PORT: u16 = 9000;
const SEED: u64 = 5;
/// Every simulated link takes this long, each way.
const LATENCY: Duration = Duration::from_millis(1);
/// How late a cut-off may be: the GOAWAY's write and the link's latency.
const TOLERANCE: Duration = Duration::from_millis(100);

fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

/// A length prefix announcing a frame of `len` bytes.
fn prefix(len: usize) -> Vec<u8> {
    let mut prefix = Vec::new();
    prost::encoding::encode_varint(len as u64, &mut prefix);
    prefix
}

/// The server's address, inside the simulation.
fn server() -> SocketAddr {
    (turmoil::lookup("server"), PORT).into()
}

/// What the server saw of one connection.
#[derive(Debug, Clone)]
struct Seen {
    /// How it ended, and when.
    outcome: Option<(Result<(), ConnectionError>, Duration)>,
    /// The most its read buffer held while it was open.
    max_reserved: usize,
}

/// Everything the server saw, one entry per connection in accept order,
/// and the largest sum of `read_reserved` over the open connections.
#[derive(Debug, Default)]
struct ServerSide {
    connections: Vec<Seen>,
    max_total_reserved: usize,
}

/// A simulation with a TCP server of a probe (with `config`) sampling its
/// connections every 100 ms, and `client` on another host; returns what
/// the server saw.
fn run<F>(config: ServerConfig, client: F) -> ServerSide
where
    F: Future<Output = turmoil::Result> + 'static,
{
    protowright_sim::reseed(SEED);
    let mut sim = turmoil::Builder::new()
        .rng_seed(SEED)
        .simulation_duration(Duration::from_secs(120))
        .min_message_latency(LATENCY)
        .max_message_latency(LATENCY)
        .build();
    let seen = Arc::new(Mutex::new(ServerSide::default()));
    let record = Arc::clone(&seen);
    sim.host("server", move || {
        let (record, config) = (Arc::clone(&record), config.clone());
        async move {
            let any: SocketAddr = (Ipv4Addr::UNSPECIFIED, PORT).into();
            let mut server = Server::bind(Turmoil, Transport::Tcp, any, config).await?;
            let open: Arc<Mutex<Vec<(usize, Connection)>>> = Arc::default();
            tokio::spawn(sample(Arc::clone(&open), Arc::clone(&record)));
            while let Some(incoming) = server.accept().await {
                let connection = incoming.serve(ProbeServer::new(Probe::default()));
                let index = {
                    let mut seen = record.lock().unwrap();
                    seen.connections.push(Seen {
                        outcome: None,
                        max_reserved: 0,
                    });
                    seen.connections.len() - 1
                };
                open.lock().unwrap().push((index, connection.clone()));
                let (record, open) = (Arc::clone(&record), Arc::clone(&open));
                tokio::spawn(async move {
                    let outcome = connection.closed().await;
                    record.lock().unwrap().connections[index].outcome = Some((outcome, now()));
                    open.lock().unwrap().retain(|(i, _)| *i != index);
                });
            }
            Ok(())
        }
    });
    sim.client("client", client);
    sim.run()
        .unwrap_or_else(|error| panic!("seed {SEED}: {error}"));
    std::mem::take(&mut *seen.lock().unwrap())
}

/// Records the open connections' `read_reserved`, every 100 ms.
async fn sample(open: Arc<Mutex<Vec<(usize, Connection)>>>, record: Arc<Mutex<ServerSide>>) {
    loop {
        let reserved: Vec<(usize, usize)> = open
            .lock()
            .unwrap()
            .iter()
            .map(|(index, c)| (*index, c.stats().session.read_reserved))
            .collect();
        {
            let mut seen = record.lock().unwrap();
            for &(index, bytes) in &reserved {
                let max = &mut seen.connections[index].max_reserved;
                *max = (*max).max(bytes);
            }
            let total = reserved.iter().map(|(_, bytes)| bytes).sum();
            seen.max_total_reserved = seen.max_total_reserved.max(total);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads until the server closes the stream; returns when, and the
/// envelopes it wrote.
async fn read_until_closed(
    mut stream: turmoil::net::tcp::OwnedReadHalf,
) -> (Duration, Vec<Envelope>) {
    let mut bytes = Vec::new();
    // An error (a reset) is a close as well as an end of stream.
    let _ = stream.read_to_end(&mut bytes).await;
    let closed = now();
    let mut bytes = Bytes::from(bytes);
    let mut envelopes = Vec::new();
    while bytes.has_remaining() {
        match Envelope::decode_length_delimited(&mut bytes) {
            Ok(envelope) => envelopes.push(envelope),
            Err(_) => break,
        }
    }
    (closed, envelopes)
}

/// Asserts the last envelope is a GOAWAY saying DEADLINE_EXCEEDED.
fn assert_told_deadline_exceeded(envelopes: &[Envelope]) {
    let last = envelopes.last().expect("the server wrote something");
    assert_eq!(last.kind, Kind::Goaway as i32, "{envelopes:?}");
    let status = last.status.as_ref().expect("a GOAWAY says why");
    assert_eq!(status.code, Code::DeadlineExceeded as i32, "{status:?}");
    assert!(
        status.message.contains("did not arrive within"),
        "{status:?}"
    );
}

/// What the slowloris client saw: when its frame began and when the
/// server closed, and what the server said.
#[derive(Debug, Default)]
struct Trickled {
    began: Duration,
    closed: Duration,
    told: Vec<Envelope>,
    sent: usize,
}

#[test]
fn a_trickled_frame_is_cut_off_at_the_frame_deadline_holding_only_what_arrived() {
    // Default settings: the 30 s frame timeout, the 15 s dead-peer bound
    // (which one byte every 5 s keeps satisfied), no idle timeout.
    let config = ServerConfig::default();
    let limit = config.session.frame_timeout.unwrap();
    let read_buffer = config.session.read_buffer;
    let trickled = Arc::new(Mutex::new(Trickled::default()));
    let record = Arc::clone(&trickled);
    let server = run(config, async move {
        let stream = TcpStream::connect(server()).await?;
        let (reader, mut writer) = stream.into_split();
        let reading = tokio::spawn(read_until_closed(reader));
        // A maximal frame is announced, then its body comes a byte at a time.
        let mut first = prefix(DEFAULT_MAX_FRAME);
        first.push(0);
        record.lock().unwrap().began = now();
        writer.write_all(&first).await?;
        let mut sent = first.len();
        let trickle = async {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                if writer.write_all(&[0]).await.is_err() {
                    break;
                }
                sent += 1;
            }
        };
        let (closed, told) = tokio::select! {
            biased;
            seen = reading => seen?,
            () = trickle => unreachable!("the trickle never ends by itself"),
        };
        let mut record = record.lock().unwrap();
        (record.closed, record.told, record.sent) = (closed, told, sent);
        Ok(())
    });
    let trickled = trickled.lock().unwrap();
    let took = trickled.closed - trickled.began;
    println!(
        "slowloris: {} bytes sent, cut off after {took:?} (frame timeout {limit:?}); \
         the server's read buffer held at most {} bytes of the {DEFAULT_MAX_FRAME} announced",
        trickled.sent, server.connections[0].max_reserved
    );
    assert!(
        took >= limit && took <= limit + TOLERANCE,
        "cut off after {took:?}, not at the {limit:?} frame deadline"
    );
    assert_told_deadline_exceeded(&trickled.told);
    let seen = &server.connections[0];
    let (outcome, _) = seen.outcome.as_ref().expect("the server closed it");
    let Err(ConnectionError::FrameTimeout {
        limit: reported,
        received,
        expected,
        ..
    }) = outcome
    else {
        panic!("not a frame timeout: {outcome:?}");
    };
    assert_eq!(*reported, limit);
    assert_eq!(*expected, Some(DEFAULT_MAX_FRAME));
    // The prefix was consumed; the body bytes are what it holds.
    assert_eq!(*received, trickled.sent - prefix(DEFAULT_MAX_FRAME).len());
    assert!(
        seen.max_reserved > 0 && seen.max_reserved <= read_buffer,
        "the read buffer held {} bytes: it grew past the {read_buffer}-byte read buffer \
         towards the announced {DEFAULT_MAX_FRAME}",
        seen.max_reserved
    );
}

/// Connections in the flood.
const FLOOD: usize = 100;
/// Body bytes each sends after announcing a maximal frame.
const FLOOD_BODY: usize = 1000;

#[test]
fn a_flood_of_maximal_announcements_reserves_only_what_arrived_and_each_is_cut_off_on_time() {
    let mut config = ServerConfig::default();
    let limit = Duration::from_secs(10);
    config.session.frame_timeout = Some(limit);
    config.session.read_buffer = 8 * 1024;
    let read_buffer = config.session.read_buffer;
    let cut_off: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let record = Arc::clone(&cut_off);
    let server = run(config, async move {
        let addr = server();
        // One connection every 50 ms, so each has a deadline of its own.
        let mut waits = Vec::new();
        for _ in 0..FLOOD {
            let stream = TcpStream::connect(addr).await?;
            let (reader, mut writer) = stream.into_split();
            let mut first = prefix(DEFAULT_MAX_FRAME);
            first.extend(std::iter::repeat_n(7u8, FLOOD_BODY));
            let began = now();
            writer.write_all(&first).await?;
            waits.push(tokio::spawn(async move {
                let (closed, told) = read_until_closed(reader).await;
                drop(writer);
                (closed - began, told)
            }));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for wait in waits {
            let (took, told) = wait.await?;
            assert_told_deadline_exceeded(&told);
            record.lock().unwrap().push(took);
        }
        Ok(())
    });
    let cut_off = cut_off.lock().unwrap();
    let (earliest, latest) = (cut_off.iter().min().unwrap(), cut_off.iter().max().unwrap());
    let announced = FLOOD * DEFAULT_MAX_FRAME;
    println!(
        "flood: {FLOOD} connections announced {announced} bytes and sent {} bytes of body; \
         the server's read buffers held at most {} bytes in all; cut off after {earliest:?} to {latest:?}",
        FLOOD * FLOOD_BODY,
        server.max_total_reserved
    );
    assert_eq!(cut_off.len(), FLOOD);
    assert!(
        *earliest >= limit && *latest <= limit + TOLERANCE,
        "cut off after {earliest:?} to {latest:?}, not at the {limit:?} frame deadline"
    );
    assert_eq!(server.connections.len(), FLOOD);
    for seen in &server.connections {
        let (outcome, _) = seen.outcome.as_ref().unwrap();
        assert!(
            matches!(outcome, Err(ConnectionError::FrameTimeout { .. })),
            "{outcome:?}"
        );
    }
    assert!(
        server.max_total_reserved <= FLOOD * read_buffer,
        "the read buffers held {} bytes in all, more than one {read_buffer}-byte buffer each",
        server.max_total_reserved
    );
    assert!(
        server.max_total_reserved >= FLOOD * FLOOD_BODY,
        "the sampling saw every connection open at once ({} bytes)",
        server.max_total_reserved
    );
}

#[tokio::test]
async fn a_duration_that_could_overflow_a_deadline_is_refused_before_binding_or_connecting() {
    let mut config = ServerConfig::default();
    config.session.frame_timeout = Some(Duration::MAX);
    let error = Server::bind(
        protowright::net::Tokio,
        Transport::Tcp,
        support_loopback(),
        config,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, protowright::Error::Config(_)), "{error}");
    assert!(error.to_string().contains("`frame_timeout`"), "{error}");

    let config = ServerConfig {
        shutdown_timeout: Duration::MAX,
        ..ServerConfig::default()
    };
    let error = config.validate().unwrap_err();
    assert!(error.to_string().contains("`shutdown_timeout`"), "{error}");

    let config = protowright::ClientConfig {
        connect_timeout: Duration::MAX,
        ..protowright::ClientConfig::default()
    };
    let error = protowright::Client::connect(
        protowright::net::Tokio,
        Transport::Tcp,
        support_loopback(),
        config,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, protowright::Error::Config(_)), "{error}");
    assert!(error.to_string().contains("`connect_timeout`"), "{error}");
}

fn support_loopback() -> SocketAddr {
    (Ipv4Addr::LOCALHOST, 0).into()
}
