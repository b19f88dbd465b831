//! The one retry policy for transactions that hit a deadlock or a busy
//! database (`Store::is_retryable`): group commit and every command that
//! writes in a transaction use it, so both give up after the same number
//! of attempts and back off the same way.

use std::future::Future;
use std::time::Duration;

use crate::error::{LogicError, Result};
use crate::store::{Store, StoreError};

/// Attempts in all, the first included.
pub(crate) const MAX_ATTEMPTS: u32 = 5;

/// Wait before the second attempt; it doubles for each later one.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);

/// Whether a transaction that failed with `e` on attempt `attempt` (1 for
/// the first) should run again.
pub(crate) fn should_retry(store: &Store, e: &StoreError, attempt: u32) -> bool {
    attempt < MAX_ATTEMPTS && store.is_retryable(e)
}

/// How long to wait after failed attempt `attempt` (1 for the first):
/// doubling from `FIRST_BACKOFF`, with half of it random so that two
/// transactions that deadlocked each other do not meet again in step.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let full = FIRST_BACKOFF * 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
    let half = full / 2;
    half + half.mul_f64(rand::random::<f64>())
}

/// Runs `op` (a fresh transaction each call) until it succeeds, fails with
/// something other than a retryable store error, or runs out of attempts.
pub(crate) async fn run<T, F, Fut>(store: &Store, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Err(LogicError::Store(e)) if should_retry(store, &e, attempt) => {
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_keeps_at_least_half() {
        for attempt in 1..MAX_ATTEMPTS {
            let full = FIRST_BACKOFF * 2u32.pow(attempt - 1);
            let d = backoff(attempt);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
    }
}
