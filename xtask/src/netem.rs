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
        // Without ethtool too: one segment per packet at most, so TCP's
        // TSO and UDP's GSO batches (quinn sends them) are cut into
        // MTU-sized packets before the loss rule sees them. Otherwise the
        // rule drops a whole 64 KiB TCP segment or a batch of datagrams as
        // one packet: TCP saw a fraction of the loss, and a GSO sender
        // fewer, larger loss events than a 1500-byte path gives. (This
        // machine has no ethtool. gso_max_size 1500 would do it too, but
        // made the kernel's TCP three times slower again here.)
        exec(&["ip", "link", "set", "lo", "gso_max_segs", "1"])?;
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
/// back, each direction delayed by `delay`, and lost as a 1500-byte path
/// would lose them: a datagram of n bytes is dropped if any of its
/// ceil(n / 1500) units is (each with probability `loss`), so a 16 KiB
/// datagram is lost about 11 times as often as a 1,200-byte one, as its
/// fragments or the packets of a real path would be. Its socket has 4 MiB
/// buffers both ways (a burst at 20 ms round trip is not dropped by the
/// relay itself). Stops when dropped.
pub(crate) struct Relay {
    pub(crate) addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    pub(crate) fn start(server: SocketAddr, delay: Duration, loss: f64) -> Result<Self> {
        let socket = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        socket.set_recv_buffer_size(BUFFER)?;
        socket.set_send_buffer_size(BUFFER)?;
        let loopback: SocketAddr = "127.0.0.1:0".parse()?;
        socket.bind(&loopback.into())?;
        let socket: UdpSocket = socket.into();
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            pin_to_free_core();
            relay(socket, server, delay, loss, &stopping)
        });
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

/// The relay socket's receive and send buffers (the kernel caps them at
/// net.core.rmem_max / wmem_max).
const BUFFER: usize = 4 * 1024 * 1024;

/// The unit of loss: a datagram loses each 1500 bytes separately.
const UNIT: usize = 1500;

/// Pins the calling thread (the relay) to a core of its own: the server
/// and the client are pinned to cores 0 and 1, so core 2, when the machine
/// has one. On a two-core machine there is none free and the relay stays
/// unpinned, sharing the cores with them (the scheduler places it).
fn pin_to_free_core() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 3 {
        return;
    }
    // /proc/thread-self names this thread's id; taskset takes it.
    let Ok(me) = std::fs::read_link("/proc/thread-self") else {
        return;
    };
    if let Some(tid) = me.file_name().and_then(|n| n.to_str()) {
        let _ = Command::new("taskset")
            .args(["-p", "-c", "2", tid])
            .stdout(std::process::Stdio::null())
            .status();
    }
}

/// Draws whether a datagram of `len` bytes is lost: each of its 1500-byte
/// units is lost below `threshold` (xorshift64 on `rng`).
fn is_lost(len: usize, rng: &mut u64, threshold: u64) -> bool {
    let units = len.div_ceil(UNIT).max(1);
    let mut lost = false;
    for _ in 0..units {
        // xorshift64: a fixed-seed generator, so runs drop alike.
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        lost |= *rng < threshold;
    }
    lost
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
            if is_lost(len, &mut rng, threshold) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The share of `count` datagrams of `len` bytes the relay drops.
    fn dropped_share(len: usize, loss: f64, count: u32) -> f64 {
        let threshold = (loss * u64::MAX as f64) as u64;
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let lost = (0..count)
            .filter(|_| is_lost(len, &mut rng, threshold))
            .count();
        lost as f64 / f64::from(count)
    }

    #[test]
    fn a_datagram_is_lost_as_often_as_any_of_its_1500_byte_units() {
        // 1% per unit: one unit 1%, eleven units (16 KiB) 1 - 0.99^11.
        let small = dropped_share(1200, 0.01, 200_000);
        let jumbo = dropped_share(16 * 1024, 0.01, 200_000);
        assert!((small - 0.01).abs() < 0.002, "{small}");
        let expected = 1.0 - 0.99f64.powi(11);
        assert!((jumbo - expected).abs() < 0.005, "{jumbo} vs {expected}");
    }
}
