//! `protowright-tcp`: protowright's TCP transport through its public API
//! and generated code, as a user would use it.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use protowright::net::Tokio;
use protowright::rpc::{self, Status};
use protowright::tcp::{Client, ClientConfig, Server, ServerConfig};
use tokio::time::Instant;

use super::{Meter, Sampler, ready};
use crate::pb::{Bench, BenchClient, BenchServer, Empty, Payload, bench_methods};
use crate::{DATA, Workload};

/// Echoes, and counts what is pushed. An echo after pushes marks the end.
///
/// One-way messages reach the handler one at a time, so the meter's lock is
/// never contended; it is taken to satisfy the `Sync` bound.
#[derive(Default)]
struct Sink {
    meter: Mutex<Meter>,
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
        debug_assert_eq!(request.data.len(), DATA.len());
        self.meter().add(1);
        Ok(Empty {})
    }
}

pub(super) async fn serve(workload: Workload) -> anyhow::Result<()> {
    let server = BenchServer::new(Sink::default());
    let sink = server.clone();
    let server = Server::bind(
        Tokio,
        (Ipv4Addr::LOCALHOST, 0).into(),
        server,
        ServerConfig::default(),
    )
    .await?;
    ready(server.local_addr());
    let handle = server.handle();
    tokio::spawn(server.run());
    // Serve one client: wait for it to come and go.
    while handle.stats().accepted == 0 || handle.stats().connections > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if workload == Workload::Msgs64 {
        sink.get_ref()
            .meter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .report()
            .print();
    }
    Ok(())
}

pub(super) async fn drive(
    workload: Workload,
    addr: SocketAddr,
    duration: Duration,
) -> anyhow::Result<()> {
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
    }
    client.close();
    Ok(())
}
