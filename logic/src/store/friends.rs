//! Friendships: one row per direction, `state` as seen by `user_id`:
//! requested (I asked), pending (they asked), accepted, blocked (I blocked).

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::{Any, QueryBuilder, Row};

use super::standing::{Loaded, UserStanding, MAX_RELATIONS};
use super::{id, parse_state, state, Result, Store, Tx};
use crate::domain::{FriendState, Stored};

/// One direction of a relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendRow {
    pub user_id: u64,
    pub friend_id: u64,
    pub state: FriendState,
    pub remark: String,
    pub updated_at: i64,
}

impl Store {
    /// Both directions between `a` and `b`: (a→b, b→a).
    pub async fn friend_pair(
        &self,
        tx: &mut Tx,
        a: u64,
        b: u64,
    ) -> Result<(Option<FriendRow>, Option<FriendRow>)> {
        let rows = sqlx::query(
            "SELECT user_id, friend_id, state, remark, updated_at FROM friends \
             WHERE (user_id = ? AND friend_id = ?) OR (user_id = ? AND friend_id = ?)",
        )
        .bind(a as i64)
        .bind(b as i64)
        .bind(b as i64)
        .bind(a as i64)
        .fetch_all(&mut **tx)
        .await?;
        let mut ab = None;
        let mut ba = None;
        for r in rows {
            let row = FriendRow {
                user_id: id(&r, "user_id")?,
                friend_id: id(&r, "friend_id")?,
                state: state(&r, "state")?,
                remark: r.try_get("remark")?,
                updated_at: r.try_get("updated_at")?,
            };
            if row.user_id == a {
                ab = Some(row);
            } else {
                ba = Some(row);
            }
        }
        Ok((ab, ba))
    }

    /// Sets the state of `user → friend`, creating the row if needed (the
    /// remark of an existing row is kept).
    pub async fn put_friend(
        &self,
        tx: &mut Tx,
        user: u64,
        friend: u64,
        state: FriendState,
        now: i64,
    ) -> Result<()> {
        let updated = sqlx::query(
            "UPDATE friends SET state = ?, updated_at = ? WHERE user_id = ? AND friend_id = ?",
        )
        .bind(state.as_str())
        .bind(now)
        .bind(user as i64)
        .bind(friend as i64)
        .execute(&mut **tx)
        .await?;
        if updated.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO friends (user_id, friend_id, state, remark, created_at, updated_at) VALUES (?, ?, ?, '', ?, ?)",
            )
            .bind(user as i64)
            .bind(friend as i64)
            .bind(state.as_str())
            .bind(now)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Removes `user → friend`, if there.
    pub async fn delete_friend(&self, tx: &mut Tx, user: u64, friend: u64) -> Result<()> {
        sqlx::query("DELETE FROM friends WHERE user_id = ? AND friend_id = ?")
            .bind(user as i64)
            .bind(friend as i64)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    pub async fn set_remark(
        &self,
        tx: &mut Tx,
        user: u64,
        friend: u64,
        remark: &str,
        now: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE friends SET remark = ?, updated_at = ? WHERE user_id = ? AND friend_id = ?",
        )
        .bind(remark)
        .bind(now)
        .bind(user as i64)
        .bind(friend as i64)
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A user's relations after `after` (friend id), ascending, at most `limit`.
    pub async fn friends_of(&self, user: u64, after: u64, limit: u32) -> Result<Vec<FriendRow>> {
        let rows = sqlx::query(
            "SELECT user_id, friend_id, state, remark, updated_at FROM friends \
             WHERE user_id = ? AND friend_id > ? ORDER BY friend_id LIMIT ?",
        )
        .bind(user as i64)
        .bind(after.min(i64::MAX as u64) as i64)
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FriendRow {
                    user_id: id(r, "user_id")?,
                    friend_id: id(r, "friend_id")?,
                    state: state(r, "state")?,
                    remark: r.try_get("remark")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// What a one-to-one SEND from `sender` to `receiver` needs to know:
    /// whether the receiver exists and is active, and the relation in both
    /// directions; `None` when there is no such user. From the store's
    /// exact per-user cache (see `standing`), loading each of the two users
    /// once per change of any relation or status; a user with too many
    /// relations to cache is read with the pair, in one query.
    pub async fn send_standing(&self, sender: u64, receiver: u64) -> Result<Option<SendStanding>> {
        let generation = self.standing.generation().await;
        let mut users: [Loaded; 2] = [None, None];
        for (slot, user) in users.iter_mut().zip([sender, receiver]) {
            *slot = match self.standing.get(user, generation) {
                Some(loaded) => loaded,
                None => {
                    let loaded = self.reconnecting(|| self.read_user_standing(user)).await?;
                    self.standing.put(user, generation, loaded.clone());
                    loaded
                }
            };
        }
        let [mine, theirs] = users;
        let Some(to) = theirs else {
            return Ok(None);
        };
        if !to.complete || mine.as_ref().is_some_and(|m| !m.complete) {
            // Too many relations to hold: the pair alone.
            return self
                .reconnecting(|| self.read_send_standing(sender, receiver))
                .await;
        }
        Ok(Some(SendStanding {
            receiver_status: to.status,
            mine: mine.and_then(|m| m.relations.get(&receiver).copied()),
            theirs: to.relations.get(&sender).copied(),
        }))
    }

    /// A user's status and every relation, in one query; only the status
    /// (marked incomplete) when it has more than [`MAX_RELATIONS`], and
    /// `None` when there is no such user.
    async fn read_user_standing(&self, user: u64) -> Result<Loaded> {
        let rows = sqlx::query(
            "SELECT u.status AS status, f.friend_id AS friend_id, f.state AS state \
             FROM users u LEFT JOIN friends f ON f.user_id = u.id WHERE u.id = ? LIMIT ?",
        )
        .bind(user as i64)
        .bind(MAX_RELATIONS as i64 + 1)
        .fetch_all(self.pool())
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let status = state(first, "status")?;
        let complete = rows.len() <= MAX_RELATIONS;
        let mut relations = HashMap::new();
        for r in rows.iter().filter(|_| complete) {
            if let Some(friend) = r.try_get::<Option<i64>, _>("friend_id")? {
                let stored: String = r.try_get("state")?;
                relations.insert(friend as u64, parse_state(&stored));
            }
        }
        Ok(Some(Arc::new(UserStanding {
            status,
            relations,
            complete,
        })))
    }

    async fn read_send_standing(&self, sender: u64, receiver: u64) -> Result<Option<SendStanding>> {
        let row = sqlx::query(
            "SELECT u.status AS status, \
             (SELECT state FROM friends WHERE user_id = ? AND friend_id = ?) AS mine, \
             (SELECT state FROM friends WHERE user_id = ? AND friend_id = ?) AS theirs \
             FROM users u WHERE u.id = ?",
        )
        .bind(sender as i64)
        .bind(receiver as i64)
        .bind(receiver as i64)
        .bind(sender as i64)
        .bind(receiver as i64)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let relation = |col: &str| -> Result<Option<FriendState>> {
            let stored: Option<String> = row.try_get(col)?;
            Ok(stored.as_deref().map(parse_state))
        };
        Ok(Some(SendStanding {
            receiver_status: super::state(&row, "status")?,
            mine: relation("mine")?,
            theirs: relation("theirs")?,
        }))
    }

    /// The state of `user → other`, outside any transaction (send checks).
    pub async fn friend_state(&self, user: u64, other: u64) -> Result<Option<FriendState>> {
        let stored: Option<String> =
            sqlx::query_scalar("SELECT state FROM friends WHERE user_id = ? AND friend_id = ?")
                .bind(user as i64)
                .bind(other as i64)
                .fetch_optional(self.pool())
                .await?;
        Ok(stored.as_deref().map(parse_state))
    }
}

impl Store {
    /// Serialises friend changes between two users: takes both users' list
    /// head rows in ascending id order (the order appends lock them in), so
    /// a concurrent REQUEST, ACCEPT and BLOCK of the same pair run one after
    /// another on MySQL as they do on SQLite.
    pub async fn lock_pair(&self, tx: &mut Tx, a: u64, b: u64) -> Result<()> {
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        sqlx::query("UPDATE user_seqs SET seq = seq WHERE user_id IN (?, ?)")
            .bind(lo as i64)
            .bind(hi as i64)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Takes the list head rows of `users` (row locks until the end of the
    /// transaction), in ascending id order as appends take them, so it
    /// orders a change against every friend change of those users.
    pub async fn lock_heads(&self, tx: &mut Tx, users: &[u64]) -> Result<()> {
        let mut users = users.to_vec();
        users.sort_unstable();
        users.dedup();
        for chunk in users.chunks(IN_CHUNK) {
            let mut q =
                QueryBuilder::<Any>::new("UPDATE user_seqs SET seq = seq WHERE user_id IN (");
            push_ids(&mut q, chunk);
            q.push(")");
            q.build().execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// How `user` stands with each of `others` that it has a relation with:
    /// other → (user → other, other → user).
    pub async fn relations_in(
        &self,
        tx: &mut Tx,
        user: u64,
        others: &[u64],
    ) -> Result<HashMap<u64, (Option<FriendState>, Option<FriendState>)>> {
        let mut found: HashMap<u64, (Option<FriendState>, Option<FriendState>)> = HashMap::new();
        for chunk in others.chunks(IN_CHUNK) {
            let mut q = QueryBuilder::<Any>::new(
                "SELECT user_id, friend_id, state FROM friends WHERE (user_id = ",
            );
            q.push_bind(user as i64).push(" AND friend_id IN (");
            push_ids(&mut q, chunk);
            q.push(")) OR (friend_id = ").push_bind(user as i64);
            q.push(" AND user_id IN (");
            push_ids(&mut q, chunk);
            q.push("))");
            for r in q.build().fetch_all(&mut **tx).await? {
                let (from, to) = (id(&r, "user_id")?, id(&r, "friend_id")?);
                let st = state(&r, "state")?;
                if from == user {
                    found.entry(to).or_default().0 = Some(st);
                } else {
                    found.entry(from).or_default().1 = Some(st);
                }
            }
        }
        Ok(found)
    }
}

/// Ids bound in one IN list: well under SQLite's and MySQL's limits on
/// bound parameters, with two lists in a query.
const IN_CHUNK: usize = 500;

fn push_ids(q: &mut QueryBuilder<'_, Any>, ids: &[u64]) {
    let mut sep = q.separated(", ");
    for id in ids {
        sep.push_bind(*id as i64);
    }
}

/// The receiver's status and the relation both ways, for a one-to-one SEND.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendStanding {
    pub receiver_status: crate::domain::UserStatus,
    /// The sender's relation to the receiver.
    pub mine: Option<FriendState>,
    /// The receiver's relation to the sender.
    pub theirs: Option<FriendState>,
}
