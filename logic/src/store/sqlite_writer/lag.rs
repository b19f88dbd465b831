//! The SQLite batch writer's conversation rows not yet written
//! ([`crate::store::unindexed`] has the rule they follow).
//!
//! For each user with entries the rows do not reflect, the writer holds
//! every row those entries changed, as the fold left it, and the list head
//! and `unindexed` count it wrote with them. It trusts that copy only while
//! the database still has that head and count: any other writer that takes
//! the list head folds the entries from the database and zeroes the count,
//! and then the copy is dropped unwritten. A user's rows are written once
//! [`MAX_UNINDEXED`] of its entries wait, when the writer holds more than
//! [`MAX_HELD_ROWS`] rows in all, and when the writer has been idle for
//! [`IDLE_WRITE`].

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use tracing::warn;

use super::WriterError;
use crate::store::conversations::{ConvKey, Head};

/// Entries of one list that may wait before its rows are written. A batch
/// writes each row it changes at most once every this many of the user's
/// entries, instead of once per entry.
pub(in crate::store) const MAX_UNINDEXED: u64 = 128;

/// Rows the writer holds in all before it writes every one of them.
pub(super) const MAX_HELD_ROWS: usize = 65_536;

/// How long the writer waits for a batch before it writes every row it holds.
#[cfg(not(test))]
pub(super) const IDLE_WRITE: Duration = Duration::from_millis(100);
/// In this crate's unit tests, never: what they see of the rows must not
/// depend on how fast the machine runs them.
#[cfg(test)]
pub(super) const IDLE_WRITE: Duration = Duration::from_secs(3600);

/// One user's rows not yet written.
#[derive(Debug, Default)]
pub(super) struct Held {
    /// The list head and `unindexed` in the database when these were folded.
    pub head: u64,
    pub unindexed: u64,
    /// Each row changed, and whether the database has a row for it yet.
    pub rows: BTreeMap<ConvKey, (Head, bool)>,
}

/// Every user's rows not yet written.
#[derive(Debug, Default)]
pub(super) struct Lag {
    users: HashMap<u64, Held>,
    rows: usize,
}

impl Lag {
    /// Takes out what is held for `user_id`, if it matches the database's
    /// list head and count: `None` with nothing held, `Some(Err)` when what
    /// was held is stale (dropped).
    pub fn take(&mut self, user_id: u64, head: u64, unindexed: u64) -> Option<Result<Held, ()>> {
        let held = self.users.remove(&user_id)?;
        self.rows -= held.rows.len();
        Some(if (held.head, held.unindexed) == (head, unindexed) {
            Ok(held)
        } else {
            Err(())
        })
    }

    /// Holds `held` for `user_id` after its batch committed.
    pub fn hold(&mut self, user_id: u64, held: Held) {
        self.rows += held.rows.len();
        if let Some(old) = self.users.insert(user_id, held) {
            self.rows -= old.rows.len();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether the writer holds more rows than it should.
    pub fn is_full(&self) -> bool {
        self.rows > MAX_HELD_ROWS
    }

    /// Takes out everything held.
    pub fn drain(&mut self) -> Vec<(u64, Held)> {
        self.rows = 0;
        self.users.drain().collect()
    }
}

/// Writes `held` for `user_id` and marks its list indexed, if the database
/// still has the head and count it was folded at (else another writer
/// folded those entries itself).
pub(super) fn write(tx: &Transaction<'_>, user_id: u64, held: &Held) -> rusqlite::Result<()> {
    let marked = tx
        .prepare_cached(
            "UPDATE user_seqs SET unindexed = 0 \
             WHERE user_id = ?1 AND seq = ?2 AND unindexed = ?3",
        )?
        .execute(params![
            user_id as i64,
            held.head as i64,
            held.unindexed as i64
        ])?;
    if marked == 0 {
        return Ok(());
    }
    let mut insert = tx.prepare_cached(
        "INSERT INTO conversations \
         (user_id, conv_type, conv_id, last_seq, change_seq, unread, mentions, hidden) \
         VALUES (?1, ?2, ?3, ?4, ?8, ?5, ?6, ?7)",
    )?;
    let mut update = tx.prepare_cached(
        "UPDATE conversations SET last_seq = ?4, change_seq = ?8, unread = ?5, \
         mentions = ?6, hidden = ?7 WHERE user_id = ?1 AND conv_type = ?2 AND conv_id = ?3",
    )?;
    for (key, (head, existed)) in &held.rows {
        let values = params![
            key.user_id as i64,
            i64::from(key.conv_type),
            key.conv_id as i64,
            head.last_seq as i64,
            head.unread as i64,
            head.mentions as i64,
            i64::from(head.hidden),
            head.change_seq as i64,
        ];
        match existed {
            true => update.execute(values)?,
            false => insert.execute(values)?,
        };
    }
    Ok(())
}

/// Writes every conversation row the writer holds, when it is idle or
/// stops. On an error they stay unwritten, and the database still counts
/// their entries as unindexed: the next to take those lists folds them.
pub(super) fn write_held(conn: &mut Connection, lag: &mut Lag) -> Result<(), WriterError> {
    if lag.is_empty() {
        return Ok(());
    }
    let held = lag.drain();
    let written = (|| -> rusqlite::Result<()> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (user_id, held) in &held {
            write(&tx, *user_id, held)?;
        }
        tx.commit()
    })();
    if let Err(e) = written {
        warn!(error = %e, "conversation rows left to be folded from the lists");
    }
    Ok(())
}

/// [`super::Job::Settle`] on the writer thread.
pub(super) fn settle(
    conn: &mut Connection,
    lag: &mut Lag,
    user_id: u64,
) -> Result<Option<u64>, WriterError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let head: Option<(i64, i64)> = tx
        .prepare_cached("SELECT seq, unindexed FROM user_seqs WHERE user_id = ?1")?
        .query_row(params![user_id as i64], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((head, unindexed)) = head else {
        return Ok(Some(0));
    };
    let (head, unindexed) = (head as u64, unindexed as u64);
    if unindexed == 0 {
        return Ok(Some(head));
    }
    match lag.take(user_id, head, unindexed) {
        Some(Ok(held)) => {
            write(&tx, user_id, &held)?;
            tx.commit()?;
            Ok(Some(head))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE user_seqs (user_id INTEGER PRIMARY KEY, seq INTEGER, unindexed INTEGER);
             CREATE TABLE conversations (user_id INTEGER, conv_type INTEGER, conv_id INTEGER,
                 last_seq INTEGER, change_seq INTEGER, unread INTEGER, mentions INTEGER,
                 hidden INTEGER, PRIMARY KEY (user_id, conv_type, conv_id));
             INSERT INTO user_seqs VALUES (7, 10, 4);
             INSERT INTO conversations VALUES (7, 1, 8, 6, 6, 2, 0, 0);",
        )
        .unwrap();
        conn
    }

    fn held(head: u64, unindexed: u64) -> Held {
        let key = |conv_id| ConvKey {
            user_id: 7,
            conv_type: 1,
            conv_id,
        };
        let head_at = |seq, unread| Head {
            last_seq: seq,
            change_seq: seq,
            unread,
            mentions: 0,
            hidden: false,
        };
        Held {
            head,
            unindexed,
            rows: BTreeMap::from([
                (key(8), (head_at(9, 5), true)),
                (key(9), (head_at(10, 1), false)),
            ]),
        }
    }

    fn state(conn: &Connection) -> (i64, Vec<(i64, i64)>) {
        let unindexed = conn
            .query_row("SELECT unindexed FROM user_seqs", [], |r| r.get(0))
            .unwrap();
        let mut rows = conn
            .prepare("SELECT conv_id, unread FROM conversations ORDER BY conv_id")
            .unwrap();
        let rows = rows
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        (unindexed, rows)
    }

    #[test]
    fn held_rows_are_written_only_at_the_head_and_count_they_were_folded_at() {
        let mut conn = db();
        for stale in [held(9, 3), held(10, 0), held(10, 3)] {
            let tx = conn.transaction().unwrap();
            write(&tx, 7, &stale).unwrap();
            tx.commit().unwrap();
            assert_eq!(state(&conn), (4, vec![(8, 2)]));
        }
        let tx = conn.transaction().unwrap();
        write(&tx, 7, &held(10, 4)).unwrap();
        tx.commit().unwrap();
        assert_eq!(state(&conn), (0, vec![(8, 5), (9, 1)]));
    }

    #[test]
    fn a_held_copy_is_taken_only_while_it_matches_the_database() {
        let mut lag = Lag::default();
        lag.hold(7, held(10, 4));
        assert!(!lag.is_empty());
        assert!(matches!(lag.take(7, 10, 3), Some(Err(()))));
        assert!(lag.take(7, 10, 4).is_none());
        lag.hold(7, held(10, 4));
        assert!(matches!(lag.take(7, 10, 4), Some(Ok(h)) if h.rows.len() == 2));
        assert!(lag.is_empty() && !lag.is_full());
    }
}
