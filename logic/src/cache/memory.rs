//! The in-memory member cache for standalone mode (one logic node).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{CacheError, Lookup, MemberCache};

/// Groups cached at most; past that the cache starts over.
const CAPACITY: usize = 10_000;

/// Member lists of one process.
#[derive(Default)]
pub struct MemoryMembers {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    epoch: u64,
    groups: HashMap<u64, Arc<Vec<u64>>>,
}

#[async_trait]
impl MemberCache for MemoryMembers {
    async fn get(&self, group_id: u64) -> Result<Lookup, CacheError> {
        let inner = self.inner.lock().expect("cache lock poisoned");
        Ok(match inner.groups.get(&group_id) {
            Some(m) => Lookup::Hit(m.clone()),
            None => Lookup::Miss(inner.epoch),
        })
    }

    async fn put(
        &self,
        group_id: u64,
        epoch: u64,
        members: Arc<Vec<u64>>,
    ) -> Result<(), CacheError> {
        let mut inner = self.inner.lock().expect("cache lock poisoned");
        if inner.epoch != epoch {
            return Ok(());
        }
        if inner.groups.len() >= CAPACITY {
            inner.groups.clear();
        }
        inner.groups.insert(group_id, members);
        Ok(())
    }

    async fn invalidate(&self, group_id: u64) -> Result<(), CacheError> {
        let mut inner = self.inner.lock().expect("cache lock poisoned");
        inner.epoch += 1;
        inner.groups.remove(&group_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_load_racing_an_invalidation_is_not_kept() {
        let c = MemoryMembers::default();
        let Lookup::Miss(epoch) = c.get(1).await.unwrap() else {
            panic!("empty cache")
        };
        c.invalidate(1).await.unwrap(); // a membership change commits while the load runs
        c.put(1, epoch, Arc::new(vec![1, 2])).await.unwrap();
        let Lookup::Miss(epoch) = c.get(1).await.unwrap() else {
            panic!("stale load was dropped")
        };
        c.put(1, epoch, Arc::new(vec![1, 2, 3])).await.unwrap();
        assert_eq!(
            c.get(1).await.unwrap(),
            Lookup::Hit(Arc::new(vec![1, 2, 3]))
        );
        c.invalidate(1).await.unwrap();
        assert!(matches!(c.get(1).await.unwrap(), Lookup::Miss(_)));
    }
}
