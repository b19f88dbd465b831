//! The node's two consumers: `tern.node.<node_id>` (deliveries of
//! pre-encoded frames to local devices, kicks, requests to re-announce the
//! devices served here) and `tern.broadcast`. Both end when the node's stop
//! token is cancelled.

use std::sync::Arc;

use prost::Message as _;
use tracing::{debug, info, warn};

use tern_public::bus::{BusMessage, Subscription};
use tern_public::proto::bus::{
    logic_event, node_message, BoundDevice, Broadcast, Deliver, DevicesOnline, Kick, NodeMessage,
};
use tern_public::proto::client::KickReason;

use crate::node::NodeState;
use crate::registry::{ConnHandle, Push};

/// Consumes `tern.node.<node_id>` until the node stops.
pub(crate) async fn node_messages(node: Arc<NodeState>, mut sub: Subscription) {
    while let Some(msg) = next(&node, &mut sub).await {
        match NodeMessage::decode(msg.payload) {
            Ok(NodeMessage {
                body: Some(node_message::Body::Deliver(d)),
            }) => deliver(&node, d),
            Ok(NodeMessage {
                body: Some(node_message::Body::Kick(k)),
            }) => kick(&node, k),
            Ok(NodeMessage {
                body: Some(node_message::Body::Reannounce(_)),
            }) => {
                // Off this loop: deliveries keep flowing while it publishes.
                // Tracked, so the node's shutdown waits for it.
                node.tasks.spawn(reannounce(node.clone()));
            }
            Ok(NodeMessage { body: None }) => debug!("empty node message"),
            Err(e) => warn!(error = %e, "undecodable node message"),
        }
    }
}

/// The next message of `sub`, or `None` once the node stops.
async fn next(node: &NodeState, sub: &mut Subscription) -> Option<BusMessage> {
    tokio::select! {
        biased;
        () = node.stop.cancelled() => None,
        msg = sub.next() => msg,
    }
}

fn deliver(node: &NodeState, d: Deliver) {
    for item in d.items {
        for device_id in item.device_ids {
            // A device that went offline meanwhile syncs on reconnect.
            let Some(conn) = node.registry.device(device_id) else {
                continue;
            };
            // Bytes clones share one buffer: the frame is encoded once.
            if conn.push(item.frame.clone()) == Push::SlowConsumer {
                info!(
                    device_id,
                    conn_id = conn.conn_id,
                    "slow consumer: write queue full, closing"
                );
            }
        }
    }
}

/// Consumes `tern.broadcast`: one pre-encoded frame for every signed-in
/// connection of this node.
pub(crate) async fn broadcasts(node: Arc<NodeState>, mut sub: Subscription) {
    while let Some(msg) = next(&node, &mut sub).await {
        let b = match Broadcast::decode(msg.payload) {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "undecodable broadcast");
                continue;
            }
        };
        let handles = node.registry.bound_handles();
        if b.speed == 0 {
            for conn in handles {
                let _ = conn.push(b.frame.clone());
            }
        } else {
            // Paced broadcasts run one at a time, in order; later ones wait.
            tokio::select! {
                biased;
                () = node.stop.cancelled() => return,
                () = push_paced(&handles, &b.frame, b.speed) => {}
            }
        }
    }
}

/// Slices of a paced broadcast per second: smooth enough, few wake-ups.
const PACE_TICKS_PER_SEC: u32 = 10;

/// Pushes `frame` to `handles` at about `per_sec` connections a second.
async fn push_paced(handles: &[ConnHandle], frame: &bytes::Bytes, per_sec: u32) {
    let slice = (per_sec / PACE_TICKS_PER_SEC).max(1) as usize;
    let tick = std::time::Duration::from_secs(1) * slice as u32 / per_sec;
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for chunk in handles.chunks(slice) {
        ticks.tick().await;
        for conn in chunk {
            let _ = conn.push(frame.clone());
        }
    }
}

/// Devices per DevicesOnline event.
const REANNOUNCE_CHUNK: usize = 1000;

/// Tells logic every device this node serves, so it can restore presence
/// it lost (swept during an outage, or a restart of in-memory presence).
async fn reannounce(node: Arc<NodeState>) {
    let bound = node.registry.bound();
    info!(
        devices = bound.len(),
        "logic asked for our devices; re-announcing"
    );
    for chunk in bound.chunks(REANNOUNCE_CHUNK) {
        let devices = chunk
            .iter()
            .map(|&(conn_id, user_id, device_id)| BoundDevice {
                conn_id,
                user_id,
                device_id,
            })
            .collect();
        if node.stop.is_cancelled() {
            return;
        }
        node.logic
            .publish(logic_event::Event::DevicesOnline(DevicesOnline {
                node_id: node.logic.node_id().to_owned(),
                devices,
            }))
            .await;
    }
}

fn kick(node: &NodeState, k: Kick) {
    let Some(conn) = node.registry.device(k.device_id) else {
        return;
    };
    // conn_id 0 kicks whatever connection serves the device.
    if k.conn_id != 0 && conn.conn_id != k.conn_id {
        return;
    }
    let reason = KickReason::try_from(k.reason).unwrap_or(KickReason::Unspecified);
    info!(
        device_id = k.device_id,
        conn_id = conn.conn_id,
        ?reason,
        "kick"
    );
    conn.kick(reason);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_paced_broadcast_reaches_everyone_at_the_given_speed() {
        let handles: Vec<ConnHandle> = (0..25).map(|i| ConnHandle::new(i, 4)).collect();
        let t = tokio::time::Instant::now();
        push_paced(&handles, &bytes::Bytes::from_static(b"f"), 10).await;
        // 25 connections at 10/s: the first right away, the last after 2.4 s.
        assert_eq!(t.elapsed(), std::time::Duration::from_millis(2400));
        for h in &handles {
            assert_eq!(h.take().unwrap(), bytes::Bytes::from_static(b"f"));
        }
    }
}
