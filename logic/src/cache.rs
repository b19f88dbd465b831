//! Group member cache (memory in standalone; the Redis form comes with
//! cluster mode). Every membership change invalidates the group's entry.
//!
//! A load that started before an invalidation must not store what it read:
//! it could put the old member list back. Each invalidation advances an
//! epoch; a load records the epoch when it starts and its result is kept
//! only if no invalidation happened meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Groups cached at most; past that the cache starts over.
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub(crate) struct MemberCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    epoch: u64,
    groups: HashMap<u64, Arc<Vec<u64>>>,
}

impl MemberCache {
    /// The cached members, or the epoch to hand back to [`MemberCache::put`].
    pub(crate) fn get(&self, group_id: u64) -> Result<Arc<Vec<u64>>, u64> {
        let inner = self.inner.lock().expect("cache lock poisoned");
        inner.groups.get(&group_id).cloned().ok_or(inner.epoch)
    }

    /// Stores a load that began at `epoch`, unless an invalidation came since.
    pub(crate) fn put(&self, group_id: u64, epoch: u64, members: Arc<Vec<u64>>) {
        let mut inner = self.inner.lock().expect("cache lock poisoned");
        if inner.epoch != epoch {
            return;
        }
        if inner.groups.len() >= CAPACITY {
            inner.groups.clear();
        }
        inner.groups.insert(group_id, members);
    }

    pub(crate) fn invalidate(&self, group_id: u64) {
        let mut inner = self.inner.lock().expect("cache lock poisoned");
        inner.epoch += 1;
        inner.groups.remove(&group_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_racing_an_invalidation_is_not_kept() {
        let c = MemberCache::default();
        let epoch = c.get(1).unwrap_err();
        c.invalidate(1); // a membership change commits while the load runs
        c.put(1, epoch, Arc::new(vec![1, 2]));
        let epoch = c.get(1).expect_err("stale load was dropped");
        c.put(1, epoch, Arc::new(vec![1, 2, 3]));
        assert_eq!(*c.get(1).unwrap(), vec![1, 2, 3]);
        c.invalidate(1);
        assert!(c.get(1).is_err());
    }
}
