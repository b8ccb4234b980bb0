//! `tonic`: gRPC, the schema-first stack a user would otherwise pick. Unary
//! calls for round trips; one client stream for one-way messages and bulk.
//! A push stream with no messages tells the server the client is done.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status, Streaming};

use super::bulk::{self, Received};
use super::{Meter, Sampler, ready};
use crate::tonic_pb::tonic_bench_client::TonicBenchClient;
use crate::tonic_pb::tonic_bench_server::{TonicBench, TonicBenchServer};
use crate::tonic_pb::{Payload, Summary};
use crate::{Amount, DATA, Report, Workload};

struct Sink {
    bulk: bool,
    done: Arc<Notify>,
    report: Arc<Mutex<Option<Report>>>,
}

#[tonic::async_trait]
impl TonicBench for Sink {
    async fn echo(&self, request: Request<Payload>) -> Result<Response<Payload>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    async fn push(
        &self,
        request: Request<Streaming<Payload>>,
    ) -> Result<Response<Summary>, Status> {
        let mut stream = request.into_inner();
        let mut meter = Meter::default();
        let mut received = Received::default();
        let mut messages = 0u64;
        while let Some(payload) = stream.message().await? {
            messages += 1;
            if self.bulk {
                received.add(&payload.data);
            } else {
                meter.add(1);
            }
        }
        meter.finish();
        if messages > 0 {
            let report = if self.bulk {
                received.report()
            } else {
                meter.report()
            };
            *self.report.lock().unwrap_or_else(|e| e.into_inner()) = Some(report);
        }
        self.done.notify_one();
        Ok(Response::new(Summary { messages, bytes: 0 }))
    }
}

pub(super) async fn serve(workload: Workload, _amount: Amount) -> anyhow::Result<()> {
    if workload == Workload::Conns10k {
        anyhow::bail!("tonic has no conns10k workload");
    }
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    ready(listener.local_addr()?);
    let done = Arc::new(Notify::new());
    let report = Arc::new(Mutex::new(None));
    let sink = Sink {
        bulk: workload == Workload::Bulk,
        done: done.clone(),
        report: report.clone(),
    };
    let incoming = tokio_stream_from(listener);
    let server = Server::builder()
        .add_service(TonicBenchServer::new(sink).max_decoding_message_size(1 << 20))
        .serve_with_incoming_shutdown(incoming, async move { done.notified().await });
    server.await?;
    if let Some(report) = report.lock().unwrap_or_else(|e| e.into_inner()).take() {
        report.print();
    }
    Ok(())
}

/// The listener's connections as the stream tonic takes, with Nagle off.
fn tokio_stream_from(
    listener: tokio::net::TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| {
            let _ = stream.set_nodelay(true);
            stream
        });
        Some((accepted, listener))
    })
}

pub(super) async fn drive(
    workload: Workload,
    amount: Amount,
    addr: SocketAddr,
) -> anyhow::Result<()> {
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect()
        .await?;
    let mut client = TonicBenchClient::new(channel).max_encoding_message_size(1 << 20);
    let payload = Payload {
        data: Bytes::from_static(&DATA),
    };
    client.echo(payload.clone()).await?;
    match workload {
        Workload::Msgs64 => {
            let end = Instant::now() + amount.duration;
            let one = payload.clone();
            let stream = futures_util::stream::iter(std::iter::repeat_n((), usize::MAX))
                .take_while(move |()| std::future::ready(Instant::now() < end))
                .map(move |()| one.clone());
            client.push(stream).await?;
            return Ok(());
        }
        Workload::Rtt64 => {
            let mut sampler = Sampler::new(amount.duration);
            while sampler.more() {
                let started = Instant::now();
                client.echo(payload.clone()).await?;
                sampler.record(started);
            }
            sampler.report().print();
        }
        Workload::Bulk => {
            let expected = bulk::expected(amount.bytes);
            let stream =
                futures_util::stream::iter(bulk::chunks(amount.bytes).map(|data| Payload { data }));
            client.push(stream).await?;
            Report::Sent {
                bytes: expected.bytes(),
                checksum: expected.value(),
            }
            .print();
            return Ok(());
        }
        Workload::Conns10k | Workload::Msgs64Unreliable => {
            anyhow::bail!("tonic has no {workload:?} workload")
        }
    }
    // An empty push: the client is done.
    client.push(futures_util::stream::empty()).await?;
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}

use futures_util::StreamExt as _;
