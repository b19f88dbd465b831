//! A cache of what a one-to-one SEND reads ([`Store::send_standing`]), for
//! a store whose every writer is this process (SQLite: one standalone
//! server, or one logic node). It is exact: every commit that could change
//! a user's status or a relation (every transaction but a batch of chat
//! messages) advances a generation before it returns, and an entry is only
//! used while the generation it was loaded under is current. A reader
//! takes the generation before it loads, so a load that raced a commit is
//! never used. A MySQL store has writers elsewhere and reads every time.
//!
//! Entries are per user, not per pair: a user's status and every relation
//! row the user holds. A sender reaches many receivers, and each pair is
//! new at first, while a few hundred users make a few hundred loads.
//!
//! [`Store::send_standing`]: super::Store::send_standing

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::domain::{FriendState, UserStatus};

/// Users kept at most; the cache starts over when full (a memory bound,
/// not an eviction policy: relation changes clear it far more often).
const MAX_USERS: usize = 100_000;
/// Relation rows kept at most, over all users.
const MAX_ROWS: usize = 1_000_000;
/// A user holding more relation rows than this is not cached: each send
/// reads that pair instead.
pub(crate) const MAX_ROWS_PER_USER: usize = 1_000;

/// What the store says about one user, as a send needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Facts {
    /// `None`: there is no such user.
    pub status: Option<UserStatus>,
    /// The user's relation rows (`user → other`), sorted by the other id;
    /// empty when the user holds too many to keep ([`Facts::complete`]).
    pub relations: Box<[(u64, FriendState)]>,
    /// False when the user holds more than [`MAX_ROWS_PER_USER`] relation
    /// rows: then they are not kept and a send reads its pair.
    pub complete: bool,
}

impl Facts {
    /// The user's row about `other`, if any.
    pub(crate) fn relation(&self, other: u64) -> Option<FriendState> {
        self.relations
            .binary_search_by_key(&other, |(id, _)| *id)
            .ok()
            .map(|i| self.relations[i].1)
    }
}

#[derive(Debug, Default)]
struct Entries {
    users: HashMap<u64, (u64, Arc<Facts>)>,
    rows: usize,
}

/// user → the generation its facts were read under, and the facts.
#[derive(Debug)]
pub(crate) struct StandingCache {
    enabled: bool,
    generation: AtomicU64,
    entries: Mutex<Entries>,
}

impl StandingCache {
    pub(crate) fn new(enabled: bool) -> StandingCache {
        StandingCache {
            enabled,
            generation: AtomicU64::new(0),
            entries: Mutex::default(),
        }
    }

    /// Whether anything is ever cached (all writers in this process).
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// The user's facts if current; else the generation to load under.
    pub(crate) fn get(&self, user: u64) -> Result<Arc<Facts>, u64> {
        let generation = self.generation.load(Ordering::Acquire);
        if !self.enabled {
            return Err(generation);
        }
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.users.get(&user) {
            Some((g, facts)) if *g == generation => Ok(facts.clone()),
            _ => Err(generation),
        }
    }

    /// Keeps what was loaded under `generation`, unless a commit came since.
    pub(crate) fn put(&self, user: u64, generation: u64, facts: Arc<Facts>) {
        if !self.enabled || self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let rows = facts.relations.len();
        if entries.users.len() >= MAX_USERS || entries.rows + rows > MAX_ROWS {
            *entries = Entries::default();
        }
        if let Some((_, old)) = entries.users.insert(user, (generation, facts)) {
            entries.rows -= old.relations.len();
        }
        entries.rows += rows;
    }

    /// A commit that may have changed a status or a relation.
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(relations: &[(u64, FriendState)]) -> Arc<Facts> {
        Arc::new(Facts {
            status: Some(UserStatus::Active),
            relations: relations.into(),
            complete: true,
        })
    }

    #[test]
    fn a_load_that_raced_a_commit_is_not_kept_and_a_commit_drops_all() {
        let c = StandingCache::new(true);
        let g = c.get(1).unwrap_err();
        c.put(1, g, facts(&[]));
        assert_eq!(c.get(1), Ok(facts(&[])));
        // A load that began before a commit.
        let g = c.get(3).unwrap_err();
        c.changed();
        c.put(3, g, facts(&[]));
        assert!(c.get(3).is_err(), "a stale load is not kept");
        assert!(c.get(1).is_err(), "a commit drops what was cached");
    }

    #[test]
    fn disabled_it_keeps_nothing() {
        let c = StandingCache::new(false);
        let g = c.get(1).unwrap_err();
        c.put(1, g, facts(&[]));
        assert!(c.get(1).is_err());
    }

    #[test]
    fn relations_are_found_by_the_other_id() {
        let f = facts(&[(2, FriendState::Accepted), (9, FriendState::Blocked)]);
        assert_eq!(f.relation(9), Some(FriendState::Blocked));
        assert_eq!(f.relation(2), Some(FriendState::Accepted));
        assert_eq!(f.relation(5), None);
    }

    #[test]
    fn it_starts_over_past_its_row_bound() {
        let c = StandingCache::new(true);
        let many: Vec<(u64, FriendState)> = (0..MAX_ROWS_PER_USER as u64)
            .map(|i| (i, FriendState::Accepted))
            .collect();
        let g = c.get(0).unwrap_err();
        let users = MAX_ROWS / MAX_ROWS_PER_USER;
        for user in 0..=users as u64 {
            c.put(user, g, facts(&many));
        }
        let kept = c.entries.lock().unwrap();
        assert_eq!(
            kept.users.len(),
            1,
            "the bound was reached: it started over"
        );
        assert_eq!(kept.rows, MAX_ROWS_PER_USER);
    }
}
