//! A cache of what a one-to-one SEND reads ([`Store::send_standing`]), for
//! a store whose every writer is this process (SQLite: one standalone
//! server, or one logic node). It is exact: every commit that could change
//! a user's status or a relation (every transaction but a batch of chat
//! messages) advances a generation before it returns, and an entry is only
//! used while the generation it was loaded under is current. A reader
//! takes the generation before it loads, so a load that raced a commit is
//! never used. A MySQL store has writers elsewhere and reads every time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::friends::SendStanding;

/// Entries kept at most; the cache starts over when full (a memory bound,
/// not an eviction policy: relation changes clear it far more often).
const MAX_ENTRIES: usize = 100_000;

type Entry = (u64, Option<SendStanding>);

/// (sender, receiver) → the generation it was read under, and what was read.
#[derive(Debug)]
pub(crate) struct StandingCache {
    enabled: bool,
    generation: AtomicU64,
    entries: Mutex<HashMap<(u64, u64), Entry>>,
}

impl StandingCache {
    pub(crate) fn new(enabled: bool) -> StandingCache {
        StandingCache {
            enabled,
            generation: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cached standing if current; else the generation to load under.
    pub(crate) fn get(&self, key: (u64, u64)) -> Result<Option<SendStanding>, u64> {
        let generation = self.generation.load(Ordering::Acquire);
        if !self.enabled {
            return Err(generation);
        }
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(&key) {
            Some(&(g, standing)) if g == generation => Ok(standing),
            _ => Err(generation),
        }
    }

    /// Keeps what was loaded under `generation`, unless a commit came since.
    pub(crate) fn put(&self, key: (u64, u64), generation: u64, standing: Option<SendStanding>) {
        if !self.enabled || self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (generation, standing));
    }

    /// A commit that may have changed a status or a relation.
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::UserStatus;

    fn standing() -> Option<SendStanding> {
        Some(SendStanding {
            receiver_status: UserStatus::Active,
            mine: None,
            theirs: None,
        })
    }

    #[test]
    fn a_load_that_raced_a_commit_is_not_kept_and_a_commit_drops_all() {
        let c = StandingCache::new(true);
        let g = c.get((1, 2)).unwrap_err();
        c.put((1, 2), g, standing());
        assert_eq!(c.get((1, 2)), Ok(standing()));
        // A load that began before a commit.
        let g = c.get((3, 4)).unwrap_err();
        c.changed();
        c.put((3, 4), g, standing());
        assert!(c.get((3, 4)).is_err(), "a stale load is not kept");
        assert!(c.get((1, 2)).is_err(), "a commit drops what was cached");
    }

    #[test]
    fn disabled_it_keeps_nothing() {
        let c = StandingCache::new(false);
        let g = c.get((1, 2)).unwrap_err();
        c.put((1, 2), g, standing());
        assert!(c.get((1, 2)).is_err());
    }
}
