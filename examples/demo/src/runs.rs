//! One run per example, transport and path: a server and its clients in
//! this process, on the path asked for.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use protowright::net::{Net, Tokio};
use protowright::{ServerConfig, Transport};
use protowright_sim::{FaultControl, Faults, Faulty};

use crate::RUN;
use crate::resends::Sampler;
use crate::table::Row;

/// The share of datagrams the lossy path loses, each way.
pub(crate) const LOSS: f64 = 0.05;

/// The size of the file the tour downloads.
const FILE: usize = 8 << 20;

/// Which path a run takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// Loopback as it is.
    Clean,
    /// Loopback through the fault layer: `LOSS` of the datagrams lost.
    Lossy,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Clean => "loopback",
            Self::Lossy => "5% loss",
        })
    }
}

/// The loopback address with any port.
fn any_port() -> std::net::SocketAddr {
    (std::net::Ipv4Addr::LOCALHOST, 0).into()
}

/// The lossy network: real sockets with the fault layer in front (both the
/// server and its clients use it, so datagrams are lost both ways).
fn lossy() -> Faulty<Tokio> {
    let control = FaultControl::new(7);
    control.set(Faults::loss(LOSS));
    Faulty::new(Tokio, control)
}

fn ms(duration: Option<Duration>) -> String {
    duration.map_or("-".to_owned(), |d| {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    })
}

/// Chat bots in rooms for a couple of seconds.
pub(crate) async fn chat(transport: Transport, path: Path) -> anyhow::Result<Row> {
    match path {
        Path::Clean => chat_on(Tokio, transport, path).await,
        Path::Lossy => chat_on(lossy(), transport, path).await,
    }
}

async fn chat_on<N: Net>(net: N, transport: Transport, path: Path) -> anyhow::Result<Row> {
    let config = ServerConfig::default();
    let limits = chat::Limits::default();
    let running = chat::serve(net.clone(), transport, any_port(), config, limits).await?;
    let sampler = Sampler::start(running.handle().clone());
    let options = chat::BotsOptions {
        count: 8,
        duration: RUN,
        ..chat::BotsOptions::default()
    };
    let summary = chat::bots(net, transport, running.addr(), options).await?;
    let resent = sampler.stop();
    running.shutdown().await;
    let seconds = summary.duration.as_secs_f64().max(1e-3);
    Ok(Row {
        example: "chat",
        transport,
        path,
        messages: summary.received,
        throughput: format!("{:.0} lines/s", summary.received as f64 / seconds),
        rtt: format!("p50 {}", ms(summary.p50)),
        resent: (transport == Transport::Udp).then_some(resent),
        verified: format!(
            "{} of {} lines delivered",
            summary.received, summary.expected
        ),
        ok: summary.is_clean(),
    })
}

/// Game bots playing for a couple of seconds (reliable UDP only).
pub(crate) async fn game(path: Path) -> anyhow::Result<Row> {
    match path {
        Path::Clean => game_on(Tokio, path).await,
        Path::Lossy => game_on(lossy(), path).await,
    }
}

async fn game_on<N: Net>(net: N, path: Path) -> anyhow::Result<Row> {
    let server = game::serve(net.clone(), any_port(), game::Settings::default()).await?;
    let sampler = Sampler::start(server.handle().clone());
    let settings = game::BotSettings {
        count: 4,
        duration: RUN,
        ..game::BotSettings::default()
    };
    let summary = game::bots(net, server.local_addr(), settings).await?;
    let resent = sampler.stop();
    server.shutdown().await;
    let snapshots: u64 = summary.bots.iter().map(|b| b.view.snapshots).sum();
    let events: u64 = summary.bots.iter().map(|b| b.view.events).sum();
    let (lag, _) = summary.lag();
    Ok(Row {
        example: "game",
        transport: Transport::Udp,
        path,
        messages: snapshots + events,
        throughput: format!(
            "{:.0} snapshots/s",
            snapshots as f64 / summary.duration.as_secs_f64().max(1e-3)
        ),
        rtt: ms(summary.rtt()),
        resent: Some(resent),
        verified: format!(
            "{events} events exactly once; {:.1}% snapshots lost, lag {lag:.1} ticks",
            summary.snapshot_loss() * 100.0
        ),
        ok: summary.is_sound(),
    })
}

/// One download of a generated file, verified.
pub(crate) async fn file(transport: Transport, path: Path) -> anyhow::Result<Row> {
    match path {
        Path::Clean => file_on(Tokio, transport, path).await,
        Path::Lossy => file_on(lossy(), transport, path).await,
    }
}

async fn file_on<N: Net>(net: N, transport: Transport, path: Path) -> anyhow::Result<Row> {
    let shared = tempfile::tempdir()?;
    let content = pattern(FILE);
    std::fs::write(shared.path().join("tour.bin"), &content)?;
    let config = file_share::ShareConfig::default();
    let running =
        file_share::serve(net.clone(), transport, any_port(), shared.path(), config).await?;
    let sampler = Sampler::start(running.handle.clone());
    let out = tempfile::tempdir()?;
    let summary = file_share::get(
        net,
        transport,
        running.addr,
        &["tour.bin".to_owned()],
        out.path(),
        file_share::GetConfig::default(),
        Arc::new(file_share::Quiet),
    )
    .await?;
    let resent = sampler.stop();
    running.handle.shutdown().await;
    let arrived = std::fs::read(out.path().join("tour.bin")).unwrap_or_default();
    let identical = arrived == content;
    let chunks: u64 = summary
        .files
        .iter()
        .filter_map(|file| file.result.as_ref().ok())
        .map(|fetched| fetched.chunks_fetched)
        .sum();
    let seconds = summary.elapsed.as_secs_f64().max(1e-3);
    Ok(Row {
        example: "file-share",
        transport,
        path,
        messages: chunks,
        throughput: format!("{:.1} MB/s", FILE as f64 / seconds / 1e6),
        rtt: "-".to_owned(),
        resent: (transport == Transport::Udp).then_some(resent),
        verified: if summary.all_verified() && identical {
            format!(
                "{:.1} MiB, SHA-256 and bytes identical",
                FILE as f64 / (1 << 20) as f64
            )
        } else {
            "NOT verified".to_owned()
        },
        ok: summary.all_verified() && identical,
    })
}

/// The tour file's bytes: a pseudo-random pattern.
fn pattern(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}
