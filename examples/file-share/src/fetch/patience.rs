//! How long a download keeps trying: the retry period, counted from the
//! last progress, and which failures are worth retrying at all.

use std::time::Duration;

use protowright::rpc::{Code, Status};
use tokio::time::Instant;

use super::FetchError;

/// The longest pause between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(2);

/// What a failed call means for the download.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Worth trying again: the server is unreachable, slow or busy.
    Retry,
    /// The file changed on the server: fetch its manifest again.
    Changed(Status),
    /// Final: trying again cannot help.
    Fail(FetchError),
}

/// Sorts a failed call's status.
pub(crate) fn judge(status: Status) -> Verdict {
    match status.code() {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Cancelled => Verdict::Retry,
        Code::FailedPrecondition => Verdict::Changed(status),
        _ => Verdict::Fail(FetchError::from_status(status)),
    }
}

/// One download's retry state.
#[derive(Debug)]
pub(crate) struct Patience {
    retry_for: Duration,
    last_progress: Instant,
    failures: u32,
}

impl Patience {
    /// Keeps trying for `retry_for` after the last progress.
    pub(crate) fn new(retry_for: Duration) -> Self {
        Self {
            retry_for,
            last_progress: Instant::now(),
            failures: 0,
        }
    }

    /// A call succeeded.
    pub(crate) fn on_progress(&mut self) {
        self.last_progress = Instant::now();
        self.failures = 0;
    }

    /// Whether no call has failed since the last progress.
    pub(crate) fn is_fresh(&self) -> bool {
        self.failures == 0
    }

    /// A retryable call failed with `status`: how long to wait before
    /// trying again, or the give-up once the retry period has passed
    /// without progress.
    pub(crate) fn on_failure(&mut self, status: Status) -> Result<Duration, FetchError> {
        let waited = self.last_progress.elapsed();
        if waited >= self.retry_for {
            return Err(FetchError::GaveUp {
                waited,
                last: status,
            });
        }
        self.failures = self.failures.saturating_add(1);
        let doubling = 2u32.saturating_pow(self.failures.min(8));
        Ok((Duration::from_millis(50) * doubling).min(MAX_DELAY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_back_off_and_give_up_only_after_the_period_without_progress() {
        let mut patience = Patience::new(Duration::from_secs(10));
        let first = patience
            .on_failure(Status::unavailable("down"))
            .expect("retry");
        let second = patience
            .on_failure(Status::unavailable("down"))
            .expect("retry");
        assert!(second > first && second <= MAX_DELAY);
        tokio::time::advance(Duration::from_secs(9)).await;
        patience.on_progress();
        assert!(patience.is_fresh());
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(patience.on_failure(Status::unavailable("down")).is_ok());
        tokio::time::advance(Duration::from_secs(1)).await;
        let gave_up = patience.on_failure(Status::unavailable("still down"));
        assert!(
            matches!(gave_up, Err(FetchError::GaveUp { .. })),
            "{gave_up:?}"
        );
    }

    #[test]
    fn missing_and_refused_files_are_final_and_a_change_restarts() {
        assert!(matches!(
            judge(Status::new(Code::NotFound, "no")),
            Verdict::Fail(FetchError::NotFound(_))
        ));
        assert!(matches!(
            judge(Status::new(Code::PermissionDenied, "no")),
            Verdict::Fail(FetchError::Refused(_))
        ));
        assert!(matches!(
            judge(Status::new(Code::FailedPrecondition, "changed")),
            Verdict::Changed(_)
        ));
        assert!(matches!(judge(Status::unavailable("down")), Verdict::Retry));
    }
}
