//! Acks this side owes: which packet numbers arrived, when the next ack is
//! due, and writing the ack frame. (What the peer acknowledges of ours is
//! recovery's business.)
//!
//! An ack goes at once after every second ack-eliciting packet or one out
//! of order, otherwise within `max_ack_delay` of the first unacknowledged
//! one (RFC 9000 §13.2.1, §13.2.2). The deadline is [`Timer::Ack`].

use std::time::{Duration, Instant};

use super::timer::{Timer, TimerTable};
use crate::udp::proto::frame;
use crate::udp::proto::ranges::RangeSet;

/// The most received packet-number ranges remembered for acks; older ones
/// are forgotten, and packets below them are treated as duplicates.
const MAX_RECEIVED_RANGES: usize = 256;

/// Ack-eliciting packets received before an ack is sent at once.
const ACK_EVERY: u32 = 2;

/// The receive side's ack state.
#[derive(Debug, Default)]
pub(super) struct Acks {
    /// Packet numbers received (the newest `MAX_RECEIVED_RANGES` ranges).
    received: RangeSet,
    /// The largest packet number received, and when.
    largest_received: Option<(u64, Instant)>,
    /// Ack-eliciting packets received since the last ack sent.
    unacked_eliciting: u32,
    /// The ack deadline passed: ack in the next packet. While this is set
    /// the [`Timer::Ack`] deadline stays disarmed (it could only say the
    /// same thing again).
    ack_now: bool,
}

impl Acks {
    /// Whether packet `number` arrived before (or is too old to tell).
    pub(super) fn is_duplicate(&self, number: u64) -> bool {
        self.received.contains(number) || self.received.min().is_some_and(|min| number < min)
    }

    /// A duplicate arrived: our ack may have been lost, so ack again soon.
    pub(super) fn on_duplicate(&mut self, now: Instant, timers: &mut TimerTable) {
        self.unacked_eliciting = self.unacked_eliciting.max(1);
        self.arm(timers, now);
    }

    /// Records packet `number`, received at `now`, and arms the ack
    /// deadline if it asks for an ack.
    pub(super) fn on_received(
        &mut self,
        now: Instant,
        number: u64,
        eliciting: bool,
        max_ack_delay: Duration,
        timers: &mut TimerTable,
    ) {
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
            self.arm(timers, now);
        } else if timers.get(Timer::Ack).is_none() {
            self.arm(timers, now + max_ack_delay);
        }
    }

    fn arm(&self, timers: &mut TimerTable, at: Instant) {
        if !self.ack_now {
            timers.set(Timer::Ack, at);
        }
    }

    /// The ack deadline passed: the next packet carries an ack.
    pub(super) fn on_timeout(&mut self, timers: &mut TimerTable) {
        timers.stop(Timer::Ack);
        self.ack_now = self.unacked_eliciting > 0;
    }

    /// Whether an ack must go now, even in a packet with nothing else.
    pub(super) fn is_due(&self, now: Instant, timers: &TimerTable) -> bool {
        self.unacked_eliciting > 0 && (self.ack_now || timers.is_expired(Timer::Ack, now))
    }

    /// Writes an ack frame into the `room` bytes left in the packet in
    /// `buf`, if anything ack-eliciting awaits its ack. Once written,
    /// nothing is owed until the next ack-eliciting packet.
    pub(super) fn write(
        &mut self,
        buf: &mut Vec<u8>,
        now: Instant,
        room: usize,
        timers: &mut TimerTable,
    ) {
        if self.unacked_eliciting == 0 {
            return;
        }
        let delay = self.largest_received.map_or(0, |(_, at)| {
            now.saturating_duration_since(at).as_micros() as u64
        });
        if frame::put_ack(buf, self.received.iter_descending(), delay, room) {
            self.unacked_eliciting = 0;
            self.ack_now = false;
            timers.stop(Timer::Ack);
        }
    }
}
