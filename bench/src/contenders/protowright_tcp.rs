//! `protowright-tcp`: protowright's TCP transport through its public API
//! and generated code, as a user would use it.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use protowright::net::Tokio;
use protowright::rpc::{self, Status};
use protowright::tcp::{Client, ClientConfig, ConnectionState, Server, ServerConfig};
use tokio::time::Instant;

use super::bulk::{self, Received};
use super::{Meter, Sampler, memory, ready};
use crate::pb::{Bench, BenchClient, BenchServer, Empty, Payload, bench_methods};
use crate::{Amount, DATA, Report, Workload};

/// Echoes, and counts (and for bulk, checksums) what is pushed. An echo
/// after pushes marks the end.
///
/// One-way messages reach the handler one at a time, so the meter's lock is
/// never contended; it is taken to satisfy the `Sync` bound.
#[derive(Default)]
struct Sink {
    meter: Mutex<Meter>,
    received: Mutex<Received>,
}

impl Sink {
    fn meter(&self) -> std::sync::MutexGuard<'_, Meter> {
        self.meter.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Bench for Sink {
    async fn echo(&self, request: Payload) -> Result<Payload, Status> {
        self.meter().finish();
        Ok(request)
    }

    async fn push(&self, request: Payload) -> Result<Empty, Status> {
        if request.data.len() == DATA.len() {
            self.meter().add(1);
        } else {
            let mut received = self.received.lock().unwrap_or_else(|e| e.into_inner());
            received.add(&request.data);
        }
        Ok(Empty {})
    }
}

pub(super) async fn serve(workload: Workload, amount: Amount) -> anyhow::Result<()> {
    let server = BenchServer::new(Sink::default());
    let sink = server.clone();
    let config = ServerConfig {
        max_connections: 20_000,
        ..ServerConfig::default()
    };
    let server = Server::bind(Tokio, (Ipv4Addr::LOCALHOST, 0).into(), server, config).await?;
    let baseline = memory::resident_bytes()?;
    ready(server.local_addr());
    let handle = server.handle();
    tokio::spawn(server.run());
    if workload == Workload::Conns10k {
        return memory::report_when_connected(amount.connections, baseline, || {
            handle.stats().connections
        })
        .await;
    }
    // Serve one client: wait for it to come and go.
    while handle.stats().accepted == 0 || handle.stats().connections > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    match workload {
        Workload::Msgs64 => sink.get_ref().meter().report().print(),
        Workload::Bulk => sink
            .get_ref()
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .report()
            .print(),
        Workload::Rtt64 | Workload::Conns10k => {}
    }
    Ok(())
}

pub(super) async fn drive(
    workload: Workload,
    amount: Amount,
    addr: SocketAddr,
) -> anyhow::Result<()> {
    let duration = amount.duration;
    if workload == Workload::Conns10k {
        let clients = memory::open_all(amount.connections, || async {
            let client = Client::connect(Tokio, addr, ClientConfig::default())?;
            client
                .watch_state()
                .wait_for(|s| *s == ConnectionState::Connected)
                .await?;
            Ok(client)
        })
        .await?;
        // Hold them until the server has measured and gone.
        if let Some(first) = clients.first() {
            let mut state = first.watch_state();
            let lost = state.wait_for(|s| *s != ConnectionState::Connected);
            let _ = tokio::time::timeout(Duration::from_secs(60), lost).await;
        }
        return Ok(());
    }
    let client = Client::connect(Tokio, addr, ClientConfig::default())?;
    let bench = BenchClient::new(client.clone());
    let payload = Payload {
        data: Bytes::from_static(&DATA),
    };
    bench.echo(payload.clone()).await?;
    match workload {
        Workload::Msgs64 => {
            let end = Instant::now() + duration;
            'sending: loop {
                for _ in 0..256 {
                    client
                        .send(&bench_methods::PUSH, rpc::encode(&payload))
                        .await?;
                }
                if Instant::now() >= end {
                    break 'sending;
                }
            }
            // A round trip after the last one-way message: everything before
            // it has been read by the server.
            bench.echo(payload.clone()).await?;
        }
        Workload::Rtt64 => {
            let mut sampler = Sampler::new(duration);
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
                client
                    .send(&bench_methods::PUSH, rpc::encode(&Payload { data: chunk }))
                    .await?;
            }
            // The closing echo marks the end on the server.
            bench.echo(payload.clone()).await?;
            Report::Sent {
                bytes: expected.bytes(),
                checksum: expected.value(),
            }
            .print();
        }
        Workload::Conns10k => {}
    }
    client.close();
    Ok(())
}
