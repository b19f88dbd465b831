//! What a connect node tells logic while it runs: that it is alive, and
//! how many local members each of its rooms has.

use std::collections::HashSet;
use std::sync::Arc;

use tern_public::proto::bus::{logic_event, NodeState as Lifecycle, RoomCount, RoomCounts};

use crate::node::NodeState;

/// Announces the node alive every interval, with its room counts, until
/// the node stops.
pub(super) async fn announce_alive(node: Arc<NodeState>) {
    let stop = node.stop.clone();
    stop.run_until_cancelled(async move {
        let mut tick = tokio::time::interval(node.cfg.alive_interval);
        tick.tick().await;
        let mut reported = HashSet::new();
        loop {
            tick.tick().await;
            let connections = node.registry.connection_count();
            node.logic.announce(Lifecycle::Alive, connections).await;
            reported = report_rooms(&node, reported).await;
        }
    })
    .await;
}

/// Rooms per RoomCounts event: well under the bus message limit.
const ROOM_COUNTS_CHUNK: usize = 2000;

/// Reports the local member count of every room, and 0 for rooms that
/// emptied since the last report; returns the rooms reported non-zero.
async fn report_rooms(node: &NodeState, before: HashSet<String>) -> HashSet<String> {
    let counts = node.rooms.counts();
    let now: HashSet<String> = counts.iter().map(|(r, _)| r.clone()).collect();
    let mut rooms: Vec<RoomCount> = counts
        .into_iter()
        .map(|(room_id, n)| RoomCount {
            room_id,
            online: n.min(u32::MAX as usize) as u32,
        })
        .collect();
    rooms.extend(before.difference(&now).map(|r| RoomCount {
        room_id: r.clone(),
        online: 0,
    }));
    let ttl_ms = (node.cfg.alive_interval * 3)
        .as_millis()
        .min(u32::MAX as u128) as u32;
    for chunk in rooms.chunks(ROOM_COUNTS_CHUNK) {
        node.logic
            .publish(logic_event::Event::RoomCounts(RoomCounts {
                node_id: node.cfg.node_id.clone(),
                rooms: chunk.to_vec(),
                ttl_ms,
            }))
            .await;
    }
    now
}
