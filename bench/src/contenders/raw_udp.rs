//! `raw-udp`: bare tokio UDP sockets, the physical limit for datagram
//! workloads. No reliability: `msgs64` counts what the receiver got (raw
//! 64-byte datagrams, nothing encoded), and `rtt64` resends a ping lost for
//! 100 ms. `msgs64-unreliable` sends one prost-encoded `Payload` per
//! datagram and decodes each at the receiver, as the other contenders of
//! that row do; nothing paces the sender, so what the receiver cannot take
//! is dropped by the kernel at its socket and shows in the received share.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::{Meter, Sampler, next_or_quiet, ready};
use crate::pb::Payload;
use crate::{Amount, DATA, Report, Workload};

/// The one-byte datagram that ends a stream of messages.
const END: [u8; 1] = [0xee];

pub(super) async fn serve(workload: Workload, _amount: Amount) -> anyhow::Result<()> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    ready(socket.local_addr()?);
    let mut buf = vec![0u8; 65_536];
    match workload {
        Workload::Msgs64 => {
            let mut meter = Meter::default();
            loop {
                let received =
                    tokio::time::timeout(Duration::from_secs(60), socket.recv_from(&mut buf)).await;
                let len = match received {
                    Ok(Ok((len, _))) => len,
                    Ok(Err(error)) => anyhow::bail!("receive failed: {error}"),
                    Err(_) => break,
                };
                if len == END.len() {
                    break;
                }
                meter.add(1);
            }
            meter.finish();
            meter.report().print();
        }
        Workload::Msgs64Unreliable => {
            let mut meter = Meter::default();
            // Ends at the end marker, or when none came for a while (the
            // marker may be lost too).
            let end = loop {
                let next = next_or_quiet(socket.recv_from(&mut buf), &meter).await;
                match next.item {
                    Some(Ok((len, _))) if len != END.len() => {
                        let payload = Payload::decode(&buf[..len])?;
                        debug_assert_eq!(payload.data.len(), DATA.len());
                        meter.add(1);
                    }
                    Some(Ok(_)) | None => break next.waited,
                    Some(Err(error)) => anyhow::bail!("receive failed: {error}"),
                }
            };
            meter.finish_at(end.unwrap_or_else(Instant::now));
            meter.report().print();
        }
        Workload::Rtt64 => loop {
            let received =
                tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf)).await;
            let Ok(Ok((len, from))) = received else { break };
            if len == END.len() {
                break;
            }
            socket.send_to(&buf[..len], from).await?;
        },
        Workload::Bulk | Workload::Conns10k => {
            anyhow::bail!("raw-udp has no {workload:?} workload")
        }
    }
    Ok(())
}

pub(super) async fn drive(
    workload: Workload,
    amount: Amount,
    addr: SocketAddr,
) -> anyhow::Result<()> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    socket.connect(addr).await?;
    let message = [0x5au8; 64];
    match workload {
        Workload::Msgs64 => {
            let end = Instant::now() + amount.duration;
            while Instant::now() < end {
                for _ in 0..256 {
                    socket.send(&message).await?;
                }
            }
        }
        Workload::Msgs64Unreliable => {
            let payload = Payload {
                data: Bytes::from_static(&DATA),
            };
            let end = Instant::now() + amount.duration;
            let mut sent = 0u64;
            while Instant::now() < end {
                for _ in 0..256 {
                    socket.send(&payload.encode_to_vec()).await?;
                }
                sent += 256;
            }
            Report::SentMessages { messages: sent }.print();
        }
        Workload::Rtt64 => {
            let mut buf = [0u8; 128];
            let mut sampler = Sampler::new(amount.duration);
            while sampler.more() {
                let started = Instant::now();
                loop {
                    socket.send(&message).await?;
                    match tokio::time::timeout(Duration::from_millis(100), socket.recv(&mut buf))
                        .await
                    {
                        Ok(received) => {
                            received?;
                            break;
                        }
                        Err(_) => continue,
                    }
                }
                sampler.record(started);
            }
            sampler.report().print();
        }
        Workload::Bulk | Workload::Conns10k => {
            anyhow::bail!("raw-udp has no {workload:?} workload")
        }
    }
    // The end marker, a few times in case one is lost.
    // (The server leaves at the first; later sends may be refused.)
    for _ in 0..10 {
        let _ = socket.send(&END).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}
