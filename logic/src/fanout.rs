//! Pushes after commit: for each committed batch, one presence lookup for all
//! recipients, one PUSH frame encoded per (message, recipient), and one
//! Deliver per connect node. Pushes are best effort; the list is the truth.

use std::collections::HashMap;
use std::sync::Arc;

use prost::Message as _;
use tokio::sync::mpsc;
use tracing::warn;

use tern_public::bus::{Bus, Subjects};
use tern_public::proto::bus::{node_message, Deliver, DeliverItem, NodeMessage};
use tern_public::{Frame, FrameType};

use crate::messages::new_message;
use crate::presence::{OnlineDevice, Presence};
use crate::store::NewMessage;

/// Batches waiting for fan-out before the committer waits.
const QUEUE: usize = 1024;

/// A committed message and the seq of each of its recipients.
pub(crate) struct Committed {
    pub msg: Arc<NewMessage>,
    pub seqs: Vec<u64>,
}

/// Feeds committed batches to the fan-out task, in commit order.
#[derive(Clone)]
pub(crate) struct FanoutTx(mpsc::Sender<Vec<Committed>>);

impl FanoutTx {
    pub(crate) async fn push(&self, batch: Vec<Committed>) {
        if self.0.send(batch).await.is_err() {
            warn!("fan-out task gone; pushes skipped (devices will sync)");
        }
    }
}

pub(crate) fn start(
    presence: Arc<dyn Presence>,
    bus: Arc<dyn Bus>,
    subjects: Subjects,
) -> FanoutTx {
    let (tx, mut rx) = mpsc::channel::<Vec<Committed>>(QUEUE);
    tokio::spawn(async move {
        // One task, so pushes leave in commit order and a device rarely sees a gap.
        while let Some(batch) = rx.recv().await {
            deliver(&*presence, &*bus, &subjects, batch).await;
        }
    });
    FanoutTx(tx)
}

async fn deliver(
    presence: &dyn Presence,
    bus: &dyn Bus,
    subjects: &Subjects,
    batch: Vec<Committed>,
) {
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
            return;
        }
    };
    if online.is_empty() {
        return;
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
    for (node, items) in per_node {
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
