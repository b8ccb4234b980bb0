//! RPC outcomes.

use std::collections::BTreeMap;
use std::time::Duration;

use protowright::rpc::Code;

use super::{Check, Run, Violation};
use crate::history::{CallOutcome, Observation};

/// How late after its deadline a call may end: the simulation's scheduling
/// granularity, not slack for the transport.
const GRACE: Duration = Duration::from_millis(20);

/// Every call ends in its own response or a typed error a caller can act on
/// (`DEADLINE_EXCEEDED` or `UNAVAILABLE`, or a status its handler chose),
/// never in another call's response and never later than its deadline; and
/// after the heal, once the liveness bound has passed, every call
/// succeeds. A call still open when the run ended is a hang.
pub fn calls() -> impl Check {
    Calls
}

struct Calls;

impl Check for Calls {
    fn name(&self) -> &str {
        "calls"
    }

    fn check(&self, run: &Run<'_>) -> Result<(), Violation> {
        let mut open: BTreeMap<u64, (Duration, Option<Duration>, Option<&str>)> = BTreeMap::new();
        for entry in run.history {
            match &entry.what {
                Observation::CallStarted {
                    call,
                    deadline,
                    host,
                } => {
                    open.insert(*call, (entry.at, *deadline, host.as_deref()));
                }
                Observation::HostCrashed(crashed) => {
                    // Calls whose caller died end with it.
                    open.retain(|_, (_, _, host)| *host != Some(crashed.as_str()));
                }
                Observation::CallEnded { call, outcome } => {
                    let Some((started, deadline, _)) = open.remove(call) else {
                        return Err(run.violation(
                            self.name(),
                            entry.at,
                            format!("call {call} ended twice, or without starting"),
                        ));
                    };
                    let fail = |what: String| {
                        run.violation(self.name(), entry.at, format!("call {call}: {what}"))
                    };
                    if let Some(deadline) = deadline
                        && entry.at > started + deadline + GRACE
                    {
                        return Err(fail(format!(
                            "ended {:?} after it started, past its {deadline:?} deadline",
                            entry.at - started
                        )));
                    }
                    match outcome {
                        CallOutcome::Answered { own: false } => {
                            return Err(fail("answered with another call's response".into()));
                        }
                        CallOutcome::Failed(code) if started >= run.settled_at() => {
                            return Err(fail(format!(
                                "failed with {code:?} though it started after the heal settled ({:?})",
                                run.settled_at()
                            )));
                        }
                        CallOutcome::Failed(Code::Ok | Code::Unknown | Code::Internal) => {
                            return Err(fail(format!(
                                "failed with an untyped status ({outcome:?})"
                            )));
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        if let Some((call, (started, _, _))) = open.into_iter().next() {
            return Err(run.violation(
                self.name(),
                started,
                format!(
                    "call {call} never ended: it hung past the end of the run{}",
                    run.cut_short()
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

    fn start(call: u64, deadline_ms: u64) -> Observation {
        Observation::CallStarted {
            call,
            deadline: Some(Duration::from_millis(deadline_ms)),
            host: Some("caller".into()),
        }
    }

    fn end(call: u64, outcome: CallOutcome) -> Observation {
        Observation::CallEnded { call, outcome }
    }

    fn judge(history: &[Entry]) -> Result<(), Violation> {
        let schedule = Schedule::none().heal_at(Duration::from_secs(1));
        calls().check(&Run {
            history,
            schedule: &schedule,
            liveness_bound: Duration::from_secs(1),
            ended: Duration::from_secs(10),
        })
    }

    #[test]
    fn own_answers_and_typed_failures_pass() {
        let history = [
            at(0, start(0, 100)),
            at(0, start(1, 100)),
            at(10, end(0, CallOutcome::Answered { own: true })),
            at(100, end(1, CallOutcome::Failed(Code::DeadlineExceeded))),
        ];
        assert_eq!(judge(&history), Ok(()));
    }

    #[test]
    fn another_calls_response_a_hang_and_a_late_end_each_fail() {
        let wrong = [
            at(0, start(0, 100)),
            at(5, end(0, CallOutcome::Answered { own: false })),
        ];
        assert!(judge(&wrong).unwrap_err().what.contains("another call's"));
        let hung = [at(0, start(0, 100))];
        assert!(judge(&hung).unwrap_err().what.contains("never ended"));
        let caller_died = [
            at(0, start(0, 100)),
            at(50, Observation::HostCrashed("caller".into())),
        ];
        assert_eq!(
            judge(&caller_died),
            Ok(()),
            "a dead caller's call is no hang"
        );
        let late = [
            at(0, start(0, 100)),
            at(500, end(0, CallOutcome::Failed(Code::DeadlineExceeded))),
        ];
        assert!(judge(&late).unwrap_err().what.contains("past its"));
    }

    #[test]
    fn a_failure_after_the_heal_settled_fails() {
        let history = [
            at(2500, start(0, 100)),
            at(2600, end(0, CallOutcome::Failed(Code::Unavailable))),
        ];
        assert!(judge(&history).unwrap_err().what.contains("after the heal"));
    }
}
