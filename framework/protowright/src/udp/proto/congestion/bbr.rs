//! A model-based controller in the manner of BBR (version 1, as described in
//! draft-cardwell-iccrg-bbr-congestion-control): it estimates the path's
//! bottleneck bandwidth (the windowed maximum of the delivery rate) and its
//! minimum RTT, paces at the bandwidth estimate and keeps about two
//! bandwidth-delay products in flight.
//!
//! Loss is not a signal here: a path that drops 1% or 5% of packets at
//! random (radio, a busy Wi-Fi, a lossy tunnel) keeps its full rate, where
//! a loss-based controller halves its window on every loss. The model
//! still bounds what is in flight, so a congested queue is not filled
//! without limit; only persistent congestion (every packet across several
//! RTTs lost) collapses the window.
//!
//! States: `Startup` doubles the rate each round until the bandwidth
//! estimate stops growing by 25% for three rounds; `Drain` empties the
//! queue that built; `ProbeBandwidth` cycles its pacing gain through
//! 1.25, 0.75 and six rounds of 1.0 to find more bandwidth and give it
//! back; `ProbeRtt` shrinks the window to four datagrams for 200 ms when
//! the minimum RTT has not been refreshed for 10 s, so flows sharing a
//! queue see its empty RTT.

use std::time::{Duration, Instant};

use super::{Controller, RateSample, new_reno::initial_window};
use crate::udp::proto::rtt::RttEstimator;

/// Startup's pacing and window gain, 2/ln(2): the smallest gain that
/// doubles the delivery rate each round.
const STARTUP_GAIN: f64 = 2.885;
/// The window gain outside startup: two bandwidth-delay products absorb
/// delayed and aggregated acks.
const CWND_GAIN: f64 = 2.0;
/// The pacing gains `ProbeBandwidth` cycles through, one phase per min RTT.
const PROBE_GAINS: [f64; 8] = [1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
/// Rounds the bandwidth estimate remembers its maximum over.
const BANDWIDTH_WINDOW_ROUNDS: u64 = 10;
/// How long a minimum RTT stays valid without being seen again.
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);
/// How long `ProbeRtt` holds the window down.
const PROBE_RTT_DURATION: Duration = Duration::from_millis(200);
/// Growth of the bandwidth estimate per round that counts as growth.
const FULL_BANDWIDTH_GROWTH: f64 = 1.25;
/// Rounds without such growth before the pipe is taken to be full.
const FULL_BANDWIDTH_ROUNDS: u32 = 3;
/// The smallest window, in datagrams.
const MIN_WINDOW_DATAGRAMS: u64 = 4;

/// Which phase of its model the controller is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BbrState {
    /// Doubling the rate each round until the bandwidth stops growing.
    Startup,
    /// Emptying the queue startup built.
    Drain,
    /// Cruising at the estimate, probing up and down in turn.
    ProbeBandwidth,
    /// Holding the window at its minimum to measure the empty-queue RTT.
    ProbeRtt,
}

/// The maximum of a value over the last few rounds that gave a sample:
/// rounds in which the application was idle do not age it. Holds the
/// delivery rate, and the ack aggregation.
#[derive(Debug, Clone, Default)]
struct RoundMax {
    /// The round and the best rate seen in it, one slot per round.
    slots: [(u64, u64); BANDWIDTH_WINDOW_ROUNDS as usize],
    /// The round of the newest sample.
    newest: u64,
}

impl RoundMax {
    fn update(&mut self, round: u64, rate: u64) {
        self.newest = round;
        let slot = &mut self.slots[(round % BANDWIDTH_WINDOW_ROUNDS) as usize];
        if slot.0 != round {
            *slot = (round, rate);
        } else {
            slot.1 = slot.1.max(rate);
        }
    }

    fn get(&self) -> u64 {
        self.slots
            .iter()
            .filter(|(at, _)| at + BANDWIDTH_WINDOW_ROUNDS > self.newest)
            .map(|&(_, rate)| rate)
            .max()
            .unwrap_or(0)
    }
}

/// The BBR-style controller, protowright's default.
#[derive(Debug, Clone)]
pub struct Bbr {
    datagram: u64,
    state: BbrState,
    window: u64,
    pacing_gain: f64,
    cwnd_gain: f64,
    bandwidth: RoundMax,
    /// Bytes acknowledged beyond what the bandwidth estimate explains, per
    /// round: acks that arrive in bursts (a receiver acking every other
    /// packet, a driver handling a batch per wake-up). The window holds
    /// this much more so bursts of acks do not stall the sender.
    extra_acked: RoundMax,
    ack_epoch_start: Option<Instant>,
    ack_epoch_acked: u64,
    min_rtt: Option<Duration>,
    min_rtt_stamp: Option<Instant>,
    round: u64,
    next_round_delivered: u64,
    round_start: bool,
    full_bandwidth: u64,
    full_bandwidth_rounds: u32,
    filled_pipe: bool,
    cycle_index: usize,
    cycle_stamp: Option<Instant>,
    probe_rtt_done_at: Option<Instant>,
    probe_rtt_round_done: bool,
    prior_window: u64,
}

impl Bbr {
    /// A controller in startup with RFC 9002's initial window.
    pub fn new(datagram: u64) -> Self {
        Self {
            datagram,
            state: BbrState::Startup,
            window: initial_window(datagram),
            pacing_gain: STARTUP_GAIN,
            cwnd_gain: STARTUP_GAIN,
            bandwidth: RoundMax::default(),
            extra_acked: RoundMax::default(),
            ack_epoch_start: None,
            ack_epoch_acked: 0,
            min_rtt: None,
            min_rtt_stamp: None,
            round: 0,
            next_round_delivered: 0,
            round_start: false,
            full_bandwidth: 0,
            full_bandwidth_rounds: 0,
            filled_pipe: false,
            cycle_index: 0,
            cycle_stamp: None,
            probe_rtt_done_at: None,
            probe_rtt_round_done: false,
            prior_window: 0,
        }
    }

    /// The phase of the model.
    pub fn state(&self) -> BbrState {
        self.state
    }

    /// The bottleneck bandwidth estimate in bytes per second.
    pub fn bandwidth(&self) -> u64 {
        self.bandwidth.get()
    }

    /// The minimum RTT the model holds.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// The pacing gain in force.
    pub fn pacing_gain(&self) -> f64 {
        self.pacing_gain
    }

    fn min_window(&self) -> u64 {
        MIN_WINDOW_DATAGRAMS * self.datagram
    }

    /// `gain` bandwidth-delay products, or the initial window before the
    /// model has both estimates.
    fn bdp(&self, gain: f64) -> u64 {
        match (self.min_rtt, self.bandwidth()) {
            (Some(rtt), bandwidth) if bandwidth > 0 => {
                (bandwidth as f64 * rtt.as_secs_f64() * gain) as u64
            }
            _ => initial_window(self.datagram),
        }
    }

    fn update_round(&mut self, sample: &RateSample) {
        self.round_start = sample.prior_delivered >= self.next_round_delivered;
        if self.round_start {
            self.next_round_delivered = sample.delivered;
            self.round += 1;
        }
    }

    fn update_bandwidth(&mut self, sample: &RateSample) {
        // An app-limited sample only counts when it shows more than the
        // estimate: the application, not the path, held it down.
        if sample.delivery_rate > 0
            && (!sample.is_app_limited || sample.delivery_rate >= self.bandwidth())
        {
            self.bandwidth.update(self.round, sample.delivery_rate);
        }
    }

    fn check_full_pipe(&mut self, sample: &RateSample) {
        if self.filled_pipe || !self.round_start || sample.is_app_limited {
            return;
        }
        let bandwidth = self.bandwidth();
        if bandwidth as f64 >= self.full_bandwidth as f64 * FULL_BANDWIDTH_GROWTH {
            self.full_bandwidth = bandwidth;
            self.full_bandwidth_rounds = 0;
            return;
        }
        self.full_bandwidth_rounds += 1;
        if self.full_bandwidth_rounds >= FULL_BANDWIDTH_ROUNDS {
            self.filled_pipe = true;
        }
    }

    fn enter_probe_bandwidth(&mut self, now: Instant) {
        self.state = BbrState::ProbeBandwidth;
        self.cwnd_gain = CWND_GAIN;
        // Start past the 0.75 phase, at a place that depends on the
        // round, so flows that start together do not probe in step.
        self.cycle_index = 2 + (self.round % 6) as usize;
        self.pacing_gain = PROBE_GAINS[self.cycle_index];
        self.cycle_stamp = Some(now);
    }

    fn update_cycle(&mut self, now: Instant, in_flight: u64, lost: bool) {
        let Some(stamp) = self.cycle_stamp else {
            return;
        };
        let min_rtt = self.min_rtt.unwrap_or(Duration::ZERO);
        let elapsed = now.saturating_duration_since(stamp) > min_rtt;
        let advance = match PROBE_GAINS[self.cycle_index] {
            // Probe up for a round, or until the queue shows (loss or a
            // full 1.25 BDP in flight).
            gain if gain > 1.0 => elapsed && (lost || in_flight >= self.bdp(gain)),
            // Give back early once the queue is gone.
            gain if gain < 1.0 => elapsed || in_flight <= self.bdp(1.0),
            _ => elapsed,
        };
        if advance {
            self.cycle_index = (self.cycle_index + 1) % PROBE_GAINS.len();
            self.pacing_gain = PROBE_GAINS[self.cycle_index];
            self.cycle_stamp = Some(now);
        }
    }

    fn update_min_rtt(&mut self, now: Instant, rtt: Duration) {
        let expired = self
            .min_rtt_stamp
            .is_some_and(|stamp| now >= stamp + MIN_RTT_WINDOW);
        if self.min_rtt.is_none_or(|min| rtt <= min) || expired {
            self.min_rtt = Some(rtt);
            self.min_rtt_stamp = Some(now);
        }
        if expired && self.state != BbrState::ProbeRtt {
            self.state = BbrState::ProbeRtt;
            self.pacing_gain = 1.0;
            self.cwnd_gain = 1.0;
            self.prior_window = self.window;
            self.probe_rtt_done_at = None;
        }
    }

    fn handle_probe_rtt(&mut self, now: Instant, in_flight: u64) {
        match self.probe_rtt_done_at {
            None if in_flight <= self.min_window() => {
                self.probe_rtt_done_at = Some(now + PROBE_RTT_DURATION);
                self.probe_rtt_round_done = false;
                self.next_round_delivered = 0;
            }
            None => {}
            Some(done_at) => {
                if self.round_start {
                    self.probe_rtt_round_done = true;
                }
                if self.probe_rtt_round_done && now >= done_at {
                    self.min_rtt_stamp = Some(now);
                    self.window = self.window.max(self.prior_window);
                    if self.filled_pipe {
                        self.enter_probe_bandwidth(now);
                    } else {
                        self.state = BbrState::Startup;
                        self.pacing_gain = STARTUP_GAIN;
                        self.cwnd_gain = STARTUP_GAIN;
                    }
                }
            }
        }
    }

    /// Measures how far acks run ahead of the bandwidth estimate within an
    /// epoch that starts whenever they fall behind it.
    fn update_ack_aggregation(&mut self, now: Instant, sample: &RateSample) {
        let bandwidth = self.bandwidth();
        let start = *self.ack_epoch_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start).as_secs_f64();
        let mut expected = (bandwidth as f64 * elapsed) as u64;
        if self.ack_epoch_acked <= expected {
            // The acks fell behind the estimate: a new epoch starts here.
            self.ack_epoch_acked = 0;
            self.ack_epoch_start = Some(now);
            expected = 0;
        }
        self.ack_epoch_acked += sample.acked_bytes;
        let extra = self
            .ack_epoch_acked
            .saturating_sub(expected)
            .min(self.window);
        self.extra_acked.update(self.round, extra);
    }

    fn update_window(&mut self, sample: &RateSample) {
        let target = self.bdp(self.cwnd_gain) + 3 * self.datagram + self.extra_acked.get();
        if self.filled_pipe {
            self.window = (self.window + sample.acked_bytes).min(target);
        } else if self.window < target || sample.delivered < initial_window(self.datagram) {
            self.window += sample.acked_bytes;
        }
        self.window = self.window.max(self.min_window());
        if self.state == BbrState::ProbeRtt {
            self.window = self.window.min(self.min_window());
        }
    }
}

impl Controller for Bbr {
    fn window(&self) -> u64 {
        self.window
    }

    fn on_ack(
        &mut self,
        _now: Instant,
        _sent: Instant,
        _bytes: u64,
        _rtt: &RttEstimator,
        _app_limited: bool,
    ) {
        // The model moves once per ack, in `on_ack_event`.
    }

    fn on_ack_event(&mut self, now: Instant, sample: &RateSample, in_flight: u64) {
        self.update_round(sample);
        self.update_bandwidth(sample);
        self.check_full_pipe(sample);
        self.update_ack_aggregation(now, sample);
        match self.state {
            BbrState::Startup if self.filled_pipe => {
                self.state = BbrState::Drain;
                self.pacing_gain = 1.0 / STARTUP_GAIN;
                self.cwnd_gain = STARTUP_GAIN;
            }
            BbrState::ProbeBandwidth => {
                self.update_cycle(now, in_flight, sample.lost_bytes > 0);
            }
            _ => {}
        }
        if self.state == BbrState::Drain && in_flight <= self.bdp(1.0) {
            self.enter_probe_bandwidth(now);
        }
        if let Some(rtt) = sample.rtt {
            self.update_min_rtt(now, rtt);
        }
        if self.state == BbrState::ProbeRtt {
            self.handle_probe_rtt(now, in_flight);
        }
        self.update_window(sample);
    }

    fn on_loss(
        &mut self,
        _now: Instant,
        _largest_lost_sent: Instant,
        _lost_bytes: u64,
        persistent: bool,
    ) {
        // Random loss says nothing about the bottleneck; only a path that
        // lost everything for several RTTs resets the window.
        if persistent {
            self.window = self.min_window();
        }
    }

    fn on_datagram_size(&mut self, size: u64) {
        self.datagram = size;
        self.window = self.window.max(self.min_window());
    }

    fn pacing_rate(&self, rtt: &RttEstimator) -> u64 {
        let model = (self.bandwidth() as f64 * self.pacing_gain) as u64;
        if self.filled_pipe {
            return model;
        }
        // Until the pipe is known to be full, never pace below the window
        // over the RTT (with startup's gain): a connection that has only
        // sent a few small packets so far has a tiny bandwidth estimate
        // that says nothing about the path.
        let rtt = rtt.smoothed().max(Duration::from_micros(1));
        let window_rate = (self.window as f64 * STARTUP_GAIN / rtt.as_secs_f64()) as u64;
        model.max(window_rate)
    }

    fn name(&self) -> &'static str {
        "bbr"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1_000_000;

    /// Feeds the controller acks from a path of `rate` bytes per second and
    /// `rtt`, one round (a window's worth, in ten acks) per call, keeping
    /// `in_flight` at what the controller allows.
    struct Path {
        now: Instant,
        delivered: u64,
        rtt: Duration,
    }

    impl Path {
        fn new(rtt: Duration) -> Self {
            Self {
                now: Instant::now(),
                delivered: 0,
                rtt,
            }
        }

        /// One round at delivery rate `rate`, with `in_flight` reported.
        fn round(&mut self, cc: &mut Bbr, rate: u64, in_flight: Option<u64>, app_limited: bool) {
            let prior = self.delivered;
            let per_ack = (rate as f64 * self.rtt.as_secs_f64() / 10.0) as u64;
            for _ in 0..10 {
                self.now += self.rtt / 10;
                self.delivered += per_ack;
                let sample = RateSample {
                    delivery_rate: rate,
                    delivered: self.delivered,
                    prior_delivered: prior,
                    acked_bytes: per_ack,
                    lost_bytes: 0,
                    is_app_limited: app_limited,
                    rtt: Some(self.rtt),
                };
                let in_flight = in_flight.unwrap_or(cc.window());
                cc.on_ack_event(self.now, &sample, in_flight);
            }
        }
    }

    #[test]
    fn startup_grows_until_the_bandwidth_stops_growing_then_drains_and_cruises() {
        let mut cc = Bbr::new(1200);
        let mut path = Path::new(Duration::from_millis(20));
        assert_eq!(cc.state(), BbrState::Startup);
        assert_eq!(cc.window(), 12_000);
        // Doubling rates: still starting up.
        for rate in [MB, 2 * MB, 4 * MB, 8 * MB] {
            path.round(&mut cc, rate, None, false);
            assert_eq!(cc.state(), BbrState::Startup, "at {rate}");
            assert!((cc.pacing_gain() - STARTUP_GAIN).abs() < 1e-9);
        }
        // The bottleneck: 9 MB/s. Three rounds without 25% growth fill
        // the pipe.
        for round in 0..3 {
            assert_eq!(cc.state(), BbrState::Startup, "round {round}");
            path.round(&mut cc, 9 * MB, None, false);
        }
        assert_eq!(cc.state(), BbrState::Drain);
        assert!(cc.pacing_gain() < 1.0);
        assert_eq!(cc.bandwidth(), 9 * MB);
        // Once in flight falls to one BDP (9 MB/s × 20 ms = 180 kB) it
        // cruises.
        path.round(&mut cc, 9 * MB, Some(180_000), false);
        assert_eq!(cc.state(), BbrState::ProbeBandwidth);
        // The window is two BDPs plus three datagrams plus the ack
        // aggregation seen: acks come every 2 ms, 18 kB each, so an epoch's
        // first ack runs 18 kB ahead of the estimate.
        assert_eq!(cc.window(), 360_000 + 3 * 1200 + 18_000);
        let gain = cc.pacing_gain();
        let rate = cc.pacing_rate(&RttEstimator::new(Duration::from_millis(20)));
        assert_eq!(rate, (9.0 * MB as f64 * gain) as u64);
    }

    #[test]
    fn probe_bandwidth_cycles_through_its_gains_one_min_rtt_each() {
        let mut cc = Bbr::new(1200);
        let mut path = Path::new(Duration::from_millis(10));
        for _ in 0..4 {
            path.round(&mut cc, 10 * MB, None, false);
        }
        path.round(&mut cc, 10 * MB, Some(0), false);
        assert_eq!(cc.state(), BbrState::ProbeBandwidth);
        let mut gains = Vec::new();
        for _ in 0..16 {
            // A full 1.25 BDP in flight lets the probe phase end.
            let window = cc.window();
            path.round(&mut cc, 10 * MB, Some(window), false);
            gains.push(cc.pacing_gain());
        }
        // Each phase lasts a min RTT (one round here): every gain of the
        // cycle shows up, the 1.25 probe right before the 0.75 drain.
        assert!(gains.contains(&1.25) && gains.contains(&0.75), "{gains:?}");
        let probe = gains.iter().position(|&gain| gain == 1.25).unwrap();
        assert_eq!(gains[probe + 1], 0.75, "{gains:?}");
        // Six cruising phases between one probe and the next.
        let next = probe + 1 + gains[probe + 1..].iter().position(|&g| g == 1.25).unwrap();
        assert_eq!(next - probe, PROBE_GAINS.len(), "{gains:?}");
    }

    #[test]
    fn random_loss_leaves_the_model_alone_and_persistent_congestion_collapses_it() {
        let mut cc = Bbr::new(1200);
        let mut path = Path::new(Duration::from_millis(20));
        for _ in 0..8 {
            path.round(&mut cc, 10 * MB, Some(0), false);
        }
        let window = cc.window();
        let now = path.now;
        for _ in 0..50 {
            cc.on_loss(now, now, 1200, false);
        }
        assert_eq!(cc.window(), window);
        assert_eq!(cc.bandwidth(), 10 * MB);
        cc.on_loss(now, now, 1200, true);
        assert_eq!(cc.window(), 4 * 1200);
    }

    #[test]
    fn app_limited_samples_do_not_lower_the_estimate() {
        let mut cc = Bbr::new(1200);
        let mut path = Path::new(Duration::from_millis(20));
        for _ in 0..8 {
            path.round(&mut cc, 10 * MB, Some(0), false);
        }
        for _ in 0..20 {
            path.round(&mut cc, MB, Some(0), true);
        }
        assert_eq!(cc.bandwidth(), 10 * MB, "the application was idle");
        // Path-limited samples age the old maximum out after ten rounds.
        for _ in 0..11 {
            path.round(&mut cc, MB, Some(0), false);
        }
        assert_eq!(cc.bandwidth(), MB);
    }

    #[test]
    fn a_stale_min_rtt_sends_the_controller_to_probe_rtt_for_200_ms() {
        let mut cc = Bbr::new(1200);
        let mut path = Path::new(Duration::from_millis(20));
        for _ in 0..8 {
            path.round(&mut cc, 10 * MB, Some(0), false);
        }
        assert_eq!(cc.state(), BbrState::ProbeBandwidth);
        // The RTT rises (a queue) and the 10 s window runs out.
        path.rtt = Duration::from_millis(30);
        while cc.state() != BbrState::ProbeRtt {
            path.round(&mut cc, 10 * MB, None, false);
            assert!(path.now < Instant::now() + Duration::from_secs(12));
        }
        assert_eq!(cc.window(), 4 * 1200);
        let entered = path.now;
        while cc.state() == BbrState::ProbeRtt {
            path.round(&mut cc, 10 * MB, Some(0), false);
        }
        let held = path.now - entered;
        assert!(held >= PROBE_RTT_DURATION, "{held:?}");
        assert!(held <= PROBE_RTT_DURATION + 3 * path.rtt, "{held:?}");
        assert_eq!(cc.state(), BbrState::ProbeBandwidth);
        assert_eq!(cc.min_rtt(), Some(Duration::from_millis(30)));
        assert!(cc.window() > 4 * 1200, "the window comes back");
    }
}
