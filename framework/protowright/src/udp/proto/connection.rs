//! One connection's state machine: handshake (client side), packet
//! assembly, acks, loss detection and recovery per RFC 9002, congestion
//! control and pacing, flow control, keepalive, idle timeout and close.
//!
//! It is driven by its [`Endpoint`](super::Endpoint), which routes datagrams
//! to it by connection id; applications reach it through the endpoint.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::budget::MemoryBudget;
use super::congestion::{Controller, Pacer, RateSample};
use super::frame::{self, Frame, Frames, Lane};
use super::mtu::MtuSearch;
use super::packet::{self, CHECKSUM_LEN, Hello, RefuseReason};
use super::ranges::RangeSet;
use super::recv::{Message, ReceiveBuffer, Receiver, RecvLimits, Violation};
use super::rtt::RttEstimator;
use super::send::{QueueDepths, Sender, SentFragment};
use super::{Config, SendError};

/// The close code of a close the application asked for without one.
pub const CLOSE_NORMAL: u64 = 0;
/// The close code sent when the peer broke the protocol.
pub const CLOSE_PROTOCOL_VIOLATION: u64 = 1;

/// The most received packet-number ranges remembered for acks; older ones
/// are forgotten, and packets below them are treated as duplicates.
const MAX_RECEIVED_RANGES: usize = 256;

/// Ack-eliciting packets received before an ack is sent at once.
const ACK_EVERY: u32 = 2;

/// Emptied frame lists kept for reuse: enough for a window's packets to
/// turn over, few enough that an idle connection holds little.
const MAX_SPARE_FRAME_LISTS: usize = 64;

/// Probe timeouts in a row, at a datagram size above the base, that are
/// taken for a path-MTU black hole.
const BLACK_HOLE_PTOS: u32 = 2;

/// Which end of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The end that connected.
    Client,
    /// The end that accepted.
    Server,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// This side closed it.
    #[error("closed locally (code {code}): {reason}")]
    Local {
        /// The close code.
        code: u64,
        /// The explanation sent to the peer.
        reason: String,
    },
    /// The peer closed it.
    #[error("closed by the peer (code {code}): {reason}")]
    Peer {
        /// The peer's close code.
        code: u64,
        /// The peer's explanation.
        reason: String,
    },
    /// Nothing was heard from the peer for the idle timeout.
    #[error("the peer went silent for {0:?}")]
    IdleTimeout(Duration),
    /// The server never answered.
    #[error("no answer from the server within {0:?}")]
    HandshakeTimeout(Duration),
    /// The peer holds no such connection (it restarted or forgot it).
    #[error("the peer reset the connection: it holds no such connection (restarted?)")]
    Reset,
    /// The server refused the connection.
    #[error("the server refused the connection ({reason:?}): {detail}")]
    Refused {
        /// Why.
        reason: RefuseReason,
        /// The server's explanation.
        detail: String,
    },
    /// The peer broke the protocol; this side closed the connection.
    #[error("the peer broke the protocol: {0}")]
    ProtocolViolation(String),
}

/// Something that happened to a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake finished: messages can flow.
    Connected,
    /// The connection ended; nothing more will be delivered or sent.
    Closed(CloseReason),
}

/// Counters and estimates for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Smoothed round-trip time.
    pub rtt: Duration,
    /// The smallest round-trip time seen.
    pub min_rtt: Duration,
    /// Round-trip time variance.
    pub rtt_variance: Duration,
    /// The congestion window in bytes.
    pub congestion_window: u64,
    /// The congestion controller's name.
    pub congestion_controller: &'static str,
    /// Bytes sent and not yet acknowledged or declared lost.
    pub bytes_in_flight: u64,
    /// Packets sent.
    pub packets_sent: u64,
    /// Packets received (duplicates and undecodable ones excluded).
    pub packets_received: u64,
    /// Packets declared lost.
    pub packets_lost: u64,
    /// Packets that carried resent data.
    pub packets_retransmitted: u64,
    /// Datagram bytes sent.
    pub bytes_sent: u64,
    /// Datagram bytes received.
    pub bytes_received: u64,
    /// The datagram size in use.
    pub datagram_size: usize,
    /// What the send side holds.
    pub queues: QueueDepths,
    /// Messages ready for the application and not yet read.
    pub unread_messages: usize,
    /// Messages delivered to the application's queue, every lane: each
    /// message at most once, none after the application let go of the
    /// connection.
    pub messages_delivered: u64,
    /// Unreliable messages dropped on receipt (lost fragment, full buffer).
    pub unreliable_dropped: u64,
    /// Duplicates ignored: `duplicate_packets + duplicate_fragments`.
    pub duplicates: u64,
    /// Packets whose number had already arrived (the path duplicated
    /// them), dropped before their frames were read.
    pub duplicate_packets: u64,
    /// Fragments of messages already delivered or held, or of bytes already
    /// held (resends after a lost ack), dropped without being stored.
    pub duplicate_fragments: u64,
    /// Unreliable fragments that came too late to use: older than the
    /// newest sequenced message delivered, or than the replay window.
    pub stale_fragments: u64,
    /// Ordered messages that arrived ahead of an earlier one and waited in
    /// the early buffer for it: reordering put right.
    pub early_buffered: u64,
    /// Reliable fragments refused for lack of room (too far ahead, too
    /// many messages waiting, the endpoint's receive budget spent): their
    /// packets went unacknowledged, so the peer resends them.
    pub refused_fragments: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A client waiting for the server's welcome.
    Handshake,
    Established,
    /// Closing gracefully: no new sends; waiting for every reliable
    /// message to be acknowledged.
    Flushing,
    /// Close sent; answering late packets with it until the drain ends.
    Closing,
    /// Close received; silent until the drain ends.
    Draining,
    /// Gone; the endpoint forgets it.
    Drained,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SentFrame {
    Fragment(SentFragment),
    Welcome,
    MaxData,
    Ping,
}

#[derive(Debug)]
struct SentPacket {
    time: Instant,
    size: u64,
    /// The sender had less to send than the window allowed.
    app_limited: bool,
    /// A path-MTU probe: its loss says the size is too large, not that the
    /// path is congested.
    mtu_probe: bool,
    /// The connection's delivery-rate state when it was sent.
    delivery: DeliveryMark,
    frames: Vec<SentFrame>,
}

/// What the delivery-rate estimate remembers per packet sent: how much had
/// been delivered by then, when, and when the flight it belongs to began.
#[derive(Debug, Clone, Copy)]
struct DeliveryMark {
    delivered: u64,
    delivered_time: Instant,
    first_sent_time: Instant,
    /// Sent while the connection was application-limited.
    app_limited: bool,
}

/// The connection's side of delivery-rate estimation.
#[derive(Debug, Clone, Copy)]
struct DeliveryRate {
    /// Bytes acknowledged over the connection's life.
    delivered: u64,
    /// When `delivered` last grew.
    delivered_time: Instant,
    /// When the newest acknowledged packet was sent: the start of the
    /// flight the next packet joins.
    first_sent_time: Instant,
    /// Samples stay application-limited until `delivered` passes this
    /// (0: not limited).
    app_limited_until: u64,
}

/// Where a datagram from [`Connection::poll_transmit`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The peer's address.
    pub destination: SocketAddr,
    /// The datagram's length: it is the last `size` bytes of the buffer.
    pub size: usize,
}

/// One reliable-UDP connection.
#[derive(Debug)]
pub struct Connection {
    config: Arc<Config>,
    side: Side,
    state: State,
    local_cid: u64,
    remote_cid: u64,
    peer: SocketAddr,
    // Client handshake.
    cookie: Vec<u8>,
    hello_due: Option<Instant>,
    /// The hello's resend time passed: send it with the next transmit.
    hello_now: bool,
    hello_attempts: u32,
    /// Hellos sent with the current cookie, and when the last one went:
    /// if exactly one went, the welcome gives an unambiguous RTT sample
    /// (Karn's rule).
    cookie_hellos: u32,
    last_hello_at: Option<Instant>,
    handshake_deadline: Instant,
    // Server handshake: the welcome is sent and resent like data.
    welcome_pending: bool,
    // The peer's limits.
    peer_max_data: u64,
    peer_max_message: u64,
    // Recovery.
    next_packet: u64,
    sent: BTreeMap<u64, SentPacket>,
    in_flight: u64,
    largest_acked: Option<u64>,
    loss_time: Option<Instant>,
    pto_count: u32,
    last_eliciting_sent: Option<Instant>,
    probes: u8,
    rtt: RttEstimator,
    delivery: DeliveryRate,
    mtu: MtuSearch,
    controller: Box<dyn Controller>,
    pacer: Pacer,
    pacing_until: Option<Instant>,
    // Acks owed.
    received: RangeSet,
    /// Reused between acks, so processing one allocates nothing.
    acked_scratch: Vec<(u64, SentPacket)>,
    /// Frame lists of acknowledged or lost packets, for new packets.
    spare_frames: Vec<Vec<SentFrame>>,
    largest_received: Option<(u64, Instant)>,
    unacked_eliciting: u32,
    ack_deadline: Option<Instant>,
    /// The ack deadline passed: ack in the next packet.
    ack_now: bool,
    // Flow control of what the peer sends.
    local_max_data: u64,
    released: u64,
    max_data_pending: bool,
    sender: Sender,
    receiver: Receiver,
    // Liveness.
    last_received: Instant,
    ping_pending: bool,
    // Closing.
    close_frame: Option<(u64, String)>,
    close_pending: bool,
    /// When to send the close again while closing, in case it was lost.
    close_resend_at: Option<Instant>,
    drain_until: Option<Instant>,
    closed: bool,
    events: VecDeque<Event>,
    stats: Counters,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    packets_sent: u64,
    packets_received: u64,
    packets_lost: u64,
    packets_retransmitted: u64,
    bytes_sent: u64,
    bytes_received: u64,
    duplicate_packets: u64,
}

impl Connection {
    pub(crate) fn new_client(
        config: Arc<Config>,
        now: Instant,
        local_cid: u64,
        peer: SocketAddr,
    ) -> Self {
        let mut connection = Self::new(config, Side::Client, now, local_cid, 0, peer);
        connection.state = State::Handshake;
        connection.hello_now = true;
        connection
    }

    pub(crate) fn new_server(
        config: Arc<Config>,
        now: Instant,
        local_cid: u64,
        peer: SocketAddr,
        client_cid: u64,
        hello: &Hello<'_>,
    ) -> Self {
        let mut connection = Self::new(config, Side::Server, now, local_cid, client_cid, peer);
        connection.peer_max_data = hello.max_data;
        connection.peer_max_message = hello.max_message;
        connection.welcome_pending = true;
        connection.events.push_back(Event::Connected);
        connection
    }

    fn new(
        config: Arc<Config>,
        side: Side,
        now: Instant,
        local_cid: u64,
        remote_cid: u64,
        peer: SocketAddr,
    ) -> Self {
        let limits = RecvLimits {
            max_message: config.max_message_size,
            channels: config.channels,
            window: config.receive_window,
            unreliable_budget: config.unreliable_buffer,
            max_early: config.max_early_messages,
            max_lead: config.max_sequence_lead,
        };
        Self {
            side,
            state: State::Established,
            local_cid,
            remote_cid,
            peer,
            cookie: Vec::new(),
            hello_due: None,
            hello_now: false,
            hello_attempts: 0,
            cookie_hellos: 0,
            last_hello_at: None,
            handshake_deadline: now + config.handshake_timeout,
            welcome_pending: false,
            peer_max_data: 0,
            peer_max_message: 0,
            next_packet: 0,
            sent: BTreeMap::new(),
            in_flight: 0,
            largest_acked: None,
            loss_time: None,
            pto_count: 0,
            last_eliciting_sent: None,
            probes: 0,
            rtt: RttEstimator::new(config.initial_rtt),
            delivery: DeliveryRate {
                delivered: 0,
                delivered_time: now,
                first_sent_time: now,
                app_limited_until: 0,
            },
            mtu: MtuSearch::new(
                config.initial_datagram_size,
                config.max_datagram_size,
                config.mtu_search_interval,
                config.mtu_discovery,
            ),
            controller: config
                .congestion_control
                .build(config.initial_datagram_size as u64),
            pacer: Pacer::new(),
            pacing_until: None,
            received: RangeSet::default(),
            acked_scratch: Vec::new(),
            spare_frames: Vec::new(),
            largest_received: None,
            unacked_eliciting: 0,
            ack_deadline: None,
            ack_now: false,
            local_max_data: config.flow_window(),
            released: 0,
            max_data_pending: false,
            sender: Sender::new(),
            receiver: Receiver::new(limits),
            last_received: now,
            ping_pending: false,
            close_frame: None,
            close_pending: false,
            close_resend_at: None,
            drain_until: None,
            closed: false,
            events: VecDeque::new(),
            stats: Counters::default(),
            config,
        }
    }

    /// Which end this is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// This side's connection id.
    pub fn local_cid(&self) -> u64 {
        self.local_cid
    }

    pub(crate) fn remote_cid(&self) -> u64 {
        self.remote_cid
    }

    /// Whether messages can flow (the handshake is done and no close began).
    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// Whether the connection ended (the `Closed` event was emitted).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub(crate) fn is_drained(&self) -> bool {
        self.state == State::Drained
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.state == State::Handshake
    }

    /// Queues a message. Fails when the connection is closing, the message
    /// is larger than either side accepts, the channel does not exist, or
    /// the send buffer is full (wait for acks and try again).
    pub fn send(&mut self, lane: Lane, channel: u32, data: Bytes) -> Result<(), SendError> {
        if !matches!(self.state, State::Handshake | State::Established) {
            return Err(SendError::Closed);
        }
        let len = data.len() as u64;
        let max = self.max_message();
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        let channel = if lane == Lane::Session { 0 } else { channel };
        let needs_channel = matches!(lane, Lane::ReliableOrdered | Lane::UnreliableSequenced);
        if needs_channel && channel >= self.config.channels {
            return Err(SendError::NoSuchChannel {
                channel,
                channels: self.config.channels,
            });
        }
        self.sender
            .push(lane, channel, data, self.config.send_buffer)
    }

    /// Sets the priority of `channel` for messages queued on it from now
    /// on. Packets are filled from the highest priority with anything to
    /// send (default 0; higher first), resends included, so a small
    /// urgent message waits for at most the packet being built, never for
    /// a lower channel's backlog.
    pub fn set_priority(&mut self, channel: u32, priority: i32) {
        self.sender.set_priority(channel, priority);
    }

    /// The priority of `channel`.
    pub fn priority(&self, channel: u32) -> i32 {
        self.sender.priority(channel)
    }

    /// The largest message both sides accept.
    pub fn max_message(&self) -> u64 {
        if self.state == State::Handshake {
            self.config.max_message_size
        } else {
            self.config.max_message_size.min(self.peer_max_message)
        }
    }

    /// Whether a message of `len` bytes fits the send buffer now.
    pub fn can_send(&self, len: u64) -> bool {
        let queued = self.sender.queued_bytes();
        queued == 0 || queued + len <= self.config.send_buffer
    }

    /// The next message for the application, on any lane but the
    /// session's (see [`recv_session`](Self::recv_session)). Reliable messages hold
    /// flow-control credit until [`release`](Self::release) is called with
    /// their length, so memory stays bounded while the application is slow.
    pub fn recv(&mut self) -> Option<Message> {
        self.receiver.pop()
    }

    /// The next session-lane message (one RPC envelope). Like
    /// [`recv`](Self::recv), it holds flow-control credit until released.
    pub fn recv_session(&mut self) -> Option<Bytes> {
        self.receiver.pop_session()
    }

    /// Whether a message is waiting for [`recv`](Self::recv).
    pub fn has_message(&self) -> bool {
        self.receiver.has_ready()
    }

    /// Whether a session-lane message is waiting for
    /// [`recv_session`](Self::recv_session).
    pub fn has_session_message(&self) -> bool {
        self.receiver.has_ready_session()
    }

    /// Gives `bytes` of reliable data back to the flow-control window: the
    /// application has consumed them.
    /// Returns whether a window update is now due to the peer (so a driver
    /// knows it has something to send).
    pub fn release(&mut self, bytes: u64) -> bool {
        self.released += bytes;
        // The overhead of the messages read comes back with what was read.
        let limit = self.released + self.receiver.overhead_read() + self.config.flow_window();
        // Announce a new limit once a quarter window has been consumed.
        if limit >= self.local_max_data + self.config.receive_window / 4 {
            self.local_max_data = limit;
            self.max_data_pending = true;
            return true;
        }
        false
    }

    /// The next lifecycle event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub(crate) fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Closes gracefully: no new sends; every queued reliable message is
    /// delivered and acknowledged first (bounded by the idle timeout), then
    /// the close is sent.
    pub fn close(&mut self, now: Instant, code: u64, reason: &str) {
        match self.state {
            State::Handshake => {
                self.finish(CloseReason::Local {
                    code,
                    reason: reason.to_owned(),
                });
                self.state = State::Drained;
            }
            State::Established => {
                self.close_frame = Some((code, reason.to_owned()));
                self.state = State::Flushing;
                self.maybe_finish_flushing(now);
            }
            _ => {}
        }
    }

    /// Closes at once, dropping whatever is queued.
    pub fn abort(&mut self, now: Instant, code: u64, reason: &str) {
        match self.state {
            State::Handshake => self.close(now, code, reason),
            State::Established | State::Flushing => {
                self.close_frame = Some((code, reason.to_owned()));
                self.begin_closing(
                    now,
                    CloseReason::Local {
                        code,
                        reason: reason.to_owned(),
                    },
                );
            }
            _ => {}
        }
    }

    fn maybe_finish_flushing(&mut self, now: Instant) {
        if self.state == State::Flushing && self.sender.all_acked() {
            let (code, reason) = self
                .close_frame
                .clone()
                .unwrap_or((CLOSE_NORMAL, String::new()));
            self.begin_closing(now, CloseReason::Local { code, reason });
        }
    }

    fn begin_closing(&mut self, now: Instant, reason: CloseReason) {
        self.state = State::Closing;
        self.close_pending = true;
        let pto = self.rtt.pto(self.config.max_ack_delay);
        self.close_resend_at = Some(now + pto);
        self.drain_until = Some(now + self.drain_period());
        self.sender.clear();
        self.finish(reason);
    }

    fn begin_draining(&mut self, now: Instant, reason: CloseReason) {
        self.state = State::Draining;
        self.drain_until = Some(now + self.drain_period());
        self.sender.clear();
        self.finish(reason);
    }

    fn violation(&mut self, now: Instant, violation: &str) {
        tracing::debug!(peer = %self.peer, %violation, "closing: protocol violation");
        self.close_frame = Some((CLOSE_PROTOCOL_VIOLATION, violation.to_owned()));
        self.begin_closing(now, CloseReason::ProtocolViolation(violation.to_owned()));
    }

    /// Emits the one `Closed` event.
    fn finish(&mut self, reason: CloseReason) {
        if !self.closed {
            self.closed = true;
            self.events.push_back(Event::Closed(reason));
        }
    }

    fn drain_period(&self) -> Duration {
        self.rtt.pto(self.config.max_ack_delay) * 3
    }

    /// The endpoint learned the peer holds no such connection.
    pub(crate) fn on_reset(&mut self) {
        if !self.closed {
            self.finish(CloseReason::Reset);
        }
        self.state = State::Drained;
    }

    /// The server refused this client's attempt.
    pub(crate) fn on_refused(&mut self, reason: RefuseReason, detail: &str) {
        if self.state == State::Handshake {
            self.finish(CloseReason::Refused {
                reason,
                detail: detail.to_owned(),
            });
            self.state = State::Drained;
        }
    }

    /// The server asked this client to retry with a cookie.
    pub(crate) fn on_retry(&mut self, cookie: &[u8]) {
        if self.state == State::Handshake && self.cookie.as_slice() != cookie {
            self.cookie = cookie.to_vec();
            self.cookie_hellos = 0;
            self.hello_due = None;
            self.hello_now = true;
        }
    }

    /// The server saw this client's `Initial` again: its welcome may be lost.
    pub(crate) fn on_repeated_hello(&mut self) {
        if self.side == Side::Server
            && self.state == State::Established
            && self.largest_acked.is_none()
        {
            self.welcome_pending = true;
        }
    }

    /// Takes in a `Data` packet addressed to this connection.
    pub(crate) fn handle_packet(&mut self, now: Instant, number: u64, payload: &[u8], size: usize) {
        match self.state {
            State::Drained | State::Draining => return,
            State::Closing => {
                // Late packets get the close again.
                self.close_pending = true;
                return;
            }
            _ => {}
        }
        if self.received.contains(number) || self.received.min().is_some_and(|min| number < min) {
            self.stats.duplicate_packets += 1;
            // Our ack may have been lost: ack again soon.
            self.unacked_eliciting = self.unacked_eliciting.max(1);
            self.ack_deadline = Some(now);
            return;
        }
        // Decode every frame before acting on any, so a malformed packet is
        // refused whole. Decoding is cheap; a second pass below beats
        // allocating a list of frames per packet.
        if let Some(Err(error)) = Frames::new(payload).find(Result::is_err) {
            self.violation(now, &format!("undecodable frame: {error}"));
            return;
        }
        let frames = Frames::new(payload).map_while(Result::ok);
        self.stats.packets_received += 1;
        self.stats.bytes_received += size as u64;
        self.last_received = now;
        let mut eliciting = false;
        for frame in frames {
            eliciting |= frame.is_ack_eliciting();
            if let Err(violation) = self.handle_frame(now, &frame) {
                self.violation(now, &violation);
                return;
            }
            if matches!(
                self.state,
                State::Draining | State::Closing | State::Drained
            ) {
                return;
            }
        }
        // A packet with refused data goes unacked: the peer resends it later.
        if !self.receiver.take_refused() {
            self.record_received(now, number, eliciting);
        }
        self.maybe_finish_flushing(now);
    }

    fn record_received(&mut self, now: Instant, number: u64, eliciting: bool) {
        let in_order = self
            .largest_received
            .is_none_or(|(largest, _)| number == largest + 1);
        self.received.insert(number..number + 1);
        while self.received.len() > MAX_RECEIVED_RANGES {
            self.received.pop_min();
        }
        if self
            .largest_received
            .is_none_or(|(largest, _)| number > largest)
        {
            self.largest_received = Some((number, now));
        }
        if !eliciting {
            return;
        }
        self.unacked_eliciting += 1;
        if !in_order || self.unacked_eliciting >= ACK_EVERY {
            self.ack_deadline = Some(now);
        } else if self.ack_deadline.is_none() {
            self.ack_deadline = Some(now + self.config.max_ack_delay);
        }
    }

    fn handle_frame(&mut self, now: Instant, frame: &Frame<'_>) -> Result<(), String> {
        match frame {
            Frame::Padding | Frame::Ping => {}
            Frame::Ack(ack) => self.on_ack(now, ack)?,
            Frame::Fragment(fragment) => {
                if self.state == State::Handshake {
                    return Err("data before the welcome".to_owned());
                }
                self.receiver
                    .on_fragment(fragment, self.local_max_data)
                    .map_err(|violation: Violation| violation.to_string())?;
            }
            Frame::Close { code, reason } => {
                let reason = CloseReason::Peer {
                    code: *code,
                    reason: (*reason).to_owned(),
                };
                self.begin_draining(now, reason);
            }
            Frame::Welcome {
                cid,
                max_data,
                max_message,
            } => {
                if self.side == Side::Server {
                    return Err("a welcome sent to the server".to_owned());
                }
                if self.state == State::Handshake {
                    self.remote_cid = *cid;
                    self.peer_max_data = *max_data;
                    self.peer_max_message = *max_message;
                    self.state = State::Established;
                    self.hello_due = None;
                    self.hello_now = false;
                    if self.cookie_hellos == 1
                        && let Some(sent) = self.last_hello_at
                    {
                        self.rtt
                            .update(now.saturating_duration_since(sent), Duration::ZERO);
                    }
                    self.events.push_back(Event::Connected);
                }
            }
            Frame::MaxData(limit) => self.peer_max_data = self.peer_max_data.max(*limit),
        }
        Ok(())
    }

    fn on_ack(&mut self, now: Instant, ack: &frame::Ack) -> Result<(), String> {
        let largest = ack.largest();
        if largest >= self.next_packet {
            return Err(format!("ack of packet {largest}, which was never sent"));
        }
        let prior_largest = self.largest_acked;
        let mut newly_acked = std::mem::take(&mut self.acked_scratch);
        for range in &ack.ranges {
            while let Some(entry) = self.sent.range(range.clone()).next() {
                let number = *entry.0;
                if let Some(packet) = self.sent.remove(&number) {
                    newly_acked.push((number, packet));
                }
            }
        }
        if newly_acked.is_empty() {
            self.acked_scratch = newly_acked;
            return Ok(());
        }
        self.largest_acked = Some(prior_largest.map_or(largest, |prior| prior.max(largest)));
        let mut rtt_sample = None;
        if let Some((number, packet)) = newly_acked.iter().max_by_key(|(number, _)| *number)
            && *number == largest
        {
            let delay = Duration::from_micros(ack.delay_micros).min(self.config.max_ack_delay);
            let latest = now.saturating_duration_since(packet.time);
            self.rtt.update(latest, delay);
            rtt_sample = Some(latest);
        }
        let smallest_acked = newly_acked
            .iter()
            .map(|(number, _)| *number)
            .min()
            .unwrap_or(largest);
        let mut acked_bytes = 0;
        let mut newest: Option<(DeliveryMark, Instant)> = None;
        for (number, packet) in newly_acked.drain(..) {
            self.in_flight -= packet.size;
            acked_bytes += packet.size;
            if packet.mtu_probe
                && let Some(size) = self.mtu.on_probe_acked(number)
            {
                self.controller.on_datagram_size(size as u64);
            }
            if newest.is_none_or(|(mark, _)| packet.delivery.delivered >= mark.delivered) {
                newest = Some((packet.delivery, packet.time));
            }
            self.controller
                .on_ack(now, packet.time, packet.size, &self.rtt, packet.app_limited);
            let mut frames = packet.frames;
            for frame in frames.drain(..) {
                match frame {
                    SentFrame::Fragment(fragment) => self.sender.on_acked(fragment),
                    SentFrame::Welcome => self.welcome_pending = false,
                    SentFrame::MaxData | SentFrame::Ping => {}
                }
            }
            self.recycle_frames(frames);
        }
        self.acked_scratch = newly_acked;
        self.delivery.delivered += acked_bytes;
        self.delivery.delivered_time = now;
        let lost_bytes = self.detect_lost(now, prior_largest, smallest_acked);
        self.pto_count = 0;
        self.probes = 0;
        if let Some((mark, sent)) = newest {
            self.delivery.first_sent_time = sent;
            let sample = self.rate_sample(now, mark, sent, acked_bytes, lost_bytes, rtt_sample);
            if self.delivery.app_limited_until > 0
                && self.delivery.delivered > self.delivery.app_limited_until
            {
                self.delivery.app_limited_until = 0;
            }
            self.controller.on_ack_event(now, &sample, self.in_flight);
        }
        Ok(())
    }

    /// The delivery rate over the flight that ended with the newest packet
    /// just acknowledged (sent at `sent`, when `mark` was the state): bytes
    /// delivered since, over the longer of its send and ack intervals, so
    /// neither a burst of sends nor a burst of acks inflates it.
    fn rate_sample(
        &self,
        now: Instant,
        mark: DeliveryMark,
        sent: Instant,
        acked_bytes: u64,
        lost_bytes: u64,
        rtt: Option<Duration>,
    ) -> RateSample {
        let send_elapsed = sent.saturating_duration_since(mark.first_sent_time);
        let ack_elapsed = now.saturating_duration_since(mark.delivered_time);
        let interval = send_elapsed.max(ack_elapsed);
        let delivered = self.delivery.delivered - mark.delivered;
        // An interval shorter than the minimum RTT cannot show the path's
        // rate (acks compressed in a queue): no sample.
        let delivery_rate = if interval.is_zero() || interval < self.rtt.min() {
            0
        } else {
            (u128::from(delivered) * 1_000_000_000 / interval.as_nanos()).min(u128::from(u64::MAX))
                as u64
        };
        RateSample {
            delivery_rate,
            delivered: self.delivery.delivered,
            prior_delivered: mark.delivered,
            acked_bytes,
            lost_bytes,
            is_app_limited: mark.app_limited,
            rtt,
        }
    }

    /// Declares lost the packets RFC 9002's thresholds say are, and arms the
    /// time threshold for the rest.
    /// Returns the bytes declared lost (probes not counted).
    fn detect_lost(
        &mut self,
        now: Instant,
        prior_largest: Option<u64>,
        smallest_newly_acked: u64,
    ) -> u64 {
        let Some(largest_acked) = self.largest_acked else {
            return 0;
        };
        self.loss_time = None;
        let loss_delay = self.rtt.loss_delay();
        let mut lost = Vec::new();
        for (&number, packet) in self.sent.range(..largest_acked) {
            let too_old = now.saturating_duration_since(packet.time) >= loss_delay;
            if too_old || largest_acked >= number + 3 {
                lost.push(number);
            } else {
                let at = packet.time + loss_delay;
                self.loss_time = Some(self.loss_time.map_or(at, |time: Instant| time.min(at)));
            }
        }
        if lost.is_empty() {
            return 0;
        }
        let mut lost_bytes = 0;
        let mut first_lost: Option<(u64, Instant)> = None;
        let mut last_lost: Option<(u64, Instant)> = None;
        for number in lost {
            let Some(packet) = self.sent.remove(&number) else {
                continue;
            };
            self.in_flight -= packet.size;
            if packet.mtu_probe {
                // Too large for the path, or unlucky: the search decides.
                self.mtu.on_probe_lost(number);
                continue;
            }
            self.stats.packets_lost += 1;
            lost_bytes += packet.size;
            first_lost.get_or_insert((number, packet.time));
            last_lost = Some((number, packet.time));
            let mut frames = packet.frames;
            for frame in frames.drain(..) {
                match frame {
                    SentFrame::Fragment(fragment) => self.sender.on_lost(fragment),
                    SentFrame::Welcome => self.welcome_pending = true,
                    SentFrame::MaxData => self.max_data_pending = true,
                    SentFrame::Ping => {}
                }
            }
            self.recycle_frames(frames);
        }
        let (Some((first_number, first_time)), Some((last_number, last_time))) =
            (first_lost, last_lost)
        else {
            return 0;
        };
        // Persistent congestion: every packet across a long enough span was
        // lost, and none in it was acknowledged.
        let span = last_time.saturating_duration_since(first_time);
        let persistent_after = self.rtt.pto(self.config.max_ack_delay) * 3;
        let nothing_acked_between = prior_largest.is_none_or(|prior| prior < first_number)
            && smallest_newly_acked > last_number;
        let persistent = self.rtt.has_sample() && span >= persistent_after && nothing_acked_between;
        self.controller
            .on_loss(now, last_time, lost_bytes, persistent);
        lost_bytes
    }

    fn pto_deadline(&self) -> Option<Instant> {
        if self.in_flight == 0 && self.sent.is_empty() {
            return None;
        }
        let last = self.last_eliciting_sent?;
        let backoff = 1u32 << self.pto_count.min(10);
        Some(last + self.rtt.pto(self.config.max_ack_delay) * backoff)
    }

    /// Whether the keepalive timer runs: on an established connection with
    /// nothing ack-eliciting awaiting its ack. While something is, the
    /// probe timeout is what keeps the connection alive (RFC 9002 §6.2):
    /// a keepalive ping would re-arm it every time and keep it from ever
    /// firing, so data whose packet was lost (a server's Welcome whose
    /// client never acks) would not be resent until the peer spoke again.
    fn is_keepalive_armed(&self) -> bool {
        self.state == State::Established && !self.ping_pending && self.pto_deadline().is_none()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at {
                earliest = Some(earliest.map_or(at, |e: Instant| e.min(at)));
            }
        };
        match self.state {
            State::Drained => return None,
            State::Closing => {
                consider(self.close_resend_at);
                consider(self.drain_until);
                return earliest;
            }
            State::Draining => return self.drain_until,
            State::Handshake => {
                consider(self.hello_due);
                consider(Some(self.handshake_deadline));
                return earliest;
            }
            State::Established | State::Flushing => {}
        }
        if self.unacked_eliciting > 0 && !self.ack_now {
            consider(self.ack_deadline);
        }
        consider(self.loss_time.or_else(|| self.pto_deadline()));
        consider(Some(self.last_received + self.config.idle_timeout));
        if self.is_keepalive_armed() {
            let since = self.last_eliciting_sent.unwrap_or(self.last_received);
            consider(Some(since + self.config.keepalive_interval));
        }
        consider(self.pacing_until);
        earliest
    }

    /// Runs whatever timers are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Drained => return,
            State::Closing | State::Draining => {
                if self.drain_until.is_some_and(|until| now >= until) {
                    self.state = State::Drained;
                } else if self.close_resend_at.is_some_and(|at| now >= at) {
                    // Send the close a few times across the drain period.
                    self.close_pending = true;
                    self.close_resend_at = Some(now + self.rtt.pto(self.config.max_ack_delay));
                }
                return;
            }
            State::Handshake => {
                if now >= self.handshake_deadline {
                    self.finish(CloseReason::HandshakeTimeout(self.config.handshake_timeout));
                    self.state = State::Drained;
                } else if self.hello_due.is_some_and(|at| now >= at) {
                    self.hello_due = None;
                    self.hello_now = true;
                }
                return;
            }
            State::Established | State::Flushing => {}
        }
        // Deadlines that call for sending turn into flags that the next
        // `poll_transmit` acts on, so a due timer is never reported twice.
        if self.ack_deadline.is_some_and(|at| now >= at) {
            self.ack_deadline = None;
            self.ack_now = self.unacked_eliciting > 0;
        }
        if now >= self.last_received + self.config.idle_timeout {
            self.finish(CloseReason::IdleTimeout(self.config.idle_timeout));
            self.sender.clear();
            self.state = State::Drained;
            return;
        }
        if self.pacing_until.is_some_and(|until| now >= until) {
            self.pacing_until = None;
        }
        if self.is_keepalive_armed() {
            let since = self.last_eliciting_sent.unwrap_or(self.last_received);
            if now >= since + self.config.keepalive_interval {
                self.ping_pending = true;
            }
        }
        if self.loss_time.is_some_and(|at| now >= at) {
            let prior = self.largest_acked;
            let _ = self.detect_lost(now, prior, u64::MAX);
        } else if self.loss_time.is_none() && self.pto_deadline().is_some_and(|at| now >= at) {
            self.on_probe_timeout();
        }
    }

    /// RFC 9002's probe timeout: send up to two ack-eliciting packets,
    /// resending the oldest unacknowledged data (or pinging), and back off.
    fn on_probe_timeout(&mut self) {
        self.pto_count += 1;
        self.probes = 2;
        // Two timeouts in a row at a discovered size: the path may have
        // stopped carrying it (a black hole). Fall back to the base size,
        // which every path carries, and search again.
        if self.pto_count >= BLACK_HOLE_PTOS
            && let Some(size) = self.mtu.on_black_hole()
        {
            tracing::debug!(peer = %self.peer, size, "path MTU black hole: back to the base size");
            self.controller.on_datagram_size(size as u64);
        }
        if let Some(packet) = self.sent.values().next() {
            for frame in packet.frames.clone() {
                match frame {
                    SentFrame::Fragment(fragment) => self.sender.on_lost(fragment),
                    SentFrame::Welcome => self.welcome_pending = true,
                    SentFrame::MaxData => self.max_data_pending = true,
                    SentFrame::Ping => {}
                }
            }
        }
    }

    /// Writes the next datagram to send, if any, at the end of `buf`.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        match self.state {
            State::Drained | State::Draining => None,
            State::Handshake => self.write_hello(now, buf),
            State::Closing => self.write_close(buf),
            State::Established | State::Flushing => self.write_data(now, buf),
        }
    }

    fn write_hello(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        if !self.hello_now && self.hello_due.is_none_or(|due| now < due) {
            return None;
        }
        self.hello_now = false;
        let start = buf.len();
        let hello = Hello {
            schema_hash: self.config.schema_hash,
            max_data: self.local_max_data,
            max_message: self.config.max_message_size,
            cookie: &self.cookie,
        };
        packet::encode_initial(buf, self.local_cid, &hello);
        packet::seal(buf, start);
        if !self.cookie.is_empty() {
            self.cookie_hellos += 1;
            self.last_hello_at = Some(now);
        }
        // Resend with backoff until the server answers, spread by up to
        // half the backoff (drawn from the random connection id), so
        // clients whose first hellos were dropped together do not all
        // come back in the same instant.
        let backoff = self.config.initial_rtt * (1 << self.hello_attempts.min(5));
        let spread = (self.local_cid.rotate_left(self.hello_attempts * 8) % 512) as u32;
        let backoff = backoff + backoff * spread / 1024;
        self.hello_attempts += 1;
        self.hello_due = Some(now + backoff.max(Duration::from_millis(10)));
        Some(self.sent_datagram(buf.len() - start))
    }

    fn write_close(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        if !self.close_pending {
            return None;
        }
        self.close_pending = false;
        let start = buf.len();
        let number = self.next_packet;
        self.next_packet += 1;
        packet::encode_data_header(buf, self.remote_cid, number);
        let (code, reason) = self
            .close_frame
            .clone()
            .unwrap_or((CLOSE_NORMAL, String::new()));
        frame::put_close(buf, code, &reason);
        packet::seal(buf, start);
        Some(self.sent_datagram(buf.len() - start))
    }

    fn sent_datagram(&mut self, size: usize) -> Transmit {
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += size as u64;
        Transmit {
            destination: self.peer,
            size,
        }
    }

    fn flow_allowance(&self) -> u64 {
        self.peer_max_data.saturating_sub(self.sender.data_sent)
    }

    fn wants_to_send(&self) -> bool {
        self.welcome_pending
            || self.max_data_pending
            || self.ping_pending
            || self.probes > 0
            || self.sender.has_pending(self.flow_allowance())
    }

    fn write_data(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        if let Some(transmit) = self.write_mtu_probe(now, buf) {
            return Some(transmit);
        }
        let mtu = self.mtu.current();
        let ack_due = self.unacked_eliciting > 0
            && (self.ack_now || self.ack_deadline.is_some_and(|at| now >= at));
        let window_open = self.in_flight + mtu as u64 <= self.controller.window();
        let mut eliciting = self.wants_to_send() && (window_open || self.probes > 0);
        // Pacing spreads data; control frames (a window update, a welcome,
        // a keepalive) are small and must not wait behind a datagram's
        // worth of tokens.
        let data_pending = self.sender.has_pending(self.flow_allowance());
        if eliciting && self.probes == 0 && data_pending {
            let rate = self.controller.pacing_rate(&self.rtt);
            match self.pacer.release_time(now, rate, mtu as u64, mtu as u64) {
                Some(at) => {
                    self.pacing_until = Some(at);
                    eliciting = false;
                }
                None => self.pacing_until = None,
            }
        }
        if !eliciting && !ack_due {
            return None;
        }
        let start = buf.len();
        let number = self.next_packet;
        self.next_packet += 1;
        packet::encode_data_header(buf, self.remote_cid, number);
        let end = start + mtu - CHECKSUM_LEN;
        if self.unacked_eliciting > 0 || ack_due {
            let delay = self.largest_received.map_or(0, |(_, at)| {
                now.saturating_duration_since(at).as_micros() as u64
            });
            let room = end - buf.len();
            if frame::put_ack(buf, self.received.iter_descending(), delay, room) {
                self.unacked_eliciting = 0;
                self.ack_deadline = None;
                self.ack_now = false;
            }
        }
        let mut frames = self.spare_frames.pop().unwrap_or_default();
        if eliciting {
            self.write_eliciting(buf, end, &mut frames);
        }
        packet::seal(buf, start);
        let size = buf.len() - start;
        if !frames.is_empty() {
            let app_limited = !self.sender.has_pending(self.flow_allowance());
            let delivery = self.delivery_mark(now);
            if app_limited {
                self.delivery.app_limited_until =
                    (self.delivery.delivered + self.in_flight + size as u64).max(1);
            }
            if frames
                .iter()
                .any(|frame| matches!(frame, SentFrame::Fragment(_)))
                && self.probes == 0
            {
                self.pacer.on_sent(size as u64);
            }
            self.in_flight += size as u64;
            self.controller.on_sent(now, size as u64);
            self.last_eliciting_sent = Some(now);
            self.probes = self.probes.saturating_sub(1);
            self.sent.insert(
                number,
                SentPacket {
                    time: now,
                    size: size as u64,
                    app_limited,
                    mtu_probe: false,
                    delivery,
                    frames,
                },
            );
        } else {
            self.recycle_frames(frames);
        }
        Some(self.sent_datagram(size))
    }

    /// Keeps an emptied frame list for the next packet, so sending and
    /// acknowledging allocate nothing once a connection is warm.
    fn recycle_frames(&mut self, mut frames: Vec<SentFrame>) {
        if self.spare_frames.len() < MAX_SPARE_FRAME_LISTS && frames.capacity() > 0 {
            frames.clear();
            self.spare_frames.push(frames);
        }
    }

    /// The delivery-rate state to remember with a packet sent now. A
    /// packet sent with nothing in flight starts a new flight.
    fn delivery_mark(&mut self, now: Instant) -> DeliveryMark {
        if self.in_flight == 0 {
            self.delivery.first_sent_time = now;
            self.delivery.delivered_time = now;
        }
        DeliveryMark {
            delivered: self.delivery.delivered,
            delivered_time: self.delivery.delivered_time,
            first_sent_time: self.delivery.first_sent_time,
            app_limited: self.delivery.app_limited_until > 0,
        }
    }

    /// Sends a path-MTU probe when the search wants one: a ping padded to
    /// the size being tried. Only once the peer has acknowledged something
    /// (the path works at the base size) and the window has room.
    fn write_mtu_probe(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        if self.state != State::Established || self.largest_acked.is_none() || self.probes > 0 {
            return None;
        }
        // A probe may be larger than the whole window of a short path: it
        // goes whenever the window has room at all (one at a time).
        if self.in_flight >= self.controller.window() {
            return None;
        }
        let size = self.mtu.probe_size(now)?;
        let start = buf.len();
        let number = self.next_packet;
        self.next_packet += 1;
        packet::encode_data_header(buf, self.remote_cid, number);
        frame::put_ping(buf);
        // Padding frames (zero bytes) fill the rest.
        buf.resize(start + size - CHECKSUM_LEN, 0);
        packet::seal(buf, start);
        let delivery = self.delivery_mark(now);
        self.mtu.on_probe_sent(size, number);
        self.in_flight += size as u64;
        self.controller.on_sent(now, size as u64);
        self.last_eliciting_sent = Some(now);
        self.sent.insert(
            number,
            SentPacket {
                time: now,
                size: size as u64,
                app_limited: true,
                mtu_probe: true,
                delivery,
                frames: vec![SentFrame::Ping],
            },
        );
        Some(self.sent_datagram(size))
    }

    fn write_eliciting(&mut self, buf: &mut Vec<u8>, end: usize, frames: &mut Vec<SentFrame>) {
        if self.welcome_pending
            && end - buf.len()
                >= frame::welcome_len(self.local_max_data, self.config.max_message_size)
        {
            frame::put_welcome(
                buf,
                self.local_cid,
                self.local_max_data,
                self.config.max_message_size,
            );
            frames.push(SentFrame::Welcome);
            self.welcome_pending = false;
        }
        if self.max_data_pending && end - buf.len() >= 9 {
            frame::put_max_data(buf, self.local_max_data);
            frames.push(SentFrame::MaxData);
            self.max_data_pending = false;
        }
        let mut first = true;
        let mut resent = false;
        while end - buf.len() > 16 {
            let retransmitting = self.sender.has_retransmits();
            let Some(fragment) =
                self.sender
                    .write_fragment(buf, end - buf.len(), self.flow_allowance(), first)
            else {
                break;
            };
            resent |= retransmitting;
            first = false;
            frames.push(SentFrame::Fragment(fragment));
        }
        if resent {
            self.stats.packets_retransmitted += 1;
        }
        if frames.is_empty() && (self.ping_pending || self.probes > 0) {
            frame::put_ping(buf);
            frames.push(SentFrame::Ping);
        }
        if !frames.is_empty() {
            self.ping_pending = false;
        }
    }

    /// Counters and estimates.
    pub fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            rtt: self.rtt.smoothed(),
            min_rtt: self.rtt.min(),
            rtt_variance: self.rtt.variance(),
            congestion_window: self.controller.window(),
            congestion_controller: self.controller.name(),
            bytes_in_flight: self.in_flight,
            packets_sent: self.stats.packets_sent,
            packets_received: self.stats.packets_received,
            packets_lost: self.stats.packets_lost,
            packets_retransmitted: self.stats.packets_retransmitted,
            bytes_sent: self.stats.bytes_sent,
            bytes_received: self.stats.bytes_received,
            datagram_size: self.mtu.current(),
            queues: self.sender.depths(),
            unread_messages: self.receiver.ready_len(),
            messages_delivered: self.receiver.messages_delivered(),
            unreliable_dropped: self.receiver.unreliable_dropped,
            duplicates: self.receiver.duplicate_fragments + self.stats.duplicate_packets,
            duplicate_packets: self.stats.duplicate_packets,
            duplicate_fragments: self.receiver.duplicate_fragments,
            stale_fragments: self.receiver.stale_fragments,
            early_buffered: self.receiver.early_buffered,
            refused_fragments: self.receiver.refused_fragments,
        }
    }

    /// What the receive side holds, by kind, measured buffer by buffer, and
    /// the most it may hold.
    pub fn receive_buffer(&self) -> ReceiveBuffer {
        self.receiver.buffer()
    }

    /// Whether every reliable message sent has been acknowledged.
    pub fn is_flushed(&self) -> bool {
        self.sender.all_acked()
    }

    /// Whether the peer's flow-control limit alone holds data back.
    pub fn is_flow_blocked(&self) -> bool {
        self.sender.is_flow_blocked(self.flow_allowance())
    }

    /// The application let go: drop what it did not read and deliver
    /// nothing more (see `Receiver::discard`).
    pub(crate) fn discard_unread(&mut self) {
        self.receiver.discard();
    }

    /// Charges what the receive side holds to the endpoint's `budget`.
    pub(crate) fn join_budget(&mut self, budget: &MemoryBudget) {
        self.receiver.join_budget(budget);
    }
}
