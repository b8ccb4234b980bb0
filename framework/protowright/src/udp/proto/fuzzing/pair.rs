//! A client and a listening server joined in memory, with no loss and no
//! delay, stepped in virtual time: what the session and handshake hooks
//! drive. Both use the default configuration and fixed seeds, so the
//! keys, connection ids and cookies are the same on every run.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::udp::proto::packet::{self, Packet, PacketType};
use crate::udp::proto::{Config, ConnectionHandle, Endpoint, Event};

/// The client's seed.
const CLIENT_SEED: u64 = 0xc11e;
/// The server's seed.
const SERVER_SEED: u64 = 0x5e7e;
/// Rounds a handshake may take before [`Pair::connected`] gives up (it
/// takes a handful on a clean link).
const MAX_HANDSHAKE_ROUNDS: usize = 64;
/// The most datagrams one endpoint hands over in one round: far more than
/// its congestion window allows, so only a runaway sender reaches it.
const MAX_DATAGRAMS_PER_ROUND: usize = 4096;

/// The client's address.
pub(super) fn client_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 5000))
}

/// The server's address.
pub(super) fn server_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 2], 6000))
}

/// Two endpoints and the datagrams on their way between them.
pub(super) struct Pair {
    pub(super) now: Instant,
    pub(super) client: Endpoint,
    pub(super) server: Endpoint,
    pub(super) client_conn: ConnectionHandle,
    /// The server's connection, once it reported it connected.
    pub(super) server_conn: Option<ConnectionHandle>,
    /// Whether the client reported it connected.
    pub(super) client_connected: bool,
    /// Datagrams on their way to the server, all from the client.
    pub(super) to_server: VecDeque<Vec<u8>>,
    /// Datagrams the server sent, with their destinations: those to the
    /// client are delivered, those to anyone else (answers to forged
    /// sources) dropped.
    pub(super) from_server: VecDeque<(SocketAddr, Vec<u8>)>,
    /// The first handshake bytes of the client's latest `Initial`: what a
    /// genuine `Retry` echoes.
    pub(super) client_attempt: Vec<u8>,
    /// Messages the applications read.
    pub(super) delivered: u64,
    buf: Vec<u8>,
}

impl Pair {
    /// A client that has started connecting to a listening server, its
    /// first `Initial` in flight. `None` only if the default configuration
    /// is refused.
    pub(super) fn new() -> Option<Self> {
        let now = Instant::now();
        let mut client = Endpoint::new(Config::default(), now, CLIENT_SEED).ok()?;
        let mut server = Endpoint::new(Config::default(), now, SERVER_SEED).ok()?;
        server.listen(true);
        let client_conn = client.connect(now, server_addr()).ok()?;
        let mut pair = Self {
            now,
            client,
            server,
            client_conn,
            server_conn: None,
            client_connected: false,
            to_server: VecDeque::new(),
            from_server: VecDeque::new(),
            client_attempt: Vec::new(),
            delivered: 0,
            buf: Vec::new(),
        };
        pair.flush();
        Some(pair)
    }

    /// A pair whose handshake completed; `None` if it did not within
    /// [`MAX_HANDSHAKE_ROUNDS`] (a harness bug: the link is clean).
    pub(super) fn connected() -> Option<Self> {
        let mut pair = Self::new()?;
        for _ in 0..MAX_HANDSHAKE_ROUNDS {
            if pair.is_connected() {
                return Some(pair);
            }
            pair.step(Duration::from_millis(50));
        }
        None
    }

    /// Whether both sides reported the connection up.
    pub(super) fn is_connected(&self) -> bool {
        self.client_connected && self.server_conn.is_some()
    }

    /// The client connection's own id, while the client holds it.
    pub(super) fn client_cid(&self) -> Option<u64> {
        let connection = self.client.connection(self.client_conn)?;
        Some(connection.local_cid())
    }

    /// One round: everything in flight is delivered and read, both sides
    /// answer, then time moves to the next deadline (at most `limit`
    /// ahead), the timers due run and what they send is put in flight.
    /// Between rounds the queues hold every datagram sent and not yet
    /// delivered, for a script to drop, alter or repeat.
    pub(super) fn step(&mut self, limit: Duration) {
        self.deliver();
        self.collect();
        self.flush();
        let deadline = self.now + limit;
        let next = [self.client.poll_timeout(), self.server.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .map_or(deadline, |next| next.min(deadline));
        self.now = self.now.max(next);
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
        self.collect();
        self.flush();
    }

    /// Takes what both endpoints want to send into the queues.
    pub(super) fn flush(&mut self) {
        for _ in 0..MAX_DATAGRAMS_PER_ROUND {
            self.buf.clear();
            let Some(transmit) = self.client.poll_transmit(self.now, &mut self.buf) else {
                break;
            };
            let datagram = self.buf[self.buf.len() - transmit.size..].to_vec();
            self.note_attempt(&datagram);
            self.to_server.push_back(datagram);
        }
        for _ in 0..MAX_DATAGRAMS_PER_ROUND {
            self.buf.clear();
            let Some(transmit) = self.server.poll_transmit(self.now, &mut self.buf) else {
                break;
            };
            let datagram = self.buf[self.buf.len() - transmit.size..].to_vec();
            self.from_server.push_back((transmit.destination, datagram));
        }
    }

    /// Remembers what a genuine `Retry` to the client would echo.
    fn note_attempt(&mut self, datagram: &[u8]) {
        if let Ok(Packet::Initial { hello, .. }) = packet::unseal(datagram).and_then(Packet::decode)
        {
            let attempt = hello.attempt();
            self.client_attempt = attempt[..attempt.len().min(packet::ECHO_LEN)].to_vec();
        }
    }

    /// Delivers every queued datagram (what they cause is sent next round).
    pub(super) fn deliver(&mut self) {
        for datagram in std::mem::take(&mut self.to_server) {
            self.server
                .handle_datagram(self.now, client_addr(), &datagram);
        }
        for (to, datagram) in std::mem::take(&mut self.from_server) {
            if to == client_addr() {
                self.client
                    .handle_datagram(self.now, server_addr(), &datagram);
            }
        }
    }

    /// Takes the server's stateless answer of type `kind` to `to` for
    /// connection id `cid` out of the queue, after letting the server send.
    pub(super) fn take_answer(
        &mut self,
        to: SocketAddr,
        kind: PacketType,
        cid: u64,
    ) -> Option<Vec<u8>> {
        self.flush();
        let at = self
            .from_server
            .iter()
            .position(|(destination, datagram)| {
                *destination == to
                    && packet::peek_header(datagram)
                        .is_ok_and(|(_, found, id)| found == kind && id == cid)
            })?;
        self.from_server.remove(at).map(|(_, datagram)| datagram)
    }

    /// Takes events and messages out of both endpoints, as applications
    /// would: every message read, its reliable bytes released.
    pub(super) fn collect(&mut self) {
        while let Some((handle, event)) = self.client.poll_event() {
            if handle == self.client_conn && event == Event::Connected {
                self.client_connected = true;
            }
        }
        while let Some((handle, event)) = self.server.poll_event() {
            if event == Event::Connected && self.server_conn.is_none() {
                self.server_conn = Some(handle);
            }
        }
        self.delivered += read_all(&mut self.client, self.client_conn);
        if let Some(handle) = self.server_conn {
            self.delivered += read_all(&mut self.server, handle);
        }
    }
}

/// Reads every message a connection holds, releasing reliable bytes;
/// returns how many it read.
fn read_all(endpoint: &mut Endpoint, handle: ConnectionHandle) -> u64 {
    let mut read = 0;
    while let Some(message) = endpoint.recv(handle) {
        if message.lane.is_reliable() {
            endpoint.release(handle, message.data.len() as u64);
        }
        read += 1;
    }
    while let Some(data) = endpoint.recv_session(handle) {
        endpoint.release(handle, data.len() as u64);
        read += 1;
    }
    read
}
