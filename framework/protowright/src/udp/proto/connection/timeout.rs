//! Time as an input: [`Connection::poll_timeout`] reports the earliest
//! deadline of the timers the current state runs, and
//! [`Connection::handle_timeout`] runs every one that is due, in the order
//! the state lists them.
//!
//! Most deadlines are armed by the event that calls for them (a packet
//! received arms the ack and idle timers, a close arms the drain). Two
//! depend on state that many events change, the probe timeout and the
//! keepalive, so [`Connection::update_timers`] recomputes them at the end
//! of every input that can move them (`handle_packet`, `handle_timeout`,
//! `poll_transmit`, `close`, `abort`, `on_reset`, `on_refused`; a debug
//! assertion in `poll_timeout` catches a forgotten one). Deadlines that
//! call for sending turn into flags that the next `poll_transmit` acts on,
//! so a due timer is never reported twice.

use std::time::Instant;

use super::Connection;
use super::event::CloseReason;
use super::state::State;
use super::timer::Timer;

impl Connection {
    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        debug_assert_eq!(
            self.computed_timers(),
            (
                self.timers.get(Timer::Pto),
                self.timers.get(Timer::KeepAlive)
            ),
            "an input changed recovery or keepalive state without update_timers"
        );
        self.timers.next(self.state.timers())
    }

    /// Runs whatever timers are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for &timer in self.state.timers() {
            if !self.timers.is_expired(timer, now) {
                continue;
            }
            self.on_timer(now, timer);
            if matches!(self.state, State::Drained) {
                break;
            }
        }
        self.update_timers();
    }

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Handshake => {
                self.end(CloseReason::HandshakeTimeout(self.config.handshake_timeout));
            }
            Timer::Hello => self.on_hello_timeout(),
            Timer::Ack => self.acks.on_timeout(&mut self.timers),
            Timer::Idle => {
                self.end(CloseReason::IdleTimeout(self.config.idle_timeout));
                self.sender.clear();
            }
            Timer::Pacing => self.timers.stop(Timer::Pacing),
            Timer::KeepAlive => self.pending.ping = true,
            Timer::LossTime => {
                let prior = self.recovery.largest_acked;
                let _ = self.detect_lost(now, prior, u64::MAX);
            }
            Timer::Pto => self.on_probe_timeout(),
            Timer::Close => {
                // Send the close a few times across the drain period.
                if let State::Closing { resend, .. } = &mut self.state {
                    *resend = true;
                }
                let pto = self.rtt.pto(self.config.max_ack_delay);
                self.timers.set(Timer::Close, now + pto);
            }
            Timer::Drain => self.state = State::Drained,
        }
    }

    /// Recomputes the timers that follow from recovery and keepalive state
    /// rather than from one event: the probe timeout and the keepalive.
    pub(super) fn update_timers(&mut self) {
        let (pto, keepalive) = self.computed_timers();
        self.timers.set_or_stop(Timer::Pto, pto);
        self.timers.set_or_stop(Timer::KeepAlive, keepalive);
    }

    /// The probe timeout and keepalive deadlines the current state calls
    /// for.
    ///
    /// The probe timeout waits while a loss time is armed (RFC 9002
    /// Appendix A.8). The keepalive runs on an established connection with
    /// nothing ack-eliciting awaiting its ack. While something is, the
    /// probe timeout is what keeps the connection alive (RFC 9002 §6.2):
    /// a keepalive ping would re-arm it every time and keep it from ever
    /// firing, so data whose packet was lost (a server's Welcome whose
    /// client never acks) would not be resent until the peer spoke again.
    fn computed_timers(&self) -> (Option<Instant>, Option<Instant>) {
        let pto = self
            .recovery
            .pto_deadline(&self.rtt, self.config.max_ack_delay);
        let keepalive_armed =
            matches!(self.state, State::Established) && !self.pending.ping && pto.is_none();
        let keepalive = keepalive_armed.then(|| {
            let since = self
                .recovery
                .last_eliciting_sent
                .unwrap_or(self.last_received);
            since + self.config.keepalive_interval
        });
        let pto = pto.filter(|_| self.timers.get(Timer::LossTime).is_none());
        (pto, keepalive)
    }
}
