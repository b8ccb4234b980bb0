//! The contenders. Each is one module with a `serve` and a `drive`; adding
//! a contender is adding a module and a line in each `match` below.

mod bulk;
mod kcp;
mod memory;
mod protowright;
mod protowright_sim;
mod quinn;
mod quinn_datagram;
mod quinn_framed;
mod raw_tcp;
mod raw_udp;
mod tokio_codec;
mod tonic;

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use anyhow::bail;
use tokio::time::Instant;

use self::protowright::Variant::{Tcp, Udp, UdpPlaintext};

use crate::{Amount, Report, Workload};

/// Every contender's name, as the harness and the results name it.
pub(crate) const NAMES: &[&str] = &[
    "raw-tcp",
    "tokio-codec",
    "protowright-tcp",
    "tonic",
    "raw-udp",
    "quinn",
    "quinn-bbr",
    "quinn-framed",
    "quinn-datagram",
    "quinn-jumbo",
    "kcp",
    "protowright-udp",
    "protowright-udp-plaintext",
    "protowright-sim",
];

/// Serves the client of `workload`.
pub(crate) async fn serve(name: &str, workload: Workload, amount: Amount) -> anyhow::Result<()> {
    match name {
        "raw-tcp" => raw_tcp::serve(workload, amount).await,
        "tokio-codec" => tokio_codec::serve(workload, amount).await,
        "protowright-tcp" => protowright::serve(Tcp, workload, amount).await,
        "tonic" => tonic::serve(workload, amount).await,
        "raw-udp" => raw_udp::serve(workload, amount).await,
        "quinn" | "quinn-bbr" | "quinn-framed" | "quinn-datagram" | "quinn-jumbo" => {
            quinn::serve(quinn::Flavor::named(name)?, workload, amount).await
        }
        "kcp" => kcp::serve(workload, amount).await,
        "protowright-udp" => protowright::serve(Udp, workload, amount).await,
        "protowright-udp-plaintext" => protowright::serve(UdpPlaintext, workload, amount).await,
        other => bail!("unknown contender `{other}`"),
    }
}

/// Drives `workload` against the server at `addr`.
pub(crate) async fn drive(
    name: &str,
    workload: Workload,
    amount: Amount,
    addr: SocketAddr,
) -> anyhow::Result<()> {
    match name {
        "raw-tcp" => raw_tcp::drive(workload, amount, addr).await,
        "tokio-codec" => tokio_codec::drive(workload, amount, addr).await,
        "protowright-tcp" => protowright::drive(Tcp, workload, amount, addr).await,
        "tonic" => tonic::drive(workload, amount, addr).await,
        "raw-udp" => raw_udp::drive(workload, amount, addr).await,
        "quinn" | "quinn-bbr" | "quinn-framed" | "quinn-datagram" | "quinn-jumbo" => {
            quinn::drive(quinn::Flavor::named(name)?, workload, amount, addr).await
        }
        "kcp" => kcp::drive(workload, amount, addr).await,
        "protowright-udp" => protowright::drive(Udp, workload, amount, addr).await,
        "protowright-udp-plaintext" => {
            protowright::drive(UdpPlaintext, workload, amount, addr).await
        }
        other => bail!("unknown contender `{other}`"),
    }
}

/// Runs the simulation benchmark's `role`.
pub(crate) fn simulation(role: &str, duration: Duration) -> anyhow::Result<()> {
    match role {
        "server" => protowright_sim::serve(),
        _ => protowright_sim::drive(duration),
    }
}

/// Tells the harness where the server listens.
fn ready(addr: SocketAddr) {
    use std::io::Write;
    println!("ready {addr}");
    let _ = std::io::stdout().flush();
}

/// Counts messages between the first and the last. Reads the clock only
/// at the first message, every 4096th, and at the end, so the measuring
/// itself costs every contender next to nothing.
#[derive(Debug, Default)]
struct Meter {
    first: Option<Instant>,
    last: Option<Instant>,
    messages: u64,
}

impl Meter {
    fn add(&mut self, messages: u64) {
        let before = self.messages;
        self.messages += messages;
        if self.first.is_none() || before / 4096 != self.messages / 4096 {
            let now = Instant::now();
            self.first.get_or_insert(now);
            self.last = Some(now);
        }
    }

    /// Marks the end of the stream: the last message came just before.
    fn finish(&mut self) {
        self.finish_at(Instant::now());
    }

    /// Marks the end of the stream at `at`: every message counted had
    /// arrived by then (for a datagram receiver, the moment it last found
    /// nothing waiting, rather than the end of its quiet wait).
    fn finish_at(&mut self, at: Instant) {
        if self.first.is_some() {
            self.last = Some(at);
        }
    }

    fn report(&self) -> Report {
        let elapsed = match (self.first, self.last) {
            (Some(first), Some(last)) => last - first,
            _ => Duration::ZERO,
        };
        Report::Throughput {
            messages: self.messages,
            elapsed,
        }
    }
}

/// How long a receiver of unreliable messages waits, once messages have
/// flowed, before it takes the stream as ended: the sender's end marker
/// travels unreliably too, or not at all.
const QUIET: Duration = Duration::from_millis(500);

/// How long it waits for the first message (the sender may still be
/// connecting).
const FIRST: Duration = Duration::from_secs(30);

/// What a receiver of unreliable messages got from one receive.
struct Next<T> {
    /// The receive's result, or `None` when nothing came within the wait.
    item: Option<T>,
    /// When the receiver found nothing waiting and began to wait, if it
    /// had to: every message before this one had arrived by then.
    waited: Option<Instant>,
}

/// Receives with `receive`, waiting at most `QUIET` (`FIRST` while
/// `meter` has counted nothing). The clock is read only when nothing is
/// waiting, so a receiver that is kept busy pays nothing per message.
async fn next_or_quiet<T>(receive: impl Future<Output = T>, meter: &Meter) -> Next<T> {
    let mut receive = pin!(receive);
    if let Poll::Ready(item) = poll_fn(|cx| Poll::Ready(receive.as_mut().poll(cx))).await {
        return Next {
            item: Some(item),
            waited: None,
        };
    }
    let waited = Some(Instant::now());
    let wait = if meter.messages == 0 { FIRST } else { QUIET };
    Next {
        item: tokio::time::timeout(wait, receive).await.ok(),
        waited,
    }
}

/// Collects round-trip samples for a fixed time after a warm-up.
#[derive(Debug)]
struct Sampler {
    warm_up: u32,
    end: Option<Instant>,
    duration: Duration,
    samples: Vec<Duration>,
}

impl Sampler {
    fn new(duration: Duration) -> Self {
        Self {
            warm_up: 1000,
            end: None,
            duration,
            samples: Vec::with_capacity(200_000),
        }
    }

    /// Whether to make another round trip.
    fn more(&self) -> bool {
        self.end.is_none_or(|end| Instant::now() < end) && self.samples.len() < 2_000_000
    }

    /// Records a round trip that started at `started`.
    fn record(&mut self, started: Instant) {
        if self.warm_up > 0 {
            self.warm_up -= 1;
            if self.warm_up == 0 {
                self.end = Some(Instant::now() + self.duration);
            }
            return;
        }
        self.samples.push(started.elapsed());
    }

    fn report(self) -> Report {
        Report::latency(self.samples)
    }
}
