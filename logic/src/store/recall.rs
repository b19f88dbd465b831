//! Recalling a message: the stored message loses its content and is marked
//! recalled; the lists that hold it are found for the recall event.

use sqlx::Row;

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
