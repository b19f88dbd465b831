//! Group commit: SENDs from all connections queue here and are appended many
//! per transaction. A batch starts as soon as a send arrives, takes whatever
//! else is queued, waits at most `batch_linger` for more, and commits.
//! Jobs keep their arrival order, so a connection's sends keep theirs.
//!
//! On shutdown the batcher takes no new sends and commits, and answers,
//! every one it already holds. A batch that fails is logged once, here, with
//! the number of sends it fails; each of them gets an error that is not
//! logged again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error};

use crate::error::{LogicError, Result};
use crate::fanout::{Committed, FanoutTx};
use crate::store::{Existing, MissingUsers, NewMessage, Store, StoreError};
use crate::tasks::Stage;
use crate::{retry, LogicConfig};

/// What became of a submitted message.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Stored: `seqs[i]` is the seq in the list of `recipients[i]`.
    Stored { seqs: Vec<u64> },
    /// The sender's client_msg_id was already stored: the first message.
    Duplicate(Existing),
}

struct Job {
    msg: Arc<NewMessage>,
    done: oneshot::Sender<Result<Outcome>>,
}

/// Handle to the group-commit task.
#[derive(Clone)]
pub(crate) struct Batcher {
    tx: mpsc::Sender<Job>,
    stats: Arc<Stats>,
}

/// Counts of committed work, for metrics and tests.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub batches: AtomicU64,
    pub messages: AtomicU64,
}

impl Batcher {
    /// Starts the group-commit task on `stage`.
    pub(crate) fn start(
        store: Store,
        fanout: FanoutTx,
        cfg: &LogicConfig,
        stage: &Stage,
    ) -> Batcher {
        let (tx, rx) = mpsc::channel(cfg.batch_max * 4);
        let stats = Arc::new(Stats::default());
        let committer = Committer {
            store,
            fanout,
            stats: stats.clone(),
        };
        let limits = Limits {
            jobs: cfg.batch_max,
            rows: cfg.batch_max_rows,
            linger: cfg.batch_linger,
        };
        stage.spawn(|stop| run(committer, rx, limits, stop));
        Batcher { tx, stats }
    }

    /// (batches, messages) committed so far.
    pub(crate) fn committed(&self) -> (u64, u64) {
        (
            self.stats.batches.load(Ordering::Relaxed),
            self.stats.messages.load(Ordering::Relaxed),
        )
    }

    pub(crate) async fn submit(&self, msg: Arc<NewMessage>) -> Result<Outcome> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Job { msg, done })
            .await
            .map_err(|_| LogicError::Internal("batcher stopped".into()))?;
        rx.await
            .map_err(|_| LogicError::Internal("batcher dropped a job".into()))?
    }
}

/// What a commit needs.
struct Committer {
    store: Store,
    fanout: FanoutTx,
    stats: Arc<Stats>,
}

/// How much one batch may take.
struct Limits {
    jobs: usize,
    rows: usize,
    linger: Duration,
}

async fn run(c: Committer, mut rx: mpsc::Receiver<Job>, limits: Limits, stop: CancellationToken) {
    // A job that would push a batch past the row limit starts the next one.
    let mut carry: Option<Job> = None;
    let mut stopping = false;
    loop {
        let first = match carry.take() {
            Some(job) => job,
            None => tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => job,
                    None => break,
                },
                // Closed, the queue still yields what it holds, then None.
                () = stop.cancelled(), if !stopping => {
                    stopping = true;
                    rx.close();
                    continue;
                }
            },
        };
        let mut rows = first.msg.recipients.len();
        let mut jobs = vec![first];
        let until = Instant::now() + limits.linger;
        while jobs.len() < limits.jobs && rows < limits.rows {
            let next = match rx.try_recv() {
                Ok(job) => job,
                Err(_) => match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(job)) => job,
                    _ => break,
                },
            };
            if rows + next.msg.recipients.len() > limits.rows {
                carry = Some(next);
                break;
            }
            rows += next.msg.recipients.len();
            jobs.push(next);
        }
        debug!(size = jobs.len(), rows, "committing batch");
        commit(&c, jobs).await;
    }
    debug!("batcher stopped");
}

async fn commit(c: &Committer, mut jobs: Vec<Job>) {
    let (store, fanout) = (&c.store, &c.fanout);
    let mut attempt = 1;
    loop {
        let msgs: Vec<Arc<NewMessage>> = jobs.iter().map(|j| j.msg.clone()).collect();
        match store.append(msgs).await {
            Ok(Ok(appended)) => {
                c.stats.batches.fetch_add(1, Ordering::Relaxed);
                c.stats
                    .messages
                    .fetch_add(jobs.len() as u64, Ordering::Relaxed);
                let committed: Vec<Committed> = jobs
                    .iter()
                    .zip(appended)
                    .map(|(j, a)| Committed {
                        msg: j.msg.clone(),
                        seqs: a.seqs,
                    })
                    .collect();
                for (job, c) in jobs.into_iter().zip(&committed) {
                    let _ = job.done.send(Ok(Outcome::Stored {
                        seqs: c.seqs.clone(),
                    }));
                }
                fanout.push(committed).await;
                return;
            }
            Ok(Err(MissingUsers(missing))) => {
                // A recipient was deleted after the send was checked: fail only
                // the sends that name it, commit the rest.
                let (bad, good): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| {
                    j.msg
                        .recipients
                        .iter()
                        .any(|r| missing.contains(&r.user_id))
                });
                for job in bad {
                    let _ = job.done.send(Err(LogicError::NotFound("no such user")));
                }
                if good.is_empty() {
                    return;
                }
                jobs = good;
            }
            Err(StoreError::Conflict) if jobs.len() > 1 => {
                // Some client_msg_id was stored meanwhile (a retry racing its
                // original): settle each send alone.
                for job in jobs {
                    Box::pin(commit(c, vec![job])).await;
                }
                return;
            }
            Err(StoreError::Conflict) => {
                let job = jobs.pop().expect("one job");
                let found = match &job.msg.client_msg_id {
                    Some(cmid) => store.find_by_client_msg_id(job.msg.sender_id, cmid).await,
                    None => Ok(None),
                };
                let result = match found {
                    Ok(Some(existing)) => Ok(Outcome::Duplicate(existing)),
                    Ok(None) => Err(LogicError::Internal(
                        "unique violation without a duplicate".into(),
                    )),
                    Err(e) => Err(e.into()),
                };
                let _ = job.done.send(result);
                return;
            }
            Err(e) if retry::should_retry(store, &e, attempt) => {
                debug!(error = %e, attempt, "batch commit conflicted; retrying");
                tokio::time::sleep(retry::backoff(attempt)).await;
                attempt += 1;
            }
            Err(e) => {
                // Logged here (or by the store's health, for an outage), once
                // for the batch: the sends' errors are not logged again.
                let outage = store.health().failed(&e);
                if outage.is_none() {
                    error!(error = %e, sends = jobs.len(), attempts = attempt, "batch commit failed");
                }
                for job in jobs {
                    let _ = job.done.send(Err(match outage {
                        Some(o) => LogicError::StoreDown(o),
                        None => LogicError::Logged("store unavailable"),
                    }));
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
