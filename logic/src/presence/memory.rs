//! In-memory presence for standalone mode.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Location, OnlineDevice, OnlineStats, Presence, PresenceError};

/// Presence in a map: user -> device -> location.
#[derive(Default)]
pub struct MemoryPresence {
    users: Mutex<HashMap<u64, HashMap<u64, Location>>>,
}

impl MemoryPresence {
    /// Nobody online yet.
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
}
