//! Owned background tasks. Every task a `Logic` starts belongs to a
//! [`Stage`]: it is started with the stage's cancellation token, tracked,
//! and waited for when the stage stops. Stages stop one after the other,
//! so a task can still hand work to a later stage while it finishes.

use std::future::Future;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Tasks that stop together: cancelled by one token, awaited as one.
#[derive(Default)]
pub(crate) struct Stage {
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl Stage {
    /// Starts `task(token)`; the task returns soon after the token is
    /// cancelled, having finished or answered what it holds.
    pub(crate) fn spawn<F, Fut>(&self, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task(self.stop.clone()));
    }

    /// Cancels the stage's tasks and waits until every one has returned.
    /// Calling it again waits again (at once, when they are done).
    pub(crate) async fn stop(&self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn stop_waits_for_a_task_to_finish_after_its_cancellation() {
        let stage = Stage::default();
        let finished = Arc::new(AtomicBool::new(false));
        let f = finished.clone();
        stage.spawn(|stop| async move {
            stop.cancelled().await;
            tokio::task::yield_now().await;
            f.store(true, Ordering::SeqCst);
        });
        stage.stop().await;
        assert!(finished.load(Ordering::SeqCst));
        stage.stop().await;
    }
}
