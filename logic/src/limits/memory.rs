//! Window counters and lockouts of one process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tern_public::time::now_ms;

use super::{window_index, Backoff, WindowCounter};
use crate::cache::CacheError;

/// Counts in memory. Keys of past windows, and lockouts forgotten, are
/// dropped as the maps grow, so it holds about the keys active lately.
#[derive(Default)]
pub struct MemoryCounter {
    pub(super) counts: Mutex<Counts>,
    lockouts: Mutex<Lockouts>,
}

#[derive(Default)]
pub(super) struct Counts {
    /// key → (window, count in it).
    pub(super) by_key: HashMap<String, (u64, u64)>,
    /// Size after the last sweep; the next sweep comes at twice that.
    swept_at: usize,
}

#[derive(Default)]
struct Lockouts {
    by_key: HashMap<String, Lockout>,
    swept_at: usize,
}

struct Lockout {
    /// Lockouts so far, this one included.
    count: u32,
    until_ms: i64,
    forget_at_ms: i64,
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

    async fn locked_for(&self, key: &str) -> Result<Option<Duration>, CacheError> {
        let now = now_ms();
        let l = self.lockouts.lock().expect("lockout lock poisoned");
        Ok(l.by_key
            .get(key)
            .filter(|l| l.until_ms > now)
            .map(|l| Duration::from_millis((l.until_ms - now) as u64)))
    }

    async fn lock_out(&self, key: &str, rule: Backoff) -> Result<Duration, CacheError> {
        let now = now_ms();
        let mut l = self.lockouts.lock().expect("lockout lock poisoned");
        if l.by_key.len() > (l.swept_at * 2).max(1024) {
            l.by_key.retain(|_, l| l.forget_at_ms > now);
            l.swept_at = l.by_key.len();
        }
        let count = match l.by_key.get(key) {
            Some(prev) if prev.forget_at_ms > now => prev.count.saturating_add(1),
            _ => 1,
        };
        let wait = rule.nth(count);
        let until_ms = now + wait.as_millis() as i64;
        let lockout = Lockout {
            count,
            until_ms,
            forget_at_ms: until_ms + rule.memory.as_millis() as i64,
        };
        l.by_key.insert(key.to_owned(), lockout);
        Ok(wait)
    }
}
