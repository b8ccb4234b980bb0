//! The delivery guarantees, per stream and sending connection.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use protowright::Delivery;

use super::{Check, Run, Violation};
use crate::history::Observation;

/// Holds each stream to its delivery's guarantee (the `delivery` option of
/// the schema), per sending connection (`flow`):
///
/// | delivery | safety, throughout | liveness, after the heal |
/// | --- | --- | --- |
/// | reliable ordered | exactly once, in order, intact | everything sent arrives |
/// | reliable unordered | exactly once, intact | everything sent arrives |
/// | unreliable | at most once, intact | everything sent on the clean path arrives |
/// | unreliable sequenced | never backwards, at most once, intact | everything sent on the clean path arrives |
///
/// "Arrives" is owed by connections that did not fail: a connection that
/// crashed or was lost may lose what it had in flight (and must still never
/// duplicate or reorder it). Liveness is due by the run's end, which comes
/// at least the liveness bound after the heal. "The clean path" is the time
/// from half the liveness bound after the heal: at-most-once alone is met
/// by delivering nothing, so on a path with no faults every unreliable
/// message must arrive.
pub fn delivery() -> impl Check {
    Deliveries
}

struct Deliveries;

/// What one stream of one connection did.
#[derive(Debug, Default)]
struct Stream {
    delivery: Option<Delivery>,
    /// When each message was sent.
    sent: BTreeMap<u64, Duration>,
    /// Delivered numbers, and the newest so far.
    delivered: BTreeSet<u64>,
    newest: Option<u64>,
}

impl Check for Deliveries {
    fn name(&self) -> &str {
        "delivery"
    }

    fn check(&self, run: &Run<'_>) -> Result<(), Violation> {
        let mut streams: BTreeMap<(u64, String), Stream> = BTreeMap::new();
        let mut failed: BTreeSet<u64> = BTreeSet::new();
        let mut hosts: BTreeMap<u64, &str> = BTreeMap::new();
        for entry in run.history {
            match &entry.what {
                Observation::FlowStarted { flow, host } => {
                    hosts.insert(*flow, host);
                }
                Observation::HostCrashed(crashed) => {
                    // Every flow running on it fails with it.
                    failed.extend(
                        hosts
                            .iter()
                            .filter(|(_, host)| **host == crashed.as_str())
                            .map(|(flow, _)| *flow),
                    );
                }
                Observation::Sent {
                    flow,
                    stream,
                    delivery,
                    seq,
                } => {
                    let state = streams.entry((*flow, stream.clone())).or_default();
                    state.delivery = Some(*delivery);
                    state.sent.insert(*seq, entry.at);
                }
                Observation::Delivered {
                    flow,
                    stream,
                    delivery,
                    seq,
                    intact,
                } => {
                    let state = streams.entry((*flow, stream.clone())).or_default();
                    let fail = |what: String| {
                        run.violation(
                            self.name(),
                            entry.at,
                            format!("{stream} of flow {flow}: {what}"),
                        )
                    };
                    if !intact {
                        return Err(fail(format!("message {seq} arrived corrupted")));
                    }
                    if !state.sent.contains_key(seq) {
                        return Err(fail(format!("message {seq} arrived but was never sent")));
                    }
                    on_delivery(state, *delivery, *seq).map_err(fail)?;
                }
                Observation::FlowEnded { flow, clean: false } => {
                    failed.insert(*flow);
                }
                _ => {}
            }
        }
        for ((flow, name), stream) in &streams {
            if failed.contains(flow) {
                continue;
            }
            if let Some(seq) = missing(stream, run) {
                return Err(run.violation(
                    self.name(),
                    run.ended,
                    format!(
                        "{name} of flow {flow}: message {seq} ({:?}) never arrived, though its connection did not fail{}",
                        stream.delivery.unwrap_or_default(),
                        run.cut_short()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Applies one delivery's safety rule.
fn on_delivery(state: &mut Stream, delivery: Delivery, seq: u64) -> Result<(), String> {
    let first_time = state.delivered.insert(seq);
    if !first_time {
        return Err(format!("message {seq} arrived twice"));
    }
    match delivery {
        Delivery::ReliableOrdered => {
            let expected = state.newest.map_or(0, |newest| newest + 1);
            if seq != expected {
                return Err(format!("message {seq} arrived where {expected} was due"));
            }
        }
        Delivery::UnreliableSequenced => {
            if let Some(newest) = state.newest
                && seq < newest
            {
                return Err(format!("message {seq} arrived after the newer {newest}"));
            }
        }
        Delivery::ReliableUnordered | Delivery::Unreliable => {}
    }
    state.newest = Some(state.newest.map_or(seq, |newest| newest.max(seq)));
    Ok(())
}

/// The first message a healthy connection still owes.
fn missing(stream: &Stream, run: &Run<'_>) -> Option<u64> {
    let clean_from = run.heal_at() + run.liveness_bound / 2;
    let owed = |sent_at: Duration| match stream.delivery {
        Some(Delivery::ReliableOrdered | Delivery::ReliableUnordered) => true,
        Some(Delivery::Unreliable | Delivery::UnreliableSequenced) => sent_at >= clean_from,
        None => false,
    };
    stream
        .sent
        .iter()
        .find(|(seq, at)| owed(**at) && !stream.delivered.contains(seq))
        .map(|(seq, _)| *seq)
}

/// Under steady datagram loss (no partition, crash, hold, size limit or
/// bandwidth cap in the schedule), unreliable messages sent while the loss
/// lasts arrive in the share the loss allows: within `tolerance` plus three
/// standard deviations of the binomial draw (so a small sample is judged
/// fairly), from 20 messages on. Catches a transport that drops unreliable
/// messages of its own accord, which at-most-once alone allows. Assumes
/// each unreliable message fits one datagram.
pub fn unreliable_share(tolerance: f64) -> impl Check {
    Share { tolerance }
}

struct Share {
    tolerance: f64,
}

impl Check for Share {
    fn name(&self) -> &str {
        "unreliable share"
    }

    fn check(&self, run: &Run<'_>) -> Result<(), Violation> {
        let schedule = run.schedule;
        let faults = schedule.faults;
        let steady = schedule.events.is_empty()
            && faults.bandwidth.is_none()
            && faults.max_datagram.is_none();
        if !steady {
            return Ok(());
        }
        let expected =
            (1.0 - faults.long_run_loss()) * (1.0 - faults.corrupt) * (1.0 - faults.truncate);
        let mut sent = BTreeSet::new();
        let mut delivered = BTreeSet::new();
        for entry in run.history {
            match &entry.what {
                Observation::Sent {
                    flow,
                    stream,
                    delivery: Delivery::Unreliable,
                    seq,
                } if entry.at < schedule.heal_at => {
                    sent.insert((*flow, stream.clone(), *seq));
                }
                Observation::Delivered {
                    flow,
                    stream,
                    delivery: Delivery::Unreliable,
                    seq,
                    ..
                } => {
                    delivered.insert((*flow, stream.clone(), *seq));
                }
                _ => {}
            }
        }
        if sent.len() < 20 {
            return Ok(());
        }
        let arrived = sent.intersection(&delivered).count();
        let share = arrived as f64 / sent.len() as f64;
        let spread = 3.0 * (expected * (1.0 - expected) / sent.len() as f64).sqrt();
        if (share - expected).abs() > self.tolerance + spread {
            return Err(run.violation(
                self.name(),
                schedule.heal_at,
                format!(
                    "{arrived} of {} unreliable messages arrived ({:.1}%); the path's faults let {:.1}% through (tolerance {:.1} points)",
                    sent.len(),
                    share * 100.0,
                    expected * 100.0,
                    (self.tolerance + spread) * 100.0
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Entry;
    use crate::schedule::Schedule;

    fn at(ms: u64, what: Observation) -> Entry {
        Entry {
            at: Duration::from_millis(ms),
            what,
        }
    }

    fn sent(seq: u64, delivery: Delivery) -> Observation {
        Observation::Sent {
            flow: 1,
            stream: "s".into(),
            delivery,
            seq,
        }
    }

    fn got(seq: u64, delivery: Delivery) -> Observation {
        Observation::Delivered {
            flow: 1,
            stream: "s".into(),
            delivery,
            seq,
            intact: true,
        }
    }

    fn judge(history: &[Entry]) -> Result<(), Violation> {
        let schedule = Schedule::none();
        delivery().check(&Run {
            history,
            schedule: &schedule,
            liveness_bound: Duration::from_secs(2),
            ended: Duration::from_secs(10),
        })
    }

    #[test]
    fn in_order_exactly_once_passes_and_a_reorder_or_duplicate_fails() {
        let ordered = Delivery::ReliableOrdered;
        let good = [
            at(0, sent(0, ordered)),
            at(1, sent(1, ordered)),
            at(5, got(0, ordered)),
            at(6, got(1, ordered)),
        ];
        assert_eq!(judge(&good), Ok(()));
        let reordered = [
            at(0, sent(0, ordered)),
            at(1, sent(1, ordered)),
            at(5, got(1, ordered)),
            at(6, got(0, ordered)),
        ];
        let error = judge(&reordered).unwrap_err();
        assert!(error.what.contains("arrived where 0 was due"), "{error}");
        assert_eq!(error.at, Duration::from_millis(5));
        let doubled = [
            at(0, sent(0, ordered)),
            at(5, got(0, ordered)),
            at(6, got(0, ordered)),
        ];
        assert!(judge(&doubled).unwrap_err().what.contains("twice"));
    }

    #[test]
    fn a_reliable_message_that_never_arrives_fails_unless_its_connection_failed() {
        let lost = [at(0, sent(0, Delivery::ReliableUnordered))];
        assert!(judge(&lost).unwrap_err().what.contains("never arrived"));
        let with_failure = [
            at(0, sent(0, Delivery::ReliableUnordered)),
            at(
                1,
                Observation::FlowEnded {
                    flow: 1,
                    clean: false,
                },
            ),
        ];
        assert_eq!(judge(&with_failure), Ok(()));
    }

    #[test]
    fn sequenced_may_skip_but_never_goes_backwards() {
        let seq = Delivery::UnreliableSequenced;
        let skipped = [
            at(0, sent(0, seq)),
            at(0, sent(1, seq)),
            at(0, sent(2, seq)),
            at(5, got(0, seq)),
            at(6, got(2, seq)),
        ];
        // Message 1 was sent during the (empty) fault window: no liveness
        // owed before the clean path begins at 1 s.
        assert_eq!(judge(&skipped), Ok(()));
        let backwards = [
            at(0, sent(0, seq)),
            at(0, sent(1, seq)),
            at(5, got(1, seq)),
            at(6, got(0, seq)),
        ];
        assert!(
            judge(&backwards)
                .unwrap_err()
                .what
                .contains("after the newer")
        );
    }

    #[test]
    fn an_unreliable_stream_that_delivers_nothing_on_a_clean_path_fails() {
        let unreliable = Delivery::Unreliable;
        let silent = [at(1500, sent(0, unreliable)), at(1600, sent(1, unreliable))];
        assert!(judge(&silent).unwrap_err().what.contains("never arrived"));
    }

    #[test]
    fn a_corrupted_delivery_fails() {
        let corrupted = [
            at(0, sent(0, Delivery::Unreliable)),
            at(
                5,
                Observation::Delivered {
                    flow: 1,
                    stream: "s".into(),
                    delivery: Delivery::Unreliable,
                    seq: 0,
                    intact: false,
                },
            ),
        ];
        assert!(judge(&corrupted).unwrap_err().what.contains("corrupted"));
    }
}
