//! Events from connect nodes: devices going offline and node lifecycle.

use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use tracing::{info, warn};

use tern_public::proto::bus::{logic_event, LogicEvent, NodeEvent, NodeState};

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
    }
}

/// Node lifecycle: liveness is recorded with a TTL of 3 announced
/// intervals; a node that stops, or starts again under the same id, has no
/// connections, so whatever presence still names it is stale.
async fn node_event(logic: &Logic, n: NodeEvent) {
    let state = NodeState::try_from(n.state).unwrap_or(NodeState::Unspecified);
    let ttl = liveness_ttl(n.alive_interval_ms);
    if matches!(state, NodeState::Up | NodeState::Down) {
        node_gone(logic, &n.node_id, state).await;
    }
    let result = match state {
        NodeState::Up | NodeState::Alive | NodeState::Draining => {
            logic.presence.node_alive(&n.node_id, ttl).await
        }
        NodeState::Down => logic.presence.forget_node(&n.node_id).await,
        NodeState::Unspecified => Ok(()),
    };
    if let Err(e) = result {
        warn!(node = %n.node_id, error = %e, "recording node liveness failed");
    }
}

fn liveness_ttl(alive_interval_ms: u32) -> Duration {
    let interval = match alive_interval_ms {
        0 => DEFAULT_ALIVE_INTERVAL,
        ms => Duration::from_millis(ms.into()),
    };
    interval * 3
}

async fn node_gone(logic: &Logic, node_id: &str, why: impl std::fmt::Debug) {
    match logic.presence.node_down(node_id).await {
        Ok(0) => {}
        Ok(n) => info!(node = %node_id, ?why, devices = n, "cleared presence of node"),
        Err(e) => warn!(node = %node_id, error = %e, "presence node cleanup failed"),
    }
}

/// Clears the presence of nodes whose liveness expired (killed, or cut
/// off), every `node_sweep_interval`, until `stop` resolves. Every logic
/// node sweeps; clearing is idempotent.
pub(crate) async fn sweep_dead_nodes(logic: &Logic, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(logic.cfg.node_sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stop => return,
        }
        let dead = match logic.presence.expired_nodes().await {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "listing node liveness failed");
                continue;
            }
        };
        for node in dead {
            node_gone(logic, &node, "liveness expired").await;
            if let Err(e) = logic.presence.forget_node(&node).await {
                warn!(node = %node, error = %e, "forgetting a dead node failed");
            }
        }
    }
}

#[cfg(test)]
mod tests;
