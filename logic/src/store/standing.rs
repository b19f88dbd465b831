//! A cache of what a one-to-one SEND reads ([`Store::send_standing`]), per
//! user: the user's status and every relation it has (so that a SEND
//! between any two users whose entries are loaded reads nothing, whoever
//! they send to; a user with more than [`MAX_RELATIONS`] relations is read
//! per SEND). It is exact: every commit that could change a user's status or a relation
//! (every transaction but a batch of chat messages) advances a generation
//! before it is answered, and an entry is only used while the generation it
//! was loaded under is current. A reader takes the generation before it
//! loads, so a load that raced a commit is never used.
//!
//! Where the generation lives depends on who writes:
//! - SQLite: every writer is this process, so it is a counter in memory;
//! - MySQL with Redis (a cluster): other logic nodes write too, so it is a
//!   counter in Redis ([`SharedGeneration`]) that every node advances after
//!   such a commit and reads once per SEND: one Redis GET instead of a
//!   MySQL query. When Redis cannot be read, the SEND reads the store.
//! - MySQL without Redis: no cache, every SEND reads the store.
//!
//! [`Store::send_standing`]: super::Store::send_standing

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::domain::{FriendState, UserStatus};

/// Relations a cached user may have; one with more is read per SEND.
pub(crate) const MAX_RELATIONS: usize = 2_000;

/// Relations kept over all entries at most; the cache starts over when
/// full (a memory bound of a few tens of MB, not an eviction policy:
/// relation changes clear it far more often).
const MAX_HELD: usize = 1_000_000;

/// How long a shared-generation entry is used at most: the bound on how
/// long a change whose advance could not reach Redis (answered as done and
/// logged, see [`super::Store::commit`]) can be missed by another node.
const SHARED_ENTRY_TTL: Duration = Duration::from_secs(30);

/// A generation counter every logic node of a cluster sees.
#[async_trait]
pub trait SharedGeneration: Send + Sync + std::fmt::Debug + 'static {
    /// The current value. A counter its storage loses must not start
    /// again where it once was (Redis's starts at a random point).
    async fn current(&self) -> Result<u64, String>;
    /// Advances it; returns once every later [`SharedGeneration::current`]
    /// sees the new value.
    async fn advance(&self) -> Result<(), String>;
}

/// A user's status and its relations (friend id → its state as this user
/// sees it), as a SEND needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserStanding {
    pub status: UserStatus,
    pub relations: HashMap<u64, FriendState>,
    /// False when the user has more than [`MAX_RELATIONS`]: `relations`
    /// is then empty, and a SEND reads the pair from the store.
    pub complete: bool,
}

/// A user as loaded: `None` when there is no such user.
pub(crate) type Loaded = Option<Arc<UserStanding>>;

/// What an entry was loaded under (shared, local), when, and what was read.
type Entry = ((u64, u64), Instant, Loaded);

/// User id → its standing, with the generation it was read under.
#[derive(Debug)]
pub(crate) struct StandingCache {
    mode: Mode,
    local: AtomicU64,
    /// The highest shared value read. A read sent after it was read that
    /// answers lower means the shared counter went back (a failover to a
    /// replica that lagged): [`StandingCache::generation`] then counts a
    /// local change, which retires every entry and every load in flight,
    /// and goes on from the lower value.
    settled: AtomicU64,
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    users: HashMap<u64, Entry>,
    /// Relations held by `users`, for the memory bound.
    held: usize,
}

#[derive(Debug)]
enum Mode {
    Off,
    Local,
    Shared(Arc<dyn SharedGeneration>),
}

/// The generation a lookup happened under, to hand back to
/// [`StandingCache::put`] with what was loaded: `None` caches nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Generation(Option<(u64, u64)>);

impl StandingCache {
    /// In memory, for a store whose writers are all in this process (or,
    /// with `enabled` false, no cache).
    pub(crate) fn new(enabled: bool) -> StandingCache {
        StandingCache::with(if enabled { Mode::Local } else { Mode::Off })
    }

    /// Against a generation shared by every writer of the store.
    pub(crate) fn shared(generation: Arc<dyn SharedGeneration>) -> StandingCache {
        StandingCache::with(Mode::Shared(generation))
    }

    fn with(mode: Mode) -> StandingCache {
        StandingCache {
            mode,
            local: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            entries: Mutex::new(Entries::default()),
        }
    }

    /// The generation to look up and load under: one read of the shared
    /// one (a Redis GET) per SEND, whatever it looks up.
    pub(crate) async fn generation(&self) -> Generation {
        let shared = match &self.mode {
            Mode::Off => return Generation(None),
            Mode::Local => 0,
            Mode::Shared(shared) => {
                // Only what was read before this read was sent can judge
                // it: reads racing an advance may end in either order.
                let floor = self.settled.load(Ordering::Acquire);
                match shared.current().await {
                    Ok(g) if g < floor => {
                        tracing::warn!(
                            generation = g,
                            before = floor,
                            "the shared send standing generation went back; cache dropped"
                        );
                        self.changed();
                        self.settled.store(g, Ordering::Release);
                        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
                        *entries = Entries::default();
                        g
                    }
                    Ok(g) => {
                        self.settled.fetch_max(g, Ordering::AcqRel);
                        g
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "send standing generation unreadable; reading the store");
                        return Generation(None);
                    }
                }
            }
        };
        // The local counter too: a commit of this node counts even before
        // its advance reaches the shared one.
        Generation(Some((shared, self.local.load(Ordering::Acquire))))
    }

    /// The user's cached standing if loaded under `generation`.
    pub(crate) fn get(&self, user: u64, generation: Generation) -> Option<Loaded> {
        let Generation(Some(generation)) = generation else {
            return None;
        };
        let ttl = matches!(self.mode, Mode::Shared(_)).then_some(SHARED_ENTRY_TTL);
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.users.get(&user) {
            Some((g, at, loaded))
                if *g == generation && ttl.is_none_or(|ttl| at.elapsed() < ttl) =>
            {
                Some(loaded.clone())
            }
            _ => None,
        }
    }

    /// Keeps what was loaded under `generation`, unless a local commit came
    /// since (a shared one is caught by the next [`StandingCache::generation`]).
    pub(crate) fn put(&self, user: u64, generation: Generation, loaded: Loaded) {
        let Generation(Some(generation)) = generation else {
            return;
        };
        if self.local.load(Ordering::Acquire) != generation.1 {
            return;
        }
        let size = loaded.as_ref().map_or(0, |l| l.relations.len()) + 1;
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.held + size > MAX_HELD {
            *entries = Entries::default();
        }
        let replaced = entries
            .users
            .insert(user, (generation, Instant::now(), loaded));
        let freed = replaced.map_or(0, |(_, _, l)| l.map_or(0, |l| l.relations.len()) + 1);
        entries.held = entries.held + size - freed;
    }

    /// A commit that may have changed a status or a relation, on this node.
    pub(crate) fn changed(&self) {
        self.local.fetch_add(1, Ordering::AcqRel);
    }

    /// Tells every other node of such a commit, when the generation is
    /// shared; the commit must not be answered as done before this is.
    pub(crate) async fn publish(&self) -> Result<(), String> {
        match &self.mode {
            Mode::Shared(shared) => shared.advance().await,
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded() -> Loaded {
        Some(Arc::new(UserStanding {
            status: UserStatus::Active,
            relations: HashMap::new(),
            complete: true,
        }))
    }

    #[tokio::test]
    async fn a_load_that_raced_a_commit_is_not_kept_and_a_commit_drops_all() {
        let c = StandingCache::new(true);
        let g = c.generation().await;
        assert_eq!(c.get(1, g), None);
        c.put(1, g, loaded());
        assert_eq!(c.get(1, c.generation().await), Some(loaded()));
        // A load that began before a commit.
        let g = c.generation().await;
        c.changed();
        c.put(3, g, loaded());
        let now = c.generation().await;
        assert_eq!(c.get(3, now), None, "a stale load is not kept");
        assert_eq!(c.get(1, now), None, "a commit drops what was cached");
    }

    #[tokio::test]
    async fn disabled_it_keeps_nothing() {
        let c = StandingCache::new(false);
        let g = c.generation().await;
        c.put(1, g, loaded());
        assert_eq!(c.get(1, c.generation().await), None);
    }

    /// A shared counter, as Redis keeps it, that can be made unreadable.
    #[derive(Debug, Default)]
    struct Counter {
        value: AtomicU64,
        down: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl SharedGeneration for Counter {
        async fn current(&self) -> Result<u64, String> {
            if self.down.load(Ordering::Relaxed) {
                return Err("down".into());
            }
            Ok(self.value.load(Ordering::Acquire))
        }
        async fn advance(&self) -> Result<(), String> {
            self.value.fetch_add(1, Ordering::AcqRel);
            Ok(())
        }
    }

    #[tokio::test]
    async fn another_nodes_commit_drops_this_nodes_entries_and_a_load_under_it() {
        let shared = Arc::new(Counter::default());
        let (this, other) = (
            StandingCache::shared(shared.clone()),
            StandingCache::shared(shared.clone()),
        );
        let g = this.generation().await;
        this.put(1, g, loaded());
        assert_eq!(this.get(1, this.generation().await), Some(loaded()));
        // A load on this node that began before the other node's commit.
        let stale = this.generation().await;
        other.changed();
        other.publish().await.unwrap();
        this.put(3, stale, loaded());
        let now = this.generation().await;
        assert_eq!(
            this.get(1, now),
            None,
            "the other node's commit counts here"
        );
        assert_eq!(
            this.get(3, now),
            None,
            "a load under the old generation is not used"
        );
        // Unreadable: the store is read, and nothing is kept.
        shared.down.store(true, Ordering::Relaxed);
        let g = this.generation().await;
        assert_eq!(g, Generation(None));
        this.put(1, g, loaded());
        shared.down.store(false, Ordering::Relaxed);
        assert_eq!(this.get(1, this.generation().await), None);
    }

    /// Redis fails over to a replica that had not seen the last advances:
    /// the counter goes back and counts up through values already used.
    #[tokio::test]
    async fn a_shared_counter_that_goes_back_drops_what_was_loaded_under_it() {
        let shared = Arc::new(Counter::default());
        let c = StandingCache::shared(shared.clone());
        for _ in 0..3 {
            shared.advance().await.unwrap();
        }
        let g = c.generation().await;
        c.put(1, g, loaded());
        // A load that began before the failover and ends after it.
        let racing = c.generation().await;
        shared.value.store(1, Ordering::Release);
        assert_eq!(c.get(1, c.generation().await), None);
        c.put(2, racing, loaded());
        // Counted up to the old value again, nothing old matches.
        for _ in 0..2 {
            shared.advance().await.unwrap();
        }
        let again = c.generation().await;
        assert_eq!(
            again.0.map(|(shared, _)| shared),
            g.0.map(|(shared, _)| shared),
            "the counter is back where the entries were loaded"
        );
        assert_eq!(c.get(1, again), None, "an entry from before is gone");
        assert_eq!(c.get(2, again), None, "a load from before is not kept");
        // And the cache works on under the new values.
        c.put(1, again, loaded());
        assert_eq!(c.get(1, c.generation().await), Some(loaded()));
    }

    /// A shared counter whose reads answer when and what the test says.
    #[derive(Debug, Default)]
    struct Scripted {
        answers: Mutex<std::collections::VecDeque<tokio::sync::oneshot::Receiver<u64>>>,
    }

    impl Scripted {
        fn next(&self) -> tokio::sync::oneshot::Sender<u64> {
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.answers.lock().unwrap().push_back(rx);
            tx
        }
    }

    #[async_trait]
    impl SharedGeneration for Scripted {
        async fn current(&self) -> Result<u64, String> {
            let answer = self.answers.lock().unwrap().pop_front().expect("scripted");
            answer.await.map_err(|e| e.to_string())
        }
        async fn advance(&self) -> Result<(), String> {
            Ok(())
        }
    }

    /// Two reads race another node's advance: the one sent first answers
    /// the old value after the other answered the new one. That is no
    /// failover, and nothing is dropped.
    #[tokio::test]
    async fn reads_that_end_out_of_order_drop_nothing() {
        let shared = Arc::new(Scripted::default());
        let c = Arc::new(StandingCache::shared(shared.clone()));
        let first = shared.next();
        let early = tokio::spawn({
            let c = c.clone();
            async move { c.generation().await }
        });
        // Let it send its read (take its answer slot) before the next one.
        while !shared.answers.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        shared.next().send(11).unwrap();
        let late = c.generation().await;
        c.put(1, late, loaded());
        first.send(10).unwrap();
        let early = early.await.unwrap();
        assert_eq!(early.0.map(|(g, _)| g), Some(10));
        shared.next().send(11).unwrap();
        assert_eq!(
            c.get(1, c.generation().await),
            Some(loaded()),
            "the entry loaded under the newer value stays"
        );
    }

    #[tokio::test]
    async fn the_relations_held_stay_bounded() {
        let c = StandingCache::new(true);
        let g = c.generation().await;
        let big = Some(Arc::new(UserStanding {
            status: UserStatus::Active,
            relations: (0..MAX_RELATIONS as u64)
                .map(|f| (f, FriendState::Accepted))
                .collect(),
            complete: true,
        }));
        for user in 0..(MAX_HELD / MAX_RELATIONS) as u64 + 10 {
            c.put(user, g, big.clone());
        }
        let held = c.entries.lock().unwrap().held;
        assert!(held <= MAX_HELD, "{held}");
    }
}
