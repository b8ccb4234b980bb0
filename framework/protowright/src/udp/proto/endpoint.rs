//! An endpoint: one socket's worth of connections. It routes datagrams to
//! connections by connection id, runs the server side of the handshake
//! statelessly until a cookie comes back, answers packets for unknown
//! connections with a reset, and keeps one timer entry per connection.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::budget::{MemoryBudget, SourceCounts};
use super::connection::{Connection, Event, Transmit};
use super::cookie::CookieJar;
use super::frame::Lane;
use super::limiter::TokenBucket;
use super::packet::{self, MIN_INITIAL_SIZE, Packet, PacketType, RefuseReason, VERSION};
use super::recv::Message;
use super::{Config, ConfigError, SendError};

/// The most stateless answers (retries, resets, refusals) held for sending;
/// beyond it they are dropped, so a flood costs bounded memory.
const MAX_STATELESS: usize = 1024;

/// Names one connection of an endpoint. A handle to a connection that is
/// gone never names a newer one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionHandle {
    index: u32,
    generation: u32,
}

/// Why a connection could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The endpoint holds as many connections as configured.
    #[error("the endpoint already holds its maximum of {0} connections")]
    TooManyConnections(usize),
    /// The address cannot be connected to.
    #[error("cannot connect to {0}: unspecified address or port 0")]
    InvalidAddress(SocketAddr),
}

/// Endpoint-wide counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Datagrams dropped as undecodable or failing their checksum.
    pub malformed: u64,
    /// Retries sent (cookies issued).
    pub retries_sent: u64,
    /// Connection attempts refused.
    pub refused: u64,
    /// Resets sent for unknown connection ids.
    pub resets_sent: u64,
    /// Stateless answers dropped because too many were queued.
    pub stateless_dropped: u64,
    /// Stateless answers (retries, resets, refusals) not sent because the
    /// endpoint's rate limit (`stateless_rate`) was spent.
    pub stateless_limited: u64,
    /// Connection attempts refused because their IP address already held
    /// `max_connections_per_address` connections (also in `refused`).
    pub refused_per_address: u64,
    /// Connections accepted.
    pub accepted: u64,
    /// Datagram bytes handed to [`Endpoint::handle_datagram`], malformed
    /// ones included.
    pub bytes_received: u64,
    /// Datagram bytes handed out by [`Endpoint::poll_transmit`], stateless
    /// answers (retries, refusals, resets) included.
    pub bytes_sent: u64,
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    connection: Option<Connection>,
    timer: Option<Instant>,
    in_send_queue: bool,
    in_event_queue: bool,
    touched: bool,
    remote_registered: bool,
    hello_key: Option<(SocketAddr, u64)>,
    discard_messages: bool,
    /// The peer's address, counted against the per-address cap (servers).
    counted_source: Option<std::net::IpAddr>,
    free: bool,
}

/// A sans-IO endpoint: feed it datagrams and time, take datagrams and
/// events out. It owns no socket, clock or thread, and its randomness comes
/// from the seed it was built with.
#[derive(Debug)]
pub struct Endpoint {
    config: Arc<Config>,
    accepting: bool,
    rng: SmallRng,
    epoch: Instant,
    cookies: CookieJar,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    by_cid: HashMap<u64, u32>,
    by_remote: HashMap<(SocketAddr, u64), u32>,
    by_hello: HashMap<(SocketAddr, u64), u32>,
    timers: BTreeSet<(Instant, u32)>,
    send_queue: VecDeque<u32>,
    event_queue: VecDeque<u32>,
    touched: Vec<ConnectionHandle>,
    stateless: VecDeque<(SocketAddr, Vec<u8>)>,
    /// Paces stateless answers.
    stateless_tokens: TokenBucket,
    /// What every connection's receive side holds, against
    /// `receive_budget`.
    receive_budget: MemoryBudget,
    /// Server connections per peer IP address.
    sources: SourceCounts,
    stats: EndpointStats,
}

impl Endpoint {
    /// An endpoint with `config`, its randomness seeded by `seed`, and time
    /// counted from `now`. It accepts no connections until
    /// [`listen`](Self::listen).
    pub fn new(config: Config, now: Instant, seed: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut rng = SmallRng::seed_from_u64(seed);
        let cookies = CookieJar::new([rng.random(), rng.random()], config.cookie_lifetime);
        let stateless_tokens = TokenBucket::new(config.stateless_rate, config.stateless_burst, now);
        let receive_budget = MemoryBudget::new(config.receive_budget);
        Ok(Self {
            config: Arc::new(config),
            accepting: false,
            rng,
            epoch: now,
            cookies,
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            by_cid: HashMap::new(),
            by_remote: HashMap::new(),
            by_hello: HashMap::new(),
            timers: BTreeSet::new(),
            send_queue: VecDeque::new(),
            event_queue: VecDeque::new(),
            touched: Vec::new(),
            stateless: VecDeque::new(),
            stateless_tokens,
            receive_budget,
            sources: SourceCounts::default(),
            stats: EndpointStats::default(),
        })
    }

    /// Starts or stops accepting connections.
    pub fn listen(&mut self, accepting: bool) {
        self.accepting = accepting;
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Connections held (including closing ones).
    pub fn connection_count(&self) -> usize {
        self.live
    }

    /// Entries in the timer queue: at most one per connection.
    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    /// Endpoint-wide counters.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// Bytes the receive sides of all connections hold now, each message
    /// charged its bookkeeping overhead: at most about `receive_budget`.
    pub fn receive_budget_used(&self) -> u64 {
        self.receive_budget.used()
    }

    /// Starts connecting to `server`.
    pub fn connect(
        &mut self,
        now: Instant,
        server: SocketAddr,
    ) -> Result<ConnectionHandle, ConnectError> {
        if server.ip().is_unspecified() || server.port() == 0 {
            return Err(ConnectError::InvalidAddress(server));
        }
        if self.live >= self.config.max_connections {
            return Err(ConnectError::TooManyConnections(
                self.config.max_connections,
            ));
        }
        let cid = self.fresh_cid();
        let connection = Connection::new_client(self.config.clone(), now, cid, server);
        Ok(self.insert(connection, None))
    }

    /// The connection `handle` names, if it is still held.
    pub fn connection(&self, handle: ConnectionHandle) -> Option<&Connection> {
        let slot = self.slots.get(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        slot.connection.as_ref()
    }

    /// Runs `f` on a connection and then updates the endpoint's view of it
    /// (timers, send queue, events). `None` when the handle is stale.
    fn with<R>(
        &mut self,
        handle: ConnectionHandle,
        f: impl FnOnce(&mut Connection) -> R,
    ) -> Option<R> {
        let slot = self.slots.get_mut(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        let result = f(slot.connection.as_mut()?);
        self.refresh(handle.index);
        Some(result)
    }

    /// Queues a message on a connection.
    pub fn send(
        &mut self,
        handle: ConnectionHandle,
        lane: Lane,
        channel: u32,
        data: Bytes,
    ) -> Result<(), SendError> {
        self.with(handle, |connection| connection.send(lane, channel, data))
            .unwrap_or(Err(SendError::Closed))
    }

    /// Sets the priority of a connection's channel (see
    /// [`Connection::set_priority`]).
    pub fn set_priority(&mut self, handle: ConnectionHandle, channel: u32, priority: i32) {
        self.with(handle, |connection| {
            connection.set_priority(channel, priority)
        });
    }

    /// The next message a connection received.
    pub fn recv(&mut self, handle: ConnectionHandle) -> Option<Message> {
        self.with(handle, Connection::recv).flatten()
    }

    /// The next session-lane message of a connection (one RPC envelope).
    pub fn recv_session(&mut self, handle: ConnectionHandle) -> Option<Bytes> {
        self.with(handle, Connection::recv_session).flatten()
    }

    /// Gives consumed reliable bytes back to a connection's window.
    /// Returns whether a window update is now due (something to send).
    pub fn release(&mut self, handle: ConnectionHandle, bytes: u64) -> bool {
        self.with(handle, |connection| connection.release(bytes))
            .unwrap_or(false)
    }

    /// Closes a connection gracefully (see [`Connection::close`]).
    pub fn close(&mut self, handle: ConnectionHandle, now: Instant, code: u64, reason: &str) {
        self.with(handle, |connection| connection.close(now, code, reason));
    }

    /// Closes a connection at once (see [`Connection::abort`]).
    pub fn abort(&mut self, handle: ConnectionHandle, now: Instant, code: u64, reason: &str) {
        self.with(handle, |connection| connection.abort(now, code, reason));
    }

    /// The application let go of a connection: messages it has not read are
    /// dropped, so the connection is forgotten as soon as it has drained.
    pub fn discard(&mut self, handle: ConnectionHandle) {
        if let Some(slot) = self.slots.get_mut(handle.index as usize)
            && slot.generation == handle.generation
        {
            slot.discard_messages = true;
            if let Some(connection) = slot.connection.as_mut() {
                connection.discard_unread();
            }
            self.refresh(handle.index);
        }
    }

    /// Closes every connection at once.
    pub fn abort_all(&mut self, now: Instant, code: u64, reason: &str) {
        for index in 0..self.slots.len() as u32 {
            if let Some(connection) = self.slots[index as usize].connection.as_mut() {
                connection.abort(now, code, reason);
                self.refresh(index);
            }
        }
    }

    /// Takes in one datagram from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.stats.bytes_received += datagram.len() as u64;
        let Ok((version, kind, cid)) = packet::peek_header(datagram) else {
            self.stats.malformed += 1;
            return;
        };
        if version != VERSION {
            if kind == PacketType::Initial && self.accepting && datagram.len() >= MIN_INITIAL_SIZE {
                let detail = format!(
                    "the server speaks protocol version {VERSION}; the client sent version {version}"
                );
                self.refuse(now, from, cid, RefuseReason::Version, &detail);
            } else {
                self.stats.malformed += 1;
            }
            return;
        }
        let Ok(packet) = packet::unseal(datagram).and_then(Packet::decode) else {
            self.stats.malformed += 1;
            return;
        };
        match packet {
            Packet::Initial { cid, hello } => {
                self.on_initial(now, from, cid, &hello, datagram.len())
            }
            Packet::Retry { cid, cookie } => {
                if let Some(index) = self.route(cid, from) {
                    self.apply(index, |connection| connection.on_retry(cookie));
                }
            }
            Packet::Data {
                cid,
                number,
                frames,
            } => match self.route(cid, from) {
                Some(index) => {
                    self.apply(index, |connection| {
                        connection.handle_packet(now, number, frames, datagram.len())
                    });
                }
                None if !self.by_cid.contains_key(&cid) => {
                    let mut answer = Vec::with_capacity(16);
                    packet::encode_reset(&mut answer, cid);
                    packet::seal(&mut answer, 0);
                    if self.queue_stateless(now, from, answer) {
                        self.stats.resets_sent += 1;
                    }
                }
                None => {}
            },
            Packet::Reset { cid } => {
                if let Some(&index) = self.by_remote.get(&(from, cid)) {
                    self.apply(index, Connection::on_reset);
                }
            }
            Packet::Refuse {
                cid,
                reason,
                detail,
                ..
            } => {
                if let Some(index) = self.route(cid, from) {
                    self.apply(index, |connection| connection.on_refused(reason, detail));
                }
            }
        }
    }

    /// The connection with local id `cid`, if `from` is its peer.
    fn route(&self, cid: u64, from: SocketAddr) -> Option<u32> {
        let index = *self.by_cid.get(&cid)?;
        let connection = self.slots[index as usize].connection.as_ref()?;
        (connection.peer() == from).then_some(index)
    }

    fn apply(&mut self, index: u32, f: impl FnOnce(&mut Connection)) {
        if let Some(connection) = self.slots[index as usize].connection.as_mut() {
            f(connection);
            self.refresh(index);
        }
    }

    fn on_initial(
        &mut self,
        now: Instant,
        from: SocketAddr,
        cid: u64,
        hello: &packet::Hello<'_>,
        size: usize,
    ) {
        if size < MIN_INITIAL_SIZE {
            // Too small to answer without amplifying.
            self.stats.malformed += 1;
            return;
        }
        if !self.accepting {
            self.refuse(
                now,
                from,
                cid,
                RefuseReason::NotListening,
                "this endpoint accepts no connections",
            );
            return;
        }
        if let Some(&index) = self.by_hello.get(&(from, cid)) {
            self.apply(index, Connection::on_repeated_hello);
            return;
        }
        let since_epoch = now.saturating_duration_since(self.epoch);
        if !self.cookies.check(hello.cookie, from, cid, since_epoch) {
            let cookie = self.cookies.issue(from, cid, since_epoch);
            let mut answer = Vec::with_capacity(40);
            packet::encode_retry(&mut answer, cid, &cookie);
            packet::seal(&mut answer, 0);
            if self.queue_stateless(now, from, answer) {
                self.stats.retries_sent += 1;
            }
            return;
        }
        if hello.schema_hash != self.config.schema_hash {
            let detail = format!(
                "the server's protocol schema hash is {:016x}; the client's is {:016x}",
                self.config.schema_hash, hello.schema_hash
            );
            self.refuse(now, from, cid, RefuseReason::Schema, &detail);
            return;
        }
        if self.live >= self.config.max_connections {
            let detail = format!(
                "the server is at its limit of {} connections; try again later",
                self.config.max_connections
            );
            self.refuse(now, from, cid, RefuseReason::Full, &detail);
            return;
        }
        let cap = self.config.max_connections_per_address;
        if !self.sources.has_room(from.ip(), cap) {
            let detail = format!(
                "the server holds its limit of {cap} connections from {}; \
                 close one or try again later",
                from.ip()
            );
            self.stats.refused_per_address += 1;
            self.refuse(now, from, cid, RefuseReason::Full, &detail);
            return;
        }
        let local_cid = self.fresh_cid();
        let connection =
            Connection::new_server(self.config.clone(), now, local_cid, from, cid, hello);
        self.stats.accepted += 1;
        let handle = self.insert(connection, Some((from, cid)));
        self.sources.add(from.ip());
        self.slots[handle.index as usize].counted_source = Some(from.ip());
    }

    fn refuse(
        &mut self,
        now: Instant,
        to: SocketAddr,
        cid: u64,
        reason: RefuseReason,
        detail: &str,
    ) {
        let mut answer = Vec::with_capacity(64 + detail.len());
        packet::encode_refuse(&mut answer, cid, reason, detail);
        packet::seal(&mut answer, 0);
        if self.queue_stateless(now, to, answer) {
            self.stats.refused += 1;
        }
    }

    /// Queues a stateless answer unless the rate limit is spent or the
    /// queue is full; `false` (and counted) when it is dropped.
    fn queue_stateless(&mut self, now: Instant, to: SocketAddr, datagram: Vec<u8>) -> bool {
        if !self.stateless_tokens.take(now) {
            self.stats.stateless_limited += 1;
            return false;
        }
        if self.stateless.len() >= MAX_STATELESS {
            self.stats.stateless_dropped += 1;
            return false;
        }
        self.stateless.push_back((to, datagram));
        true
    }

    fn fresh_cid(&mut self) -> u64 {
        loop {
            let cid: u64 = self.rng.random();
            if cid != 0 && !self.by_cid.contains_key(&cid) {
                return cid;
            }
        }
    }

    fn insert(
        &mut self,
        connection: Connection,
        hello_key: Option<(SocketAddr, u64)>,
    ) -> ConnectionHandle {
        let mut connection = connection;
        connection.join_budget(&self.receive_budget);
        let cid = connection.local_cid();
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    connection: None,
                    timer: None,
                    in_send_queue: false,
                    in_event_queue: false,
                    touched: false,
                    remote_registered: false,
                    hello_key: None,
                    discard_messages: false,
                    counted_source: None,
                    free: false,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.free = false;
        slot.connection = Some(connection);
        slot.hello_key = hello_key;
        slot.remote_registered = false;
        slot.discard_messages = false;
        let generation = slot.generation;
        self.by_cid.insert(cid, index);
        if let Some(key) = hello_key {
            self.by_hello.insert(key, index);
        }
        self.live += 1;
        self.refresh(index);
        ConnectionHandle { index, generation }
    }

    /// Brings the endpoint's indexes up to date with connection `index`
    /// after anything touched it, and forgets it once it has drained and
    /// its events were taken.
    fn refresh(&mut self, index: u32) {
        self.refresh_queued(index, true);
    }

    /// [`refresh`](Self::refresh), putting the connection in the send queue
    /// only when `may_send`.
    fn refresh_queued(&mut self, index: u32, may_send: bool) {
        let slot = &mut self.slots[index as usize];
        let Some(connection) = slot.connection.as_ref() else {
            return;
        };
        if !slot.touched {
            slot.touched = true;
            self.touched.push(ConnectionHandle {
                index,
                generation: slot.generation,
            });
        }
        if !slot.remote_registered && !connection.is_handshaking() && !connection.is_drained() {
            slot.remote_registered = true;
            self.by_remote
                .insert((connection.peer(), connection.remote_cid()), index);
        }
        if connection.has_events() && !slot.in_event_queue {
            slot.in_event_queue = true;
            self.event_queue.push_back(index);
        }
        let finished = connection.is_drained()
            && !connection.has_events()
            && ((!connection.has_message() && !connection.has_session_message())
                || slot.discard_messages);
        if finished {
            self.remove(index);
            return;
        }
        let timer = connection.poll_timeout();
        if slot.timer != timer {
            if let Some(old) = slot.timer {
                self.timers.remove(&(old, index));
            }
            if let Some(new) = timer {
                self.timers.insert((new, index));
            }
            slot.timer = timer;
        }
        if may_send && !slot.in_send_queue {
            slot.in_send_queue = true;
            self.send_queue.push_back(index);
        }
    }

    fn remove(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        let Some(connection) = slot.connection.take() else {
            return;
        };
        if let Some(old) = slot.timer.take() {
            self.timers.remove(&(old, index));
        }
        self.by_cid.remove(&connection.local_cid());
        if slot.remote_registered {
            self.by_remote
                .remove(&(connection.peer(), connection.remote_cid()));
        }
        if let Some(key) = slot.hello_key.take() {
            self.by_hello.remove(&key);
        }
        if let Some(ip) = slot.counted_source.take() {
            self.sources.remove(ip);
        }
        slot.generation = slot.generation.wrapping_add(1);
        self.live -= 1;
        // Queue entries for this index are skipped when popped; the index is
        // reused only once they are gone.
        self.release_slot_if_idle(index);
    }

    /// Reuses a slot once no queue refers to it any more.
    fn release_slot_if_idle(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        if slot.connection.is_none() && !slot.in_send_queue && !slot.in_event_queue && !slot.free {
            slot.free = true;
            self.free.push(index);
        }
    }

    /// Runs every connection timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Take the due entries first: a connection runs its timers once per
        // call, even if it reports another due deadline right away.
        let mut due = Vec::new();
        while let Some(&(at, index)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, index));
            self.slots[index as usize].timer = None;
            due.push(index);
        }
        for index in due {
            if let Some(connection) = self.slots[index as usize].connection.as_mut() {
                connection.handle_timeout(now);
            }
            self.refresh(index);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|&(at, _)| at)
    }

    /// Writes the next datagram to send at the end of `buf`, taking
    /// connections in turn so none starves the others.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        if let Some((destination, datagram)) = self.stateless.pop_front() {
            buf.extend_from_slice(&datagram);
            self.stats.bytes_sent += datagram.len() as u64;
            return Some(Transmit {
                destination,
                size: datagram.len(),
            });
        }
        while let Some(index) = self.send_queue.pop_front() {
            let slot = &mut self.slots[index as usize];
            slot.in_send_queue = false;
            let Some(connection) = slot.connection.as_mut() else {
                self.release_slot_if_idle(index);
                continue;
            };
            let transmit = connection.poll_transmit(now, buf);
            // With nothing to send, it stays out of the queue until touched.
            self.refresh_queued(index, transmit.is_some());
            if let Some(transmit) = transmit {
                self.stats.bytes_sent += transmit.size as u64;
                return Some(transmit);
            }
        }
        None
    }

    /// The next lifecycle event of any connection. A server learns of a new
    /// connection by its [`Event::Connected`].
    pub fn poll_event(&mut self) -> Option<(ConnectionHandle, Event)> {
        while let Some(index) = self.event_queue.pop_front() {
            let slot = &mut self.slots[index as usize];
            slot.in_event_queue = false;
            let generation = slot.generation;
            let Some(connection) = slot.connection.as_mut() else {
                self.release_slot_if_idle(index);
                continue;
            };
            let Some(event) = connection.poll_event() else {
                continue;
            };
            self.refresh(index);
            return Some((ConnectionHandle { index, generation }, event));
        }
        None
    }

    /// The connections touched since the last call: their messages, events
    /// or send buffers may have changed. Drivers wake their waiters.
    pub fn drain_touched(&mut self) -> Vec<ConnectionHandle> {
        let mut handles = Vec::with_capacity(self.touched.len());
        for handle in self.touched.drain(..) {
            self.slots[handle.index as usize].touched = false;
            handles.push(handle);
        }
        handles
    }
}
