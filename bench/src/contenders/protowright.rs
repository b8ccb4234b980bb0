//! `protowright-tcp` and `protowright-udp`: protowright through its public
//! API and generated code, as a user would use it — the same code on both
//! transports, which is the point of its one messaging API: payloads as
//! protocol messages for the throughput workloads, the generated client for
//! round trips. `msgs64-unreliable` sends `Datagram` messages, which the
//! schema marks `UNRELIABLE`: protowright's unreliable lane, messages
//! packed into packets, congestion controlled, never resent.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use protowright::net::Tokio;
use protowright::rpc::Status;
use protowright::{Client, ClientConfig, Connection, Server, ServerConfig, Transport, udp};
use tokio::time::Instant;

use super::bulk::{self, Received};
use super::{Meter, Sampler, memory, next_or_quiet, ready};
use crate::pb::{Bench, BenchClient, BenchServer, Datagram, Empty, Payload, Stream, stream};
use crate::{Amount, DATA, Report, Workload};

/// Echoes requests (round trips, and the marker that ends a transfer).
struct Echo;

impl Bench for Echo {
    async fn echo(&self, request: Payload) -> Result<Payload, Status> {
        Ok(request)
    }

    async fn push(&self, _request: Payload) -> Result<Empty, Status> {
        Ok(Empty {})
    }
}

/// Which protowright runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    /// Over TCP.
    Tcp,
    /// Over reliable UDP, encrypted (the default, as users run it).
    Udp,
    /// Over reliable UDP with the plaintext debugging flag: the cost of
    /// encryption is the difference to `Udp`.
    UdpPlaintext,
}

impl Variant {
    fn transport(self) -> Transport {
        match self {
            Self::Tcp => Transport::Tcp,
            Self::Udp | Self::UdpPlaintext => Transport::Udp,
        }
    }

    fn udp(self) -> udp::Config {
        let mut config = udp::Config {
            max_connections: 20_000,
            // conns10k opens every connection from one address, at once.
            max_connections_per_address: 20_000,
            stateless_rate: 1_000_000,
            stateless_burst: 100_000,
            // conns10k starts 10,000 handshakes at once on one thread; the
            // last are answered after the default 10 s.
            handshake_timeout: Duration::from_secs(60),
            ..udp::Config::default()
        };
        config.security.insecure_plaintext_for_debugging = self == Self::UdpPlaintext;
        config
    }
}

fn server_config(variant: Variant) -> ServerConfig {
    ServerConfig {
        max_connections: 20_000,
        udp: variant.udp(),
        ..ServerConfig::default()
    }
}

fn client_config(variant: Variant) -> ClientConfig {
    ClientConfig {
        udp: variant.udp(),
        // conns10k starts 10,000 handshakes at once on one thread: the
        // last of them (each a few X25519 operations on either side) may
        // take longer than the default 5 s to be answered.
        connect_timeout: Duration::from_secs(60),
        ..ClientConfig::default()
    }
}

pub(super) async fn serve(
    variant: Variant,
    workload: Workload,
    amount: Amount,
) -> anyhow::Result<()> {
    let address = (Ipv4Addr::LOCALHOST, 0).into();
    let mut server =
        Server::bind(Tokio, variant.transport(), address, server_config(variant)).await?;
    let baseline = memory::resident_bytes()?;
    ready(server.local_addr());
    let handle = server.handle();
    if workload == Workload::Conns10k {
        tokio::spawn(server.serve(BenchServer::new(Echo)));
        memory::report_when_connected(amount.connections, baseline, || handle.stats().connections)
            .await?;
        // Tell the clients, so they stop at once rather than at their
        // idle timeout.
        handle.shutdown().await;
        return Ok(());
    }
    let connection = server
        .accept()
        .await
        .ok_or_else(|| anyhow::anyhow!("no client came"))?
        .serve(BenchServer::new(Echo));
    match workload {
        Workload::Msgs64 => {
            let mut meter = Meter::default();
            let mut messages = connection.messages::<Stream>();
            // The client closes after its last message: every message is
            // read before the end is seen.
            while let Some(Stream { body: Some(_) }) = messages.next().await? {
                meter.add(1);
            }
            meter.finish();
            meter.report().print();
        }
        Workload::Msgs64Unreliable => {
            let mut meter = Meter::default();
            let mut messages = connection.messages::<Stream>();
            // Ends at the client's close (everything that arrived before it
            // is read first), or when nothing came for a while.
            let end = loop {
                let next = next_or_quiet(messages.next(), &meter).await;
                match next.item {
                    Some(Ok(Some(Stream {
                        body: Some(stream::Body::Datagram(datagram)),
                    }))) => {
                        debug_assert_eq!(datagram.data.len(), DATA.len());
                        meter.add(1);
                    }
                    Some(Ok(Some(_))) => anyhow::bail!("a reliable message in the datagram row"),
                    Some(Ok(None)) | None => break next.waited,
                    Some(Err(error)) => return Err(error.into()),
                }
            };
            meter.finish_at(end.unwrap_or_else(Instant::now));
            meter.report().print();
        }
        Workload::Bulk => {
            let mut received = Received::default();
            let mut messages = connection.messages::<Stream>();
            while let Some(Stream {
                body: Some(stream::Body::Payload(payload)),
            }) = messages.next().await?
            {
                received.add(&payload.data);
            }
            received.report().print();
        }
        Workload::Rtt64 => {
            let _ = connection.closed().await;
        }
        Workload::Conns10k => {}
    }
    handle.shutdown().await;
    Ok(())
}

pub(super) async fn drive(
    variant: Variant,
    workload: Workload,
    amount: Amount,
    addr: SocketAddr,
) -> anyhow::Result<()> {
    if workload == Workload::Conns10k {
        let clients = memory::open_all(amount.connections, || async {
            Ok(Client::connect(Tokio, variant.transport(), addr, client_config(variant)).await?)
        })
        .await?;
        // Hold them until the server has measured and gone.
        if let Some(first) = clients.first() {
            let mut state = first.watch_state();
            let lost = state.wait_for(|s| *s != protowright::ConnectionState::Connected);
            let _ = tokio::time::timeout(Duration::from_secs(60), lost).await;
        }
        return Ok(());
    }
    let client = Client::connect(Tokio, variant.transport(), addr, client_config(variant)).await?;
    let connection = client.connection().await?;
    let bench = BenchClient::new(connection.clone());
    let payload = Payload {
        data: Bytes::from_static(&DATA),
    };
    bench.echo(payload.clone()).await?;
    match workload {
        Workload::Msgs64 => {
            let end = Instant::now() + amount.duration;
            'sending: loop {
                for _ in 0..256 {
                    connection.send(payload.clone()).await?;
                }
                if Instant::now() >= end {
                    break 'sending;
                }
            }
        }
        Workload::Msgs64Unreliable => {
            // `send` waits while the send buffer is full; an unreliable
            // message leaves it once sent. The close discards unreliable
            // messages never sent, so the queue drains first (as
            // quinn-datagram's does).
            let datagram = Datagram {
                data: Bytes::from_static(&DATA),
            };
            let end = Instant::now() + amount.duration;
            let mut sent = 0u64;
            while Instant::now() < end {
                for _ in 0..256 {
                    connection.send(datagram.clone()).await?;
                }
                sent += 256;
            }
            if let Some(raw) = connection.udp() {
                while raw.stats().is_some_and(|s| s.queues.unreliable > 0) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            Report::SentMessages { messages: sent }.print();
        }
        Workload::Rtt64 => {
            let mut sampler = Sampler::new(amount.duration);
            while sampler.more() {
                let started = Instant::now();
                bench.echo(payload.clone()).await?;
                sampler.record(started);
            }
            sampler.report().print();
        }
        Workload::Bulk => {
            let expected = bulk::expected(amount.bytes);
            for chunk in bulk::chunks(amount.bytes) {
                connection.send(Payload { data: chunk }).await?;
            }
            Report::Sent {
                bytes: expected.bytes(),
                checksum: expected.value(),
            }
            .print();
        }
        Workload::Conns10k => {}
    }
    finish(client, connection).await;
    Ok(())
}

/// Closes gracefully: everything queued is delivered first; then the
/// process stays until the close is through (a UDP close is resent across
/// its drain, in case it was lost).
async fn finish(client: Client, connection: Connection) {
    client.close();
    let _ = tokio::time::timeout(Duration::from_secs(60), connection.closed()).await;
    if let Some(raw) = connection.udp() {
        let _ = tokio::time::timeout(Duration::from_secs(5), raw.closed()).await;
    }
}
