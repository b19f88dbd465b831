//! Messages and the per-user lists (DESIGN.md "Delivery model").
//!
//! An append stores each message once and gives every recipient a row in its
//! own list with that user's next seq. The seq comes from the user's counter
//! row in `user_seqs`, updated (and so row-locked) inside the same
//! transaction that inserts the list rows, in ascending user id: for every
//! user, commit order is seq order and seqs have no gaps.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use sqlx::any::AnyRow;
use sqlx::{Any, QueryBuilder, Row};

use super::conversations::{self, ConvKey, Head, NewRow};
use super::sqlite_writer::Refused;
use super::unindexed::Unindexed;
use super::{id, Result, Store, StoreError, Tx};

/// `status` of an entry deleted for its list's owner (MessageStatus::DELETED).
pub const DELETED: i32 = 2;

/// Rows per multi-row statement: well under SQLite's and MySQL's parameter limits.
pub(super) const CHUNK: usize = 200;

/// One recipient of a message: whose list, and the conversation as that user sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipient {
    pub user_id: u64,
    pub conv_id: u64,
}

/// A message to append, with everyone who gets a list row.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: [u8; 16],
    pub sender_id: u64,
    pub sender_device_id: u64,
    pub conv_type: i32,
    pub receiver_id: u64,
    pub content_type: u32,
    pub content: Bytes,
    pub mentions: Vec<u64>,
    pub client_msg_id: Option<String>,
    pub created_at: i64,
    /// Distinct users; each gets exactly one row.
    pub recipients: Vec<Recipient>,
    /// Push to the sending device too: true for system events, whose actor
    /// gets no seq in its reply; false for SEND, whose reply carries it.
    pub push_to_sender_device: bool,
}

/// Where an appended message landed: `seqs[i]` is the seq in the list of `recipients[i]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub seqs: Vec<u64>,
}

/// A message as stored.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub id: Vec<u8>,
    pub sender_id: u64,
    pub sender_device_id: u64,
    pub content_type: u32,
    pub content: Vec<u8>,
    pub mentions: Vec<u64>,
    pub client_msg_id: String,
    pub status: i32,
    pub created_at: i64,
}

/// One row of a user's list joined with its message.
#[derive(Debug, Clone)]
pub struct ListEntry {
    pub seq: u64,
    pub conv_type: i32,
    pub conv_id: u64,
    pub message: StoredMessage,
}

/// A message already stored under a sender's client_msg_id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub id: Vec<u8>,
    pub sender_seq: u64,
    pub created_at: i64,
}

pub(super) fn encode_mentions(m: &[u64]) -> String {
    m.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

pub(super) fn decode_mentions(s: &str) -> Vec<u64> {
    s.split(',').filter_map(|x| x.parse().ok()).collect()
}

impl ListEntry {
    /// A list row joined with its message; one deleted for the list's
    /// owner comes emptied, with status [`DELETED`].
    pub(super) fn from_row(row: &AnyRow) -> Result<ListEntry> {
        let mentions: String = row.try_get("mentions")?;
        let mut entry = ListEntry {
            seq: id(row, "seq")?,
            conv_type: row.try_get::<i64, _>("conv_type")? as i32,
            conv_id: id(row, "conv_id")?,
            message: StoredMessage {
                id: hex_id(row, "id_hex")?,
                sender_id: id(row, "sender_id")?,
                sender_device_id: id(row, "sender_device_id")?,
                content_type: row.try_get::<i64, _>("content_type")? as u32,
                content: row.try_get("content")?,
                mentions: decode_mentions(&mentions),
                client_msg_id: row
                    .try_get::<Option<String>, _>("client_msg_id")?
                    .unwrap_or_default(),
                status: row.try_get::<i64, _>("status")? as i32,
                created_at: row.try_get("created_at")?,
            },
        };
        if row.try_get::<i64, _>("deleted")? != 0 {
            let m = &mut entry.message;
            m.content.clear();
            m.mentions.clear();
            m.status = DELETED;
        }
        Ok(entry)
    }
}

/// How many list rows each user gets from `msgs`, in ascending user id:
/// the order in which a batch takes the list heads' locks.
pub(super) fn rows_per_user<'m>(msgs: impl Iterator<Item = &'m NewMessage>) -> BTreeMap<u64, u64> {
    let mut counts = BTreeMap::new();
    for m in msgs {
        for r in &m.recipients {
            *counts.entry(r.user_id).or_default() += 1;
        }
    }
    counts
}

/// Gives each recipient of `msgs`, in message order, the next seq of its
/// list from `next` (the first seq of each recipient's part of the batch),
/// so that a connection's sends keep their order: where each message
/// landed, and the list rows to insert. Both append paths use it.
pub(super) fn assign_seqs<'m>(
    msgs: impl ExactSizeIterator<Item = &'m NewMessage>,
    next: &mut BTreeMap<u64, u64>,
) -> (Vec<Appended>, Vec<NewRow<'m>>) {
    let mut appended = Vec::with_capacity(msgs.len());
    let mut rows = Vec::new();
    for m in msgs {
        let mut seqs = Vec::with_capacity(m.recipients.len());
        for r in &m.recipients {
            let slot = next
                .get_mut(&r.user_id)
                .expect("every recipient was counted");
            seqs.push(*slot);
            rows.push(NewRow::of(m, r.user_id, *slot, r.conv_id));
            *slot += 1;
        }
        appended.push(Appended { seqs });
    }
    (appended, rows)
}

/// Users a batch needed but that have no list (deleted meanwhile).
#[derive(Debug, thiserror::Error)]
#[error("users without a list: {0:?}")]
pub struct MissingUsers(pub Vec<u64>);

impl Store {
    /// Appends `msgs` in one transaction (group commit). Returns, per message,
    /// the seq of each recipient. `Err(Ok(missing))` names recipients that no
    /// longer exist; nothing was stored then.
    pub async fn append(
        &self,
        msgs: Vec<Arc<NewMessage>>,
    ) -> Result<std::result::Result<Vec<Appended>, MissingUsers>> {
        if let Some(writer) = &self.writer {
            let mut msgs = msgs;
            // Refused again only if another store's writer on the same
            // file appended to the same lists in between.
            for _ in 0..3 {
                match writer.append(msgs, self.records_after_send()).await? {
                    Ok(appended) => {
                        self.health.succeeded();
                        return Ok(Ok(appended));
                    }
                    Err(Refused::Missing(missing)) => return Ok(Err(missing)),
                    Err(Refused::Unindexed { users, msgs: again }) => {
                        let mut tx = self.begin_write().await?;
                        self.lock_lists(&mut tx, &users).await?;
                        tx.commit().await?;
                        msgs = again;
                    }
                }
            }
            return Err(StoreError::Database(sqlx::Error::Protocol(
                "the batch writer kept refusing lists the store had folded".into(),
            )));
        }
        let msgs: Vec<&NewMessage> = msgs.iter().map(|m| &**m).collect();
        let mut tx = self.begin_write().await?;
        let appended = self.append_in(&mut tx, &msgs).await?;
        match appended {
            Ok(a) => {
                self.commit_messages(tx).await?;
                Ok(Ok(a))
            }
            Err(missing) => {
                tx.rollback().await?;
                Ok(Err(missing))
            }
        }
    }

    /// [`Store::append`] inside the caller's transaction; the caller commits
    /// (or rolls back when recipients are missing).
    pub async fn append_in(
        &self,
        tx: &mut Tx,
        msgs: &[&NewMessage],
    ) -> Result<std::result::Result<Vec<Appended>, MissingUsers>> {
        let users: Vec<(u64, u64)> = rows_per_user(msgs.iter().copied()).into_iter().collect();

        // 1. Take the counter rows (row locks) and advance them.
        let mut missing = Vec::new();
        for chunk in users.chunks(CHUNK) {
            let mut q = QueryBuilder::<Any>::new("UPDATE user_seqs SET seq = seq + CASE user_id");
            for (user, n) in chunk {
                q.push(" WHEN ").push_bind(*user as i64);
                q.push(" THEN ").push_bind(*n as i64);
            }
            q.push(" ELSE 0 END WHERE user_id IN (");
            push_ids(&mut q, chunk.iter().map(|(u, _)| *u));
            q.push(")");
            let done = q.build().execute(&mut **tx).await?;
            if done.rows_affected() != chunk.len() as u64 {
                missing.extend(chunk.iter().map(|(u, _)| *u));
            }
        }
        // 2. Read the new heads.
        let ids: Vec<u64> = users.iter().map(|(u, _)| *u).collect();
        let heads = self.heads_of(tx, &ids).await?;
        let mut next: BTreeMap<u64, u64> = heads.iter().map(|&(u, seq, _)| (u, seq)).collect();
        if !missing.is_empty() {
            missing.retain(|u| !next.contains_key(u));
            return Ok(Err(MissingUsers(missing)));
        }
        // The head is the last seq handed out; this batch's rows end there.
        for (user, n) in &users {
            let head = next.get_mut(user).expect("every user has a head");
            *head = *head + 1 - n;
        }
        // Entries before this batch's that the rows do not reflect yet go
        // in first, so the rows this batch starts from are exact.
        let lists: Vec<Unindexed> = heads
            .iter()
            .map(|&(user_id, _, unindexed)| {
                let upto = next[&user_id] - 1;
                Unindexed {
                    user_id,
                    after: upto - unindexed.min(upto),
                    upto,
                }
            })
            .collect();
        self.fold_unindexed(tx, &lists).await?;

        // 3. Assign seqs in message order, so a connection's sends keep their order.
        let (appended, rows) = assign_seqs(msgs.iter().copied(), &mut next);

        // 4. The conversations' heads, under the list heads' locks.
        let known = self.conversation_heads(tx, &rows).await?;
        let indexed = conversations::index(&rows, &known);

        // 5. The messages, once each, then the list rows, then the index.
        for chunk in msgs.chunks(CHUNK) {
            let mut q = QueryBuilder::<Any>::new(
                "INSERT INTO messages (id, sender_id, sender_device_id, conv_type, receiver_id, \
                 content_type, content, mentions, client_msg_id, status, created_at) ",
            );
            q.push_values(chunk, |mut b, m| {
                b.push_bind(m.id.to_vec())
                    .push_bind(m.sender_id as i64)
                    .push_bind(m.sender_device_id as i64)
                    .push_bind(m.conv_type as i64)
                    .push_bind(m.receiver_id as i64)
                    .push_bind(m.content_type as i64)
                    .push_bind(m.content.to_vec())
                    .push_bind(encode_mentions(&m.mentions))
                    .push_bind(m.client_msg_id.clone())
                    .push_bind(0i64)
                    .push_bind(m.created_at);
            });
            q.build()
                .execute(&mut **tx)
                .await
                .map_err(StoreError::classify)?;
        }
        let linked: Vec<(&NewRow<'_>, u64)> =
            rows.iter().zip(indexed.prev_seqs.iter().copied()).collect();
        for chunk in linked.chunks(CHUNK) {
            let mut q = QueryBuilder::<Any>::new(
                "INSERT INTO user_messages (user_id, seq, message_id, conv_type, conv_id, prev_seq) ",
            );
            q.push_values(chunk, |mut b, (row, prev_seq)| {
                b.push_bind(row.user_id as i64)
                    .push_bind(row.seq as i64)
                    .push_bind(row.message_id.to_vec())
                    .push_bind(row.conv_type as i64)
                    .push_bind(row.conv_id as i64)
                    .push_bind(*prev_seq as i64);
            });
            q.build()
                .execute(&mut **tx)
                .await
                .map_err(StoreError::classify)?;
        }
        self.write_heads(tx, &indexed.heads).await?;
        // 6. For the after-send webhook, when one is configured.
        if self.records_after_send() {
            for chunk in msgs.chunks(CHUNK) {
                let mut q = QueryBuilder::<Any>::new(
                    "INSERT INTO webhook_outbox (message_id, created_at) ",
                );
                q.push_values(chunk, |mut b, m| {
                    b.push_bind(m.id.to_vec()).push_bind(m.created_at);
                });
                q.build().execute(&mut **tx).await?;
            }
        }
        Ok(Ok(appended))
    }

    /// The current head of each conversation `rows` append to, for those
    /// that have a row. The caller holds the rows' list heads.
    pub(super) async fn conversation_heads(
        &self,
        tx: &mut Tx,
        rows: &[NewRow<'_>],
    ) -> Result<BTreeMap<ConvKey, Head>> {
        let keys: Vec<ConvKey> = rows
            .iter()
            .map(NewRow::key)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut known = BTreeMap::new();
        for chunk in keys.chunks(CHUNK) {
            let mut q = QueryBuilder::<Any>::new(
                "SELECT user_id, conv_type, conv_id, last_seq, change_seq, unread, mentions, hidden \
                 FROM conversations WHERE ",
            );
            for (i, key) in chunk.iter().enumerate() {
                if i > 0 {
                    q.push(" OR ");
                }
                q.push("(user_id = ").push_bind(key.user_id as i64);
                q.push(" AND conv_type = ").push_bind(key.conv_type as i64);
                q.push(" AND conv_id = ").push_bind(key.conv_id as i64);
                q.push(")");
            }
            for row in q.build().fetch_all(&mut **tx).await? {
                let key = ConvKey {
                    user_id: id(&row, "user_id")?,
                    conv_type: row.try_get::<i64, _>("conv_type")? as i32,
                    conv_id: id(&row, "conv_id")?,
                };
                let head = Head {
                    last_seq: id(&row, "last_seq")?,
                    change_seq: id(&row, "change_seq")?,
                    unread: id(&row, "unread")?,
                    mentions: id(&row, "mentions")?,
                    hidden: row.try_get::<i64, _>("hidden")? != 0,
                };
                known.insert(key, head);
            }
        }
        Ok(known)
    }

    /// The message a sender already stored under `client_msg_id`, with its
    /// seq in the sender's own list (0 for the system sender, which has none).
    pub async fn find_by_client_msg_id(
        &self,
        sender_id: u64,
        client_msg_id: &str,
    ) -> Result<Option<Existing>> {
        let row = sqlx::query(
            "SELECT HEX(m.id) AS id_hex, m.created_at, COALESCE(um.seq, 0) AS seq FROM messages m \
             LEFT JOIN user_messages um ON um.message_id = m.id AND um.user_id = m.sender_id \
             WHERE m.sender_id = ? AND m.client_msg_id = ?",
        )
        .bind(sender_id as i64)
        .bind(client_msg_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(Existing {
                id: hex_id(&r, "id_hex")?,
                sender_seq: id(&r, "seq")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// Up to `limit` entries of a user's list after `after_seq`, ascending.
    pub async fn list_after(
        &self,
        user_id: u64,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<ListEntry>> {
        let rows = sqlx::query(
            "SELECT um.seq, um.conv_type, um.conv_id, um.deleted, HEX(m.id) AS id_hex, m.sender_id, m.sender_device_id, \
             m.content_type, m.content, m.mentions, m.client_msg_id, m.status, m.created_at \
             FROM user_messages um JOIN messages m ON m.id = um.message_id \
             WHERE um.user_id = ? AND um.seq > ? ORDER BY um.seq LIMIT ?",
        )
        .bind(user_id as i64)
        .bind(after_seq.min(i64::MAX as u64) as i64)
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(ListEntry::from_row).collect()
    }
}

/// Reads a binary id selected as `HEX(col)`: sqlx's Any driver cannot read
/// MySQL BINARY columns as bytes, and HEX() is the same in both engines.
fn hex_id(row: &AnyRow, col: &str) -> Result<Vec<u8>> {
    let text: String = row.try_get(col)?;
    hex::decode(&text).map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))
}

/// Binds `ids` as a comma-separated list (the inside of an `IN (...)`).
pub(super) fn push_ids(q: &mut QueryBuilder<'_, Any>, ids: impl Iterator<Item = u64>) {
    let mut sep = q.separated(", ");
    for id in ids {
        sep.push_bind(id as i64);
    }
}

#[cfg(test)]
pub(crate) fn test_message(sender: u64, receiver: u64, cmid: Option<&str>) -> NewMessage {
    NewMessage {
        id: *uuid::Uuid::now_v7().as_bytes(),
        sender_id: sender,
        sender_device_id: 1,
        conv_type: 1,
        receiver_id: receiver,
        content_type: 1,
        content: Bytes::from_static(b"hi"),
        mentions: vec![],
        client_msg_id: cmid.map(str::to_owned),
        created_at: 1,
        recipients: vec![
            Recipient {
                user_id: sender,
                conv_id: receiver,
            },
            Recipient {
                user_id: receiver,
                conv_id: sender,
            },
        ],
        push_to_sender_device: false,
    }
}
