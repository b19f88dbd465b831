//! Recalling a message: the stored message loses its content and is marked
//! recalled; the lists that hold it are found for the recall event, and
//! where it counted as unread it stops counting.

use sqlx::{Any, QueryBuilder, Row};

use super::conversations::{counts_as_unread, mentions_owner, ConvKey};
use super::messages::Recipient;
use super::{id, Result, Store, Tx};

/// What a recall needs to know about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub sender_id: u64,
    pub conv_type: i32,
    pub receiver_id: u64,
    pub content_type: u32,
    pub status: i32,
    pub created_at: i64,
}

/// `status` of a recalled message.
pub const RECALLED: i32 = 1;

impl Store {
    pub async fn message_meta(&self, message_id: &[u8]) -> Result<Option<MessageMeta>> {
        let row = sqlx::query(
            "SELECT sender_id, conv_type, receiver_id, content_type, status, created_at FROM messages WHERE id = ?",
        )
        .bind(message_id.to_vec())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(MessageMeta {
                sender_id: id(&r, "sender_id")?,
                conv_type: r.try_get::<i64, _>("conv_type")? as i32,
                receiver_id: id(&r, "receiver_id")?,
                content_type: r.try_get::<i64, _>("content_type")? as u32,
                status: r.try_get::<i64, _>("status")? as i32,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// Marks the message recalled and clears its content; false if it
    /// already was.
    pub async fn mark_recalled(&self, tx: &mut Tx, message_id: &[u8]) -> Result<bool> {
        let done =
            sqlx::query("UPDATE messages SET status = ?, content = ? WHERE id = ? AND status <> ?")
                .bind(RECALLED as i64)
                .bind(Vec::<u8>::new())
                .bind(message_id.to_vec())
                .bind(RECALLED as i64)
                .execute(&mut **tx)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every list that holds the message, with the conversation as its owner sees it.
    pub async fn holders(&self, tx: &mut Tx, message_id: &[u8]) -> Result<Vec<Recipient>> {
        let rows = sqlx::query(
            "SELECT user_id, conv_id FROM user_messages WHERE message_id = ? ORDER BY user_id",
        )
        .bind(message_id.to_vec())
        .fetch_all(&mut **tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Recipient {
                    user_id: id(r, "user_id")?,
                    conv_id: id(r, "conv_id")?,
                })
            })
            .collect()
    }
}

impl Store {
    /// Whether the message is in `user`'s list.
    pub async fn holds(&self, user: u64, message_id: &[u8]) -> Result<bool> {
        let row: Option<i64> = sqlx::query_scalar(
            "SELECT seq FROM user_messages WHERE message_id = ? AND user_id = ?",
        )
        .bind(message_id.to_vec())
        .bind(user as i64)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }
}

impl Store {
    /// Takes a recalled message out of the unread and mention counts of
    /// every list where it counted: after its conversation's read position.
    /// The caller holds those lists' heads (it appended the recall event).
    pub async fn uncount_recalled(&self, tx: &mut Tx, message_id: &[u8]) -> Result<()> {
        let rows = sqlx::query(
            "SELECT um.user_id, um.seq, um.conv_type, um.conv_id, m.sender_id, m.content_type, \
             m.mentions FROM user_messages um JOIN messages m ON m.id = um.message_id \
             WHERE um.message_id = ? AND um.deleted = 0",
        )
        .bind(message_id.to_vec())
        .fetch_all(&mut **tx)
        .await?;
        // (holder's conversation, the message's seq there), by whether it mentioned the holder.
        let mut counted: [Vec<(ConvKey, u64)>; 2] = [Vec::new(), Vec::new()];
        for row in &rows {
            let owner = id(row, "user_id")?;
            let content_type = row.try_get::<i64, _>("content_type")? as u32;
            if !counts_as_unread(owner, id(row, "sender_id")?, content_type) {
                continue;
            }
            let mentions = super::messages::decode_mentions(&row.try_get::<String, _>("mentions")?);
            let key = ConvKey {
                user_id: owner,
                conv_type: row.try_get::<i64, _>("conv_type")? as i32,
                conv_id: id(row, "conv_id")?,
            };
            counted[usize::from(mentions_owner(owner, &mentions))].push((key, id(row, "seq")?));
        }
        for (mentioned, holders) in counted.iter().enumerate() {
            for chunk in holders.chunks(super::messages::CHUNK) {
                let mut q =
                    QueryBuilder::<Any>::new("UPDATE conversations SET unread = unread - 1");
                if mentioned == 1 {
                    q.push(", mentions = CASE WHEN mentions > 0 THEN mentions - 1 ELSE 0 END");
                }
                q.push(" WHERE unread > 0 AND (");
                for (i, (key, seq)) in chunk.iter().enumerate() {
                    if i > 0 {
                        q.push(" OR ");
                    }
                    q.push("(user_id = ").push_bind(key.user_id as i64);
                    q.push(" AND conv_type = ")
                        .push_bind(i64::from(key.conv_type));
                    q.push(" AND conv_id = ").push_bind(key.conv_id as i64);
                    q.push(" AND read_seq < ").push_bind(*seq as i64);
                    q.push(")");
                }
                q.push(")");
                q.build().execute(&mut **tx).await?;
            }
        }
        Ok(())
    }
}
