//! Fault schedules: what goes wrong, and when, in one run.
//!
//! A [`Schedule`] holds the datagram faults in force from the start, a
//! time-ordered list of [`Event`]s (partitions and repairs between named
//! hosts, holds and releases, crashes and restarts, changes of the datagram
//! faults or of the network's latency), and the moment everything heals.
//! [`Sim`](crate::Sim) applies it as the simulation steps.
//!
//! [`Schedule::strategy`] draws schedules for proptest in the manner of
//! swarm testing: each kind of fault is first switched on or off for the
//! case (most are off), and only the kinds switched on get parameters and
//! events. Rare combinations then come up far more often than when every
//! fault is always on a little, and a failing case shrinks — kinds switch
//! off, events go, numbers fall — to a short schedule that still fails.

use std::fmt;
use std::time::Duration;

use proptest::prelude::*;

use crate::fault::{Bandwidth, Burst, Faults};

/// Something that happens to the network or a host at a moment of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Cut every path between two hosts, both ways (turmoil's partition).
    Partition(String, String),
    /// Restore the paths between two hosts.
    Repair(String, String),
    /// Hold every message between two hosts (delivered at the release).
    Hold(String, String),
    /// Release what was held between two hosts.
    Release(String, String),
    /// Stop a host's software at once, as a power loss would.
    Crash(String),
    /// Start a crashed host's software again (a fresh process).
    Restart(String),
    /// Replace the datagram faults of every path.
    SetFaults(Faults),
    /// Widen the network's latency: each message then draws its latency
    /// between the simulation's base [`latency`](crate::Sim::latency) and
    /// this (so a wide range reorders). A value below the base latency
    /// counts as the base latency.
    SetMaxLatency(Duration),
}

impl Event {
    /// Cut the paths between `a` and `b`.
    pub fn partition(a: &str, b: &str) -> Self {
        Self::Partition(a.into(), b.into())
    }

    /// Restore the paths between `a` and `b`.
    pub fn repair(a: &str, b: &str) -> Self {
        Self::Repair(a.into(), b.into())
    }

    /// Hold what travels between `a` and `b`.
    pub fn hold(a: &str, b: &str) -> Self {
        Self::Hold(a.into(), b.into())
    }

    /// Release what was held between `a` and `b`.
    pub fn release(a: &str, b: &str) -> Self {
        Self::Release(a.into(), b.into())
    }

    /// Crash `host`.
    pub fn crash(host: &str) -> Self {
        Self::Crash(host.into())
    }

    /// Restart `host`.
    pub fn restart(host: &str) -> Self {
        Self::Restart(host.into())
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Partition(a, b) => write!(f, "partition {a} | {b}"),
            Self::Repair(a, b) => write!(f, "repair {a} | {b}"),
            Self::Hold(a, b) => write!(f, "hold {a} | {b}"),
            Self::Release(a, b) => write!(f, "release {a} | {b}"),
            Self::Crash(host) => write!(f, "crash {host}"),
            Self::Restart(host) => write!(f, "restart {host}"),
            Self::SetFaults(faults) => write!(f, "faults {}", describe(faults)),
            Self::SetMaxLatency(max) => write!(f, "latency up to {max:?}"),
        }
    }
}

/// What goes wrong in one run, and when it all heals.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The datagram faults in force from the start.
    pub faults: Faults,
    /// The events, in time order.
    pub events: Vec<(Duration, Event)>,
    /// When every fault ends: datagram faults cleared, partitions repaired,
    /// holds released, crashed hosts restarted. Checks of liveness count
    /// from here.
    pub heal_at: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Self::none()
    }
}

impl Schedule {
    /// Nothing goes wrong.
    pub fn none() -> Self {
        Self {
            faults: Faults::none(),
            events: Vec::new(),
            heal_at: Duration::ZERO,
        }
    }

    /// `faults` on every path from the start.
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// `event` at `at` (kept in time order).
    pub fn at(mut self, at: Duration, event: Event) -> Self {
        let index = self.events.partition_point(|(when, _)| *when <= at);
        self.events.insert(index, (at, event));
        self.heal_at = self.heal_at.max(at);
        self
    }

    /// Everything heals at `at` (and not before the last event).
    pub fn heal_at(mut self, at: Duration) -> Self {
        let last = self.events.last().map_or(Duration::ZERO, |(when, _)| *when);
        self.heal_at = at.max(last);
        self
    }

    /// Whether anything goes wrong at all.
    pub fn is_clean(&self) -> bool {
        self.faults.is_perfect() && self.events.is_empty()
    }

    /// Draws schedules within `space`, swarm style (see the module docs).
    pub fn strategy(space: Space) -> impl Strategy<Value = Schedule> {
        let window_ms = u64::try_from(space.window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let faults = if space.datagram_faults {
            faults_strategy(space.max_loss).boxed()
        } else {
            Just(Faults::none()).boxed()
        };
        let events = events_strategy(&space, window_ms);
        (faults, events).prop_map(move |(faults, mut events)| {
            events.sort_by_key(|(at, _)| *at);
            Schedule {
                faults,
                events,
                heal_at: Duration::from_millis(window_ms),
            }
        })
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "from 0s: faults {}", describe(&self.faults))?;
        for (at, event) in &self.events {
            write!(f, "; at {at:?}: {event}")?;
        }
        write!(f, "; heal at {:?}", self.heal_at)
    }
}

/// A short description of datagram faults: only those switched on.
fn describe(faults: &Faults) -> String {
    if faults.is_perfect() {
        return "none".into();
    }
    let mut parts = Vec::new();
    if faults.loss > 0.0 {
        parts.push(format!("loss {:.1}%", faults.loss * 100.0));
    }
    if let Some(burst) = faults.burst {
        parts.push(format!(
            "bursts (enter {:.3}, leave {:.2}, loss {:.0}%)",
            burst.enter,
            burst.leave,
            burst.loss * 100.0
        ));
    }
    if faults.duplicate > 0.0 {
        parts.push(format!("duplicate {:.1}%", faults.duplicate * 100.0));
    }
    if faults.corrupt > 0.0 {
        parts.push(format!("corrupt {:.1}%", faults.corrupt * 100.0));
    }
    if faults.truncate > 0.0 {
        parts.push(format!("truncate {:.1}%", faults.truncate * 100.0));
    }
    if !faults.delay.is_zero() || !faults.jitter.is_zero() {
        parts.push(format!(
            "delay {:?} + jitter {:?}",
            faults.delay, faults.jitter
        ));
    }
    if let Some(max) = faults.max_datagram {
        parts.push(format!("max datagram {max} B"));
    }
    if let Some(cap) = faults.bandwidth {
        parts.push(format!(
            "bandwidth {} B/s, queue {} B",
            cap.bytes_per_second, cap.queue_bytes
        ));
    }
    parts.join(", ")
}

/// What a drawn schedule may contain.
#[derive(Debug, Clone)]
pub struct Space {
    /// Hosts whose paths may be partitioned and held, pairwise.
    pub hosts: Vec<String>,
    /// Hosts that may crash (and are restarted).
    pub restartable: Vec<String>,
    /// Whether datagram faults (loss, duplication, corruption, ...) are
    /// drawn: useful for reliable UDP, pointless for TCP (its streams pass
    /// through the fault layer untouched).
    pub datagram_faults: bool,
    /// The highest independent loss drawn.
    pub max_loss: f64,
    /// Faults happen within this window from the start; everything heals
    /// at its end.
    pub window: Duration,
    /// The most events of each kind.
    pub max_events: usize,
}

impl Space {
    /// Faults between `hosts` within the first `window` of a run: datagram
    /// faults up to 30% loss, partitions and holds between any two hosts,
    /// no crashes (add restartable hosts with [`restart`](Self::restart)).
    pub fn new(hosts: &[&str], window: Duration) -> Self {
        Self {
            hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
            restartable: Vec::new(),
            datagram_faults: true,
            max_loss: 0.3,
            window,
            max_events: 3,
        }
    }

    /// Lets `hosts` crash and restart.
    pub fn restart(mut self, hosts: &[&str]) -> Self {
        self.restartable = hosts.iter().map(|h| (*h).to_owned()).collect();
        self
    }

    /// Only partitions, holds and crashes: for TCP, whose streams datagram
    /// faults cannot touch.
    pub fn streams_only(mut self) -> Self {
        self.datagram_faults = false;
        self
    }
}

/// A probability that is mostly zero: swarm testing switches a kind of
/// fault on in about a third of the cases.
fn sometimes(max: f64) -> impl Strategy<Value = f64> {
    prop::option::weighted(0.35, 0.0..max).prop_map(|p| p.unwrap_or(0.0))
}

fn faults_strategy(max_loss: f64) -> impl Strategy<Value = Faults> {
    let burst = prop::option::weighted(
        0.25,
        (0.005..0.05f64, 0.1..0.5f64, 0.5..1.0f64).prop_map(|(enter, leave, loss)| Burst {
            enter,
            leave,
            loss,
        }),
    );
    let delay = prop::option::weighted(0.35, (0u64..20, 0u64..30)).prop_map(|d| {
        let (delay, jitter) = d.unwrap_or((0, 0));
        (Duration::from_millis(delay), Duration::from_millis(jitter))
    });
    let max_datagram = prop::option::weighted(0.2, 1200usize..1500);
    let bandwidth = prop::option::weighted(
        0.2,
        (50_000u64..2_000_000, 16_000u64..256_000).prop_map(|(rate, queue)| Bandwidth {
            bytes_per_second: rate,
            queue_bytes: queue,
        }),
    );
    (
        sometimes(max_loss),
        burst,
        sometimes(0.2),
        sometimes(0.05),
        sometimes(0.05),
        delay,
        max_datagram,
        bandwidth,
    )
        .prop_map(
            |(
                loss,
                burst,
                duplicate,
                corrupt,
                truncate,
                (delay, jitter),
                max_datagram,
                bandwidth,
            )| {
                Faults {
                    loss,
                    burst,
                    duplicate,
                    corrupt,
                    truncate,
                    delay,
                    jitter,
                    max_datagram,
                    bandwidth,
                }
            },
        )
}

/// Pairs of one cutting event and its undoing, within the window.
fn paired(
    hosts: &[String],
    window_ms: u64,
    max: usize,
    cut: fn(&str, &str) -> Event,
    undo: fn(&str, &str) -> Event,
) -> BoxedStrategy<Vec<(Duration, Event)>> {
    if hosts.len() < 2 {
        return Just(Vec::new()).boxed();
    }
    let pairs: Vec<(String, String)> = hosts
        .iter()
        .enumerate()
        .flat_map(|(i, a)| hosts[i + 1..].iter().map(move |b| (a.clone(), b.clone())))
        .collect();
    let one = (prop::sample::select(pairs), 0..window_ms, 1..window_ms).prop_map(
        move |((a, b), start, length)| {
            let end = (start + length).min(window_ms);
            vec![
                (Duration::from_millis(start), cut(&a, &b)),
                (Duration::from_millis(end), undo(&a, &b)),
            ]
        },
    );
    prop::option::weighted(0.35, prop::collection::vec(one, 1..=max.max(1)))
        .prop_map(|runs| runs.unwrap_or_default().into_iter().flatten().collect())
        .boxed()
}

fn events_strategy(space: &Space, window_ms: u64) -> BoxedStrategy<Vec<(Duration, Event)>> {
    let partitions = paired(
        &space.hosts,
        window_ms,
        space.max_events,
        Event::partition,
        Event::repair,
    );
    let holds = paired(
        &space.hosts,
        window_ms,
        space.max_events,
        Event::hold,
        Event::release,
    );
    let crashes = if space.restartable.is_empty() {
        Just(Vec::new()).boxed()
    } else {
        let one = (
            prop::sample::select(space.restartable.clone()),
            0..window_ms,
            1..window_ms,
        )
            .prop_map(move |(host, start, down)| {
                let back = (start + down).min(window_ms);
                vec![
                    (Duration::from_millis(start), Event::crash(&host)),
                    (Duration::from_millis(back), Event::restart(&host)),
                ]
            });
        prop::option::weighted(0.3, prop::collection::vec(one, 1..=space.max_events.max(1)))
            .prop_map(|runs| runs.unwrap_or_default().into_iter().flatten().collect())
            .boxed()
    };
    let change = if space.datagram_faults {
        prop::option::weighted(0.25, (0..window_ms, faults_strategy(space.max_loss)))
            .prop_map(|change| {
                change
                    .map(|(at, faults)| vec![(Duration::from_millis(at), Event::SetFaults(faults))])
                    .unwrap_or_default()
            })
            .boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    let latency = prop::option::weighted(0.25, (0..window_ms, 5u64..60)).prop_map(|change| {
        change
            .map(|(at, max)| {
                let event = Event::SetMaxLatency(Duration::from_millis(max));
                vec![(Duration::from_millis(at), event)]
            })
            .unwrap_or_default()
    });
    (partitions, holds, crashes, change, latency)
        .prop_map(|(mut all, holds, crashes, change, latency)| {
            all.extend(holds);
            all.extend(crashes);
            all.extend(change);
            all.extend(latency);
            all
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    use super::*;

    fn draws(space: Space, count: usize) -> Vec<Schedule> {
        let mut runner = TestRunner::deterministic();
        let strategy = Schedule::strategy(space);
        (0..count)
            .map(|_| strategy.new_tree(&mut runner).unwrap().current())
            .collect()
    }

    #[test]
    fn events_are_in_time_order_within_the_window_and_heal_at_its_end() {
        let space = Space::new(&["a", "b", "c"], Duration::from_secs(5)).restart(&["a"]);
        for schedule in draws(space, 200) {
            assert!(schedule.events.windows(2).all(|w| w[0].0 <= w[1].0));
            assert!(
                schedule
                    .events
                    .iter()
                    .all(|(at, _)| *at <= Duration::from_secs(5))
            );
            assert_eq!(schedule.heal_at, Duration::from_secs(5));
        }
    }

    #[test]
    fn swarm_testing_switches_most_kinds_off_in_most_cases() {
        let schedules = draws(Space::new(&["a", "b"], Duration::from_secs(5)), 500);
        let with_loss = schedules.iter().filter(|s| s.faults.loss > 0.0).count();
        let with_dup = schedules
            .iter()
            .filter(|s| s.faults.duplicate > 0.0)
            .count();
        let both = schedules
            .iter()
            .filter(|s| s.faults.loss > 0.0 && s.faults.duplicate > 0.0)
            .count();
        let clean = schedules.iter().filter(|s| s.is_clean()).count();
        assert!((100..250).contains(&with_loss), "{with_loss}");
        assert!((100..250).contains(&with_dup), "{with_dup}");
        assert!(both > 20, "combinations come up: {both}");
        assert!(clean > 0, "and so do clean runs");
    }

    #[test]
    fn stream_only_spaces_draw_no_datagram_faults() {
        let space = Space::new(&["a", "b"], Duration::from_secs(5)).streams_only();
        for schedule in draws(space, 100) {
            assert!(schedule.faults.is_perfect());
            assert!(
                !schedule
                    .events
                    .iter()
                    .any(|(_, e)| matches!(e, Event::SetFaults(_)))
            );
        }
    }

    #[test]
    fn some_schedules_change_the_faults_midway() {
        let schedules = draws(Space::new(&["a", "b"], Duration::from_secs(5)), 200);
        let changes = schedules
            .iter()
            .filter(|s| {
                s.events
                    .iter()
                    .any(|(_, e)| matches!(e, Event::SetFaults(_)))
            })
            .count();
        assert!((20..100).contains(&changes), "{changes}");
    }

    #[test]
    fn a_failing_schedule_shrinks_to_the_one_event_that_matters() {
        // "Fails" whenever a crash happens: the shrunk case keeps one crash
        // and its restart, with every datagram fault switched off.
        let space = Space::new(&["a", "b"], Duration::from_secs(5)).restart(&["a"]);
        let mut runner = TestRunner::new(proptest::test_runner::Config {
            cases: 256,
            failure_persistence: None,
            ..Default::default()
        });
        let result = runner.run(&Schedule::strategy(space), |schedule| {
            let crashed = schedule
                .events
                .iter()
                .any(|(_, e)| matches!(e, Event::Crash(_)));
            prop_assert!(!crashed);
            Ok(())
        });
        let Err(proptest::test_runner::TestError::Fail(_, shrunk)) = result else {
            panic!("a crash is drawn in 256 cases");
        };
        assert_eq!(shrunk.events.len(), 2, "{shrunk}");
        assert!(shrunk.faults.is_perfect(), "{shrunk}");
    }

    #[test]
    fn a_hand_written_schedule_reads_as_it_runs() {
        let schedule = Schedule::none()
            .with_faults(Faults::loss(0.1))
            .at(Duration::from_secs(2), Event::partition("client", "server"))
            .at(Duration::from_secs(1), Event::crash("server"))
            .heal_at(Duration::from_secs(4));
        assert_eq!(
            schedule.to_string(),
            "from 0s: faults loss 10.0%; at 1s: crash server; at 2s: partition client | server; heal at 4s"
        );
    }
}
