//! `raw-tcp`: plain tokio sockets, a 4-byte length and 64 bytes, nothing
//! else. The physical limit of a stream on this machine.
//!
//! In the loss rows it is the kernel's TCP beside the UDP contenders, with
//! the congestion control the harness names in `PW_BENCH_TCP_CONGESTION`
//! (BBR where the kernel has it): both ends set it on their socket, and the
//! client reports the one in effect as `tcp_congestion`.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use super::bulk::{self, Received};
use super::{Meter, Sampler, memory, ready};
use crate::{Amount, Report, Workload};

const RECORD: usize = 4 + 64;

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
    let (mut stream, _) = listener.accept().await?;
    stream.set_nodelay(true)?;
    congestion(&stream)?;
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
        Workload::Bulk => {
            let mut buf = vec![0u8; 256 * 1024];
            let mut received = Received::default();
            loop {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                received.add(&buf[..n]);
            }
            received.report().print();
        }
        Workload::Conns10k | Workload::Msgs64Unreliable => unreachable!("handled above"),
    }
    Ok(())
}

/// Sets the congestion control the harness asked for, if it did; returns
/// the one the socket then uses. (Set on a connected socket: Linux applies
/// it from then on, and both ends set it before any data moves.)
fn congestion(stream: &TcpStream) -> anyhow::Result<Option<String>> {
    let Ok(wanted) = std::env::var("PW_BENCH_TCP_CONGESTION") else {
        return Ok(None);
    };
    let socket = socket2::SockRef::from(stream);
    socket
        .set_tcp_congestion(wanted.as_bytes())
        .map_err(|error| anyhow::anyhow!("TCP congestion control `{wanted}`: {error}"))?;
    let used = socket.tcp_congestion()?;
    let used = String::from_utf8_lossy(&used);
    Ok(Some(used.trim_end_matches('\0').to_owned()))
}

/// Accepts and holds `count` idle connections, then reports memory.
async fn hold_connections(
    listener: TcpListener,
    count: usize,
    baseline: u64,
) -> anyhow::Result<()> {
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::with_capacity(count)));
    let accepting = {
        let held = std::sync::Arc::clone(&held);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                held.lock().unwrap_or_else(|e| e.into_inner()).push(stream);
            }
        })
    };
    let live = || held.lock().unwrap_or_else(|e| e.into_inner()).len();
    memory::report_when_connected(count, baseline, live).await?;
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
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    if let Some(algorithm) = congestion(&stream)? {
        println!("{}", serde_json::json!({ "tcp_congestion": algorithm }));
    }
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
        Workload::Bulk => {
            let expected = bulk::expected(amount.bytes);
            // The physical limit: the largest writes the pattern allows.
            for block in bulk::blocks(amount.bytes, bulk::PATTERN) {
                stream.write_all(&block).await?;
            }
            stream.shutdown().await?;
            // Wait for the server to finish reading before exiting.
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).await?;
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
