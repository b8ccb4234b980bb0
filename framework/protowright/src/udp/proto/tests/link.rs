//! Two endpoints joined by a simulated link with seeded loss, duplication,
//! reordering, delay, corruption and a maximum datagram size, stepped in
//! virtual time with no runtime.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use protowright_sim::Faults as SimFaults;
use protowright_sim::fault::{Bandwidth, Link as FaultLink};

use super::tap::FragmentLog;
use crate::udp::proto::{
    Config, Connection, ConnectionHandle, Endpoint, Event, Lane, Message, SendError,
};

/// What the link does to each datagram: the harness's settings. The
/// fault model itself (which datagram is lost, duplicated, corrupted,
/// delayed or queued) is protowright-sim's `fault::Link`, the same one the
/// simulation toolkit puts in front of real and simulated sockets.
#[derive(Debug, Clone, Copy)]
pub(super) struct Faults {
    pub(super) loss: f64,
    pub(super) duplicate: f64,
    pub(super) corrupt: f64,
    pub(super) delay: Duration,
    /// Extra random delay up to this, which reorders.
    pub(super) jitter: Duration,
    /// Datagrams larger than this are dropped.
    pub(super) max_datagram: usize,
    /// A bandwidth limit on the client-to-server direction: datagrams
    /// queue behind each other and are dropped when the queue is full.
    pub(super) bottleneck: Option<Bottleneck>,
}

/// A link that carries `rate` bytes per second behind a drop-tail queue of
/// `queue` bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bottleneck {
    pub(super) rate: u64,
    pub(super) queue: u64,
}

impl Faults {
    pub(super) fn none() -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            corrupt: 0.0,
            delay: Duration::from_millis(5),
            jitter: Duration::ZERO,
            max_datagram: 65_535,
            bottleneck: None,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub(super) struct LinkCounters {
    pub(super) dropped: u64,
    pub(super) duplicated: u64,
    /// Duplicated datagrams that were not corrupted: each arrives twice
    /// intact, so the receiver must notice the second copy.
    pub(super) duplicated_intact: u64,
    pub(super) corrupted: u64,
    pub(super) delivered: u64,
    /// Datagram bytes delivered to the server.
    pub(super) bytes_to_server: u64,
}

/// Which side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum End {
    Client,
    Server,
}

impl End {
    /// The other side.
    pub(super) fn peer(self) -> Self {
        match self {
            Self::Client => Self::Server,
            Self::Server => Self::Client,
        }
    }
}

/// A datagram on the link: arrival time, a tiebreak, its destination and bytes.
type InFlight = (Instant, u64, End, Vec<u8>);

pub(super) struct World {
    pub(super) now: Instant,
    pub(super) client: Endpoint,
    pub(super) server: Endpoint,
    pub(super) client_addr: SocketAddr,
    pub(super) server_addr: SocketAddr,
    pub(super) faults: Faults,
    pub(super) counters: LinkCounters,
    /// The fault model of each direction.
    to_server: FaultLink,
    to_client: FaultLink,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    sequence: u64,
    pub(super) client_conn: Option<ConnectionHandle>,
    pub(super) server_conn: Option<ConnectionHandle>,
    pub(super) client_events: Vec<Event>,
    pub(super) server_events: Vec<Event>,
    pub(super) client_received: Vec<Message>,
    pub(super) server_received: Vec<Message>,
    /// When each of `server_received` was read.
    pub(super) server_received_at: Vec<Instant>,
    /// Whether the applications read what arrives. A stalled reader
    /// (`false`) neither reads nor releases: everything stays in the engine.
    pub(super) read: bool,
    /// Whether received reliable bytes are released as they are read.
    pub(super) release: bool,
    /// Drops the client's data packet number `.1` counted from here (`.0`
    /// counts them), once.
    pub(super) drop_client_data: Option<(u64, u64)>,
    /// Drops every datagram to this end: its peer's acks and data never
    /// arrive.
    pub(super) cut_to: Option<End>,
    /// Reads the fragments of every datagram delivered to the server.
    pub(super) log_to_server: Option<FragmentLog>,
    /// Every datagram delivered, by destination, when set: what an
    /// attacker on the path records.
    pub(super) captured: Option<Vec<(End, Vec<u8>)>>,
    /// Reliable bytes read per server connection (every connection the
    /// server accepted, the first included, whose messages also go to
    /// `server_received`).
    pub(super) server_bytes: BTreeMap<ConnectionHandle, u64>,
    buf: Vec<u8>,
}

impl Faults {
    /// The shared model's settings for the direction `to`: the bottleneck
    /// is on the client-to-server direction only.
    fn toward(&self, to: End) -> SimFaults {
        let bandwidth = match (to, self.bottleneck) {
            (End::Server, Some(bottleneck)) => Some(Bandwidth {
                bytes_per_second: bottleneck.rate,
                queue_bytes: bottleneck.queue,
            }),
            _ => None,
        };
        SimFaults {
            loss: self.loss,
            duplicate: self.duplicate,
            corrupt: self.corrupt,
            delay: self.delay,
            jitter: self.jitter,
            max_datagram: Some(self.max_datagram),
            bandwidth,
            ..SimFaults::none()
        }
    }
}

impl World {
    pub(super) fn new(config: Config, faults: Faults, seed: u64) -> Self {
        let now = Instant::now();
        let client = Endpoint::new(config.clone(), now, seed ^ 0x1111).expect("valid config");
        let mut server = Endpoint::new(config, now, seed ^ 0x2222).expect("valid config");
        server.listen(true);
        Self {
            now,
            client,
            server,
            client_addr: "10.0.0.1:5000".parse().expect("address"),
            server_addr: "10.0.0.2:6000".parse().expect("address"),
            faults,
            counters: LinkCounters::default(),
            to_server: FaultLink::new(faults.toward(End::Server), seed),
            to_client: FaultLink::new(faults.toward(End::Client), seed ^ 0x5eed),
            in_flight: BinaryHeap::new(),
            sequence: 0,
            client_conn: None,
            server_conn: None,
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_received: Vec::new(),
            server_received: Vec::new(),
            server_received_at: Vec::new(),
            read: true,
            release: true,
            drop_client_data: None,
            cut_to: None,
            log_to_server: None,
            captured: None,
            server_bytes: BTreeMap::new(),
            buf: Vec::new(),
        }
    }

    /// Starts the client's connection.
    pub(super) fn connect(&mut self) -> ConnectionHandle {
        let handle = self
            .client
            .connect(self.now, self.server_addr)
            .expect("connect");
        self.client_conn = Some(handle);
        handle
    }

    /// An end's endpoint and its connection's handle, once it has one.
    pub(super) fn end(&mut self, end: End) -> (&mut Endpoint, Option<ConnectionHandle>) {
        match end {
            End::Client => (&mut self.client, self.client_conn),
            End::Server => (&mut self.server, self.server_conn),
        }
    }

    /// An end's connection, while the endpoint holds it.
    pub(super) fn connection(&self, end: End) -> Option<&Connection> {
        match end {
            End::Client => self.client_conn.and_then(|h| self.client.connection(h)),
            End::Server => self.server_conn.and_then(|h| self.server.connection(h)),
        }
    }

    /// Queues a message on an end's connection.
    pub(super) fn send_from(
        &mut self,
        end: End,
        lane: Lane,
        channel: u32,
        data: bytes::Bytes,
    ) -> Result<(), SendError> {
        let (endpoint, handle) = self.end(end);
        let handle = handle.ok_or(SendError::Closed)?;
        endpoint.send(handle, lane, channel, data)
    }

    /// What an end's application has read, in order.
    pub(super) fn received(&self, end: End) -> &[Message] {
        match end {
            End::Client => &self.client_received,
            End::Server => &self.server_received,
        }
    }

    /// Runs until `done` holds or `limit` of virtual time passes; returns
    /// whether `done` held.
    pub(super) fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&mut Self) -> bool,
    ) -> bool {
        let deadline = self.now + limit;
        let mut stuck = 0u32;
        loop {
            self.flush();
            self.collect();
            if done(self) {
                return true;
            }
            let next = [
                self.in_flight.peek().map(|Reverse((at, ..))| *at),
                self.client.poll_timeout(),
                self.server.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else {
                return done(self);
            };
            if next > deadline {
                self.now = deadline;
                return done(self);
            }
            if next <= self.now {
                stuck += 1;
                assert!(
                    stuck < 10_000,
                    "no progress at {:?}: client timer {:?}, server timer {:?}, in flight {}\nclient {:#?}\nserver {:#?}",
                    self.now,
                    self.client.poll_timeout(),
                    self.server.poll_timeout(),
                    self.in_flight.len(),
                    self.client_conn
                        .and_then(|h| self.client.connection(h))
                        .map(|c| c.stats()),
                    self.server_conn
                        .and_then(|h| self.server.connection(h))
                        .map(|c| c.stats())
                );
            } else {
                stuck = 0;
            }
            self.now = self.now.max(next);
            self.deliver_due();
            self.client.handle_timeout(self.now);
            self.server.handle_timeout(self.now);
        }
    }

    /// Sends everything both endpoints want to send through the link.
    fn flush(&mut self) {
        for end in [End::Client, End::Server] {
            loop {
                self.buf.clear();
                let endpoint = match end {
                    End::Client => &mut self.client,
                    End::Server => &mut self.server,
                };
                let Some(transmit) = endpoint.poll_transmit(self.now, &mut self.buf) else {
                    break;
                };
                let datagram = self.buf[self.buf.len() - transmit.size..].to_vec();
                let to = if end == End::Client {
                    End::Server
                } else {
                    End::Client
                };
                self.transmit(to, datagram);
            }
        }
    }

    fn transmit(&mut self, to: End, mut datagram: Vec<u8>) {
        if to == End::Server
            && datagram.get(1) == Some(&2)
            && let Some((seen, drop)) = self.drop_client_data.as_mut()
        {
            *seen += 1;
            if *seen - 1 == *drop {
                self.drop_client_data = None;
                self.counters.dropped += 1;
                return;
            }
        }
        if self.cut_to == Some(to) {
            self.counters.dropped += 1;
            return;
        }
        let faults = self.faults.toward(to);
        let link = match to {
            End::Server => &mut self.to_server,
            End::Client => &mut self.to_client,
        };
        if link.faults() != &faults {
            link.set_faults(faults);
        }
        let transmission = link.transmit(self.now, std::mem::take(&mut datagram));
        match transmission.copies.len() {
            0 => self.counters.dropped += 1,
            1 => {}
            _ => {
                self.counters.duplicated += 1;
                // Only data packets count: a corrupted connection id gets
                // a (stateless, unauthenticated) reset that may be copied.
                let data = transmission.copies[0]
                    .1
                    .get(1)
                    .is_some_and(|&kind| kind == 2 || kind == 5);
                if !transmission.damaged && data {
                    self.counters.duplicated_intact += 1;
                }
            }
        }
        if transmission.damaged {
            self.counters.corrupted += 1;
        }
        for (at, bytes) in transmission.copies {
            self.sequence += 1;
            self.in_flight.push(Reverse((at, self.sequence, to, bytes)));
        }
    }

    fn deliver_due(&mut self) {
        while let Some(Reverse((at, ..))) = self.in_flight.peek() {
            if *at > self.now {
                break;
            }
            let Some(Reverse((_, _, to, datagram))) = self.in_flight.pop() else {
                break;
            };
            self.counters.delivered += 1;
            if let Some(captured) = self.captured.as_mut() {
                captured.push((to, datagram.clone()));
            }
            if to == End::Server {
                self.counters.bytes_to_server += datagram.len() as u64;
            }
            match to {
                End::Client => self
                    .client
                    .handle_datagram(self.now, self.server_addr, &datagram),
                End::Server => {
                    if let Some(log) = self.log_to_server.as_mut() {
                        log.observe(&datagram);
                    }
                    self.server
                        .handle_datagram(self.now, self.client_addr, &datagram)
                }
            }
        }
    }

    /// Takes events and messages out of both endpoints.
    fn collect(&mut self) {
        while let Some((handle, event)) = self.client.poll_event() {
            if Some(handle) == self.client_conn {
                self.client_events.push(event);
            }
        }
        while let Some((handle, event)) = self.server.poll_event() {
            if event == Event::Connected {
                self.server_bytes.entry(handle).or_default();
                if self.server_conn.is_none() {
                    self.server_conn = Some(handle);
                }
            }
            if Some(handle) == self.server_conn {
                self.server_events.push(event);
            }
        }
        if !self.read {
            return;
        }
        if let Some(handle) = self.client_conn {
            while let Some(message) = take(&mut self.client, handle) {
                if self.release && message.lane.is_reliable() {
                    self.client.release(handle, message.data.len() as u64);
                }
                self.client_received.push(message);
            }
        }
        for (&handle, bytes) in &mut self.server_bytes {
            while let Some(message) = take(&mut self.server, handle) {
                if self.release && message.lane.is_reliable() {
                    self.server.release(handle, message.data.len() as u64);
                }
                *bytes += message.data.len() as u64;
                if Some(handle) == self.server_conn {
                    self.server_received.push(message);
                    self.server_received_at.push(self.now);
                }
            }
        }
    }

    pub(super) fn connected(&self) -> bool {
        self.client_events.contains(&Event::Connected) && self.server_conn.is_some()
    }

    pub(super) fn is_pending(&self, end: End) -> bool {
        let (endpoint, handle) = match end {
            End::Client => (&self.client, self.client_conn),
            End::Server => (&self.server, self.server_conn),
        };
        handle
            .and_then(|handle| endpoint.connection(handle))
            .is_some_and(|connection| !connection.is_flushed())
    }
}

/// The next message of a connection, the application's lanes first, then
/// the session lane's (which the engine keeps apart for the RPC session).
fn take(endpoint: &mut Endpoint, handle: ConnectionHandle) -> Option<Message> {
    endpoint.recv(handle).or_else(|| {
        endpoint.recv_session(handle).map(|data| Message {
            lane: Lane::Session,
            channel: 0,
            data,
        })
    })
}
