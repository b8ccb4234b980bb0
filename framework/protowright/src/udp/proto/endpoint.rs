//! An endpoint: one socket's worth of connections. It routes datagrams to
//! connections by connection id, runs the server side of the handshake
//! statelessly until a cookie comes back, answers packets for unknown
//! connections with a reset, and keeps one timer entry per connection.
//!
//! It holds the secrets: its static key, the cookie secret and the reset
//! secret, and a ChaCha-based generator seeded from the caller's secure
//! randomness, from which every connection id, ephemeral key and cookie
//! nonce is drawn.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

use super::budget::{MemoryBudget, SourceCounts};
use super::connection::{Connection, Event, Transmit};
use super::cookie::{CookieJar, UsedAttempts};
use super::crypto::{
    ClientHandshake, MAX_KEY_UPDATE_PACKETS, MIN_KEY_UPDATE_PACKETS, Pattern, Protection,
    PublicKey, RESET_TOKEN_LEN, ReplayWindow, ResetSecret, SecurityStart, ServerHandshake,
    StaticKey, TokenError,
};
use super::frame::Lane;
use super::limiter::TokenBucket;
use super::packet::{
    self, Hello, MIN_INITIAL_SIZE, Packet, PacketType, RefuseReason, SECURITY_PLAINTEXT, VERSION,
};
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
    /// The security settings cannot start a handshake.
    #[error("cannot start the handshake: {0}")]
    Security(String),
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
    /// Connection attempts whose handshake failed (a wrong pinned key,
    /// pre-shared key or connect token, or a forgery).
    pub handshakes_failed: u64,
    /// `Reset`s, `Retry`s and `Refuse`s dropped because they did not
    /// authenticate or answered no attempt of ours.
    pub forged_dropped: u64,
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
    rng: StdRng,
    epoch: Instant,
    /// Time since the Unix epoch at `epoch`, for connect-token expiry.
    unix_at_epoch: Option<Duration>,
    static_key: StaticKey,
    reset_secret: ResetSecret,
    cookies: CookieJar,
    /// Where encrypted packets are opened, shared by all connections.
    scratch: Vec<u8>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    by_cid: HashMap<u64, u32>,
    by_remote: HashMap<(SocketAddr, u64), u32>,
    by_hello: HashMap<(SocketAddr, u64), u32>,
    /// Attempts admitted within a cookie lifetime (replays are dropped).
    used_attempts: UsedAttempts,
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
    /// [`listen`](Self::listen). For tests and simulations: 64 bits are
    /// too few for secrets that must resist search; real endpoints use
    /// [`with_entropy`](Self::with_entropy).
    pub fn new(config: Config, now: Instant, seed: u64) -> Result<Self, ConfigError> {
        let mut entropy = [0u8; 32];
        let mut state = seed;
        for chunk in entropy.chunks_mut(8) {
            // SplitMix64: spreads the seed over all 32 bytes.
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        Self::with_entropy(config, now, entropy)
    }

    /// An endpoint whose generator is seeded with 32 bytes of `entropy`
    /// from a secure source (the operating system's generator on a real
    /// network, the simulation's seeded one in a simulation).
    pub fn with_entropy(
        config: Config,
        now: Instant,
        entropy: [u8; 32],
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut rng = StdRng::from_seed(entropy);
        let static_key = match &config.security.static_key {
            Some(key) => key.clone(),
            None => StaticKey::from_secret(random_bytes(&mut rng)),
        };
        let reset_secret = ResetSecret::derive(static_key.secret());
        let cookies = CookieJar::new(random_bytes(&mut rng), config.cookie_lifetime);
        let stateless_tokens = TokenBucket::new(config.stateless_rate, config.stateless_burst, now);
        let receive_budget = MemoryBudget::new(config.receive_budget);
        let used_attempts = UsedAttempts::new(config.cookie_lifetime);
        Ok(Self {
            config: Arc::new(config),
            accepting: false,
            rng,
            epoch: now,
            unix_at_epoch: None,
            static_key,
            reset_secret,
            cookies,
            scratch: Vec::new(),
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            by_cid: HashMap::new(),
            by_remote: HashMap::new(),
            by_hello: HashMap::new(),
            used_attempts,
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

    /// Tells the endpoint the wall-clock time (since the Unix epoch) at
    /// `now`, which connect tokens' expiry is checked against. Until it is
    /// told, a server that requires tokens admits none.
    pub fn set_unix_time(&mut self, now: Instant, since_unix_epoch: Duration) {
        let elapsed = now.saturating_duration_since(self.epoch);
        self.unix_at_epoch = Some(since_unix_epoch.saturating_sub(elapsed));
    }

    /// This endpoint's static public key: what clients pin.
    pub fn public_key(&self) -> PublicKey {
        self.static_key.public_key()
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
        let security = self.client_security(cid)?;
        let connection = Connection::new_client(self.config.clone(), now, cid, server, security);
        Ok(self.insert(connection, None))
    }

    /// A client connection's protection: its handshake's first message (or
    /// its reset token alone, in plaintext).
    fn client_security(&mut self, cid: u64) -> Result<SecurityStart, ConnectError> {
        let security = &self.config.security;
        if security.connect_token.is_some() && security.server_key.is_none() {
            // Without a pinned key the first handshake message is not
            // encrypted, and the token would cross the path in clear.
            return Err(ConnectError::Security(
                "a connect token needs the server's key pinned (security.server_key)".into(),
            ));
        }
        let local_reset_token = self.reset_secret.token(cid);
        // The reset token rides in the first handshake message only where
        // that message is encrypted (a pinned key or a pre-shared key):
        // seen in clear, it would let anyone end the server's side.
        let payload_secret = security.server_key.is_some() || security.pre_shared_key.is_some();
        let mut payload = Vec::new();
        if payload_secret || security.insecure_plaintext_for_debugging {
            payload.extend_from_slice(&local_reset_token);
        }
        if let Some(token) = &security.connect_token {
            payload.extend_from_slice(token.as_bytes());
        }
        let cipher = security.cipher.to_u8();
        let mut start = SecurityStart {
            protection: Protection::Plaintext,
            local_reset_token,
            peer_reset_token: None,
            peer_key: None,
            client_id: None,
            hello_security: SECURITY_PLAINTEXT,
            hello_cipher: cipher,
            hello_key_update: security.key_update_packets,
            hello_handshake: payload,
            skip_seed: self.rng.random(),
        };
        if security.insecure_plaintext_for_debugging {
            return Ok(start);
        }
        let pattern = if security.server_key.is_some() {
            Pattern::Ik
        } else {
            Pattern::Nx
        };
        start.hello_security = pattern.to_u8();
        let hello = self.hello_for_prologue(start.hello_security, cipher);
        if pattern == Pattern::Nx {
            tracing::debug!(
                "connecting without a pinned server key: the server's key is learned on first use (see SECURITY.md)"
            );
        }
        let handshake = ClientHandshake::start(
            &self.static_key,
            security.server_key,
            security.pre_shared_key.as_ref(),
            &hello.prologue(cid),
            &start.hello_handshake,
            random_bytes(&mut self.rng),
        )
        .map_err(|error| ConnectError::Security(error.to_string()))?;
        start.hello_handshake = handshake.first_message().to_vec();
        start.protection = Protection::Client {
            handshake: Box::new(handshake),
            cipher: security.cipher,
            update_every: security.key_update_packets,
        };
        Ok(start)
    }

    /// The settings a client of this configuration offers, as the
    /// handshake's prologue covers them.
    fn hello_for_prologue(&self, security: u8, cipher: u8) -> Hello<'static> {
        Hello {
            schema_hash: self.config.schema_hash,
            max_data: self.config.flow_window(),
            max_message: self.config.max_message_size,
            cookie: &[],
            security,
            cipher,
            key_update: self.config.security.key_update_packets,
            handshake: &[],
        }
    }

    /// The connection `handle` names, if it is still held.
    pub fn connection(&self, handle: ConnectionHandle) -> Option<&Connection> {
        let slot = self.slots.get(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        slot.connection.as_ref()
    }

    /// Seals `frames`, whatever they say, as connection `handle`'s next
    /// data packet at the end of `buf`; returns its size. For tests and
    /// fuzzing that play a peer holding the real keys.
    #[doc(hidden)]
    pub fn seal_frames_as(
        &mut self,
        handle: ConnectionHandle,
        frames: &[u8],
        buf: &mut Vec<u8>,
    ) -> Option<usize> {
        self.with(handle, |connection| connection.seal_frames(frames, buf))
            .flatten()
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

    /// Moves up to `max` of a connection's waiting messages into `out`
    /// and gives their reliable bytes back to its window, in one go: one
    /// index refresh for the lot instead of one per message. Returns
    /// whether a window update is now due (something to send).
    pub fn recv_many(
        &mut self,
        handle: ConnectionHandle,
        out: &mut VecDeque<Message>,
        max: usize,
    ) -> bool {
        self.with(handle, |connection| {
            let mut reliable = 0;
            for _ in 0..max {
                let Some(message) = connection.recv() else {
                    break;
                };
                if message.lane.is_reliable() {
                    reliable += message.data.len() as u64;
                }
                out.push_back(message);
            }
            reliable > 0 && connection.release(reliable)
        })
        .unwrap_or(false)
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
        if matches!(kind, PacketType::Data | PacketType::Handshake) {
            self.on_data(now, from, cid, datagram);
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
            Packet::Retry { cid, cookie, echo } => {
                let accepted = self.route(cid, from).is_some_and(|index| {
                    let mut accepted = false;
                    self.apply(index, |connection| {
                        accepted = connection.on_retry(cookie, echo)
                    });
                    accepted
                });
                if !accepted {
                    self.stats.forged_dropped += 1;
                }
            }
            Packet::Data { .. } => {}
            Packet::Reset { cid, token } => {
                let accepted = self
                    .by_remote
                    .get(&(from, cid))
                    .copied()
                    .is_some_and(|index| {
                        let mut accepted = false;
                        self.apply(index, |connection| accepted = connection.on_reset(token));
                        accepted
                    });
                if !accepted {
                    self.stats.forged_dropped += 1;
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

    /// A data packet: opened by its connection, or answered with a reset
    /// when no connection has its id.
    fn on_data(&mut self, now: Instant, from: SocketAddr, cid: u64, datagram: &[u8]) {
        if let Some(index) = self.route(cid, from) {
            let mut scratch = std::mem::take(&mut self.scratch);
            self.apply(index, |connection| {
                connection.handle_datagram(now, datagram, &mut scratch)
            });
            self.scratch = scratch;
            return;
        }
        // Answer only packets larger than the reset, so two endpoints that
        // both forgot a connection cannot bounce resets forever.
        let reset_len = packet::HEADER_LEN + RESET_TOKEN_LEN + packet::CHECKSUM_LEN;
        if self.by_cid.contains_key(&cid) || datagram.len() <= reset_len {
            return;
        }
        let mut answer = Vec::with_capacity(reset_len);
        packet::encode_reset(&mut answer, cid, &self.reset_secret.token(cid));
        packet::seal(&mut answer, 0);
        if self.queue_stateless(now, from, answer) {
            self.stats.resets_sent += 1;
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
        if self.cookies.due_for_rotation(since_epoch) {
            let secret = random_bytes(&mut self.rng);
            self.cookies.rotate(secret, since_epoch);
        }
        if !self
            .cookies
            .check(hello.cookie, from, cid, hello.attempt(), since_epoch)
        {
            let mut nonce = [0u8; 12];
            self.rng.fill_bytes(&mut nonce);
            let cookie = self
                .cookies
                .issue(from, cid, hello.attempt(), since_epoch, nonce);
            let mut answer = Vec::with_capacity(64);
            packet::encode_retry(&mut answer, cid, &cookie, hello.attempt());
            packet::seal(&mut answer, 0);
            if self.queue_stateless(now, from, answer) {
                self.stats.retries_sent += 1;
            }
            return;
        }
        if self
            .used_attempts
            .contains(cid, hello.attempt(), since_epoch)
        {
            // A recorded Initial played again after its connection ended.
            self.stats.forged_dropped += 1;
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
        let security = match self.server_security(now, cid, hello, local_cid) {
            Ok(security) => security,
            Err(detail) => {
                self.stats.handshakes_failed += 1;
                self.refuse(now, from, cid, RefuseReason::Security, &detail);
                return;
            }
        };
        let connection = Connection::new_server(
            self.config.clone(),
            now,
            local_cid,
            from,
            cid,
            hello,
            security,
        );
        self.stats.accepted += 1;
        self.used_attempts.insert(cid, hello.attempt(), since_epoch);
        let handle = self.insert(connection, Some((from, cid)));
        self.sources.add(from.ip());
        self.slots[handle.index as usize].counted_source = Some(from.ip());
    }

    /// Runs the server's half of the handshake on an `Initial` whose
    /// address is validated, and checks the security rules. The error is
    /// the refusal's detail.
    fn server_security(
        &mut self,
        now: Instant,
        cid: u64,
        hello: &Hello<'_>,
        local_cid: u64,
    ) -> Result<SecurityStart, String> {
        let security = &self.config.security;
        let local_reset_token = self.reset_secret.token(local_cid);
        if hello.security == SECURITY_PLAINTEXT {
            if !security.insecure_plaintext_for_debugging {
                return Err(
                    "this server requires encryption; the client asked for plaintext".into(),
                );
            }
            if security.connect_tokens.is_some() {
                return Err(TokenError::Missing.to_string());
            }
            return Ok(SecurityStart {
                protection: Protection::Plaintext,
                local_reset_token,
                peer_reset_token: reset_token_of(hello.handshake),
                peer_key: None,
                client_id: None,
                hello_security: SECURITY_PLAINTEXT,
                hello_cipher: hello.cipher,
                hello_key_update: hello.key_update,
                hello_handshake: Vec::new(),
                skip_seed: self.rng.random(),
            });
        }
        let pattern = Pattern::from_u8(hello.security)
            .ok_or_else(|| format!("unknown handshake pattern {}", hello.security))?;
        let cipher = super::crypto::Cipher::from_u8(hello.cipher)
            .ok_or_else(|| format!("unknown cipher {}", hello.cipher))?;
        if !(MIN_KEY_UPDATE_PACKETS..=MAX_KEY_UPDATE_PACKETS).contains(&hello.key_update) {
            return Err(format!(
                "the client's key update interval {} is outside {MIN_KEY_UPDATE_PACKETS}..={MAX_KEY_UPDATE_PACKETS}",
                hello.key_update
            ));
        }
        let handshake = ServerHandshake::read(
            &self.static_key,
            pattern,
            security.pre_shared_key.as_ref(),
            &hello.prologue(cid),
            hello.handshake,
            random_bytes(&mut self.rng),
        )
        .map_err(|error| error.to_string())?;
        let payload = handshake.payload();
        // An `NX` first message without a pre-shared key is not encrypted:
        // a token in it proves nothing, so none is taken.
        let payload_secret = pattern == Pattern::Ik || security.pre_shared_key.is_some();
        let peer_reset_token = if payload_secret {
            reset_token_of(payload)
        } else {
            None
        };
        let client_id = match &security.connect_tokens {
            None => None,
            Some(_) if pattern != Pattern::Ik => {
                return Err(
                    "this server admits connect-token clients that pin its key; set security.server_key".into(),
                );
            }
            Some(policy) => {
                let unix_now = self
                    .unix_at_epoch
                    .map(|at_epoch| at_epoch + now.saturating_duration_since(self.epoch))
                    .ok_or_else(|| {
                        "this server does not know the time to check tokens".to_owned()
                    })?;
                let token = payload.get(RESET_TOKEN_LEN..).unwrap_or_default();
                Some(
                    policy
                        .key
                        .verify(token, policy.server_address, unix_now)
                        .map_err(|error| error.to_string())?,
                )
            }
        };
        let peer_key = handshake.client_key();
        let (answer, finished) = handshake.answer().map_err(|error| error.to_string())?;
        let keys =
            super::crypto::PacketKeys::new(cipher, finished.secrets, false, hello.key_update);
        Ok(SecurityStart {
            protection: Protection::Keys {
                keys: Box::new(keys),
                answer: Some(answer),
                replay: ReplayWindow::default(),
            },
            local_reset_token,
            peer_reset_token,
            peer_key,
            client_id,
            hello_security: hello.security,
            hello_cipher: hello.cipher,
            hello_key_update: hello.key_update,
            hello_handshake: Vec::new(),
            skip_seed: self.rng.random(),
        })
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

    /// A fresh connection id: 64 bits from the secure generator, so an
    /// off-path attacker cannot guess one.
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

/// 32 bytes from the endpoint's generator.
fn random_bytes(rng: &mut StdRng) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    bytes
}

/// The reset token at the front of a client's handshake payload.
fn reset_token_of(payload: &[u8]) -> Option<[u8; RESET_TOKEN_LEN]> {
    payload.get(..RESET_TOKEN_LEN)?.try_into().ok()
}
