//! Checkers: judges of a run's history that users reuse on their own
//! protocols.
//!
//! Each checker reads the [`History`](crate::History) after the run, with
//! the schedule (so it knows when faults were active and when everything
//! healed), and reports the first [`Violation`]: the simulated time, what
//! broke, and the entries around it. A run has two phases: **safety**
//! holds throughout (nothing duplicated, reordered, corrupted, answered
//! with another call's response, past its deadline, over its bound), and
//! **liveness** holds after the heal (what was pending arrives, calls
//! succeed, every unreliable message arrives on the now clean path) within
//! the run's liveness bound.
//!
//! - [`delivery`]: each delivery's guarantee, per stream and connection.
//! - [`unreliable_share`]: under steady loss, unreliable messages arrive in
//!   the share the loss allows.
//! - [`calls`]: every call ends in its own response or a typed error,
//!   never after its deadline; calls after the heal succeed.
//! - [`acked_writes`]: every acknowledged write is read back after the heal.
//! - [`bounded`]: every sampled quantity stays within its bound.
//! - [`custom`]: a checker from a closure.

mod calls;
mod delivery;
mod misc;

use std::fmt;
use std::time::Duration;

pub use calls::calls;
pub use delivery::{delivery, unreliable_share};
pub use misc::{acked_writes, bounded, custom};

use crate::history::Entry;
use crate::schedule::Schedule;

/// What a checker sees of a run.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// The log, in order.
    pub history: &'a [Entry],
    /// The schedule that was applied.
    pub schedule: &'a Schedule,
    /// How long after the heal everything pending must have resolved.
    pub liveness_bound: Duration,
    /// When the run ended (simulated time).
    pub ended: Duration,
}

impl Run<'_> {
    /// When everything healed.
    pub fn heal_at(&self) -> Duration {
        self.schedule.heal_at
    }

    /// When liveness is due: the heal plus the bound.
    pub fn settled_at(&self) -> Duration {
        self.schedule.heal_at + self.liveness_bound
    }

    /// What to add to a liveness violation when the run ended before
    /// liveness was due: then the run was too short to tell, and lengthening
    /// it is the first thing to try.
    pub fn cut_short(&self) -> String {
        if self.ended < self.settled_at() {
            format!(
                " (the run ended at {:?}, before liveness was due at {:?}: lengthen the run)",
                self.ended,
                self.settled_at()
            )
        } else {
            String::new()
        }
    }

    /// A violation at `at`, with the entries around it for context.
    pub fn violation(&self, check: &str, at: Duration, what: impl Into<String>) -> Violation {
        let index = self.history.partition_point(|e| e.at < at);
        let from = index.saturating_sub(6);
        let to = (index + 6).min(self.history.len());
        Violation {
            check: check.to_owned(),
            at,
            what: what.into(),
            context: self.history[from..to].to_vec(),
        }
    }
}

/// A broken guarantee: which checker, when, what, and the entries around.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The checker that found it.
    pub check: String,
    /// When (simulated time).
    pub at: Duration,
    /// What broke.
    pub what: String,
    /// The history entries around it.
    pub context: Vec<Entry>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} violated at {:.3}s: {}",
            self.check,
            self.at.as_secs_f64(),
            self.what
        )?;
        writeln!(f, "  around it:")?;
        for entry in &self.context {
            writeln!(f, "    {entry}")?;
        }
        Ok(())
    }
}

/// A judge of a run.
pub trait Check: Send + Sync {
    /// The checker's name, in reports.
    fn name(&self) -> &str;
    /// The first violation in `run`, if any.
    fn check(&self, run: &Run<'_>) -> Result<(), Violation>;
}
