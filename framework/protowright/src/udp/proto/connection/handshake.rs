//! The handshake, both ends. A client sends `Initial` hellos (with the
//! server's cookie once it has one) until a `Welcome` frame arrives; a
//! server's welcome is an ordinary ack-eliciting frame, sent and resent
//! like data (see `Pending::welcome`). Under encryption the client's
//! hellos carry its first Noise message and the server's first packets its
//! answer (see `crypto::handshake`); the welcome itself travels sealed.

use std::time::{Duration, Instant};

use super::event::Event;
use super::state::State;
use super::timer::Timer;
use super::transmit::Transmit;
use super::{Connection, Side};
use crate::udp::proto::packet::{self, Hello};

/// The most distinct cookies a client takes in one attempt (a server
/// rotating its secret needs two).
const MAX_RETRIES: u32 = 4;

/// What a client remembers while it waits for the welcome.
#[derive(Debug, Default)]
pub(super) struct ClientHandshake {
    /// The `security` and `cipher` bytes of its hellos.
    security: u8,
    cipher: u8,
    key_update: u64,
    /// The first handshake message (or, in plaintext, the reset token),
    /// the same in every hello of this attempt.
    handshake: Vec<u8>,
    /// The server's address-validation cookie; empty until a retry.
    cookie: Vec<u8>,
    /// The hello is to be sent with the next transmit (the first one, or
    /// a resend whose time passed, or one with a new cookie).
    send_now: bool,
    /// Hellos sent so far, for the backoff.
    attempts: u32,
    /// Distinct cookies taken from retries.
    retries: u32,
    /// Hellos sent with the current cookie, and when the last one went:
    /// if exactly one went, the welcome gives an unambiguous RTT sample
    /// (Karn's rule).
    cookie_hellos: u32,
    last_hello_at: Option<Instant>,
}

impl ClientHandshake {
    /// A client that has sent nothing yet: its first hello goes at once.
    pub(super) fn new(security: u8, cipher: u8, key_update: u64, handshake: Vec<u8>) -> Self {
        Self {
            security,
            cipher,
            key_update,
            handshake,
            send_now: true,
            ..Self::default()
        }
    }

    /// When the hello the welcome answers was sent, if that is known for
    /// certain (one hello with the current cookie).
    fn rtt_sample_start(&self) -> Option<Instant> {
        if self.cookie_hellos == 1 {
            self.last_hello_at
        } else {
            None
        }
    }
}

impl Connection {
    pub(super) fn write_hello(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        let State::AwaitingWelcome(handshake) = &mut self.state else {
            return None;
        };
        if !handshake.send_now && !self.timers.is_expired(Timer::Hello, now) {
            return None;
        }
        handshake.send_now = false;
        let start = buf.len();
        let hello = Hello {
            schema_hash: self.config.schema_hash,
            max_data: self.local_max_data,
            max_message: self.config.max_message_size,
            cookie: &handshake.cookie,
            security: handshake.security,
            cipher: handshake.cipher,
            key_update: handshake.key_update,
            handshake: &handshake.handshake,
        };
        packet::encode_initial(buf, self.local_cid, &hello);
        // Initial packets are sealed here, not by the packet builder: they
        // carry no frames and are read before any connection exists.
        packet::seal(buf, start);
        if !handshake.cookie.is_empty() {
            handshake.cookie_hellos += 1;
            handshake.last_hello_at = Some(now);
        }
        // Resend with backoff until the server answers, spread by up to
        // half the backoff (drawn from the random connection id), so
        // clients whose first hellos were dropped together do not all
        // come back in the same instant.
        let backoff = self.config.initial_rtt * (1 << handshake.attempts.min(5));
        let spread = (self.local_cid.rotate_left(handshake.attempts * 8) % 512) as u32;
        let backoff = backoff + backoff * spread / 1024;
        handshake.attempts += 1;
        self.timers
            .set(Timer::Hello, now + backoff.max(Duration::from_millis(10)));
        Some(self.on_datagram_sent(buf.len() - start))
    }

    /// The hello's resend time passed: send it with the next transmit.
    pub(super) fn on_hello_timeout(&mut self) {
        self.timers.stop(Timer::Hello);
        if let State::AwaitingWelcome(handshake) = &mut self.state {
            handshake.send_now = true;
        }
    }

    /// The server asked this client to retry with a cookie. Taken only
    /// while the client waits and only if it echoes this attempt's first
    /// handshake bytes; returns whether it was.
    pub(crate) fn on_retry(&mut self, cookie: &[u8], echo: &[u8]) -> bool {
        let State::AwaitingWelcome(handshake) = &mut self.state else {
            return false;
        };
        let attempt = &handshake.handshake[..handshake.handshake.len().min(packet::ECHO_LEN)];
        if echo != attempt {
            return false;
        }
        if handshake.cookie.as_slice() != cookie {
            // A new cookie costs a 1,200-byte hello: take a few, not a
            // stream of them from someone on the path.
            if handshake.retries >= MAX_RETRIES {
                return false;
            }
            handshake.retries += 1;
            handshake.cookie = cookie.to_vec();
            handshake.cookie_hellos = 0;
            handshake.send_now = true;
            self.timers.stop(Timer::Hello);
        }
        self.update_timers();
        true
    }

    /// The server saw this client's `Initial` again: its welcome may be lost.
    pub(crate) fn on_repeated_hello(&mut self) {
        if self.side == Side::Server
            && matches!(self.state, State::Established)
            && self.recovery.largest_acked.is_none()
        {
            self.pending.welcome = true;
        }
    }

    /// A `Welcome` frame arrived. Only a client waiting for one acts on
    /// it; a repeat is ignored.
    pub(super) fn on_welcome(
        &mut self,
        now: Instant,
        cid: u64,
        max_data: u64,
        max_message: u64,
        reset_token: &[u8],
    ) -> Result<(), String> {
        if self.side == Side::Server {
            return Err("a welcome sent to the server".to_owned());
        }
        let State::AwaitingWelcome(handshake) = &self.state else {
            return Ok(());
        };
        self.security.peer_reset_token = reset_token.try_into().ok();
        let sample_start = handshake.rtt_sample_start();
        self.remote_cid = cid;
        self.peer_max_data = max_data;
        self.peer_max_message = max_message;
        self.state = State::Established;
        self.timers.stop(Timer::Hello);
        self.timers.stop(Timer::Handshake);
        if let Some(sent) = sample_start {
            self.rtt
                .update(now.saturating_duration_since(sent), Duration::ZERO);
        }
        self.events.push_back(Event::Connected);
        Ok(())
    }
}
