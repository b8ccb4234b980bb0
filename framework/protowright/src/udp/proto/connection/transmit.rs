//! What a connection sends next: [`Connection::poll_transmit`] picks the
//! writer for the state (the hello is in `handshake.rs`), and the writers
//! here fill `Data` packets started and finished by the packet builder.
//!
//! A data packet takes, in order: an ack if one is owed, the welcome, a
//! window update, message fragments by channel priority, and a ping if it
//! would otherwise carry nothing ack-eliciting but one is wanted.

use std::net::SocketAddr;
use std::time::Instant;

use super::Connection;
use super::recovery::{Outgoing, SentFrame};
use super::state::State;
use super::timer::Timer;
use crate::udp::proto::frame;

/// Where a datagram from [`Connection::poll_transmit`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The peer's address.
    pub destination: SocketAddr,
    /// The datagram's length: it is the last `size` bytes of the buffer.
    pub size: usize,
}

impl Connection {
    /// Writes the next datagram to send, if any, at the end of `buf`.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        let transmit = match self.state {
            State::Drained | State::Draining => None,
            State::AwaitingWelcome(_) => self.write_hello(now, buf),
            State::Closing { .. } => self.write_close(now, buf),
            State::Established | State::Flushing { .. } => self.write_data(now, buf),
        };
        self.update_timers();
        transmit
    }

    /// Counts a datagram of `size` bytes written for the peer.
    pub(super) fn on_datagram_sent(&mut self, size: usize) -> Transmit {
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += size as u64;
        Transmit {
            destination: self.peer,
            size,
        }
    }

    /// The close, when it is to be sent (again). Close packets are not
    /// ack-eliciting: they are resent on a timer, not recovered.
    fn write_close(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        let State::Closing { resend, .. } = &mut self.state else {
            return None;
        };
        if !*resend {
            return None;
        }
        *resend = false;
        let packet = self.start_packet(buf, self.mtu.current());
        if let State::Closing { code, reason, .. } = &self.state {
            frame::put_close(buf, *code, reason);
        }
        Some(self.finish_packet(now, buf, packet, None))
    }

    pub(super) fn flow_allowance(&self) -> u64 {
        self.peer_max_data.saturating_sub(self.sender.data_sent)
    }

    fn wants_to_send(&self) -> bool {
        self.pending.welcome
            || self.pending.max_data
            || self.pending.ping
            || self.recovery.probes > 0
            || self.sender.has_pending(self.flow_allowance())
    }

    fn write_data(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        if let Some(transmit) = self.write_mtu_probe(now, buf) {
            return Some(transmit);
        }
        let mtu = self.mtu.current();
        let ack_due = self.acks.is_due(now, &self.timers);
        let probing = self.recovery.probes > 0;
        let window_open = self.recovery.in_flight + mtu as u64 <= self.controller.window();
        let mut eliciting = self.wants_to_send() && (window_open || probing);
        // Pacing spreads data; control frames (a window update, a welcome,
        // a keepalive) are small and must not wait behind a datagram's
        // worth of tokens.
        let data_pending = self.sender.has_pending(self.flow_allowance());
        if eliciting && !probing && data_pending {
            let rate = self.controller.pacing_rate(&self.rtt);
            match self.pacer.release_time(now, rate, mtu as u64, mtu as u64) {
                Some(at) => {
                    self.timers.set(Timer::Pacing, at);
                    eliciting = false;
                }
                None => self.timers.stop(Timer::Pacing),
            }
        }
        if !eliciting && !ack_due {
            return None;
        }
        let packet = self.start_packet(buf, mtu);
        self.acks
            .write(buf, now, packet.room(buf), &mut self.timers);
        let mut frames = self.recovery.frame_list();
        if eliciting {
            self.write_eliciting(buf, packet.limit(), &mut frames);
        }
        let sent = if frames.is_empty() {
            self.recovery.recycle_frames(frames);
            None
        } else {
            Some(Outgoing {
                frames,
                app_limited: !self.sender.has_pending(self.flow_allowance()),
                mtu_probe: false,
            })
        };
        Some(self.finish_packet(now, buf, packet, sent))
    }

    /// Sends a path-MTU probe when the search wants one: a ping padded to
    /// the size being tried. Only once the peer has acknowledged something
    /// (the path works at the base size), the window has room, and the
    /// connection has had more to send than one datagram carries.
    fn write_mtu_probe(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        self.wants_larger_datagrams |= self.sender.queued_bytes() > self.mtu.current() as u64;
        if !self.wants_larger_datagrams
            || !matches!(self.state, State::Established)
            || self.recovery.largest_acked.is_none()
            || self.recovery.probes > 0
        {
            return None;
        }
        // A probe may be larger than the whole window of a short path: it
        // goes whenever the window has room at all (one at a time).
        if self.recovery.in_flight >= self.controller.window() {
            return None;
        }
        let size = self.mtu.probe_size(now)?;
        let packet = self.start_packet(buf, size);
        frame::put_ping(buf);
        packet.pad(buf);
        let probe = Outgoing {
            frames: vec![SentFrame::Ping],
            app_limited: true,
            mtu_probe: true,
        };
        Some(self.finish_packet(now, buf, packet, Some(probe)))
    }

    fn write_eliciting(&mut self, buf: &mut Vec<u8>, end: usize, frames: &mut Vec<SentFrame>) {
        if self.pending.welcome
            && end - buf.len()
                >= frame::welcome_len(self.local_max_data, self.config.max_message_size)
        {
            frame::put_welcome(
                buf,
                self.local_cid,
                self.local_max_data,
                self.config.max_message_size,
                &self.security.local_reset_token,
            );
            frames.push(SentFrame::Welcome);
            self.pending.welcome = false;
        }
        if self.pending.max_data && end - buf.len() >= 9 {
            frame::put_max_data(buf, self.local_max_data);
            frames.push(SentFrame::MaxData);
            self.pending.max_data = false;
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
        if frames.is_empty() && (self.pending.ping || self.recovery.probes > 0) {
            frame::put_ping(buf);
            frames.push(SentFrame::Ping);
        }
        if !frames.is_empty() {
            self.pending.ping = false;
        }
    }
}
