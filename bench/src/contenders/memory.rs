//! Measuring a server's memory for the `conns10k` workload.

use std::time::Duration;

use tokio::time::Instant;

use crate::Report;

/// The process's resident memory in bytes, from `/proc/self/status`.
pub(super) fn resident_bytes() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/self/status"))?;
    let kib: u64 = line.split_whitespace().nth(1).unwrap_or("0").parse()?;
    Ok(kib * 1024)
}

/// Waits until `live()` reports `expected` connections (or 60 s pass), lets
/// them settle, and reports the resident memory gained per connection since
/// `baseline`.
pub(super) async fn report_when_connected(
    expected: usize,
    baseline: u64,
    live: impl Fn() -> usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while live() < expected {
        if Instant::now() > deadline {
            anyhow::bail!("only {} of {expected} connections arrived", live());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let gained = resident_bytes()?.saturating_sub(baseline);
    Report::Memory {
        bytes_per_conn: gained as f64 / expected as f64,
    }
    .print();
    Ok(())
}

/// Opens `count` connections with `open`, at most 64 at a time, and
/// reports how long it took; returns what `open` returned. (64 at a time
/// keeps the listen backlog from overflowing.)
pub(super) async fn open_all<T, F, Fut>(count: usize, open: F) -> anyhow::Result<Vec<T>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let started = Instant::now();
    let mut opened = Vec::with_capacity(count);
    let mut pending = futures_util::stream::FuturesUnordered::new();
    let mut launched = 0;
    while opened.len() < count {
        while launched < count && pending.len() < 64 {
            pending.push(open());
            launched += 1;
        }
        if let Some(result) = futures_util::StreamExt::next(&mut pending).await {
            opened.push(result?);
        }
    }
    Report::Connected {
        seconds: started.elapsed().as_secs_f64(),
    }
    .print();
    Ok(opened)
}

/// The client side for bare streams: opens `count` connections to `addr`,
/// reports the time, and holds them until the server closes one (it has
/// measured and exited).
pub(super) async fn hold_streams(addr: std::net::SocketAddr, count: usize) -> anyhow::Result<()> {
    let streams = open_all(count, || async {
        Ok(tokio::net::TcpStream::connect(addr).await?)
    })
    .await?;
    if let Some(mut stream) = streams.into_iter().next() {
        let mut byte = [0u8; 1];
        let closed = tokio::io::AsyncReadExt::read(&mut stream, &mut byte);
        let _ = tokio::time::timeout(Duration::from_secs(60), closed).await;
    }
    Ok(())
}
