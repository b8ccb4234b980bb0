//! `quinn-framed`'s message workloads (and `quinn-jumbo`'s): prost
//! `Payload` messages behind tokio-util's length prefix on quinn streams,
//! as the TCP codec contender (`tokio_codec`) frames them over TCP. The
//! receiver splits the stream into messages and decodes each one, so the
//! figure is a message rate, comparable with protowright's.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use prost::Message;
use quinn::Connection;
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

use super::{Meter, Sampler};
use crate::pb::Payload;
use crate::{DATA, Workload};

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(4 * 1024 * 1024)
        .new_codec()
}

/// The server's side of `msgs64` or `rtt64`.
pub(super) async fn serve(connection: &Connection, workload: Workload) -> anyhow::Result<()> {
    if workload == Workload::Msgs64 {
        let mut frames = FramedRead::new(connection.accept_uni().await?, codec());
        let mut meter = Meter::default();
        while let Some(frame) = frames.next().await {
            let payload = Payload::decode(frame?)?;
            debug_assert_eq!(payload.data.len(), DATA.len());
            meter.add(1);
        }
        meter.finish();
        meter.report().print();
    } else {
        let (send, recv) = connection.accept_bi().await?;
        let mut replies = FramedWrite::new(send, codec());
        let mut requests = FramedRead::new(recv, codec());
        while let Some(Ok(frame)) = requests.next().await {
            let payload = Payload::decode(frame)?;
            replies.send(Bytes::from(payload.encode_to_vec())).await?;
        }
    }
    Ok(())
}

/// The client's side of `msgs64` (sending for `duration`) or `rtt64`.
pub(super) async fn drive(
    connection: &Connection,
    workload: Workload,
    duration: Duration,
) -> anyhow::Result<()> {
    let payload = Payload {
        data: Bytes::from_static(&DATA),
    };
    if workload == Workload::Msgs64 {
        let mut frames = FramedWrite::new(connection.open_uni().await?, codec());
        let end = Instant::now() + duration;
        while Instant::now() < end {
            // Queue a batch, then write it out in one go (as tokio-codec).
            for _ in 0..256 {
                frames.feed(Bytes::from(payload.encode_to_vec())).await?;
            }
            SinkExt::<Bytes>::flush(&mut frames).await?;
        }
        // Finishes the stream; then wait until the server has read it all.
        SinkExt::<Bytes>::close(&mut frames).await?;
        frames.into_inner().stopped().await?;
    } else {
        let (send, recv) = connection.open_bi().await?;
        let mut requests = FramedWrite::new(send, codec());
        let mut replies = FramedRead::new(recv, codec());
        let mut sampler = Sampler::new(duration);
        while sampler.more() {
            let started = Instant::now();
            requests.send(Bytes::from(payload.encode_to_vec())).await?;
            let frame = replies
                .next()
                .await
                .ok_or_else(|| anyhow::anyhow!("closed"))??;
            Payload::decode(frame)?;
            sampler.record(started);
        }
        sampler.report().print();
        SinkExt::<Bytes>::close(&mut requests).await?;
    }
    Ok(())
}
