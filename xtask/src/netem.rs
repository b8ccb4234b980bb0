//! Network conditions for the loss workloads, made from what these
//! machines have (there is no netem): network namespaces whose loopback
//! drops a share of packets at random (nftables `numgen random`), and a
//! userspace relay that adds delay and loss to UDP.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A network namespace, deleted when dropped.
pub(crate) struct Namespace {
    pub(crate) name: String,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run(args: &[&str]) -> Result<()> {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("running {}", args[0]))?;
    if !output.status.success() {
        bail!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

impl Namespace {
    /// A namespace whose loopback has MTU 1500, offloads off, and drops
    /// `percent`% of packets (every protocol, both directions, since both
    /// ends share the loopback) at random. The drop is on input: a drop on
    /// output would fail the sender's system call (EPERM), which real
    /// loss never does.
    pub(crate) fn lossy(percent: u32) -> Result<Self> {
        let name = format!("pw-bench-{}-{percent}", std::process::id());
        run(&["ip", "netns", "add", &name])?;
        let namespace = Namespace { name: name.clone() };
        let exec = |rest: &[&str]| -> Result<()> {
            let mut args = vec!["ip", "netns", "exec", name.as_str()];
            args.extend_from_slice(rest);
            run(&args)
        };
        exec(&["ip", "link", "set", "lo", "mtu", "1500", "up"])?;
        // Offloads off, where ethtool exists; loopback may not support all.
        let _ = exec(&[
            "ethtool", "-K", "lo", "tso", "off", "gso", "off", "gro", "off",
        ]);
        if percent > 0 {
            exec(&["nft", "add", "table", "inet", "pwbench"])?;
            exec(&[
                "nft",
                "add",
                "chain",
                "inet",
                "pwbench",
                "in",
                "{ type filter hook input priority 0; }",
            ])?;
            let rule = format!("numgen random mod 100 < {percent} drop");
            let mut args = vec!["nft", "add", "rule", "inet", "pwbench", "in"];
            args.extend(rule.split(' '));
            exec(&args)?;
        }
        Ok(namespace)
    }
}

/// A UDP relay on loopback: datagrams from the client go to the server and
/// back, each direction delayed by `delay` and dropped with probability
/// `loss`. Stops when dropped.
pub(crate) struct Relay {
    pub(crate) addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    pub(crate) fn start(server: SocketAddr, delay: Duration, loss: f64) -> Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || relay(socket, server, delay, loss, &stopping));
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A datagram held by the relay: when it is due, a tiebreak, where it goes.
type Delayed = (Instant, u64, SocketAddr, Vec<u8>);

/// The relay's loop: one socket both ways, a queue ordered by due time.
fn relay(socket: UdpSocket, server: SocketAddr, delay: Duration, loss: f64, stop: &AtomicBool) {
    let mut client: Option<SocketAddr> = None;
    let mut queue: BinaryHeap<Reverse<Delayed>> = BinaryHeap::new();
    let mut sequence = 0u64;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut buf = vec![0u8; 65_536];
    let threshold = (loss * u64::MAX as f64) as u64;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while let Some(Reverse((due, ..))) = queue.peek() {
            if *due > now {
                break;
            }
            if let Some(Reverse((_, _, to, data))) = queue.pop() {
                let _ = socket.send_to(&data, to);
            }
        }
        let wait = queue
            .peek()
            .map_or(Duration::from_millis(5), |Reverse((due, ..))| {
                due.saturating_duration_since(now)
            })
            .clamp(Duration::from_micros(50), Duration::from_millis(5));
        let _ = socket.set_read_timeout(Some(wait));
        // Take every datagram waiting before sleeping again.
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            let to = if from == server {
                match client {
                    Some(client) => client,
                    None => continue,
                }
            } else {
                client = Some(from);
                server
            };
            // xorshift64: a fixed-seed generator, so runs drop alike.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            if rng < threshold {
                continue;
            }
            sequence += 1;
            queue.push(Reverse((
                Instant::now() + delay,
                sequence,
                to,
                buf[..len].to_vec(),
            )));
            let _ = socket.set_read_timeout(Some(Duration::from_micros(1)));
            if queue.len() > 200_000 {
                break;
            }
        }
    }
}

/// Mathis et al.'s estimate of TCP (Reno) throughput in bytes per second
/// at round-trip `rtt` and loss rate `loss`: MSS / RTT × 1.22 / √loss.
pub(crate) fn mathis_bytes_per_s(mss: f64, rtt: Duration, loss: f64) -> f64 {
    mss / rtt.as_secs_f64() * 1.22 / loss.sqrt()
}
