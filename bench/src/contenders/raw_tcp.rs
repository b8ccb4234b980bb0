//! `raw-tcp`: plain tokio sockets, a 4-byte length and 64 bytes, nothing
//! else. The physical limit of a stream on this machine.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use super::{Meter, Sampler, ready};
use crate::Workload;

const RECORD: usize = 4 + 64;

pub(super) async fn serve(workload: Workload) -> anyhow::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    ready(listener.local_addr()?);
    let (mut stream, _) = listener.accept().await?;
    stream.set_nodelay(true)?;
    match workload {
        Workload::Msgs64 => {
            let mut buf = vec![0u8; 256 * 1024];
            let mut meter = Meter::default();
            let mut bytes = 0u64;
            loop {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                bytes += n as u64;
                meter.add(n as u64);
            }
            meter.finish();
            meter.messages = bytes / RECORD as u64;
            meter.report().print();
        }
        Workload::Rtt64 => {
            let mut record = [0u8; RECORD];
            while stream.read_exact(&mut record).await.is_ok() {
                stream.write_all(&record).await?;
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
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut record = [0x5au8; RECORD];
    record[..4].copy_from_slice(&64u32.to_be_bytes());
    match workload {
        Workload::Msgs64 => {
            let batch: Vec<u8> = record.iter().copied().cycle().take(RECORD * 1000).collect();
            let end = Instant::now() + duration;
            while Instant::now() < end {
                stream.write_all(&batch).await?;
            }
            stream.shutdown().await?;
        }
        Workload::Rtt64 => {
            let mut reply = [0u8; RECORD];
            let mut sampler = Sampler::new(duration);
            while sampler.more() {
                let started = Instant::now();
                stream.write_all(&record).await?;
                stream.read_exact(&mut reply).await?;
                sampler.record(started);
            }
            sampler.report().print();
        }
    }
    Ok(())
}
