//! The fault model as a network: any `Net`, with faults between the
//! transport and its datagram sockets.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use protowright::net::{Datagram, Net};

use super::{FaultCounters, Faults, Link, Transmission};

/// Changes and reads the faults of a [`Faulty`] network while it runs.
/// Cheap to clone; clones (and every socket of the network) share it.
#[derive(Debug, Clone)]
pub struct FaultControl {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    /// The links' clock: a fixed instant plus the simulated time elapsed
    /// (or, on real sockets, tokio's clock), so link state made before a
    /// host restarted (whose new runtime has a clock of its own) stays
    /// comparable with what comes after.
    base: std::time::Instant,
    seed: u64,
    /// The faults of every path without an override.
    everywhere: Faults,
    /// Faults of the paths between two hosts, both ways, by their
    /// addresses in order.
    between: BTreeMap<(IpAddr, IpAddr), Faults>,
    /// One link per direction of each path used, by source and destination.
    links: BTreeMap<(SocketAddr, SocketAddr), Link>,
}

impl FaultControl {
    /// Faults drawn from `seed`; every path perfect until told otherwise.
    pub fn new(seed: u64) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                base: std::time::Instant::now(),
                seed,
                everywhere: Faults::none(),
                between: BTreeMap::new(),
                links: BTreeMap::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `faults` to every path without its own settings, from the
    /// next datagram on.
    pub fn set(&self, faults: Faults) {
        let mut state = self.lock();
        state.everywhere = faults;
        state.refresh();
    }

    /// Applies `faults` to the path between hosts `a` and `b`, both ways.
    pub fn set_between(&self, a: IpAddr, b: IpAddr, faults: Faults) {
        let mut state = self.lock();
        state.between.insert(ordered(a, b), faults);
        state.refresh();
    }

    /// Makes every path perfect again (the counters are kept).
    pub fn heal(&self) {
        let mut state = self.lock();
        state.everywhere = Faults::none();
        state.between.clear();
        state.refresh();
    }

    /// The faults of paths without their own settings.
    pub fn faults(&self) -> Faults {
        self.lock().everywhere
    }

    /// What the faults have done so far, over every path.
    pub fn counters(&self) -> FaultCounters {
        let state = self.lock();
        let mut total = FaultCounters::default();
        for link in state.links.values() {
            total.add(&link.counters());
        }
        total
    }

    /// Now on the links' clock: the simulated time elapsed in a
    /// simulation, tokio's clock elsewhere.
    fn link_now(&self, now: tokio::time::Instant) -> std::time::Instant {
        match turmoil::sim_elapsed() {
            Some(elapsed) => self.lock().base + elapsed,
            None => now.into_std(),
        }
    }

    /// Passes one datagram from `from` to `to` through its path.
    fn transmit(
        &self,
        from: SocketAddr,
        to: SocketAddr,
        now: std::time::Instant,
        datagram: Vec<u8>,
    ) -> Transmission {
        let mut state = self.lock();
        let faults = state.faults_of(from.ip(), to.ip());
        if faults.is_perfect() && !state.links.contains_key(&(from, to)) {
            return Transmission {
                copies: vec![(now, datagram)],
                damaged: false,
            };
        }
        let seed = link_seed(state.seed, from, to);
        let link = state
            .links
            .entry((from, to))
            .or_insert_with(|| Link::new(faults, seed));
        link.transmit(now, datagram)
    }
}

impl State {
    fn faults_of(&self, from: IpAddr, to: IpAddr) -> Faults {
        self.between
            .get(&ordered(from, to))
            .copied()
            .unwrap_or(self.everywhere)
    }

    /// Gives every existing link the settings now in force.
    fn refresh(&mut self) {
        let keys: Vec<(SocketAddr, SocketAddr)> = self.links.keys().copied().collect();
        for (from, to) in keys {
            let faults = self.faults_of(from.ip(), to.ip());
            if let Some(link) = self.links.get_mut(&(from, to)) {
                link.set_faults(faults);
            }
        }
    }
}

fn ordered(a: IpAddr, b: IpAddr) -> (IpAddr, IpAddr) {
    if a <= b { (a, b) } else { (b, a) }
}

/// Each direction of each path draws from its own generator, so adding
/// traffic on one path does not change the faults of another.
fn link_seed(seed: u64, from: SocketAddr, to: SocketAddr) -> u64 {
    [from, to]
        .iter()
        .fold(crate::random::mix(seed), |acc, addr| {
            let ip = match addr.ip() {
                IpAddr::V4(v4) => u128::from(v4.to_bits()),
                IpAddr::V6(v6) => v6.to_bits(),
            };
            let folded = (ip as u64) ^ ((ip >> 64) as u64) ^ (u64::from(addr.port()) << 48);
            crate::random::mix(acc ^ folded)
        })
}

/// A network whose datagrams cross the fault model on their way out.
///
/// Streams (TCP) pass through unchanged: a byte stream cannot lose a
/// segment without hanging, since simulated TCP never retransmits; fault
/// TCP with partitions, holds and crashes instead. Datagram sockets send
/// through [`FaultControl`]'s links; delayed copies leave on a task of
/// their own at their time. Works over any provider: turmoil's, or the
/// real sockets of `protowright::net::Tokio` (real loss on loopback).
#[derive(Debug, Clone)]
pub struct Faulty<N> {
    inner: N,
    control: FaultControl,
    /// The host's own address, for sockets bound to an unspecified one.
    host: Option<IpAddr>,
}

impl<N: Net> Faulty<N> {
    /// `inner` with the faults `control` sets.
    pub fn new(inner: N, control: FaultControl) -> Self {
        Self {
            inner,
            control,
            host: None,
        }
    }

    /// The same, for code running on the host at `address` (so paths set
    /// with [`FaultControl::set_between`] are found for sockets bound to an
    /// unspecified address).
    pub fn on_host(inner: N, control: FaultControl, address: IpAddr) -> Self {
        Self {
            inner,
            control,
            host: Some(address),
        }
    }

    /// What changes and reads the faults.
    pub fn control(&self) -> &FaultControl {
        &self.control
    }
}

impl<N: Net> Net for Faulty<N> {
    type Stream = N::Stream;
    type Listener = N::Listener;
    type Datagram = FaultyDatagram<N::Datagram>;

    fn listen(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>> + Send {
        self.inner.listen(addr)
    }

    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send {
        self.inner.connect(addr)
    }

    async fn bind_datagram(&self, addr: SocketAddr) -> io::Result<Self::Datagram> {
        let inner = self.inner.bind_datagram(addr).await?;
        let mut local = inner.local_addr()?;
        if let Some(host) = self.host
            && local.ip().is_unspecified()
        {
            local.set_ip(host);
        }
        Ok(FaultyDatagram {
            inner: Arc::new(inner),
            local,
            control: self.control.clone(),
        })
    }

    fn fill_random(&self, dest: &mut [u8]) -> io::Result<()> {
        self.inner.fill_random(dest)
    }
}

/// A datagram socket whose sends cross the fault model.
#[derive(Debug)]
pub struct FaultyDatagram<D> {
    inner: Arc<D>,
    /// The address datagrams leave from, as the paths are keyed.
    local: SocketAddr,
    control: FaultControl,
}

impl<D: Datagram> Datagram for FaultyDatagram<D> {
    async fn send_to(&self, datagram: &[u8], target: SocketAddr) -> io::Result<usize> {
        let now = tokio::time::Instant::now();
        let link_now = self.control.link_now(now);
        let transmission = self
            .control
            .transmit(self.local, target, link_now, datagram.to_vec());
        for (at, bytes) in transmission.copies {
            let at = now + at.saturating_duration_since(link_now);
            if at <= now {
                // Lost datagrams are the protocol's business: only say so.
                if let Err(error) = self.inner.send_to(&bytes, target).await {
                    tracing::debug!(%target, %error, "a faulted send failed");
                }
                continue;
            }
            let inner = Arc::clone(&self.inner);
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                let _ = inner.send_to(&bytes, target).await;
            });
        }
        Ok(datagram.len())
    }

    fn recv_from(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send {
        self.inner.recv_from(buf)
    }

    fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
        self.inner.try_recv_from(buf)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn connect(&self, peer: SocketAddr) -> impl Future<Output = io::Result<()>> + Send {
        self.inner.connect(peer)
    }
}
