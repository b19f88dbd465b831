//! Events from connect nodes: devices going offline, node lifecycle and
//! liveness, room counts.

use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use tern_public::proto::bus::{
    logic_event, node_message, DevicesOnline, LogicEvent, NodeEvent, NodeMessage, NodeState,
    Reannounce,
};

use crate::presence::Location;
use crate::Logic;

/// Assumed when a node does not say how often it announces itself.
const DEFAULT_ALIVE_INTERVAL: Duration = Duration::from_secs(5);

pub(crate) async fn handle(logic: &Logic, payload: Bytes) {
    let event = match LogicEvent::decode(payload) {
        Ok(LogicEvent { event: Some(e) }) => e,
        Ok(_) => return,
        Err(e) => {
            warn!(error = %e, "undecodable logic event");
            return;
        }
    };
    match event {
        logic_event::Event::DeviceOffline(d) => {
            let at = Location {
                node_id: d.node_id,
                conn_id: d.conn_id,
            };
            if let Err(e) = logic.presence.offline(d.user_id, d.device_id, &at).await {
                warn!(error = %e, "presence offline failed");
            }
        }
        logic_event::Event::Node(n) => node_event(logic, n).await,
        logic_event::Event::DevicesOnline(d) => restore(logic, d).await,
        logic_event::Event::RoomCounts(r) => {
            let counts: Vec<(String, u32)> = r
                .rooms
                .into_iter()
                .filter(|c| tern_public::frame::valid_room_id(&c.room_id))
                .map(|c| (c.room_id, c.online))
                .collect();
            let ttl = Duration::from_millis(u64::from(r.ttl_ms).clamp(100, 3_600_000));
            if let Err(e) = logic.room_counts.record(&r.node_id, &counts, ttl).await {
                warn!(node = %r.node_id, error = %e, "recording room counts failed");
            }
        }
    }
}

/// A node's answer to Reannounce: its devices, restored where presence
/// has no entry (a newer sign-in elsewhere keeps its entry).
async fn restore(logic: &Logic, d: DevicesOnline) {
    let mut restored = 0;
    for b in d.devices {
        let at = Location {
            node_id: d.node_id.clone(),
            conn_id: b.conn_id,
        };
        match logic.presence.restore(b.user_id, b.device_id, at).await {
            Ok(true) => restored += 1,
            Ok(false) => {}
            Err(e) => {
                warn!(node = %d.node_id, error = %e, "restoring presence failed");
                return;
            }
        }
    }
    if restored > 0 {
        info!(node = %d.node_id, devices = restored, "restored presence");
    }
}

/// Node lifecycle: liveness is recorded with a TTL of 3 announced
/// intervals; a node that stops, or starts again under the same id, has no
/// connections, so whatever presence still names it is stale.
async fn node_event(logic: &Logic, n: NodeEvent) {
    let state = NodeState::try_from(n.state).unwrap_or(NodeState::Unspecified);
    let ttl = liveness_ttl(n.alive_interval_ms);
    let cleared = match state {
        NodeState::Up | NodeState::Down => node_gone(logic, &n.node_id, state).await,
        _ => true,
    };
    let watched = match state {
        NodeState::Up | NodeState::Alive | NodeState::Draining => {
            logic.liveness.node_alive(&n.node_id, ttl).await
        }
        // Still watched when clearing failed: the sweeper clears it later.
        NodeState::Down if cleared => logic.liveness.forget_node(&n.node_id).await.map(|()| false),
        NodeState::Down => Ok(false),
        NodeState::Unspecified => Ok(false),
    };
    match watched {
        // Alive, yet unknown: it was swept (it could not announce itself
        // for a while) or presence was lost. Its clients are still
        // connected; ask it who they are. Not a draining node: it is going
        // away, and its DOWN may have been handled before its DRAINING
        // (events run concurrently, on any logic node).
        Ok(true) if state == NodeState::Alive => {
            info!(node = %n.node_id, "unknown node is alive; asking it to re-announce its devices");
            let msg = NodeMessage {
                body: Some(node_message::Body::Reannounce(Reannounce {})),
            };
            let subject = logic.cfg.subjects.node(&n.node_id);
            if let Err(e) = logic
                .bus
                .publish(&subject, msg.encode_to_vec().into())
                .await
            {
                warn!(node = %n.node_id, error = %e, "could not ask for a re-announce");
            }
        }
        Ok(_) => {}
        Err(e) => warn!(node = %n.node_id, error = %e, "recording node liveness failed"),
    }
}

fn liveness_ttl(alive_interval_ms: u32) -> Duration {
    let interval = match alive_interval_ms {
        0 => DEFAULT_ALIVE_INTERVAL,
        ms => Duration::from_millis(ms.into()),
    };
    interval * 3
}

/// Clears a node's presence; false when that failed (keep watching it).
async fn node_gone(logic: &Logic, node_id: &str, why: impl std::fmt::Debug) -> bool {
    match logic.presence.node_down(node_id).await {
        Ok(0) => true,
        Ok(n) => {
            info!(node = %node_id, ?why, devices = n, "cleared presence of node");
            true
        }
        Err(e) => {
            warn!(node = %node_id, error = %e, "presence node cleanup failed");
            false
        }
    }
}

/// Clears the presence of nodes whose liveness expired (killed, or cut
/// off), every `node_sweep_interval`, until `stop` is cancelled. Every
/// logic node sweeps; clearing is idempotent.
pub(crate) async fn sweep_dead_nodes(logic: &Logic, stop: CancellationToken) {
    let mut tick = tokio::time::interval(logic.cfg.node_sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let dead = match logic.liveness.expired_nodes().await {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "listing node liveness failed");
                continue;
            }
        };
        for node in dead {
            // Forgotten only once cleared: a failed clear is retried next tick.
            if !node_gone(logic, &node, "liveness expired").await {
                continue;
            }
            if let Err(e) = logic.liveness.forget_node(&node).await {
                warn!(node = %node, error = %e, "forgetting a dead node failed");
            }
        }
    }
}

#[cfg(test)]
mod tests;
