//! The record of a run: what the code under test did and saw, stamped with
//! simulated time, for the checkers to judge and the trace hash to pin.
//!
//! The code under test writes to a [`History`] (a cheap clone of one log):
//! each message sent and delivered, each call started and ended, each
//! write acknowledged and read back, the samples of a bounded quantity, and
//! counters that prove a recovery path ran. [`Sim`](crate::Sim) adds the
//! schedule's events as they are applied. The log is in the order things
//! happened, and the same seed gives the same log: its
//! [`trace_hash`](History::trace_hash) is the run's fingerprint.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use protowright::Delivery;
use protowright::rpc::Code;

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// Message `seq` of `stream` was sent on the connection `flow` (an id
    /// the sender picks per connection and puts in its messages).
    Sent {
        /// The sending connection.
        flow: u64,
        /// The stream's name (a message type, a channel).
        stream: String,
        /// Its guarantee.
        delivery: Delivery,
        /// The message's number within its stream and flow.
        seq: u64,
    },
    /// Message `seq` of `stream` on `flow` was delivered to the receiver;
    /// `intact` says whether its contents were what the sender wrote.
    Delivered {
        /// The sending connection.
        flow: u64,
        /// The stream's name.
        stream: String,
        /// Its guarantee.
        delivery: Delivery,
        /// The message's number.
        seq: u64,
        /// Whether it arrived uncorrupted.
        intact: bool,
    },
    /// The sending connection `flow` started on `host`: if that host
    /// crashes, the flow counts as failed.
    FlowStarted {
        /// The connection.
        flow: u64,
        /// The host it runs on.
        host: String,
    },
    /// A host crashed (recorded by the simulation).
    HostCrashed(String),
    /// The sending connection `flow` ended: `clean` when it closed
    /// gracefully (everything sent must then arrive), not when it failed
    /// (a crash or a lost connection: what was in flight may be lost).
    FlowEnded {
        /// The connection.
        flow: u64,
        /// Whether it closed gracefully.
        clean: bool,
    },
    /// Call `call` started, with `deadline` to run.
    CallStarted {
        /// The call's id (unique in the run).
        call: u64,
        /// Its timeout.
        deadline: Option<Duration>,
        /// The caller's host, when known: a call whose caller crashed
        /// never ends, and that is no hang.
        host: Option<String>,
    },
    /// Call `call` ended.
    CallEnded {
        /// The call's id.
        call: u64,
        /// How.
        outcome: CallOutcome,
    },
    /// A write of `value` to `key`, acknowledged by the service or not.
    Wrote {
        /// The key.
        key: String,
        /// The value written.
        value: String,
        /// Whether the service acknowledged it.
        acked: bool,
    },
    /// A read of `key` returned `value` (`None`: absent).
    Read {
        /// The key.
        key: String,
        /// What came back.
        value: Option<String>,
    },
    /// A sample of a quantity that must stay within `bound` (a queue's
    /// depth, bytes held).
    Gauge {
        /// The quantity's name.
        name: String,
        /// Its value now.
        value: u64,
        /// The most it may be.
        bound: u64,
    },
    /// A counter's value, added to the run's coverage (retransmits,
    /// duplicates dropped, reconnects): the proof a recovery path ran.
    Counter {
        /// The counter's name.
        name: String,
        /// How much to add.
        value: u64,
    },
    /// A schedule event the simulation applied.
    Fault(String),
    /// Anything else worth having in the trace.
    Note(String),
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// It got a response; `own` says whether the response was its own (the
    /// workload checks, e.g., that an echo carries the call's id).
    Answered {
        /// Whether the response belonged to this call.
        own: bool,
    },
    /// It failed with a status of this code.
    Failed(Code),
}

/// One entry of the log: when, where, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Simulated time since the start.
    pub at: Duration,
    /// What happened.
    pub what: Observation,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>10.3}s  {:?}", self.at.as_secs_f64(), self.what)
    }
}

/// The log of one run. Cheap to clone; clones write to the same log.
#[derive(Debug, Clone, Default)]
pub struct History {
    log: Arc<Mutex<Log>>,
}

/// The entries, and the ids handed out so far (kept under the same lock,
/// so two hosts starting flows at once never get the same id).
#[derive(Debug, Default)]
struct Log {
    entries: Vec<Entry>,
    flows: u64,
    calls: u64,
}

impl History {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `what` at the current simulated time (zero outside a
    /// simulation).
    pub fn record(&self, what: Observation) {
        let at = turmoil::sim_elapsed().unwrap_or_default();
        self.record_at(at, what);
    }

    /// Appends `what` at simulated time `at` (for code outside the hosts,
    /// such as the simulation applying its schedule).
    pub fn record_at(&self, at: Duration, what: Observation) {
        self.lock().entries.push(Entry { at, what });
    }

    /// Message `seq` of `stream` left on connection `flow`.
    pub fn sent(&self, flow: u64, stream: &str, delivery: Delivery, seq: u64) {
        self.record(Observation::Sent {
            flow,
            stream: stream.to_owned(),
            delivery,
            seq,
        });
    }

    /// Message `seq` of `stream` from connection `flow` arrived.
    pub fn delivered(&self, flow: u64, stream: &str, delivery: Delivery, seq: u64, intact: bool) {
        self.record(Observation::Delivered {
            flow,
            stream: stream.to_owned(),
            delivery,
            seq,
            intact,
        });
    }

    /// A new sending connection on `host`: returns its flow id (numbered in
    /// the order flows start, so the same seed gives the same ids).
    pub fn new_flow(&self, host: &str) -> u64 {
        let at = turmoil::sim_elapsed().unwrap_or_default();
        let mut log = self.lock();
        log.flows += 1;
        let flow = log.flows;
        log.entries.push(Entry {
            at,
            what: Observation::FlowStarted {
                flow,
                host: host.to_owned(),
            },
        });
        flow
    }

    /// Connection `flow` ended, gracefully or not.
    pub fn flow_ended(&self, flow: u64, clean: bool) {
        self.record(Observation::FlowEnded { flow, clean });
    }

    /// Starts recording a call with `deadline`; the returned record ends
    /// it.
    pub fn call(&self, deadline: Option<Duration>) -> CallRecord {
        self.call_on(None, deadline)
    }

    /// Like [`call`](Self::call), for a caller on `host`.
    pub fn call_on(&self, host: Option<&str>, deadline: Option<Duration>) -> CallRecord {
        let at = turmoil::sim_elapsed().unwrap_or_default();
        let mut log = self.lock();
        let call = log.calls;
        log.calls += 1;
        log.entries.push(Entry {
            at,
            what: Observation::CallStarted {
                call,
                deadline,
                host: host.map(str::to_owned),
            },
        });
        drop(log);
        CallRecord {
            history: self.clone(),
            call,
        }
    }

    /// A write of `value` to `key`, acknowledged or not.
    pub fn wrote(&self, key: &str, value: &str, acked: bool) {
        self.record(Observation::Wrote {
            key: key.to_owned(),
            value: value.to_owned(),
            acked,
        });
    }

    /// A read of `key` that returned `value`.
    pub fn read(&self, key: &str, value: Option<&str>) {
        self.record(Observation::Read {
            key: key.to_owned(),
            value: value.map(str::to_owned),
        });
    }

    /// A sample of `name`, which must stay within `bound`.
    pub fn gauge(&self, name: &str, value: u64, bound: u64) {
        self.record(Observation::Gauge {
            name: name.to_owned(),
            value,
            bound,
        });
    }

    /// Adds `value` to the coverage counter `name`.
    pub fn count(&self, name: &str, value: u64) {
        self.record(Observation::Counter {
            name: name.to_owned(),
            value,
        });
    }

    /// A note in the trace.
    pub fn note(&self, text: impl Into<String>) {
        self.record(Observation::Note(text.into()));
    }

    /// Everything recorded so far, in order.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().entries.clone()
    }

    /// The sum of every `Counter` entry named `name`.
    pub fn counter(&self, name: &str) -> u64 {
        counter(&self.lock().entries, name)
    }

    /// A 64-bit fingerprint of the whole log (see [`trace_hash`]): the
    /// same seed must give the same hash on every run.
    pub fn trace_hash(&self) -> u64 {
        trace_hash(&self.lock().entries)
    }
}

/// The sum of every `Counter` entry named `name` in `entries`.
pub fn counter(entries: &[Entry], name: &str) -> u64 {
    entries
        .iter()
        .filter_map(|e| match &e.what {
            Observation::Counter { name: n, value } if n == name => Some(*value),
            _ => None,
        })
        .sum()
}

/// FNV-1a (64-bit) over each entry, in order: its time to the nanosecond
/// and everything it records.
pub fn trace_hash(entries: &[Entry]) -> u64 {
    entries.iter().fold(FNV_OFFSET, |hash, entry| {
        let text = format!("{} {:?}\n", entry.at.as_nanos(), entry.what);
        extend_hash(hash, &text)
    })
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Carries an FNV-1a hash on over `text`.
pub(crate) fn extend_hash(hash: u64, text: &str) -> u64 {
    text.bytes().fold(hash, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A call in progress; records how it ended.
#[derive(Debug)]
pub struct CallRecord {
    history: History,
    call: u64,
}

impl CallRecord {
    /// The call got a response; `own` says whether it was this call's.
    pub fn answered(self, own: bool) {
        self.end(CallOutcome::Answered { own });
    }

    /// The call failed with `code`.
    pub fn failed(self, code: Code) {
        self.end(CallOutcome::Failed(code));
    }

    /// Records the outcome of a call whose response is `Ok` when it is the
    /// call's own.
    pub fn outcome<T>(
        self,
        result: &Result<T, protowright::rpc::Status>,
        own: impl FnOnce(&T) -> bool,
    ) {
        match result {
            Ok(response) => {
                let own = own(response);
                self.answered(own);
            }
            Err(status) => self.failed(status.code()),
        }
    }

    fn end(self, outcome: CallOutcome) {
        self.history.record(Observation::CallEnded {
            call: self.call,
            outcome,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_follows_every_entry_and_its_order() {
        let a = History::new();
        a.note("one");
        a.note("two");
        let b = History::new();
        b.note("one");
        b.note("two");
        assert_eq!(a.trace_hash(), b.trace_hash());
        let c = History::new();
        c.note("two");
        c.note("one");
        assert_ne!(a.trace_hash(), c.trace_hash());
    }

    #[test]
    fn calls_get_ids_in_order_and_counters_add_up() {
        let history = History::new();
        let first = history.call(None);
        let second = history.call(Some(Duration::from_millis(5)));
        second.failed(Code::Unavailable);
        first.answered(true);
        history.count("resent", 2);
        history.count("resent", 3);
        assert_eq!(history.counter("resent"), 5);
        let ended: Vec<u64> = history
            .entries()
            .iter()
            .filter_map(|e| match e.what {
                Observation::CallEnded { call, .. } => Some(call),
                _ => None,
            })
            .collect();
        assert_eq!(ended, vec![1, 0]);
    }
}
