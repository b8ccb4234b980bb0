//! Loss recovery per RFC 9002: the packets sent and not yet acknowledged,
//! what acks of them do, loss detection by packet and time threshold
//! (§6.1), the probe timeout (§6.2), persistent congestion (§7.6), and
//! putting the frames of a lost packet back to be sent again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::Connection;
use super::delivery::DeliveryMark;
use super::security::PacketSkips;
use super::timer::Timer;
use crate::udp::proto::frame;
use crate::udp::proto::rtt::RttEstimator;
use crate::udp::proto::send::SentFragment;

/// Emptied frame lists kept for reuse: enough for a window's packets to
/// turn over, few enough that an idle connection holds little.
const MAX_SPARE_FRAME_LISTS: usize = 64;

/// Probe timeouts in a row, at a datagram size above the base, that are
/// taken for a path-MTU black hole.
const BLACK_HOLE_PTOS: u32 = 2;

/// A frame in a packet awaiting its ack: what to resend if it is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SentFrame {
    Fragment(SentFragment),
    Welcome,
    MaxData,
    Ping,
}

/// Control frames waiting for the next packet with room for them.
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// The server's welcome (first sent, or resent after a loss).
    pub(super) welcome: bool,
    /// A flow-control window update.
    pub(super) max_data: bool,
    /// A keepalive ping.
    pub(super) ping: bool,
}

/// What a writer tells recovery about an ack-eliciting packet it built.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) frames: Vec<SentFrame>,
    /// The sender had less to send than the window allowed.
    pub(super) app_limited: bool,
    /// A path-MTU probe (see [`SentPacket::mtu_probe`]).
    pub(super) mtu_probe: bool,
}

#[derive(Debug)]
struct SentPacket {
    time: Instant,
    size: u64,
    /// The sender had less to send than the window allowed.
    app_limited: bool,
    /// A path-MTU probe: its loss says the size is too large, not that the
    /// path is congested.
    mtu_probe: bool,
    /// The connection's delivery-rate state when it was sent.
    delivery: DeliveryMark,
    frames: Vec<SentFrame>,
}

/// The send side's recovery state.
#[derive(Debug, Default)]
pub(super) struct Recovery {
    /// The number the next packet gets.
    next_packet: u64,
    /// Ack-eliciting packets awaiting their ack, by number.
    sent: BTreeMap<u64, SentPacket>,
    pub(super) in_flight: u64,
    pub(super) largest_acked: Option<u64>,
    /// Probe timeouts in a row without an ack.
    pto_count: u32,
    pub(super) last_eliciting_sent: Option<Instant>,
    /// Packets a probe timeout still asks for, sent whatever the window.
    pub(super) probes: u8,
    /// Reused between acks, so processing one allocates nothing.
    acked_scratch: Vec<(u64, SentPacket)>,
    /// Frame lists of acknowledged or lost packets, for new packets.
    spare_frames: Vec<Vec<SentFrame>>,
}

impl Recovery {
    /// Takes the next packet number.
    /// The next packet number, skipping one now and then at random (see
    /// [`PacketSkips`]).
    pub(super) fn next_number(&mut self, skips: &mut PacketSkips) -> u64 {
        let mut number = self.next_packet;
        if skips.skip(number) {
            number += 1;
        }
        self.next_packet = number + 1;
        number
    }

    /// An empty frame list for a new packet, reused when one is spare.
    pub(super) fn frame_list(&mut self) -> Vec<SentFrame> {
        self.spare_frames.pop().unwrap_or_default()
    }

    /// Keeps an emptied frame list for the next packet, so sending and
    /// acknowledging allocate nothing once a connection is warm.
    pub(super) fn recycle_frames(&mut self, mut frames: Vec<SentFrame>) {
        if self.spare_frames.len() < MAX_SPARE_FRAME_LISTS && frames.capacity() > 0 {
            frames.clear();
            self.spare_frames.push(frames);
        }
    }

    /// When the probe timeout fires (RFC 9002 §6.2.1), backed off by the
    /// timeouts in a row; `None` with nothing awaiting an ack.
    pub(super) fn pto_deadline(
        &self,
        rtt: &RttEstimator,
        max_ack_delay: Duration,
    ) -> Option<Instant> {
        if self.in_flight == 0 && self.sent.is_empty() {
            return None;
        }
        let last = self.last_eliciting_sent?;
        let backoff = 1u32 << self.pto_count.min(10);
        Some(last + rtt.pto(max_ack_delay) * backoff)
    }
}

impl Connection {
    /// Records an ack-eliciting packet just finished by the packet
    /// builder: it is in flight until acknowledged or declared lost.
    pub(super) fn on_packet_sent(
        &mut self,
        now: Instant,
        number: u64,
        size: usize,
        packet: Outgoing,
    ) {
        let size = size as u64;
        let delivery = self.delivery.mark(now, self.recovery.in_flight);
        if packet.mtu_probe {
            self.mtu.on_probe_sent(size as usize, number);
        } else {
            if packet.app_limited {
                self.delivery.app_limited_until =
                    (self.delivery.delivered + self.recovery.in_flight + size).max(1);
            }
            let carries_data = packet
                .frames
                .iter()
                .any(|frame| matches!(frame, SentFrame::Fragment(_)));
            // Probes go whatever the pacer says, and do not use its tokens.
            if carries_data && self.recovery.probes == 0 {
                self.pacer.on_sent(size);
            }
        }
        self.recovery.in_flight += size;
        self.controller.on_sent(now, size);
        self.recovery.last_eliciting_sent = Some(now);
        if !packet.mtu_probe {
            self.recovery.probes = self.recovery.probes.saturating_sub(1);
        }
        self.recovery.sent.insert(
            number,
            SentPacket {
                time: now,
                size,
                app_limited: packet.app_limited,
                mtu_probe: packet.mtu_probe,
                delivery,
                frames: packet.frames,
            },
        );
    }

    /// Puts a lost packet's frames back to be sent again: data to its
    /// sender's retransmit queue, control frames to [`Pending`]. A ping
    /// is not resent; the next probe or keepalive is a new one.
    fn requeue_lost(&mut self, frames: &[SentFrame]) {
        for frame in frames {
            match *frame {
                SentFrame::Fragment(fragment) => self.sender.on_lost(fragment),
                SentFrame::Welcome => self.pending.welcome = true,
                SentFrame::MaxData => self.pending.max_data = true,
                SentFrame::Ping => {}
            }
        }
    }

    pub(super) fn on_ack(&mut self, now: Instant, ack: &frame::Ack) -> Result<(), String> {
        let largest = ack.largest();
        if largest >= self.recovery.next_packet {
            return Err(format!("ack of packet {largest}, which was never sent"));
        }
        if let Some(skipped) = ack
            .ranges
            .iter()
            .find_map(|range| self.security.skips.skipped_in(range.clone()))
        {
            return Err(format!(
                "ack of packet {skipped}, which was never sent (skipped on purpose)"
            ));
        }
        let prior_largest = self.recovery.largest_acked;
        let mut newly_acked = std::mem::take(&mut self.recovery.acked_scratch);
        for range in &ack.ranges {
            while let Some(entry) = self.recovery.sent.range(range.clone()).next() {
                let number = *entry.0;
                if let Some(packet) = self.recovery.sent.remove(&number) {
                    newly_acked.push((number, packet));
                }
            }
        }
        if newly_acked.is_empty() {
            self.recovery.acked_scratch = newly_acked;
            return Ok(());
        }
        self.recovery.largest_acked =
            Some(prior_largest.map_or(largest, |prior| prior.max(largest)));
        let mut rtt_sample = None;
        if let Some((number, packet)) = newly_acked.iter().max_by_key(|(number, _)| *number)
            && *number == largest
        {
            let delay = Duration::from_micros(ack.delay_micros).min(self.config.max_ack_delay);
            let latest = now.saturating_duration_since(packet.time);
            self.rtt.update(latest, delay);
            rtt_sample = Some(latest);
        }
        let smallest_acked = newly_acked
            .iter()
            .map(|(number, _)| *number)
            .min()
            .unwrap_or(largest);
        let mut acked_bytes = 0;
        let mut newest: Option<(DeliveryMark, Instant)> = None;
        for (number, packet) in newly_acked.drain(..) {
            self.recovery.in_flight -= packet.size;
            acked_bytes += packet.size;
            if packet.mtu_probe
                && let Some(size) = self.mtu.on_probe_acked(number)
            {
                self.controller.on_datagram_size(size as u64);
            }
            if newest.is_none_or(|(mark, _)| packet.delivery.delivered >= mark.delivered) {
                newest = Some((packet.delivery, packet.time));
            }
            self.controller
                .on_ack(now, packet.time, packet.size, &self.rtt, packet.app_limited);
            let mut frames = packet.frames;
            for frame in frames.drain(..) {
                match frame {
                    SentFrame::Fragment(fragment) => self.sender.on_acked(fragment),
                    SentFrame::Welcome => self.pending.welcome = false,
                    SentFrame::MaxData | SentFrame::Ping => {}
                }
            }
            self.recovery.recycle_frames(frames);
        }
        self.recovery.acked_scratch = newly_acked;
        self.delivery.delivered += acked_bytes;
        self.delivery.delivered_time = now;
        let lost_bytes = self.detect_lost(now, prior_largest, smallest_acked);
        self.recovery.pto_count = 0;
        self.recovery.probes = 0;
        if let Some(newest) = newest {
            self.delivery.first_sent_time = newest.1;
            let sample = self.delivery.sample(
                now,
                newest,
                acked_bytes,
                lost_bytes,
                self.rtt.min(),
                rtt_sample,
            );
            if self.delivery.app_limited_until > 0
                && self.delivery.delivered > self.delivery.app_limited_until
            {
                self.delivery.app_limited_until = 0;
            }
            self.controller
                .on_ack_event(now, &sample, self.recovery.in_flight);
        }
        Ok(())
    }

    /// Declares lost the packets RFC 9002's thresholds say are (§6.1), and
    /// arms the time threshold ([`Timer::LossTime`]) for the rest.
    /// Returns the bytes declared lost (probes not counted).
    pub(super) fn detect_lost(
        &mut self,
        now: Instant,
        prior_largest: Option<u64>,
        smallest_newly_acked: u64,
    ) -> u64 {
        let Some(largest_acked) = self.recovery.largest_acked else {
            return 0;
        };
        self.timers.stop(Timer::LossTime);
        let loss_delay = self.rtt.loss_delay();
        let mut lost = Vec::new();
        let mut loss_time: Option<Instant> = None;
        for (&number, packet) in self.recovery.sent.range(..largest_acked) {
            let too_old = now.saturating_duration_since(packet.time) >= loss_delay;
            if too_old || largest_acked >= number + 3 {
                lost.push(number);
            } else {
                let at = packet.time + loss_delay;
                loss_time = Some(loss_time.map_or(at, |time| time.min(at)));
            }
        }
        self.timers.set_or_stop(Timer::LossTime, loss_time);
        if lost.is_empty() {
            return 0;
        }
        let mut lost_bytes = 0;
        let mut first_lost: Option<(u64, Instant)> = None;
        let mut last_lost: Option<(u64, Instant)> = None;
        for number in lost {
            let Some(packet) = self.recovery.sent.remove(&number) else {
                continue;
            };
            self.recovery.in_flight -= packet.size;
            if packet.mtu_probe {
                // Too large for the path, or unlucky: the search decides.
                self.mtu.on_probe_lost(number);
                continue;
            }
            self.stats.packets_lost += 1;
            lost_bytes += packet.size;
            first_lost.get_or_insert((number, packet.time));
            last_lost = Some((number, packet.time));
            self.requeue_lost(&packet.frames);
            self.recovery.recycle_frames(packet.frames);
        }
        let (Some((first_number, first_time)), Some((last_number, last_time))) =
            (first_lost, last_lost)
        else {
            return 0;
        };
        // Persistent congestion (§7.6): every packet across a long enough
        // span was lost, and none in it was acknowledged.
        let span = last_time.saturating_duration_since(first_time);
        let persistent_after = self.rtt.pto(self.config.max_ack_delay) * 3;
        let nothing_acked_between = prior_largest.is_none_or(|prior| prior < first_number)
            && smallest_newly_acked > last_number;
        let persistent = self.rtt.has_sample() && span >= persistent_after && nothing_acked_between;
        self.controller
            .on_loss(now, last_time, lost_bytes, persistent);
        lost_bytes
    }

    /// RFC 9002's probe timeout (§6.2.4): send up to two ack-eliciting
    /// packets, resending the oldest unacknowledged data (or pinging), and
    /// back off.
    pub(super) fn on_probe_timeout(&mut self) {
        self.recovery.pto_count += 1;
        self.recovery.probes = 2;
        // Two timeouts in a row at a discovered size: the path may have
        // stopped carrying it (a black hole). Fall back to the base size,
        // which every path carries, and search again.
        if self.recovery.pto_count >= BLACK_HOLE_PTOS
            && let Some(size) = self.mtu.on_black_hole()
        {
            tracing::debug!(peer = %self.peer, size, "path MTU black hole: back to the base size");
            self.controller.on_datagram_size(size as u64);
        }
        // The probe carries the oldest packet's frames again; that packet
        // stays in flight until acknowledged or declared lost.
        if let Some(packet) = self.recovery.sent.values().next() {
            let frames = packet.frames.clone();
            self.requeue_lost(&frames);
        }
    }
}
