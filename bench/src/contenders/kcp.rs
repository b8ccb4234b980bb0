//! `kcp`: tokio_kcp in its fast configuration (nodelay, 10 ms interval,
//! fast resend after 2 acks, congestion control off) with 1024-packet
//! windows, writes and acks flushed at once, one message per send. KCP has no close, so a one-byte message
//! ends a stream.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;
use tokio_kcp::{KcpConfig, KcpListener, KcpNoDelayConfig, KcpStream};

use super::bulk::{self, Received};
use super::{Meter, Sampler, ready};
use crate::{Amount, Report, Workload};

const END: [u8; 1] = [0xee];
const MESSAGE: [u8; 64] = [0x5a; 64];

fn config() -> KcpConfig {
    KcpConfig {
        nodelay: KcpNoDelayConfig::fastest(),
        wnd_size: (1024, 1024),
        // Send at once rather than on the next tick, and ack at once.
        flush_write: true,
        flush_acks_input: true,
        ..KcpConfig::default()
    }
}

pub(super) async fn serve(workload: Workload, _amount: Amount) -> anyhow::Result<()> {
    let mut listener = KcpListener::bind(config(), (Ipv4Addr::LOCALHOST, 0)).await?;
    ready(listener.local_addr()?);
    let (mut stream, _) = listener.accept().await?;
    let mut buf = vec![0u8; 256 * 1024];
    match workload {
        Workload::Msgs64 => {
            let mut meter = Meter::default();
            loop {
                let len = stream.recv(&mut buf).await?;
                if len == END.len() {
                    break;
                }
                meter.add(1);
            }
            meter.finish();
            meter.report().print();
        }
        Workload::Rtt64 => loop {
            let len = stream.recv(&mut buf).await?;
            if len == END.len() {
                break;
            }
            stream.send(&buf[..len]).await?;
        },
        Workload::Bulk => {
            let mut received = Received::default();
            loop {
                let len = stream.recv(&mut buf).await?;
                if len == END.len() {
                    break;
                }
                received.add(&buf[..len]);
            }
            received.report().print();
        }
        Workload::Conns10k | Workload::Msgs64Unreliable => {
            anyhow::bail!("kcp has no {workload:?} workload")
        }
    }
    // Tell the client everything arrived, and let that go out.
    stream.send(&END).await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}

pub(super) async fn drive(
    workload: Workload,
    amount: Amount,
    addr: SocketAddr,
) -> anyhow::Result<()> {
    let mut stream = KcpStream::connect(&config(), addr).await?;
    match workload {
        Workload::Msgs64 => {
            let end = Instant::now() + amount.duration;
            while Instant::now() < end {
                for _ in 0..256 {
                    stream.send(&MESSAGE).await?;
                }
            }
        }
        Workload::Rtt64 => {
            let mut buf = [0u8; 256];
            let mut sampler = Sampler::new(amount.duration);
            while sampler.more() {
                let started = Instant::now();
                stream.send(&MESSAGE).await?;
                stream.recv(&mut buf).await?;
                sampler.record(started);
            }
            sampler.report().print();
        }
        Workload::Bulk => {
            let expected = bulk::expected(amount.bytes);
            for chunk in bulk::chunks(amount.bytes) {
                stream.send(&chunk).await?;
            }
            Report::Sent {
                bytes: expected.bytes(),
                checksum: expected.value(),
            }
            .print();
        }
        Workload::Conns10k | Workload::Msgs64Unreliable => {
            anyhow::bail!("kcp has no {workload:?} workload")
        }
    }
    stream.send(&END).await?;
    // KCP sends from a timer: wait for the server's word that it has
    // everything before leaving.
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, stream.recv(&mut buf)).await {
            Ok(Ok(len)) if len == END.len() => break,
            Ok(Ok(_)) => continue,
            _ => break,
        }
    }
    Ok(())
}
