//! `tokio-codec`: tokio-util's `LengthDelimitedCodec` with prost messages,
//! the stack a user would otherwise write by hand.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use prost::Message;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use super::{Meter, Sampler, ready};
use crate::pb::Payload;
use crate::{DATA, Workload};

pub(super) async fn serve(workload: Workload) -> anyhow::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    ready(listener.local_addr()?);
    let (stream, _) = listener.accept().await?;
    stream.set_nodelay(true)?;
    let mut framed = Framed::new(stream, LengthDelimitedCodec::new());
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
    }
    Ok(())
}

pub(super) async fn drive(
    workload: Workload,
    addr: SocketAddr,
    duration: Duration,
) -> anyhow::Result<()> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut framed = Framed::new(stream, LengthDelimitedCodec::new());
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
    }
    Ok(())
}
