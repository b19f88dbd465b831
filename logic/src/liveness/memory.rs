//! Node liveness in memory, for standalone mode.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{LivenessError, NodeLiveness};

/// Node id -> end of its liveness.
#[derive(Default)]
pub struct MemoryLiveness {
    nodes: Mutex<HashMap<String, Instant>>,
}

impl MemoryLiveness {
    /// No node watched yet.
    pub fn new() -> MemoryLiveness {
        MemoryLiveness::default()
    }
}

#[async_trait]
impl NodeLiveness for MemoryLiveness {
    async fn node_alive(&self, node_id: &str, ttl: Duration) -> Result<bool, LivenessError> {
        let mut nodes = self.nodes.lock().expect("liveness lock poisoned");
        Ok(nodes
            .insert(node_id.to_owned(), Instant::now() + ttl)
            .is_none())
    }

    async fn expired_nodes(&self) -> Result<Vec<String>, LivenessError> {
        let nodes = self.nodes.lock().expect("liveness lock poisoned");
        let now = Instant::now();
        Ok(nodes
            .iter()
            .filter(|(_, &until)| until <= now)
            .map(|(n, _)| n.clone())
            .collect())
    }

    async fn forget_node(&self, node_id: &str) -> Result<(), LivenessError> {
        self.nodes
            .lock()
            .expect("liveness lock poisoned")
            .remove(node_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn liveness_expires_unless_refreshed() {
        let p = MemoryLiveness::new();
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
