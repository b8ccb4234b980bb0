//! One connection's state machine: the client's handshake, packet
//! assembly, acks, loss detection and recovery per RFC 9002, congestion
//! control and pacing, flow control, keepalive, idle timeout and close.
//!
//! It is driven by its [`Endpoint`](super::Endpoint), which routes datagrams
//! to it by connection id; applications reach it through the endpoint.
//! Like the endpoint it is sans-IO: inputs are `handle_packet`,
//! `handle_timeout` and the application's calls; outputs are
//! `poll_transmit`, `poll_timeout` and `poll_event`. The endpoint asks
//! `poll_timeout` again after every input, so a deadline an input moved is
//! never missed.
//!
//! # Map
//! - `state`: where the connection is in its life; each state holds its
//!   own data (the client's hellos, the close being sent).
//! - `handshake`: hellos, retries and the welcome.
//! - `receive`: an incoming `Data` packet, frame by frame.
//! - `transmit`: what to send next; `packet_builder` starts, seals and
//!   records every `Data` packet.
//! - `acks`: the acks this side owes.
//! - `recovery`: packets awaiting acks, loss detection, the probe timeout,
//!   resending what was lost; `delivery`: delivery-rate samples for the
//!   congestion controller.
//! - `timer`, `timeout`: the deadline table, and what each timer does.
//! - `security`: opening received packets, authenticated resets and
//!   retries, random packet-number skips.
//! - `close`: every way a connection ends; `event`: what it reports.
//! - `messages`: the application's sends, receives and flow-control
//!   credit; `stats`: counters.

mod acks;
mod close;
mod delivery;
mod event;
mod handshake;
mod messages;
mod packet_builder;
mod receive;
mod recovery;
mod security;
mod state;
mod stats;
mod timeout;
mod timer;
mod transmit;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub use event::{CLOSE_NORMAL, CLOSE_PROTOCOL_VIOLATION, CloseReason, Event};
pub use stats::ConnectionStats;
pub use transmit::Transmit;

use self::acks::Acks;
use self::delivery::DeliveryRate;
use self::handshake::ClientHandshake;
use self::recovery::{Pending, Recovery};
use self::security::ConnectionSecurity;
use self::state::State;
use self::stats::Counters;
use self::timer::{Timer, TimerTable};
use super::Config;
use super::congestion::{Controller, Pacer};
use super::crypto::SecurityStart;
use super::mtu::MtuSearch;
use super::packet::Hello;
use super::recv::{Receiver, RecvLimits};
use super::rtt::RttEstimator;
use super::send::Sender;

/// Which end of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The end that connected.
    Client,
    /// The end that accepted.
    Server,
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
    /// Every deadline (see `timeout.rs`).
    timers: TimerTable,
    // The peer's limits.
    peer_max_data: u64,
    peer_max_message: u64,
    // What this side sends, and its recovery.
    recovery: Recovery,
    pending: Pending,
    rtt: RttEstimator,
    delivery: DeliveryRate,
    mtu: MtuSearch,
    /// Whether this connection ever held more to send than one datagram
    /// of the current size carries: only then does it search for larger
    /// datagrams. Idle and request-response connections never need them,
    /// and thousands of new connections probing at once filled a server's
    /// socket buffer with 16 KiB probes until handshakes were dropped.
    wants_larger_datagrams: bool,
    controller: Box<dyn Controller>,
    pacer: Pacer,
    sender: Sender,
    // What this side receives.
    acks: Acks,
    receiver: Receiver,
    /// The flow-control limit announced to the peer.
    local_max_data: u64,
    /// Reliable bytes the application has consumed.
    released: u64,
    /// When the last packet arrived (the keepalive counts from it when
    /// nothing was sent since).
    last_received: Instant,
    events: VecDeque<Event>,
    stats: Counters,
    /// Packet protection and what the handshake proved about the peer.
    security: ConnectionSecurity,
}

impl Connection {
    pub(crate) fn new_client(
        config: Arc<Config>,
        now: Instant,
        local_cid: u64,
        peer: SocketAddr,
        mut security: SecurityStart,
    ) -> Self {
        let handshake_deadline = now + config.handshake_timeout;
        let hello = ClientHandshake::new(
            security.hello_security,
            security.hello_cipher,
            security.hello_key_update,
            std::mem::take(&mut security.hello_handshake),
        );
        let state = State::AwaitingWelcome(hello);
        let mut connection = Self::new(
            config,
            Side::Client,
            state,
            now,
            local_cid,
            0,
            peer,
            security,
        );
        connection.timers.set(Timer::Handshake, handshake_deadline);
        connection
    }

    pub(crate) fn new_server(
        config: Arc<Config>,
        now: Instant,
        local_cid: u64,
        peer: SocketAddr,
        client_cid: u64,
        hello: &Hello<'_>,
        security: SecurityStart,
    ) -> Self {
        let mut connection = Self::new(
            config,
            Side::Server,
            State::Established,
            now,
            local_cid,
            client_cid,
            peer,
            security,
        );
        connection.peer_max_data = hello.max_data;
        connection.peer_max_message = hello.max_message;
        connection.pending.welcome = true;
        connection.events.push_back(Event::Connected);
        connection
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        config: Arc<Config>,
        side: Side,
        state: State,
        now: Instant,
        local_cid: u64,
        remote_cid: u64,
        peer: SocketAddr,
        security: SecurityStart,
    ) -> Self {
        let limits = RecvLimits {
            max_message: config.max_message_size,
            channels: config.channels,
            window: config.receive_window,
            unreliable_budget: config.unreliable_buffer,
            max_early: config.max_early_messages,
            max_lead: config.max_sequence_lead,
        };
        let mut timers = TimerTable::default();
        timers.set(Timer::Idle, now + config.idle_timeout);
        let mut connection = Self {
            side,
            state,
            local_cid,
            remote_cid,
            peer,
            timers,
            peer_max_data: 0,
            peer_max_message: 0,
            recovery: Recovery::default(),
            pending: Pending::default(),
            rtt: RttEstimator::new(config.initial_rtt),
            delivery: DeliveryRate::new(now),
            mtu: MtuSearch::new(
                config.initial_datagram_size,
                config.max_datagram_size,
                config.mtu_search_interval,
                config.mtu_discovery,
            ),
            wants_larger_datagrams: false,
            controller: config
                .congestion_control
                .build(config.initial_datagram_size as u64),
            pacer: Pacer::new(),
            sender: Sender::new(),
            acks: Acks::default(),
            receiver: Receiver::new(limits),
            local_max_data: config.flow_window(),
            released: 0,
            last_received: now,
            events: VecDeque::new(),
            stats: Counters::default(),
            security: ConnectionSecurity::new(security),
            config,
        };
        connection.update_timers();
        connection
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
        matches!(self.state, State::Established)
    }

    /// Whether the connection ended (the `Closed` event was emitted).
    pub fn is_closed(&self) -> bool {
        self.state.is_closed()
    }

    pub(crate) fn is_drained(&self) -> bool {
        matches!(self.state, State::Drained)
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        matches!(self.state, State::AwaitingWelcome(_))
    }

    /// The next lifecycle event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub(crate) fn has_events(&self) -> bool {
        !self.events.is_empty()
    }
}
