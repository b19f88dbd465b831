//! Group commit: SENDs from all connections queue here and are appended many
//! per transaction. A batch starts as soon as a send arrives, takes whatever
//! else is queued, waits at most `batch_linger` for more, and commits.
//! Jobs keep their arrival order, so a connection's sends keep theirs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, error, warn};

use crate::error::{LogicError, Result};
use crate::fanout::{Committed, FanoutTx};
use crate::store::{Existing, MissingUsers, NewMessage, Store, StoreError};
use crate::LogicConfig;

/// Attempts of a batch after deadlocks or a busy database.
const MAX_ATTEMPTS: u32 = 5;

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
    pub(crate) fn start(store: Store, fanout: FanoutTx, cfg: &LogicConfig) -> Batcher {
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
        tokio::spawn(run(committer, rx, limits));
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

async fn run(c: Committer, mut rx: mpsc::Receiver<Job>, limits: Limits) {
    // A job that would push a batch past the row limit starts the next one.
    let mut carry: Option<Job> = None;
    loop {
        let first = match carry.take() {
            Some(job) => job,
            None => match rx.recv().await {
                Some(job) => job,
                None => break,
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
    debug!("batcher stopped: every sender is gone");
}

async fn commit(c: &Committer, mut jobs: Vec<Job>) {
    let (store, fanout) = (&c.store, &c.fanout);
    let mut attempt = 0;
    loop {
        let msgs: Vec<&NewMessage> = jobs.iter().map(|j| &*j.msg).collect();
        match store.append(&msgs).await {
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
            Err(StoreError::Database(e))
                if attempt + 1 < MAX_ATTEMPTS && store.dialect().is_retryable(&e) =>
            {
                attempt += 1;
                warn!(error = %e, attempt, "batch commit conflicted; retrying");
                tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
            }
            Err(e) => {
                error!(error = %e, size = jobs.len(), "batch commit failed");
                for job in jobs {
                    let _ = job
                        .done
                        .send(Err(LogicError::Internal("store unavailable".into())));
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
