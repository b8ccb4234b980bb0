//! Which failed calls are retried, and how many retries a client may spend.
//!
//! Only calls to methods the schema marks idempotent are retried, and only
//! after `UNAVAILABLE` made on this side (the connection failed, or was
//! closing), never after the callee answered — not even when its answer
//! was `UNAVAILABLE` — and never after a failure of the call's own making
//! (an oversized request is `RESOURCE_EXHAUSTED`). A token budget bounds retries across the
//! client, so a sick server is not hammered by every caller at once: each
//! retry spends a token, each success earns back a tenth of one.

use std::sync::Mutex;
use std::sync::PoisonError;

use crate::rpc::{Code, Status};
use crate::schema::Method;

/// How calls are retried.
///
/// Defaults: at most 2 retries per call, a budget of 10 retries that
/// successes refill at a tenth of a retry each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries of one call after its first attempt.
    pub max_retries: u32,
    /// Retries the client may make before successes refill the budget.
    pub budget: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            budget: 10,
        }
    }
}

/// Tokens are counted in tenths so a success can refill a tenth of a retry.
const TENTHS: u32 = 10;

/// The client-wide retry budget.
#[derive(Debug)]
pub(super) struct Budget {
    policy: RetryPolicy,
    tenths: Mutex<u32>,
}

impl Budget {
    pub(super) fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            tenths: Mutex::new(policy.budget.saturating_mul(TENTHS)),
        }
    }

    /// Whether `method`, failed with `status` on attempt `retries + 1`, may
    /// be tried again; spends a token when it may.
    pub(super) fn allow_retry(&self, method: &Method, status: &Status, retries: u32) -> bool {
        if !method.idempotent || status.code() != Code::Unavailable || status.is_from_peer() {
            return false;
        }
        if retries >= self.policy.max_retries {
            return false;
        }
        let mut tenths = self.tenths.lock().unwrap_or_else(PoisonError::into_inner);
        if *tenths < TENTHS {
            return false;
        }
        *tenths -= TENTHS;
        true
    }

    /// A call succeeded: earn back a tenth of a retry.
    pub(super) fn on_success(&self) {
        let mut tenths = self.tenths.lock().unwrap_or_else(PoisonError::into_inner);
        *tenths = (*tenths + 1).min(self.policy.budget.saturating_mul(TENTHS));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: Method = Method {
        id: 1,
        path: "/t.S/Read",
        idempotent: true,
    };
    const WRITE: Method = Method {
        id: 2,
        path: "/t.S/Write",
        idempotent: false,
    };

    fn unavailable() -> Status {
        Status::unavailable("connection lost")
    }

    #[test]
    fn a_non_idempotent_method_is_never_retried() {
        let budget = Budget::new(RetryPolicy::default());
        assert!(!budget.allow_retry(&WRITE, &unavailable(), 0));
    }

    #[test]
    fn only_unavailable_is_retried() {
        let budget = Budget::new(RetryPolicy::default());
        assert!(!budget.allow_retry(&READ, &Status::deadline_exceeded("late"), 0));
        assert!(!budget.allow_retry(&READ, &Status::internal("bug"), 0));
        assert!(budget.allow_retry(&READ, &unavailable(), 0));
    }

    #[test]
    fn an_unavailable_the_callee_answered_is_not_retried() {
        let budget = Budget::new(RetryPolicy::default());
        let answered =
            Status::from_wire(Status::unavailable("the handler is overloaded").to_wire());
        assert!(!budget.allow_retry(&READ, &answered, 0));
        assert!(budget.allow_retry(&READ, &unavailable(), 0));
    }

    #[test]
    fn one_call_is_retried_at_most_max_retries_times() {
        let budget = Budget::new(RetryPolicy {
            max_retries: 2,
            budget: 100,
        });
        assert!(budget.allow_retry(&READ, &unavailable(), 0));
        assert!(budget.allow_retry(&READ, &unavailable(), 1));
        assert!(!budget.allow_retry(&READ, &unavailable(), 2));
    }

    #[test]
    fn the_budget_runs_out_and_successes_refill_it() {
        let budget = Budget::new(RetryPolicy {
            max_retries: 5,
            budget: 2,
        });
        assert!(budget.allow_retry(&READ, &unavailable(), 0));
        assert!(budget.allow_retry(&READ, &unavailable(), 0));
        assert!(
            !budget.allow_retry(&READ, &unavailable(), 0),
            "budget spent"
        );
        for _ in 0..10 {
            budget.on_success();
        }
        assert!(
            budget.allow_retry(&READ, &unavailable(), 0),
            "ten successes earn one retry"
        );
        assert!(!budget.allow_retry(&READ, &unavailable(), 0));
    }
}
