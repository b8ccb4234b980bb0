//! Every way a connection ends: a graceful close (flush, then close), an
//! abort, a protocol violation, the peer's close, a refusal or reset from
//! the peer's endpoint. Each emits the one `Closed` event on its way into
//! `Closing`, `Draining` or `Drained` (see `state.rs`).
//!
//! After sending or receiving a close, a connection lingers for three
//! probe timeouts (the drain period, as RFC 9000 §10.2 has it), so late
//! packets from the peer meet a close rather than a reset.

use std::time::{Duration, Instant};

use super::Connection;
use super::event::{CLOSE_PROTOCOL_VIOLATION, CloseReason, Event};
use super::state::State;
use super::timer::Timer;
use crate::udp::proto::packet::RefuseReason;

impl Connection {
    /// Closes gracefully: no new sends; every queued reliable message is
    /// delivered and acknowledged first (bounded by the idle timeout), then
    /// the close is sent.
    pub fn close(&mut self, now: Instant, code: u64, reason: &str) {
        match self.state {
            State::AwaitingWelcome(_) => {
                self.end(CloseReason::Local {
                    code,
                    reason: reason.to_owned(),
                });
            }
            State::Established => {
                self.state = State::Flushing {
                    code,
                    reason: reason.to_owned(),
                };
                self.maybe_finish_flushing(now);
            }
            _ => {}
        }
        self.update_timers();
    }

    /// Closes at once, dropping whatever is queued.
    pub fn abort(&mut self, now: Instant, code: u64, reason: &str) {
        match self.state {
            State::AwaitingWelcome(_) => self.close(now, code, reason),
            State::Established | State::Flushing { .. } => {
                self.begin_closing(
                    now,
                    code,
                    reason.to_owned(),
                    CloseReason::Local {
                        code,
                        reason: reason.to_owned(),
                    },
                );
            }
            _ => {}
        }
        self.update_timers();
    }

    /// Sends the close once a flushing connection has every reliable
    /// message acknowledged.
    pub(super) fn maybe_finish_flushing(&mut self, now: Instant) {
        if let State::Flushing { code, reason } = &self.state
            && self.sender.all_acked()
        {
            let (code, reason) = (*code, reason.clone());
            self.begin_closing(
                now,
                code,
                reason.clone(),
                CloseReason::Local { code, reason },
            );
        }
    }

    /// Sends the close (`code`, `reason`) and lingers for the drain period,
    /// answering late packets with it and resending it every probe timeout.
    fn begin_closing(&mut self, now: Instant, code: u64, reason: String, why: CloseReason) {
        self.emit_closed(why);
        self.state = State::Closing {
            code,
            reason,
            resend: true,
        };
        let pto = self.rtt.pto(self.config.max_ack_delay);
        self.timers.set(Timer::Close, now + pto);
        self.timers.set(Timer::Drain, now + self.drain_period());
        self.sender.clear();
    }

    /// The peer closed: stay silent for the drain period.
    pub(super) fn begin_draining(&mut self, now: Instant, reason: CloseReason) {
        self.emit_closed(reason);
        self.state = State::Draining;
        self.timers.set(Timer::Drain, now + self.drain_period());
        self.sender.clear();
    }

    /// The peer broke the protocol: close, telling it why.
    pub(super) fn violation(&mut self, now: Instant, violation: &str) {
        tracing::debug!(peer = %self.peer, %violation, "closing: protocol violation");
        self.begin_closing(
            now,
            CLOSE_PROTOCOL_VIOLATION,
            violation.to_owned(),
            CloseReason::ProtocolViolation(violation.to_owned()),
        );
    }

    /// Ends the connection at once, with nothing more sent: the endpoint
    /// forgets it.
    pub(super) fn end(&mut self, reason: CloseReason) {
        self.emit_closed(reason);
        self.state = State::Drained;
    }

    /// Emits the one `Closed` event, unless the connection ended already.
    /// Called before the state changes, which is what records it.
    fn emit_closed(&mut self, reason: CloseReason) {
        if !self.state.is_closed() {
            self.events.push_back(Event::Closed(reason));
        }
    }

    fn drain_period(&self) -> Duration {
        self.rtt.pto(self.config.max_ack_delay) * 3
    }

    /// The server refused this client's attempt.
    pub(crate) fn on_refused(&mut self, reason: RefuseReason, detail: &str) {
        if matches!(self.state, State::AwaitingWelcome(_)) {
            self.end(CloseReason::Refused {
                reason,
                detail: detail.to_owned(),
            });
        }
        self.update_timers();
    }
}
