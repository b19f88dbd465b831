//! Consumes `tern.node.<node_id>`: deliveries of pre-encoded frames to local
//! devices, and kicks.

use std::sync::Arc;

use prost::Message as _;
use tracing::{debug, info, warn};

use tern_public::bus::Subscription;
use tern_public::proto::bus::{
    logic_event, node_message, BoundDevice, Broadcast, Deliver, DevicesOnline, Kick, NodeMessage,
};
use tern_public::proto::client::KickReason;

use crate::registry::Push;
use crate::server::Shared;

pub(crate) async fn run(shared: Arc<Shared>, mut sub: Subscription) {
    while let Some(msg) = sub.next().await {
        match NodeMessage::decode(msg.payload) {
            Ok(NodeMessage {
                body: Some(node_message::Body::Deliver(d)),
            }) => deliver(&shared, d),
            Ok(NodeMessage {
                body: Some(node_message::Body::Kick(k)),
            }) => kick(&shared, k),
            Ok(NodeMessage {
                body: Some(node_message::Body::Reannounce(_)),
            }) => {
                // Off this loop: deliveries keep flowing while it publishes.
                tokio::spawn(reannounce(shared.clone()));
            }
            Ok(NodeMessage { body: None }) => debug!("empty node message"),
            Err(e) => warn!(error = %e, "undecodable node message"),
        }
    }
}

fn deliver(shared: &Shared, d: Deliver) {
    for item in d.items {
        for device_id in item.device_ids {
            // A device that went offline meanwhile syncs on reconnect.
            let Some(conn) = shared.registry.device(device_id) else {
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
pub(crate) async fn broadcasts(shared: Arc<Shared>, mut sub: Subscription) {
    while let Some(msg) = sub.next().await {
        let b = match Broadcast::decode(msg.payload) {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "undecodable broadcast");
                continue;
            }
        };
        for conn in shared.registry.bound_handles() {
            let _ = conn.push(b.frame.clone());
        }
    }
}

/// Devices per DevicesOnline event.
const REANNOUNCE_CHUNK: usize = 1000;

/// Tells logic every device this node serves, so it can restore presence
/// it lost (swept during an outage, or a restart of in-memory presence).
async fn reannounce(shared: Arc<Shared>) {
    let bound = shared.registry.bound();
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
        shared
            .publish_event(logic_event::Event::DevicesOnline(DevicesOnline {
                node_id: shared.cfg.node_id.clone(),
                devices,
            }))
            .await;
    }
}

fn kick(shared: &Shared, k: Kick) {
    let Some(conn) = shared.registry.device(k.device_id) else {
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
