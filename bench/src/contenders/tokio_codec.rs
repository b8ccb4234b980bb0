//! `tokio-codec`: tokio-util's `LengthDelimitedCodec` with prost messages,
//! the stack a user would otherwise write by hand.

use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use prost::Message;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use super::bulk::{self, Received};
use super::{Meter, Sampler, memory, ready};
use crate::pb::Payload;
use crate::{Amount, DATA, Report, Workload};

fn codec() -> LengthDelimitedCodec {
    // Room for the bulk workload's 64 KiB chunks and more.
    LengthDelimitedCodec::builder()
        .max_frame_length(4 * 1024 * 1024)
        .new_codec()
}

pub(super) async fn serve(workload: Workload, amount: Amount) -> anyhow::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let baseline = memory::resident_bytes()?;
    ready(listener.local_addr()?);
    if workload == Workload::Msgs64Unreliable {
        anyhow::bail!("TCP has no unreliable delivery");
    }
    if workload == Workload::Conns10k {
        return hold_connections(listener, amount.connections, baseline).await;
    }
    let (stream, _) = listener.accept().await?;
    stream.set_nodelay(true)?;
    let mut framed = Framed::new(stream, codec());
    match workload {
        Workload::Msgs64 => {
            let mut meter = Meter::default();
            while let Some(frame) = framed.next().await {
                let payload = Payload::decode(frame?)?;
                debug_assert_eq!(payload.data.len(), DATA.len());
                meter.add(1);
            }
            meter.finish();
            meter.report().print();
        }
        Workload::Rtt64 => {
            while let Some(frame) = framed.next().await {
                let payload = Payload::decode(frame?)?;
                framed.send(Bytes::from(payload.encode_to_vec())).await?;
            }
        }
        Workload::Bulk => {
            let mut received = Received::default();
            while let Some(frame) = framed.next().await {
                received.add(&Payload::decode(frame?)?.data);
            }
            received.report().print();
        }
        Workload::Conns10k | Workload::Msgs64Unreliable => unreachable!("handled above"),
    }
    Ok(())
}

/// Accepts `count` connections, each framed and read by a task of its own
/// as a server of this stack would, then reports memory.
async fn hold_connections(
    listener: TcpListener,
    count: usize,
    baseline: u64,
) -> anyhow::Result<()> {
    let live = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let accepting = {
        let live = std::sync::Arc::clone(&live);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                live.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut framed = Framed::new(stream, codec());
                    while let Some(Ok(_)) = framed.next().await {}
                });
            }
        })
    };
    memory::report_when_connected(count, baseline, || {
        live.load(std::sync::atomic::Ordering::Relaxed)
    })
    .await?;
    accepting.abort();
    Ok(())
}

pub(super) async fn drive(
    workload: Workload,
    amount: Amount,
    addr: SocketAddr,
) -> anyhow::Result<()> {
    let duration = amount.duration;
    if workload == Workload::Msgs64Unreliable {
        anyhow::bail!("TCP has no unreliable delivery");
    }
    if workload == Workload::Conns10k {
        return memory::hold_streams(addr, amount.connections).await;
    }
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut framed = Framed::new(stream, codec());
    let payload = Payload {
        data: Bytes::from_static(&DATA),
    };
    match workload {
        Workload::Msgs64 => {
            let end = Instant::now() + duration;
            while Instant::now() < end {
                // Queue a batch, then write it out in one go.
                for _ in 0..256 {
                    framed.feed(Bytes::from(payload.encode_to_vec())).await?;
                }
                SinkExt::<Bytes>::flush(&mut framed).await?;
            }
            SinkExt::<Bytes>::close(&mut framed).await?;
        }
        Workload::Rtt64 => {
            let mut sampler = Sampler::new(duration);
            while sampler.more() {
                let started = Instant::now();
                framed.send(Bytes::from(payload.encode_to_vec())).await?;
                let frame = framed
                    .next()
                    .await
                    .ok_or_else(|| anyhow::anyhow!("closed"))??;
                Payload::decode(frame)?;
                sampler.record(started);
            }
            sampler.report().print();
        }
        Workload::Bulk => {
            let expected = bulk::expected(amount.bytes);
            for chunk in bulk::chunks(amount.bytes) {
                framed
                    .feed(Bytes::from(Payload { data: chunk }.encode_to_vec()))
                    .await?;
            }
            SinkExt::<Bytes>::close(&mut framed).await?;
            // Wait for the server to finish reading before exiting.
            while framed.next().await.is_some() {}
            Report::Sent {
                bytes: expected.bytes(),
                checksum: expected.value(),
            }
            .print();
        }
        Workload::Conns10k | Workload::Msgs64Unreliable => unreachable!("handled above"),
    }
    Ok(())
}
