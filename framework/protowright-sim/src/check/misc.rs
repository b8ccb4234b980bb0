//! Acknowledged writes, bounds, and checkers from closures.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Check, Run, Violation};
use crate::history::Observation;

/// Every write the service acknowledged is durable: a read of its key made
/// after the heal settled returns the last acknowledged value, or the value
/// of a write made after it (acknowledged or not, since an unacknowledged
/// write may still have taken effect). Reads before then are not judged: a
/// partition may legitimately hide the latest write.
pub fn acked_writes() -> impl Check {
    AckedWrites
}

struct AckedWrites;

impl Check for AckedWrites {
    fn name(&self) -> &str {
        "acknowledged writes"
    }

    fn check(&self, run: &Run<'_>) -> Result<(), Violation> {
        // Per key: the last acknowledged value, and every value written
        // since (any of which a read may return).
        let mut keys: BTreeMap<&str, (Option<&str>, Vec<&str>)> = BTreeMap::new();
        for entry in run.history {
            match &entry.what {
                Observation::Wrote { key, value, acked } => {
                    let state = keys.entry(key).or_default();
                    if *acked {
                        state.0 = Some(value);
                        state.1.clear();
                    } else {
                        state.1.push(value);
                    }
                }
                Observation::Read { key, value } if entry.at >= run.settled_at() => {
                    let Some((Some(acked), later)) = keys.get(key.as_str()) else {
                        continue;
                    };
                    let read = value.as_deref();
                    if read != Some(*acked) && !later.iter().any(|v| read == Some(*v)) {
                        return Err(run.violation(
                            self.name(),
                            entry.at,
                            format!(
                                "key {key:?} read back {read:?}, but {acked:?} was acknowledged"
                            ),
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Every sample of every gauge stays within its bound (queues, buffered
/// bytes, memory): bounded everything, checked where it was measured.
pub fn bounded() -> impl Check {
    Bounded
}

struct Bounded;

impl Check for Bounded {
    fn name(&self) -> &str {
        "bounded"
    }

    fn check(&self, run: &Run<'_>) -> Result<(), Violation> {
        for entry in run.history {
            if let Observation::Gauge { name, value, bound } = &entry.what
                && value > bound
            {
                return Err(run.violation(
                    self.name(),
                    entry.at,
                    format!("{name} reached {value}, over its bound of {bound}"),
                ));
            }
        }
        Ok(())
    }
}

/// A checker from a closure: `judge` gets the run and returns what broke
/// and when, if anything did.
pub fn custom<F>(name: &str, judge: F) -> impl Check
where
    F: Fn(&Run<'_>) -> Option<(Duration, String)> + Send + Sync,
{
    Custom {
        name: name.to_owned(),
        judge,
    }
}

struct Custom<F> {
    name: String,
    judge: F,
}

impl<F> Check for Custom<F>
where
    F: Fn(&Run<'_>) -> Option<(Duration, String)> + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, run: &Run<'_>) -> Result<(), Violation> {
        match (self.judge)(run) {
            None => Ok(()),
            Some((at, what)) => Err(run.violation(&self.name, at, what)),
        }
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

    fn wrote(value: &str, acked: bool) -> Observation {
        Observation::Wrote {
            key: "k".into(),
            value: value.into(),
            acked,
        }
    }

    fn read(value: &str) -> Observation {
        Observation::Read {
            key: "k".into(),
            value: Some(value.into()),
        }
    }

    fn judge(check: &dyn Check, history: &[Entry]) -> Result<(), Violation> {
        let schedule = Schedule::none().heal_at(Duration::from_secs(1));
        check.check(&Run {
            history,
            schedule: &schedule,
            liveness_bound: Duration::from_secs(1),
            ended: Duration::from_secs(5),
        })
    }

    #[test]
    fn an_acknowledged_write_lost_after_the_heal_is_caught() {
        let kept = [
            at(0, wrote("a", true)),
            at(100, wrote("b", false)),
            at(3000, read("b")),
        ];
        assert_eq!(judge(&acked_writes(), &kept), Ok(()));
        let lost = [at(0, wrote("a", true)), at(3000, read("old"))];
        assert!(
            judge(&acked_writes(), &lost)
                .unwrap_err()
                .what
                .contains("acknowledged")
        );
        let early = [at(0, wrote("a", true)), at(500, read("old"))];
        assert_eq!(
            judge(&acked_writes(), &early),
            Ok(()),
            "before the heal settled"
        );
    }

    #[test]
    fn a_gauge_over_its_bound_is_caught() {
        let over = [at(
            7,
            Observation::Gauge {
                name: "queue".into(),
                value: 11,
                bound: 10,
            },
        )];
        let error = judge(&bounded(), &over).unwrap_err();
        assert!(error.what.contains("queue reached 11"), "{error}");
        assert_eq!(error.at, Duration::from_millis(7));
    }
}
