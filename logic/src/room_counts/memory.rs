//! Room counts in memory, for standalone mode.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{RoomCounts, RoomCountsError};

/// Room id -> its members per node.
#[derive(Default)]
pub struct MemoryRoomCounts {
    rooms: Mutex<HashMap<String, RoomShares>>,
}

/// One room's members per node: node id -> (members, valid until).
type RoomShares = HashMap<String, (u32, Instant)>;

impl MemoryRoomCounts {
    /// No room counted yet.
    pub fn new() -> MemoryRoomCounts {
        MemoryRoomCounts::default()
    }

    fn room_totals(&self) -> Vec<(String, u64)> {
        let mut rooms = self.rooms.lock().expect("room counts lock poisoned");
        let now = Instant::now();
        rooms.retain(|_, nodes| {
            nodes.retain(|_, (_, until)| *until > now);
            !nodes.is_empty()
        });
        rooms
            .iter()
            .map(|(r, nodes)| (r.clone(), nodes.values().map(|(n, _)| u64::from(*n)).sum()))
            .collect()
    }
}

#[async_trait]
impl RoomCounts for MemoryRoomCounts {
    async fn record(
        &self,
        node_id: &str,
        counts: &[(String, u32)],
        ttl: Duration,
    ) -> Result<(), RoomCountsError> {
        let mut rooms = self.rooms.lock().expect("room counts lock poisoned");
        let until = Instant::now() + ttl;
        for (room, n) in counts {
            if *n == 0 {
                if let Some(nodes) = rooms.get_mut(room) {
                    nodes.remove(node_id);
                    if nodes.is_empty() {
                        rooms.remove(room);
                    }
                }
            } else {
                rooms
                    .entry(room.clone())
                    .or_default()
                    .insert(node_id.to_owned(), (*n, until));
            }
        }
        Ok(())
    }

    async fn room_online(&self, room_id: &str) -> Result<u64, RoomCountsError> {
        Ok(self
            .room_totals()
            .into_iter()
            .find(|(r, _)| r == room_id)
            .map_or(0, |(_, n)| n))
    }

    async fn top_rooms(&self, limit: usize) -> Result<Vec<(String, u64)>, RoomCountsError> {
        let mut all = self.room_totals();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(limit);
        Ok(all)
    }
}
