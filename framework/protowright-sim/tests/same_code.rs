//! The same generic code runs over real sockets on loopback and inside a
//! turmoil simulation: for streams, for datagrams, and for an RPC session.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use protowright::net::{Datagram, Listener, Net, Stream, Tokio};
use protowright::rpc::{Config, NoService, Session};
use protowright_sim::Turmoil;
use protowright_testing::Probe;
use protowright_testing::pb::{Payload, Probe as _, ProbeClient, ProbeServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MESSAGES: [&[u8]; 3] = [b"one", b"two", b"three"];

/// Accepts one stream and echoes it back until the peer closes it.
async fn stream_echo_server<L: Listener>(listener: L) -> io::Result<()> {
    let (mut stream, _) = listener.accept().await?;
    stream.set_nodelay(true)?;
    let mut buf = [0u8; 64];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

/// Sends each message and reads its echo.
async fn stream_echo_client<N: Net>(net: N, server: SocketAddr) -> io::Result<Vec<Vec<u8>>> {
    let mut stream = net.connect(server).await?;
    assert_eq!(stream.peer_addr()?, server);
    let mut echoes = Vec::new();
    for message in MESSAGES {
        stream.write_all(message).await?;
        let mut echo = vec![0u8; message.len()];
        stream.read_exact(&mut echo).await?;
        echoes.push(echo);
    }
    Ok(echoes)
}

/// Echoes `count` datagrams back to their senders.
async fn datagram_echo_server<D: Datagram>(socket: D, count: usize) -> io::Result<()> {
    let mut buf = [0u8; 64];
    for _ in 0..count {
        let (n, from) = socket.recv_from(&mut buf).await?;
        socket.send_to(&buf[..n], from).await?;
    }
    Ok(())
}

/// Sends each message as a datagram and waits for its echo.
async fn datagram_echo_client<N: Net>(net: N, server: SocketAddr) -> io::Result<Vec<Vec<u8>>> {
    let socket = net.bind_datagram((Ipv4Addr::UNSPECIFIED, 0).into()).await?;
    let mut echoes = Vec::new();
    let mut buf = [0u8; 64];
    for message in MESSAGES {
        socket.send_to(message, server).await?;
        let (n, from) = socket.recv_from(&mut buf).await?;
        assert_eq!(from.port(), server.port());
        echoes.push(buf[..n].to_vec());
    }
    Ok(echoes)
}

fn expected() -> Vec<Vec<u8>> {
    MESSAGES.iter().map(|m| m.to_vec()).collect()
}

const LOOPBACK: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

#[tokio::test]
async fn stream_echo_runs_on_real_sockets() {
    let listener = Tokio.listen(LOOPBACK).await.unwrap();
    let server = listener.local_addr().unwrap();
    let serving = tokio::spawn(stream_echo_server(listener));
    assert_eq!(stream_echo_client(Tokio, server).await.unwrap(), expected());
    serving.await.unwrap().unwrap();
}

/// Real sockets may lose a datagram, even on loopback: a test waits a
/// bounded time, never forever.
const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn datagram_echo_runs_on_real_sockets() {
    let socket = Tokio.bind_datagram(LOOPBACK).await.unwrap();
    let server = socket.local_addr().unwrap();
    let serving = tokio::spawn(datagram_echo_server(socket, MESSAGES.len()));
    let echoes = tokio::time::timeout(PATIENCE, datagram_echo_client(Tokio, server))
        .await
        .expect("the echoes came back in time");
    assert_eq!(echoes.unwrap(), expected());
    serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_fault_layer_gives_real_sockets_real_loss() {
    use protowright_sim::{FaultControl, Faults, Faulty};

    let control = FaultControl::new(3);
    control.set(Faults::loss(0.5));
    let lossy = Faulty::new(Tokio, control.clone());
    let receiver = Tokio.bind_datagram(LOOPBACK).await.unwrap();
    let sender = lossy.bind_datagram(LOOPBACK).await.unwrap();
    let target = receiver.local_addr().unwrap();
    for n in 0..200u8 {
        sender.send_to(&[n], target).await.unwrap();
    }
    let mut received = 0;
    let mut buf = [0u8; 4];
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(200), receiver.recv_from(&mut buf)).await
    {
        received += 1;
    }
    let counters = control.counters();
    assert_eq!(counters.datagrams, 200);
    assert_eq!(counters.lost + counters.delivered, 200);
    assert_eq!(received, counters.delivered, "what was not dropped arrived");
    assert!((60..140).contains(&received), "about half: {received}");
}

fn simulation() -> turmoil::Sim<'static> {
    turmoil::Builder::new()
        .rng_seed(20261124)
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(5))
        .build()
}

fn server_addr(port: u16) -> SocketAddr {
    (turmoil::lookup("server"), port).into()
}

#[test]
fn stream_echo_runs_in_simulation() {
    let mut sim = simulation();
    sim.host("server", || async {
        let listener = Turmoil.listen((Ipv4Addr::UNSPECIFIED, 7000).into()).await?;
        stream_echo_server(listener).await?;
        Ok(())
    });
    sim.client("client", async {
        assert_eq!(
            stream_echo_client(Turmoil, server_addr(7000)).await?,
            expected()
        );
        Ok(())
    });
    sim.run().unwrap();
}

#[test]
fn datagram_echo_runs_in_simulation() {
    let mut sim = simulation();
    sim.host("server", || async {
        let socket = Turmoil
            .bind_datagram((Ipv4Addr::UNSPECIFIED, 7001).into())
            .await?;
        datagram_echo_server(socket, MESSAGES.len()).await?;
        Ok(())
    });
    sim.client("client", async {
        assert_eq!(
            datagram_echo_client(Turmoil, server_addr(7001)).await?,
            expected()
        );
        Ok(())
    });
    sim.run().unwrap();
}

/// Serves one RPC session on the first inbound stream.
async fn rpc_server<L: Listener>(listener: L) -> io::Result<()> {
    let (stream, peer) = listener.accept().await?;
    let service = ProbeServer::new(Probe::default());
    let session = Session::spawn(stream, peer.to_string(), service, Config::default());
    session.closed().await.map_err(io::Error::other)
}

/// Calls the server over a stream and returns its answers.
async fn rpc_client<N: Net>(net: N, server: SocketAddr) -> io::Result<Vec<Bytes>> {
    let stream = net.connect(server).await?;
    let session = Session::spawn(stream, server.to_string(), NoService, Config::default());
    let probe = ProbeClient::new(session.client()).with_timeout(PATIENCE);
    let mut answers = Vec::new();
    for message in MESSAGES {
        let request = Payload {
            id: 0,
            data: Bytes::from_static(message),
        };
        let answer = probe.double(request).await.map_err(io::Error::other)?;
        answers.push(answer.data);
    }
    session.close();
    Ok(answers)
}

fn doubled() -> Vec<Bytes> {
    MESSAGES
        .iter()
        .map(|m| Bytes::from([*m, *m].concat()))
        .collect()
}

#[tokio::test]
async fn an_rpc_session_runs_on_real_sockets() {
    let listener = Tokio.listen(LOOPBACK).await.unwrap();
    let server = listener.local_addr().unwrap();
    let serving = tokio::spawn(rpc_server(listener));
    let answers = tokio::time::timeout(PATIENCE, rpc_client(Tokio, server))
        .await
        .expect("answered in time");
    assert_eq!(answers.unwrap(), doubled());
    serving.await.unwrap().unwrap();
}

#[test]
fn an_rpc_session_runs_in_simulation() {
    let mut sim = simulation();
    sim.host("server", || async {
        let listener = Turmoil.listen((Ipv4Addr::UNSPECIFIED, 7002).into()).await?;
        rpc_server(listener).await?;
        Ok(())
    });
    sim.client("client", async {
        assert_eq!(rpc_client(Turmoil, server_addr(7002)).await?, doubled());
        Ok(())
    });
    sim.run().unwrap();
}
