//! Window counters of one process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tern_public::time::now_ms;

use super::{window_index, WindowCounter};
use crate::cache::CacheError;

/// Counts in memory. Keys of past windows are dropped as the map grows, so
/// it holds about the keys active in the last window.
#[derive(Default)]
pub struct MemoryCounter {
    pub(super) counts: Mutex<Counts>,
}

#[derive(Default)]
pub(super) struct Counts {
    /// key → (window, count in it).
    pub(super) by_key: HashMap<String, (u64, u64)>,
    /// Size after the last sweep; the next sweep comes at twice that.
    swept_at: usize,
}

#[async_trait]
impl WindowCounter for MemoryCounter {
    async fn hit(&self, key: &str, window: Duration) -> Result<u64, CacheError> {
        let now = window_index(now_ms(), window);
        let mut c = self.counts.lock().expect("counter lock poisoned");
        if c.by_key.len() > (c.swept_at * 2).max(1024) {
            c.by_key.retain(|_, (w, _)| *w >= now);
            c.swept_at = c.by_key.len();
        }
        let entry = c.by_key.entry(key.to_owned()).or_insert((now, 0));
        if entry.0 != now {
            *entry = (now, 0);
        }
        entry.1 += 1;
        Ok(entry.1)
    }
}
