//! The newest entries of a list that its conversation rows do not reflect
//! yet (`user_seqs.unindexed`), and folding them in.
//!
//! On SQLite the batch writer ([`super::sqlite_writer`]) keeps the rows a
//! batch changes in memory and writes a user's rows once every few of the
//! user's entries: each message's rows land on pages that no other message
//! of the batch touches, so writing them every time was a WAL frame and a
//! checkpoint copy per recipient. It counts the entries it has not written
//! in `unindexed`, in the transaction that appends them; the rows and that
//! many newest entries of the list are together the index.
//!
//! Every other path folds those entries in first: whoever takes a list head
//! ([`Store::append_in`], [`Store::lock_lists`]) before it reads or changes
//! the rows, and a reader ([`Store::settle_conversations`]) before it reads
//! them. The fold is the append's ([`conversations::index`]), so the rows
//! come out the same as if every batch had written them.
//!
//! [`Store::append_in`]: super::Store::append_in

use std::collections::BTreeMap;

use sqlx::{Any, QueryBuilder, Row};

use super::conversations::{self, ConvKey, Head, NewRow};
use super::messages::{decode_mentions, push_ids, CHUNK};
use super::{id, Result, Store, Tx};

/// Entries of one list that its conversation rows do not reflect: the
/// seqs after `after`, up to and including `upto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unindexed {
    pub user_id: u64,
    pub after: u64,
    pub upto: u64,
}

/// One entry read back for the fold.
struct Entry {
    user_id: u64,
    seq: u64,
    conv_type: i32,
    conv_id: u64,
    sender_id: u64,
    content_type: u32,
    mentions: Vec<u64>,
}

impl Store {
    /// The list head of each of `users` and how many of its newest entries
    /// the rows do not reflect, for those that have a list.
    pub(super) async fn heads_of(
        &self,
        tx: &mut Tx,
        users: &[u64],
    ) -> Result<Vec<(u64, u64, u64)>> {
        let mut heads = Vec::with_capacity(users.len());
        for chunk in users.chunks(CHUNK) {
            let mut q = QueryBuilder::<Any>::new(
                "SELECT user_id, seq, unindexed FROM user_seqs WHERE user_id IN (",
            );
            push_ids(&mut q, chunk.iter().copied());
            q.push(")");
            for row in q.build().fetch_all(&mut **tx).await? {
                heads.push((
                    id(&row, "user_id")?,
                    id(&row, "seq")?,
                    id(&row, "unindexed")?,
                ));
            }
        }
        Ok(heads)
    }

    /// Folds `lists`' unindexed entries into their conversation rows and
    /// marks every entry of those lists indexed. The caller holds the
    /// lists' heads, and `upto` is each list's head before anything the
    /// caller appends.
    pub(super) async fn fold_unindexed(&self, tx: &mut Tx, lists: &[Unindexed]) -> Result<()> {
        let lists: Vec<&Unindexed> = lists.iter().filter(|l| l.upto > l.after).collect();
        if lists.is_empty() {
            return Ok(());
        }
        let mut entries = Vec::new();
        for list in &lists {
            let rows = sqlx::query(
                "SELECT um.seq, um.conv_type, um.conv_id, m.sender_id, m.content_type, \
                 m.mentions FROM user_messages um JOIN messages m ON m.id = um.message_id \
                 WHERE um.user_id = ? AND um.seq > ? AND um.seq <= ? ORDER BY um.seq",
            )
            .bind(list.user_id as i64)
            .bind(list.after as i64)
            .bind(list.upto as i64)
            .fetch_all(&mut **tx)
            .await?;
            for row in &rows {
                entries.push(Entry {
                    user_id: list.user_id,
                    seq: id(row, "seq")?,
                    conv_type: row.try_get::<i64, _>("conv_type")? as i32,
                    conv_id: id(row, "conv_id")?,
                    sender_id: id(row, "sender_id")?,
                    content_type: row.try_get::<i64, _>("content_type")? as u32,
                    mentions: decode_mentions(&row.try_get::<String, _>("mentions")?),
                });
            }
        }
        let rows: Vec<NewRow<'_>> = entries
            .iter()
            .map(|e| NewRow {
                user_id: e.user_id,
                seq: e.seq,
                conv_type: e.conv_type,
                conv_id: e.conv_id,
                // Only the writer's INSERT of a new row reads it.
                message_id: &[],
                sender_id: e.sender_id,
                content_type: e.content_type,
                mentions: &e.mentions,
            })
            .collect();
        let known = self.conversation_heads(tx, &rows).await?;
        let indexed = conversations::index(&rows, &known);
        self.write_heads(tx, &indexed.heads).await?;
        for chunk in lists.chunks(CHUNK) {
            let mut q =
                QueryBuilder::<Any>::new("UPDATE user_seqs SET unindexed = 0 WHERE user_id IN (");
            push_ids(&mut q, chunk.iter().map(|l| l.user_id));
            q.push(")");
            q.build().execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Writes conversation heads an append or a fold computed.
    pub(super) async fn write_heads(
        &self,
        tx: &mut Tx,
        heads: &BTreeMap<ConvKey, (Head, bool)>,
    ) -> Result<()> {
        let heads: Vec<_> = heads.iter().collect();
        for chunk in heads.chunks(CHUNK) {
            let mut q = QueryBuilder::<Any>::new(
                "INSERT INTO conversations \
                 (user_id, conv_type, conv_id, last_seq, change_seq, unread, mentions, hidden) ",
            );
            q.push_values(chunk, |mut b, (key, (head, _))| {
                b.push_bind(key.user_id as i64)
                    .push_bind(key.conv_type as i64)
                    .push_bind(key.conv_id as i64)
                    .push_bind(head.last_seq as i64)
                    .push_bind(head.change_seq as i64)
                    .push_bind(head.unread as i64)
                    .push_bind(head.mentions as i64)
                    .push_bind(i64::from(head.hidden));
            });
            q.push(self.dialect.conversation_head_upsert());
            q.build().execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Brings `user_id`'s conversation rows up to its list, and returns a
    /// seq they reflect at least: every entry up to it, and perhaps later
    /// ones. A reader of the rows calls this first.
    pub async fn settle_conversations(&self, user_id: u64) -> Result<u64> {
        let head: Option<(i64, i64)> =
            sqlx::query_as("SELECT seq, unindexed FROM user_seqs WHERE user_id = ?")
                .bind(user_id as i64)
                .fetch_optional(self.pool())
                .await?;
        if let (Some((_, unindexed)), Some(writer)) = (head, &self.writer) {
            if unindexed > 0 {
                if let Some(seq) = writer.settle(user_id).await? {
                    return Ok(seq);
                }
            }
        }
        match head {
            None => Ok(0),
            Some((seq, 0)) => Ok(seq as u64),
            Some(_) => {
                let mut tx = self.begin_write().await?;
                self.lock_lists(&mut tx, &[user_id]).await?;
                let seq: i64 = sqlx::query_scalar("SELECT seq FROM user_seqs WHERE user_id = ?")
                    .bind(user_id as i64)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(seq as u64)
            }
        }
    }
}
