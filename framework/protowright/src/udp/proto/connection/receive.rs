//! Taking in a `Data` packet the endpoint routed here: duplicates are
//! dropped (and acked again), a packet with any undecodable frame is
//! refused whole, and each frame goes to the part of the connection it
//! concerns.

use std::time::Instant;

use super::Connection;
use super::event::CloseReason;
use super::state::State;
use super::timer::Timer;
use crate::udp::proto::frame::{Frame, Frames};
use crate::udp::proto::recv::Violation;

impl Connection {
    /// Takes in a `Data` packet addressed to this connection.
    pub(crate) fn handle_packet(&mut self, now: Instant, number: u64, payload: &[u8], size: usize) {
        self.on_packet(now, number, payload, size);
        self.update_timers();
    }

    fn on_packet(&mut self, now: Instant, number: u64, payload: &[u8], size: usize) {
        match &mut self.state {
            State::Drained | State::Draining => return,
            State::Closing { resend, .. } => {
                // Late packets get the close again.
                *resend = true;
                return;
            }
            _ => {}
        }
        if self.acks.is_duplicate(number) {
            self.stats.duplicate_packets += 1;
            self.acks.on_duplicate(now, &mut self.timers);
            return;
        }
        // Decode every frame before acting on any, so a malformed packet is
        // refused whole. Decoding is cheap; a second pass below beats
        // allocating a list of frames per packet.
        if let Some(Err(error)) = Frames::new(payload).find(Result::is_err) {
            self.violation(now, &format!("undecodable frame: {error}"));
            return;
        }
        // A client still waiting for the welcome drops, unacknowledged, a
        // packet that overtook the one carrying it: the server resends its
        // data, and reordering is not a protocol violation.
        if matches!(self.state, State::AwaitingWelcome(_))
            && !Frames::new(payload)
                .map_while(Result::ok)
                .any(|frame| matches!(frame, Frame::Welcome { .. }))
        {
            return;
        }
        let frames = Frames::new(payload).map_while(Result::ok);
        self.stats.packets_received += 1;
        self.stats.bytes_received += size as u64;
        self.last_received = now;
        self.timers.set(Timer::Idle, now + self.config.idle_timeout);
        let mut eliciting = false;
        for frame in frames {
            eliciting |= frame.is_ack_eliciting();
            if let Err(violation) = self.handle_frame(now, &frame) {
                self.violation(now, &violation);
                return;
            }
            if self.state.is_closed() {
                return;
            }
        }
        // A packet with refused data goes unacked: the peer resends it later.
        if !self.receiver.take_refused() {
            self.acks.on_received(
                now,
                number,
                eliciting,
                self.config.max_ack_delay,
                &mut self.timers,
            );
        }
        self.maybe_finish_flushing(now);
    }

    fn handle_frame(&mut self, now: Instant, frame: &Frame<'_>) -> Result<(), String> {
        match frame {
            Frame::Padding | Frame::Ping => {}
            Frame::Ack(ack) => self.on_ack(now, ack)?,
            Frame::Fragment(fragment) => {
                if matches!(self.state, State::AwaitingWelcome(_)) {
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
                reset_token,
            } => self.on_welcome(now, *cid, *max_data, *max_message, reset_token)?,
            Frame::MaxData(limit) => self.peer_max_data = self.peer_max_data.max(*limit),
        }
        Ok(())
    }
}
