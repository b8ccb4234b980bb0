//! `protowright-udp`: protowright's reliable-UDP transport through its
//! public API, as a user would use it: schema messages on their delivery
//! (reliable ordered), and the generated client over the session lane for
//! request/response.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use protowright::Delivery;
use protowright::net::Tokio;
use protowright::rpc::{self, NoService, Status};
use protowright::udp::{Config, Endpoint};
use tokio::time::Instant;

use super::bulk::{self, Received};
use super::{Meter, Sampler, memory, ready};
use crate::pb::{Bench, BenchClient, BenchServer, Empty, Payload};
use crate::{Amount, DATA, Report, Workload};

fn config() -> Config {
    Config {
        max_connections: 20_000,
        ..Config::default()
    }
}

/// Echoes requests over RPC.
struct Echo;

impl Bench for Echo {
    async fn echo(&self, request: Payload) -> Result<Payload, Status> {
        Ok(request)
    }

    async fn push(&self, _request: Payload) -> Result<Empty, Status> {
        Ok(Empty {})
    }
}

pub(super) async fn serve(workload: Workload, amount: Amount) -> anyhow::Result<()> {
    let endpoint = Endpoint::server(&Tokio, (Ipv4Addr::LOCALHOST, 0).into(), config()).await?;
    let baseline = memory::resident_bytes()?;
    ready(endpoint.local_addr());
    if workload == Workload::Conns10k {
        let held = endpoint.clone();
        memory::report_when_connected(amount.connections, baseline, move || {
            held.connection_count()
        })
        .await?;
        // Tell the clients, so they stop at once rather than at their
        // idle timeout.
        endpoint.shutdown();
        tokio::time::sleep(Duration::from_millis(300)).await;
        return Ok(());
    }
    let connection = endpoint
        .accept()
        .await
        .ok_or_else(|| anyhow::anyhow!("no client came"))?;
    match workload {
        Workload::Msgs64 => {
            let mut meter = Meter::default();
            // The client closes gracefully after its last message: every
            // message is read before the close is seen.
            while connection.recv().await.is_ok() {
                meter.add(1);
            }
            meter.finish();
            meter.report().print();
        }
        Workload::Bulk => {
            let mut received = Received::default();
            while let Ok(message) = connection.recv().await {
                received.add(&message.data);
            }
            received.report().print();
        }
        Workload::Rtt64 => {
            let session = connection.rpc(Arc::new(BenchServer::new(Echo)), rpc::Config::default());
            let _ = session.closed().await;
        }
        Workload::Conns10k => {}
    }
    Ok(())
}

pub(super) async fn drive(
    workload: Workload,
    amount: Amount,
    addr: SocketAddr,
) -> anyhow::Result<()> {
    let endpoint = Endpoint::client(&Tokio, (Ipv4Addr::LOCALHOST, 0).into(), config()).await?;
    if workload == Workload::Conns10k {
        let endpoint = &endpoint;
        let connections = memory::open_all(amount.connections, || async move {
            Ok(endpoint.connect(addr).await?)
        })
        .await?;
        // Hold them until the server has measured and gone.
        if let Some(first) = connections.first() {
            let _ = tokio::time::timeout(Duration::from_secs(60), first.closed()).await;
        }
        return Ok(());
    }
    let connection = endpoint.connect(addr).await?;
    let payload = Payload {
        data: Bytes::from_static(&DATA),
    };
    match workload {
        Workload::Msgs64 => {
            let end = Instant::now() + amount.duration;
            'sending: loop {
                for _ in 0..256 {
                    connection.send_message(&payload).await?;
                }
                if Instant::now() >= end {
                    break 'sending;
                }
            }
        }
        Workload::Rtt64 => {
            let session = connection.rpc(NoService, rpc::Config::default());
            let bench = BenchClient::new(session.client());
            bench.echo(payload.clone()).await?;
            let mut sampler = Sampler::new(amount.duration);
            while sampler.more() {
                let started = Instant::now();
                bench.echo(payload.clone()).await?;
                sampler.record(started);
            }
            sampler.report().print();
            session.close();
        }
        Workload::Bulk => {
            let expected = bulk::expected(amount.bytes);
            for chunk in bulk::chunks(amount.bytes) {
                connection.send(Delivery::ReliableOrdered, 0, chunk).await?;
            }
            Report::Sent {
                bytes: expected.bytes(),
                checksum: expected.value(),
            }
            .print();
        }
        Workload::Conns10k => {}
    }
    // A graceful close: everything queued is delivered first; then stay
    // until the close has been resent across the drain, in case it was
    // lost.
    connection.close(0, "done");
    let _ = tokio::time::timeout(Duration::from_secs(60), connection.closed()).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), endpoint.wait_idle()).await;
    Ok(())
}
