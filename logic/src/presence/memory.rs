//! In-memory presence for standalone mode.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;

use super::{Location, OnlineDevice, OnlineStats, Presence, PresenceError};

/// Presence in a map: user -> device -> location.
#[derive(Default)]
pub struct MemoryPresence {
    users: Mutex<HashMap<u64, HashMap<u64, Location>>>,
    /// Node id -> end of its liveness.
    nodes: Mutex<HashMap<String, Instant>>,
    rooms: Mutex<HashMap<String, RoomShares>>,
}

/// One room's members per node: node id -> (members, valid until).
type RoomShares = HashMap<String, (u32, Instant)>;

impl MemoryPresence {
    fn room_totals(&self) -> Vec<(String, u64)> {
        let mut rooms = self.rooms.lock().expect("presence lock poisoned");
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

impl MemoryPresence {
    pub fn new() -> MemoryPresence {
        MemoryPresence::default()
    }
}

#[async_trait]
impl Presence for MemoryPresence {
    async fn online_stats(&self) -> Result<OnlineStats, PresenceError> {
        let users = self.users.lock().expect("presence lock poisoned");
        let mut nodes: std::collections::BTreeMap<String, u64> = Default::default();
        for at in users.values().flat_map(|devices| devices.values()) {
            *nodes.entry(at.node_id.clone()).or_default() += 1;
        }
        Ok(OnlineStats {
            nodes: nodes.into_iter().collect(),
            users: users.values().filter(|d| !d.is_empty()).count() as u64,
        })
    }

    async fn online(
        &self,
        user_id: u64,
        device_id: u64,
        at: Location,
    ) -> Result<Option<Location>, PresenceError> {
        let mut users = self.users.lock().expect("presence lock poisoned");
        let old = users
            .entry(user_id)
            .or_default()
            .insert(device_id, at.clone());
        Ok(old.filter(|o| *o != at))
    }

    async fn offline(
        &self,
        user_id: u64,
        device_id: u64,
        at: &Location,
    ) -> Result<bool, PresenceError> {
        let mut users = self.users.lock().expect("presence lock poisoned");
        let Some(devices) = users.get_mut(&user_id) else {
            return Ok(false);
        };
        if devices.get(&device_id) != Some(at) {
            return Ok(false);
        }
        devices.remove(&device_id);
        if devices.is_empty() {
            users.remove(&user_id);
        }
        Ok(true)
    }

    async fn locate(&self, user_ids: &[u64]) -> Result<Vec<OnlineDevice>, PresenceError> {
        let users = self.users.lock().expect("presence lock poisoned");
        let mut out = Vec::new();
        for &user_id in user_ids {
            if let Some(devices) = users.get(&user_id) {
                out.extend(devices.iter().map(|(&device_id, at)| OnlineDevice {
                    user_id,
                    device_id,
                    at: at.clone(),
                }));
            }
        }
        Ok(out)
    }

    async fn node_down(&self, node_id: &str) -> Result<usize, PresenceError> {
        let mut users = self.users.lock().expect("presence lock poisoned");
        let mut n = 0;
        users.retain(|_, devices| {
            let before = devices.len();
            devices.retain(|_, at| at.node_id != node_id);
            n += before - devices.len();
            !devices.is_empty()
        });
        Ok(n)
    }

    async fn restore(
        &self,
        user_id: u64,
        device_id: u64,
        at: Location,
    ) -> Result<bool, PresenceError> {
        let mut users = self.users.lock().expect("presence lock poisoned");
        let devices = users.entry(user_id).or_default();
        if devices.contains_key(&device_id) {
            return Ok(false);
        }
        devices.insert(device_id, at);
        Ok(true)
    }

    async fn room_counts(
        &self,
        node_id: &str,
        counts: &[(String, u32)],
        ttl: Duration,
    ) -> Result<(), PresenceError> {
        let mut rooms = self.rooms.lock().expect("presence lock poisoned");
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

    async fn room_online(&self, room_id: &str) -> Result<u64, PresenceError> {
        Ok(self
            .room_totals()
            .into_iter()
            .find(|(r, _)| r == room_id)
            .map_or(0, |(_, n)| n))
    }

    async fn top_rooms(&self, limit: usize) -> Result<Vec<(String, u64)>, PresenceError> {
        let mut all = self.room_totals();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(limit);
        Ok(all)
    }

    async fn node_alive(&self, node_id: &str, ttl: Duration) -> Result<bool, PresenceError> {
        let mut nodes = self.nodes.lock().expect("presence lock poisoned");
        Ok(nodes
            .insert(node_id.to_owned(), Instant::now() + ttl)
            .is_none())
    }

    async fn expired_nodes(&self) -> Result<Vec<String>, PresenceError> {
        let nodes = self.nodes.lock().expect("presence lock poisoned");
        let now = Instant::now();
        Ok(nodes
            .iter()
            .filter(|(_, &until)| until <= now)
            .map(|(n, _)| n.clone())
            .collect())
    }

    async fn forget_node(&self, node_id: &str) -> Result<(), PresenceError> {
        self.nodes
            .lock()
            .expect("presence lock poisoned")
            .remove(node_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn liveness_expires_unless_refreshed() {
        let p = MemoryPresence::new();
        assert!(p.node_alive("a", Duration::from_secs(3)).await.unwrap());
        p.node_alive("b", Duration::from_secs(3)).await.unwrap();
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!p.node_alive("b", Duration::from_secs(3)).await.unwrap());
        assert!(p.expired_nodes().await.unwrap().is_empty());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(p.expired_nodes().await.unwrap(), vec!["a".to_owned()]);
        p.forget_node("a").await.unwrap();
        assert!(p.expired_nodes().await.unwrap().is_empty());
        assert!(
            p.node_alive("a", Duration::from_secs(3)).await.unwrap(),
            "a forgotten node is new again"
        );
    }
}
