//! A connection's protection and what the handshake proved about the
//! peer: packets are opened here before any frame is read, `Reset`s and
//! `Retry`s are checked against what only the genuine peer knows, and
//! packet numbers are skipped at random so a peer that acknowledges
//! packets it never received (to make this side send faster, or to make a
//! reliable channel drop data) is caught.

use std::ops::Range;
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::Connection;
use super::state::State;
use crate::udp::proto::crypto::{
    OpenError, Protection, PublicKey, RESET_TOKEN_LEN, SecurityStart, tokens_match,
};

/// Packet numbers between deliberate skips, drawn uniformly from this
/// range: often enough to catch an optimistic acker within a few hundred
/// packets, rare enough to cost nothing measurable.
const SKIP_GAP: Range<u64> = 32..512;

/// Skipped numbers remembered; an ack covering an older one is outside
/// what the ack ranges reach anyway.
const SKIPS_REMEMBERED: usize = 8;

/// The deliberate gaps in this side's packet numbers.
#[derive(Debug)]
pub(super) struct PacketSkips {
    rng: SmallRng,
    next: u64,
    skipped: [Option<u64>; SKIPS_REMEMBERED],
    cursor: usize,
}

impl PacketSkips {
    pub(super) fn new(seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let next = rng.random_range(SKIP_GAP);
        Self {
            rng,
            next,
            skipped: [None; SKIPS_REMEMBERED],
            cursor: 0,
        }
    }

    /// Whether `number` is to be skipped (never sent); records it if so.
    pub(super) fn skip(&mut self, number: u64) -> bool {
        if number < self.next {
            return false;
        }
        self.skipped[self.cursor] = Some(number);
        self.cursor = (self.cursor + 1) % SKIPS_REMEMBERED;
        self.next = number + 1 + self.rng.random_range(SKIP_GAP);
        true
    }

    /// A skipped number inside `range`, if any.
    pub(super) fn skipped_in(&self, range: Range<u64>) -> Option<u64> {
        self.skipped
            .iter()
            .flatten()
            .copied()
            .find(|number| range.contains(number))
    }
}

/// Protection and the authenticated facts about the peer.
#[derive(Debug)]
pub(super) struct ConnectionSecurity {
    pub(super) protection: Protection,
    pub(super) local_reset_token: [u8; RESET_TOKEN_LEN],
    pub(super) peer_reset_token: Option<[u8; RESET_TOKEN_LEN]>,
    pub(super) peer_key: Option<PublicKey>,
    pub(super) client_id: Option<u64>,
    pub(super) skips: PacketSkips,
    /// Packets that failed to authenticate or decode, dropped unread.
    pub(super) unauthentic_packets: u64,
}

impl ConnectionSecurity {
    pub(super) fn new(start: SecurityStart) -> Self {
        Self {
            protection: start.protection,
            local_reset_token: start.local_reset_token,
            peer_reset_token: start.peer_reset_token,
            peer_key: start.peer_key,
            client_id: start.client_id,
            skips: PacketSkips::new(start.skip_seed),
            unauthentic_packets: 0,
        }
    }
}

impl Connection {
    /// Takes in a `Data` or `Handshake` datagram the endpoint routed here:
    /// opened (decrypted into `scratch`) and only then read. Whatever fails
    /// to open is dropped and counted, and nothing in it takes effect.
    pub(crate) fn handle_datagram(&mut self, now: Instant, datagram: &[u8], scratch: &mut Vec<u8>) {
        if matches!(self.state, State::Drained) {
            return;
        }
        let mut learned = None;
        let opened = self
            .security
            .protection
            .open(datagram, scratch, &mut learned);
        if let Some(key) = learned {
            self.security.peer_key = Some(key);
        }
        match opened {
            Ok(opened) => {
                self.handle_packet(now, opened.number, opened.frames, datagram.len());
            }
            Err(OpenError::Replayed(_)) => {
                // A copy: the path duplicated it or someone replays it.
                self.stats.duplicate_packets += 1;
            }
            Err(OpenError::Malformed | OpenError::Unauthentic) => {
                self.security.unauthentic_packets += 1;
            }
        }
    }

    /// A `Reset` for this connection arrived: it ends the connection only
    /// if it carries the peer's token. Returns whether it did.
    pub(crate) fn on_reset(&mut self, token: &[u8]) -> bool {
        let genuine = self
            .security
            .peer_reset_token
            .as_ref()
            .is_some_and(|expected| tokens_match(token, expected));
        if genuine {
            self.end(super::CloseReason::Reset);
            self.update_timers();
        }
        genuine
    }

    /// Whether packets are encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.security.protection.is_encrypted()
    }

    /// The peer's static key, when the handshake proved it: a server's key
    /// on the client (pinned or learned), a client's key on the server when
    /// it pinned the server's (`IK`).
    pub fn peer_key(&self) -> Option<PublicKey> {
        self.security.peer_key
    }

    /// On a server that requires connect tokens, the client id the
    /// client's token admitted.
    pub fn client_id(&self) -> Option<u64> {
        self.security.client_id
    }

    /// Seals `frames` as this side's next data packet, whatever they say:
    /// for tests and fuzzing that play a peer holding the real keys.
    pub(crate) fn seal_frames(&mut self, frames: &[u8], buf: &mut Vec<u8>) -> Option<usize> {
        if matches!(self.security.protection, Protection::Client { .. }) {
            // No keys yet: nothing can be sealed.
            return None;
        }
        let start = buf.len();
        let number = self.recovery.next_number(&mut self.security.skips);
        let header_end = self
            .security
            .protection
            .start_packet(buf, self.remote_cid, number);
        buf.extend_from_slice(frames);
        self.security
            .protection
            .finish_packet(buf, start, header_end, number);
        Some(buf.len() - start)
    }

    /// The packet numbers this side skipped on purpose, recently.
    #[cfg(test)]
    pub(crate) fn skipped_numbers(&self) -> Vec<u64> {
        self.security
            .skips
            .skipped
            .iter()
            .flatten()
            .copied()
            .collect()
    }

    /// The key generations in use: sending, receiving.
    #[cfg(test)]
    pub(crate) fn key_generations(&self) -> Option<(u64, u64)> {
        self.security.protection.generations()
    }
}
