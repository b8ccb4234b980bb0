//! Liveness: heartbeats, the dead-peer bound, the idle timeout.
//!
//! TCP alone may take minutes to notice a peer that vanished without a
//! word (a pulled cable, a crashed host behind NAT). The session instead
//! sends a PING whenever it has written nothing for `heartbeat_interval`;
//! a live peer answers with a PONG, so a live connection is never silent
//! for long. Silence longer than `dead_peer_timeout` ends the connection.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// When the session last read, wrote, and carried calls, as offsets from
/// its start (atomics: the clients update them from other tasks).
#[derive(Debug)]
pub(super) struct Activity {
    origin: Instant,
    last_read: AtomicU64,
    last_write: AtomicU64,
    last_traffic: AtomicU64,
    /// When the outstanding heartbeat was queued; 0 when none is.
    ping_queued: AtomicU64,
    /// Set while reading waits on this side (a full one-way queue): the
    /// peer's silence then says nothing about the peer.
    reads_paused: AtomicBool,
}

/// Which moment of [`Activity`] to read or mark.
#[derive(Debug, Clone, Copy)]
pub(super) enum Moment {
    Read,
    Write,
    /// A call, response or one-way message (heartbeats do not count).
    Traffic,
}

impl Activity {
    pub(super) fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_read: AtomicU64::new(0),
            last_write: AtomicU64::new(0),
            last_traffic: AtomicU64::new(0),
            ping_queued: AtomicU64::new(0),
            reads_paused: AtomicBool::new(false),
        }
    }

    /// Marks reading as paused by this side (`true`) or resumed (`false`).
    pub(super) fn pause_reads(&self, paused: bool) {
        self.reads_paused.store(paused, Ordering::Relaxed);
        if !paused {
            self.mark(Moment::Read);
        }
    }

    fn slot(&self, moment: Moment) -> &AtomicU64 {
        match moment {
            Moment::Read => &self.last_read,
            Moment::Write => &self.last_write,
            Moment::Traffic => &self.last_traffic,
        }
    }

    fn offset(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_micros()).unwrap_or(u64::MAX)
    }

    /// Records that `moment` happened now.
    pub(super) fn mark(&self, moment: Moment) {
        self.slot(moment)
            .store(self.offset(Instant::now()), Ordering::Relaxed);
    }

    /// When `moment` last happened.
    pub(super) fn last(&self, moment: Moment) -> Instant {
        self.origin + Duration::from_micros(self.slot(moment).load(Ordering::Relaxed))
    }

    /// Records that a heartbeat was queued now.
    pub(super) fn mark_ping(&self) {
        // Offset 0 means "none outstanding", so never store it.
        self.ping_queued
            .store(self.offset(Instant::now()).max(1), Ordering::Relaxed);
    }

    /// Takes the outstanding heartbeat's queue time: a PONG arrived.
    pub(super) fn take_ping(&self) -> Option<Instant> {
        match self.ping_queued.swap(0, Ordering::Relaxed) {
            0 => None,
            offset => Some(self.origin + Duration::from_micros(offset)),
        }
    }

    /// When the next heartbeat is due: `interval` after the later of the last
    /// write and the last heartbeat queued.
    pub(super) fn heartbeat_due(&self, interval: Duration) -> Instant {
        let queued = self.ping_queued.load(Ordering::Relaxed);
        let last_ping = self.origin + Duration::from_micros(queued);
        self.last(Moment::Write).max(last_ping) + interval
    }
}

/// What the keepalive check decided.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Nothing to do until the given instant.
    SleepUntil(Instant),
    /// Queue a heartbeat now.
    Ping,
    /// The peer has been silent for the dead-peer bound.
    Dead(Duration),
    /// No calls for the idle timeout: close cleanly.
    Idle(Duration),
}

/// The keepalive timeouts in force.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    pub(super) heartbeat: Option<Duration>,
    pub(super) dead_peer: Option<Duration>,
    pub(super) idle: Option<Duration>,
}

impl Timeouts {
    /// Decides what to do at `now`. `busy` says whether calls are in flight,
    /// which keeps an otherwise idle connection open.
    pub(super) fn check(&self, activity: &Activity, now: Instant, busy: bool) -> Verdict {
        let mut next = now + Duration::from_secs(3600);
        if let Some(dead) = self.dead_peer {
            let paused = activity.reads_paused.load(Ordering::Relaxed);
            let due = if paused {
                now + dead
            } else {
                activity.last(Moment::Read) + dead
            };
            if now >= due {
                return Verdict::Dead(dead);
            }
            next = next.min(due);
        }
        if let Some(idle) = self.idle {
            let due = activity.last(Moment::Traffic) + idle;
            if now >= due && !busy {
                return Verdict::Idle(idle);
            }
            next = next.min(due.max(now + idle.min(Duration::from_millis(100))));
        }
        if let Some(interval) = self.heartbeat {
            let due = activity.heartbeat_due(interval);
            if now >= due {
                return Verdict::Ping;
            }
            next = next.min(due);
        }
        Verdict::SleepUntil(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn timeouts() -> Timeouts {
        Timeouts {
            heartbeat: Some(5 * SECOND),
            dead_peer: Some(15 * SECOND),
            idle: Some(60 * SECOND),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_heartbeat_is_due_after_the_interval_without_writes() {
        let activity = Activity::new();
        let start = Instant::now();
        assert_eq!(
            timeouts().check(&activity, start, false),
            Verdict::SleepUntil(start + 5 * SECOND)
        );
        assert_eq!(
            timeouts().check(&activity, start + 5 * SECOND, false),
            Verdict::Ping
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_queued_heartbeat_defers_the_next_one() {
        let activity = Activity::new();
        tokio::time::advance(5 * SECOND).await;
        activity.mark_ping();
        let now = Instant::now();
        assert_eq!(
            timeouts().check(&activity, now, false),
            Verdict::SleepUntil(now + 5 * SECOND)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn silence_past_the_bound_declares_the_peer_dead() {
        let activity = Activity::new();
        tokio::time::advance(14 * SECOND).await;
        activity.mark(Moment::Write);
        activity.mark_ping();
        tokio::time::advance(SECOND).await;
        assert_eq!(
            timeouts().check(&activity, Instant::now(), false),
            Verdict::Dead(15 * SECOND)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn silence_while_this_side_paused_reading_is_not_the_peers() {
        let activity = Activity::new();
        activity.pause_reads(true);
        tokio::time::advance(60 * SECOND).await;
        activity.mark(Moment::Write);
        let now = Instant::now();
        assert!(matches!(
            timeouts().check(&activity, now, true),
            Verdict::SleepUntil(_)
        ));
        activity.pause_reads(false);
        assert!(matches!(
            timeouts().check(&activity, now, true),
            Verdict::SleepUntil(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn reads_keep_the_peer_alive() {
        let activity = Activity::new();
        tokio::time::advance(14 * SECOND).await;
        activity.mark(Moment::Read);
        activity.mark(Moment::Write);
        tokio::time::advance(2 * SECOND).await;
        assert!(matches!(
            timeouts().check(&activity, Instant::now(), false),
            Verdict::SleepUntil(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_closes_unless_calls_are_in_flight() {
        let activity = Activity::new();
        let idle_only = Timeouts {
            heartbeat: None,
            dead_peer: None,
            idle: Some(60 * SECOND),
        };
        tokio::time::advance(60 * SECOND).await;
        let now = Instant::now();
        assert_eq!(
            idle_only.check(&activity, now, false),
            Verdict::Idle(60 * SECOND)
        );
        assert!(matches!(
            idle_only.check(&activity, now, true),
            Verdict::SleepUntil(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pong_yields_the_round_trip_once() {
        let activity = Activity::new();
        tokio::time::advance(SECOND).await;
        activity.mark_ping();
        let queued = Instant::now();
        assert_eq!(activity.take_ping(), Some(queued));
        assert_eq!(activity.take_ping(), None);
    }
}
