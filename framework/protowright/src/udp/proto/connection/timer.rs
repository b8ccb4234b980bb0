//! A connection's deadlines: one small table, so one place answers "what
//! is due next" ([`TimerTable::next`]) instead of a handful of optional
//! fields merged by hand.
//!
//! The table only stores; `timeout.rs` decides which kinds run in which
//! state and what each does when it fires.

use std::time::Instant;

/// A kind of deadline. Each state lists the kinds that run in it, in the
/// order `handle_timeout` runs them (see `State::timers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// A client gives up on the handshake.
    Handshake,
    /// A client sends its hello again (the last one may be lost).
    Hello,
    /// A delayed ack must go out (at most `max_ack_delay` after the packet
    /// that asked for it).
    Ack,
    /// Nothing heard from the peer for the idle timeout: the connection
    /// ends.
    Idle,
    /// The pacer lets the next datagram of data go.
    Pacing,
    /// A quiet connection pings its peer so neither side's idle timer
    /// fires.
    KeepAlive,
    /// A packet not yet declared lost passes the time threshold
    /// (RFC 9002 §6.1.2).
    LossTime,
    /// The probe timeout (RFC 9002 §6.2); only armed while no loss time is
    /// (RFC 9002 Appendix A.8: the loss time takes precedence).
    Pto,
    /// A closing connection sends its close again, in case it was lost.
    Close,
    /// The drain period after a close ends: the connection is forgotten.
    Drain,
}

impl Timer {
    const COUNT: usize = 10;
}

/// When each kind of timer fires, if it is armed.
#[derive(Debug, Default, Clone)]
pub(super) struct TimerTable {
    deadlines: [Option<Instant>; Timer::COUNT],
}

impl TimerTable {
    /// Arms `timer` for `at`, replacing any earlier deadline.
    pub(super) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer as usize] = Some(at);
    }

    /// Arms `timer` for `at`, or stops it when `at` is `None`.
    pub(super) fn set_or_stop(&mut self, timer: Timer, at: Option<Instant>) {
        self.deadlines[timer as usize] = at;
    }

    /// Disarms `timer`.
    pub(super) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer as usize] = None;
    }

    /// When `timer` fires; `None` when it is not armed.
    pub(super) fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer as usize]
    }

    /// Whether `timer` is armed and its deadline is not after `now`.
    pub(super) fn is_expired(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| now >= at)
    }

    /// The earliest deadline among `timers`; `None` when none is armed.
    pub(super) fn next(&self, timers: &[Timer]) -> Option<Instant> {
        timers.iter().filter_map(|&timer| self.get(timer)).min()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_next_deadline_is_the_earliest_armed_among_the_kinds_asked_about() {
        let now = Instant::now();
        let mut timers = TimerTable::default();
        assert_eq!(timers.next(&[Timer::Ack, Timer::Idle]), None);
        timers.set(Timer::Idle, now + Duration::from_secs(30));
        timers.set(Timer::Ack, now + Duration::from_millis(25));
        timers.set(Timer::Drain, now);
        assert_eq!(
            timers.next(&[Timer::Ack, Timer::Idle]),
            Some(now + Duration::from_millis(25))
        );
        timers.stop(Timer::Ack);
        assert_eq!(
            timers.next(&[Timer::Ack, Timer::Idle]),
            Some(now + Duration::from_secs(30))
        );
    }

    #[test]
    fn a_timer_is_expired_from_its_deadline_on_and_never_when_stopped() {
        let now = Instant::now();
        let mut timers = TimerTable::default();
        assert!(!timers.is_expired(Timer::Pto, now));
        timers.set_or_stop(Timer::Pto, Some(now + Duration::from_millis(1)));
        assert!(!timers.is_expired(Timer::Pto, now));
        assert!(timers.is_expired(Timer::Pto, now + Duration::from_millis(1)));
        timers.set_or_stop(Timer::Pto, None);
        assert!(!timers.is_expired(Timer::Pto, now + Duration::from_secs(1)));
    }
}
