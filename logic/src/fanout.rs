//! Pushes after commit: for each committed batch, one presence lookup for all
//! recipients, one PUSH frame encoded per (message, recipient), and one
//! Deliver per connect node. Pushes are best effort; the list is the truth.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::histogram::Histogram;
use prost::Message as _;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use tern_public::bus::{Bus, Subjects};
use tern_public::proto::bus::{node_message, Deliver, DeliverItem, NodeMessage};
use tern_public::{Frame, FrameType};

use crate::metrics::LogicMetrics;
use crate::presence::{OnlineDevice, Presence};
use crate::push::Wake;
use crate::store::NewMessage;
use crate::tasks::Stage;
use crate::wire::new_message;

/// Committed batches waiting for fan-out; past that, pushes are dropped
/// (devices sync), so slow presence or bus never stalls the committer.
const QUEUE: usize = 1024;

/// Room left in a bus message for the Deliver envelope around its items.
const ENVELOPE: usize = 4096;

/// A committed message and the seq of each of its recipients.
pub(crate) struct Committed {
    pub msg: Arc<NewMessage>,
    pub seqs: Vec<u64>,
}

/// Feeds committed batches (with their commit time) to the fan-out task,
/// in commit order.
#[derive(Clone)]
pub(crate) struct FanoutTx {
    tx: mpsc::Sender<(Instant, Vec<Committed>)>,
    metrics: LogicMetrics,
    /// Offline push, when configured: told whose lists grew.
    notify: Option<Arc<Wake>>,
}

impl FanoutTx {
    /// Queues a committed batch for pushing, without waiting: the lists
    /// are the truth, so a full queue costs pushes, never a commit.
    pub(crate) async fn push(&self, batch: Vec<Committed>) {
        if let Some(notify) = &self.notify {
            notify.users(
                batch
                    .iter()
                    .flat_map(|c| c.msg.recipients.iter().map(|r| r.user_id)),
            );
        }
        match self.tx.try_send((Instant::now(), batch)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full((_, b))) => {
                self.metrics.pushes_dropped.inc();
                warn!(
                    messages = b.len(),
                    "fan-out queue full; pushes dropped (devices will sync)"
                )
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                warn!("fan-out task gone; pushes skipped (devices will sync)")
            }
        }
    }
}

/// Starts the fan-out task on `stage`. When the stage stops, the task
/// takes no new batches and pushes those already queued for at most
/// `DRAIN_WAIT`; what is left then is dropped (devices sync).
pub(crate) fn start(
    presence: Arc<dyn Presence>,
    bus: Arc<dyn Bus>,
    subjects: Subjects,
    metrics: LogicMetrics,
    notify: Option<Arc<Wake>>,
    stage: &Stage,
) -> FanoutTx {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<Committed>)>(QUEUE);
    let commit_push = metrics.commit_push_seconds.clone();
    stage.spawn(|stop| async move {
        let pushing = Pushing {
            presence,
            bus,
            subjects,
            commit_push,
        };
        pushing.run(rx, stop).await;
    });
    FanoutTx {
        tx,
        metrics,
        notify,
    }
}

/// How long a stopping fan-out keeps pushing what it had queued.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

/// What the fan-out task pushes with.
struct Pushing {
    presence: Arc<dyn Presence>,
    bus: Arc<dyn Bus>,
    subjects: Subjects,
    commit_push: Histogram,
}

impl Pushing {
    async fn run(
        &self,
        mut rx: mpsc::Receiver<(Instant, Vec<Committed>)>,
        stop: CancellationToken,
    ) {
        // One task, so pushes leave in commit order and a device rarely sees a gap.
        loop {
            tokio::select! {
                next = rx.recv() => match next {
                    Some(batch) => self.push(batch).await,
                    None => return,
                },
                () = stop.cancelled() => break,
            }
        }
        rx.close();
        let drained = async {
            while let Some(batch) = rx.recv().await {
                self.push(batch).await;
            }
        };
        if tokio::time::timeout(DRAIN_WAIT, drained).await.is_err() {
            let mut left = 0;
            while rx.try_recv().is_ok() {
                left += 1;
            }
            warn!(
                batches = left,
                "fan-out stopped after {DRAIN_WAIT:?}; pushes dropped (devices will sync)"
            );
        }
    }

    async fn push(&self, (committed_at, batch): (Instant, Vec<Committed>)) {
        if deliver(&*self.presence, &*self.bus, &self.subjects, batch).await {
            self.commit_push
                .observe(committed_at.elapsed().as_secs_f64());
        }
    }
}

/// Pushes a batch to the nodes of its online recipients; true if any push
/// was published.
async fn deliver(
    presence: &dyn Presence,
    bus: &dyn Bus,
    subjects: &Subjects,
    batch: Vec<Committed>,
) -> bool {
    let mut users: Vec<u64> = batch
        .iter()
        .flat_map(|c| c.msg.recipients.iter().map(|r| r.user_id))
        .collect();
    users.sort_unstable();
    users.dedup();
    let online = match presence.locate(&users).await {
        Ok(o) => o,
        Err(e) => {
            warn!(error = %e, "presence lookup failed; pushes skipped (devices will sync)");
            return false;
        }
    };
    if online.is_empty() {
        return false;
    }
    let mut by_user: HashMap<u64, Vec<&OnlineDevice>> = HashMap::new();
    for d in &online {
        by_user.entry(d.user_id).or_default().push(d);
    }
    let mut per_node: HashMap<&str, Vec<DeliverItem>> = HashMap::new();
    for c in &batch {
        for (r, &seq) in c.msg.recipients.iter().zip(&c.seqs) {
            let Some(devices) = by_user.get(&r.user_id) else {
                continue;
            };
            // A sending device has its seq from the SEND reply.
            let targets = devices.iter().filter(|d| {
                c.msg.push_to_sender_device
                    || !(d.user_id == c.msg.sender_id && d.device_id == c.msg.sender_device_id)
            });
            let mut frame = None;
            let mut nodes: HashMap<&str, Vec<u64>> = HashMap::new();
            for d in targets {
                nodes
                    .entry(d.at.node_id.as_str())
                    .or_default()
                    .push(d.device_id);
            }
            for (node, device_ids) in nodes {
                let frame = frame
                    .get_or_insert_with(|| {
                        let msg = new_message(&c.msg, seq, r.conv_id);
                        Frame::from_message(FrameType::Push.as_u16(), &msg).to_bytes()
                    })
                    .clone();
                per_node
                    .entry(node)
                    .or_default()
                    .push(DeliverItem { device_ids, frame });
            }
        }
    }
    let budget = bus.max_payload().saturating_sub(ENVELOPE).max(1);
    let any = !per_node.is_empty();
    for (node, items) in per_node {
        for items in split_by_size(items, budget) {
            let msg = NodeMessage {
                body: Some(node_message::Body::Deliver(Deliver { items })),
            };
            if let Err(e) = bus
                .publish(&subjects.node(node), msg.encode_to_vec().into())
                .await
            {
                warn!(error = %e, node, "deliver failed; those devices will sync");
            }
        }
    }
    any
}

/// Splits deliveries into messages of at most `budget` bytes each (a
/// group message carries one frame per member, which adds up). An item
/// larger than the budget on its own travels alone; start-up checks keep
/// frames under the bus limit.
fn split_by_size(items: Vec<DeliverItem>, budget: usize) -> Vec<Vec<DeliverItem>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut size = 0;
    for item in items {
        let len = item.encoded_len() + 8;
        if !current.is_empty() && size + len > budget {
            out.push(std::mem::take(&mut current));
            size = 0;
        }
        size += len;
        current.push(item);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_are_split_under_the_bus_limit_and_nothing_is_left_out() {
        let items: Vec<DeliverItem> = (0..40u64)
            .map(|i| DeliverItem {
                device_ids: vec![i],
                frame: vec![0u8; 60_000].into(),
            })
            .collect();
        let parts = split_by_size(items, 1024 * 1024 - ENVELOPE);
        assert!(parts.len() >= 3, "{} parts", parts.len());
        for p in &parts {
            let msg = NodeMessage {
                body: Some(node_message::Body::Deliver(Deliver { items: p.clone() })),
            };
            assert!(msg.encoded_len() <= 1024 * 1024, "{}", msg.encoded_len());
        }
        let ids: Vec<u64> = parts
            .iter()
            .flatten()
            .flat_map(|i| i.device_ids.clone())
            .collect();
        assert_eq!(ids, (0..40).collect::<Vec<_>>());
    }
}
