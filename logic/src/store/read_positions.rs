//! Read positions, one-to-one receipts and a user's settings of a
//! conversation (docs/protocol.md "Conversations").
//!
//! MARK_READ changes a conversation row of the reader, and for a receipt
//! one of the other party; both only under the lists' heads, which
//! [`Store::lock_lists`] takes before anything is read, so an append that
//! races the change cannot write its counts over it.

use sqlx::{Any, QueryBuilder, Row};

use super::conversation_reads::{walk, MAX_WALK};
use super::conversations::{counts_as_unread, mentions_owner, ConvKey};
use super::messages::{decode_mentions, push_ids, CHUNK};
use super::recall::RECALLED;
use super::unindexed::Unindexed;
use super::{id, Result, Store, Tx};

/// What a change of a user's own state needs of a conversation row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadState {
    pub last_seq: u64,
    pub read_seq: u64,
    pub peer_read_seq: u64,
    pub settings: Settings,
}

/// A user's own settings of one conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub pinned: bool,
    pub muted: bool,
    pub hidden: bool,
}

/// What lies after a read position in one conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterRead {
    /// Entries after it that count as unread, and those that mention the user.
    pub unread: u64,
    pub mentions: u64,
    /// The message of the conversation's newest entry at or before it, if any.
    pub read_message: Option<Vec<u8>>,
}

impl Store {
    /// Takes the list heads of `users` in ascending id, as an append does,
    /// and folds in the entries their conversation rows do not reflect yet.
    pub async fn lock_lists(&self, tx: &mut Tx, users: &[u64]) -> Result<()> {
        let mut users = users.to_vec();
        users.sort_unstable();
        users.dedup();
        for chunk in users.chunks(CHUNK) {
            let mut q =
                QueryBuilder::<Any>::new("UPDATE user_seqs SET seq = seq WHERE user_id IN (");
            push_ids(&mut q, chunk.iter().copied());
            q.push(")");
            q.build().execute(&mut **tx).await?;
        }
        // Whatever the caller reads or changes of the rows is then exact.
        let lists: Vec<Unindexed> = self
            .heads_of(tx, &users)
            .await?
            .into_iter()
            .map(|(user_id, seq, unindexed)| Unindexed {
                user_id,
                after: seq - unindexed.min(seq),
                upto: seq,
            })
            .collect();
        self.fold_unindexed(tx, &lists).await
    }

    /// The state of one conversation row, if the user has it.
    pub async fn read_state(&self, tx: &mut Tx, key: ConvKey) -> Result<Option<ReadState>> {
        let row = sqlx::query(
            "SELECT last_seq, read_seq, peer_read_seq, pinned, muted, hidden FROM conversations \
             WHERE user_id = ? AND conv_type = ? AND conv_id = ?",
        )
        .bind(key.user_id as i64)
        .bind(i64::from(key.conv_type))
        .bind(key.conv_id as i64)
        .fetch_optional(&mut **tx)
        .await?;
        row.map(|r| {
            let flag = |col: &str| -> Result<bool> { Ok(r.try_get::<i64, _>(col)? != 0) };
            Ok(ReadState {
                last_seq: id(&r, "last_seq")?,
                read_seq: id(&r, "read_seq")?,
                peer_read_seq: id(&r, "peer_read_seq")?,
                settings: Settings {
                    pinned: flag("pinned")?,
                    muted: flag("muted")?,
                    hidden: flag("hidden")?,
                },
            })
        })
        .transpose()
    }

    /// Counts the entries of the conversation whose newest entry is at
    /// `last_seq` in `user_id`'s list that lie after `read_seq` and count
    /// as unread (a recalled message no longer does), walking back from
    /// the newest: the cost is the number of entries after `read_seq`.
    pub async fn after_read(
        &self,
        tx: &mut Tx,
        user_id: u64,
        last_seq: u64,
        read_seq: u64,
    ) -> Result<AfterRead> {
        let mut after = AfterRead {
            unread: 0,
            mentions: 0,
            read_message: None,
        };
        let mut start = last_seq;
        // The first row of the walk is the newest; each row links to the
        // next older one, and the walk stops above `read_seq`.
        while start > read_seq {
            let rows = walk(&mut **tx, user_id, start, read_seq, MAX_WALK).await?;
            start = 0;
            for row in &rows {
                start = id(row, "prev_seq")?;
                if row.try_get::<i64, _>("deleted")? != 0 {
                    continue;
                }
                let recalled = row.try_get::<i64, _>("status")? == i64::from(RECALLED);
                let content_type = row.try_get::<i64, _>("content_type")? as u32;
                if !recalled && counts_as_unread(user_id, id(row, "sender_id")?, content_type) {
                    after.unread += 1;
                    let mentions = decode_mentions(&row.try_get::<String, _>("mentions")?);
                    if mentions_owner(user_id, &mentions) {
                        after.mentions += 1;
                    }
                }
            }
        }
        // `start` is now the newest entry at or before the read position.
        if start != 0 {
            let hex: Option<String> = sqlx::query_scalar(
                "SELECT HEX(message_id) FROM user_messages WHERE user_id = ? AND seq = ?",
            )
            .bind(user_id as i64)
            .bind(start as i64)
            .fetch_optional(&mut **tx)
            .await?;
            after.read_message = hex.and_then(|h| hex::decode(h).ok());
        }
        Ok(after)
    }

    /// Sets a conversation's read position and what is unread after it.
    pub async fn set_read(
        &self,
        tx: &mut Tx,
        key: ConvKey,
        read_seq: u64,
        after: &AfterRead,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE conversations SET read_seq = ?, unread = ?, mentions = ? \
             WHERE user_id = ? AND conv_type = ? AND conv_id = ?",
        )
        .bind(read_seq as i64)
        .bind(after.unread as i64)
        .bind(after.mentions as i64)
        .bind(key.user_id as i64)
        .bind(i64::from(key.conv_type))
        .bind(key.conv_id as i64)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Records how far the other party of a one-to-one conversation has read.
    pub async fn set_peer_read(&self, tx: &mut Tx, key: ConvKey, peer_read_seq: u64) -> Result<()> {
        sqlx::query(
            "UPDATE conversations SET peer_read_seq = ? \
             WHERE user_id = ? AND conv_type = ? AND conv_id = ? AND peer_read_seq < ?",
        )
        .bind(peer_read_seq as i64)
        .bind(key.user_id as i64)
        .bind(i64::from(key.conv_type))
        .bind(key.conv_id as i64)
        .bind(peer_read_seq as i64)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Writes a conversation's settings.
    pub async fn set_settings(&self, tx: &mut Tx, key: ConvKey, s: Settings) -> Result<()> {
        sqlx::query(
            "UPDATE conversations SET pinned = ?, muted = ?, hidden = ? \
             WHERE user_id = ? AND conv_type = ? AND conv_id = ?",
        )
        .bind(i64::from(s.pinned))
        .bind(i64::from(s.muted))
        .bind(i64::from(s.hidden))
        .bind(key.user_id as i64)
        .bind(i64::from(key.conv_type))
        .bind(key.conv_id as i64)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The seq of a message in `user_id`'s list, if it holds it.
    pub async fn seq_of(
        &self,
        tx: &mut Tx,
        user_id: u64,
        message_id: &[u8],
    ) -> Result<Option<u64>> {
        let seq: Option<i64> = sqlx::query_scalar(
            "SELECT seq FROM user_messages WHERE message_id = ? AND user_id = ?",
        )
        .bind(message_id.to_vec())
        .bind(user_id as i64)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(seq.map(|s| s as u64))
    }
}

/// A message of a group, and who among its current members has read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRead {
    pub message_id: Vec<u8>,
    pub sender_id: u64,
    /// Current members other than the sender whose read position in the
    /// group is at or past the message, ascending.
    pub readers: Vec<u64>,
}

impl Store {
    /// For each of `message_ids` that is a message of group `group_id`,
    /// who has read it: derived from each member's read position in their
    /// own list, so it is exact whenever those are, and a read costs no
    /// write beyond MARK_READ's. The cost is one lookup per list holding
    /// each message (the group's size).
    pub async fn group_reads(
        &self,
        group_id: u64,
        message_ids: &[Vec<u8>],
    ) -> Result<Vec<GroupRead>> {
        let mut found: Vec<GroupRead> = Vec::new();
        if message_ids.is_empty() {
            return Ok(found);
        }
        // A member whose row the batch writer has not written yet has not
        // read: a read position is written under the list's head, which
        // writes the row first.
        let mut q = QueryBuilder::<Any>::new(
            "SELECT HEX(m.id) AS id_hex, m.sender_id, um.user_id, \
             CASE WHEN um.seq <= COALESCE(c.read_seq, 0) THEN 1 ELSE 0 END AS has_read \
             FROM messages m \
             JOIN user_messages um ON um.message_id = m.id \
             JOIN group_members gm ON gm.group_id = m.receiver_id AND gm.user_id = um.user_id \
             LEFT JOIN conversations c ON c.user_id = um.user_id AND c.conv_type = m.conv_type \
                 AND c.conv_id = m.receiver_id \
             WHERE m.conv_type = ",
        );
        q.push_bind(GROUP_CONV_TYPE)
            .push(" AND m.receiver_id = ")
            .push_bind(group_id as i64)
            .push(" AND m.id IN (");
        let mut sep = q.separated(", ");
        for id in message_ids {
            sep.push_bind(id.clone());
        }
        q.push(") ORDER BY m.id, um.user_id");
        for row in q.build().fetch_all(self.pool()).await? {
            let hex: String = row.try_get("id_hex")?;
            let message_id = hex::decode(&hex).unwrap_or_default();
            let sender_id = id(&row, "sender_id")?;
            if found.last().is_none_or(|g| g.message_id != message_id) {
                found.push(GroupRead {
                    message_id: message_id.clone(),
                    sender_id,
                    readers: Vec::new(),
                });
            }
            let user = id(&row, "user_id")?;
            if user != sender_id && row.try_get::<i64, _>("has_read")? == 1 {
                found.last_mut().expect("pushed above").readers.push(user);
            }
        }
        Ok(found)
    }
}

/// `ConvType::GROUP` as stored.
const GROUP_CONV_TYPE: i64 = 2;

/// Why entries cannot be deleted for their owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteError {
    /// A seq is not an entry of that conversation (or is a state entry).
    NotInConversation(u64),
}

impl Store {
    /// Deletes entries of one conversation of `key.user_id`'s list for
    /// that user alone; entries already deleted stay so. The caller holds
    /// the list's head.
    pub async fn delete_entries(
        &self,
        tx: &mut Tx,
        key: ConvKey,
        seqs: &[u64],
    ) -> Result<std::result::Result<(), DeleteError>> {
        let mut q = QueryBuilder::<Any>::new(
            "SELECT um.seq FROM user_messages um JOIN messages m ON m.id = um.message_id \
             WHERE (m.content_type < 1300 OR m.content_type >= 1400) AND um.user_id = ",
        );
        q.push_bind(key.user_id as i64)
            .push(" AND um.conv_type = ")
            .push_bind(i64::from(key.conv_type))
            .push(" AND um.conv_id = ")
            .push_bind(key.conv_id as i64)
            .push(" AND um.seq IN (");
        push_ids(&mut q, seqs.iter().copied());
        q.push(")");
        let found: std::collections::HashSet<u64> = q
            .build()
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| id(r, "seq"))
            .collect::<Result<_>>()?;
        if let Some(&missing) = seqs.iter().find(|s| !found.contains(s)) {
            return Ok(Err(DeleteError::NotInConversation(missing)));
        }
        let mut q =
            QueryBuilder::<Any>::new("UPDATE user_messages SET deleted = 1 WHERE user_id = ");
        q.push_bind(key.user_id as i64).push(" AND seq IN (");
        push_ids(&mut q, seqs.iter().copied());
        q.push(")");
        q.build().execute(&mut **tx).await?;
        Ok(Ok(()))
    }

    /// Deletes every entry of one conversation of `key.user_id`'s list up
    /// to `up_to_seq` for that user alone, state entries aside. The cost
    /// is a scan of the user's list. The caller holds the list's head.
    pub async fn clear_entries(&self, tx: &mut Tx, key: ConvKey, up_to_seq: u64) -> Result<()> {
        sqlx::query(
            "UPDATE user_messages SET deleted = 1 \
             WHERE user_id = ? AND conv_type = ? AND conv_id = ? AND seq <= ? AND deleted = 0 \
             AND EXISTS (SELECT 1 FROM messages m WHERE m.id = user_messages.message_id \
                 AND (m.content_type < 1300 OR m.content_type >= 1400))",
        )
        .bind(key.user_id as i64)
        .bind(i64::from(key.conv_type))
        .bind(key.conv_id as i64)
        .bind(up_to_seq.min(i64::MAX as u64) as i64)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}
