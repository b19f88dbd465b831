//! Events from connect nodes: devices going offline and node lifecycle.

use bytes::Bytes;
use prost::Message as _;
use tracing::{info, warn};

use tern_public::proto::bus::{logic_event, LogicEvent, NodeState};

use crate::presence::Location;
use crate::Logic;

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
        logic_event::Event::Node(n) => {
            let state = NodeState::try_from(n.state).unwrap_or(NodeState::Unspecified);
            // A node that (re)starts has no connections yet: whatever presence
            // still names it is stale. A node that stops has none any more.
            if matches!(state, NodeState::Up | NodeState::Down) {
                match logic.presence.node_down(&n.node_id).await {
                    Ok(n_gone) if n_gone > 0 => {
                        info!(node = %n.node_id, ?state, devices = n_gone, "cleared presence of node")
                    }
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "presence node cleanup failed"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
