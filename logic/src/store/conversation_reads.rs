//! Reading the conversation index (docs/protocol.md "Conversations"): a
//! page of a user's conversations, one conversation, the badge, and one
//! conversation's history along the prev_seq links.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::conversations::counts_as_unread;
use super::messages::ListEntry;
use super::{id, Result, Store};

/// One conversation of a user's index, with its newest entry.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub conv_type: i32,
    pub conv_id: u64,
    /// The seq of its newest entry in the user's list.
    pub last_seq: u64,
    /// The seq of the newest list entry that changed this row.
    pub change_seq: u64,
    pub unread: u64,
    pub mentions: u64,
    pub read_seq: u64,
    /// USER conversations: how far the other party has read this list.
    pub peer_read_seq: u64,
    pub pinned: bool,
    pub muted: bool,
    pub hidden: bool,
    /// The entry at `last_seq`.
    pub last: ListEntry,
}

/// Where a page of the listing starts: after this conversation in the
/// order pinned first, then newest `last_seq` first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListCursor {
    pub pinned: bool,
    pub last_seq: u64,
}

/// A page of one conversation's history, newest first.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    pub entries: Vec<ListEntry>,
    /// The `before_seq` of the next page; 0 when this page reached the
    /// conversation's first entry.
    pub next_before_seq: u64,
}

/// Why a history page cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryError {
    /// `before_seq` is not an entry of that conversation in the user's list.
    NotInConversation,
}

/// Columns of a conversation row and of its newest entry, for
/// [`Conversation::from_row`]; `c` is `conversations`, `um` the list row
/// at its last_seq and `m` its message.
const CONVERSATION_COLUMNS: &str =
    "c.last_seq, c.change_seq, c.unread, c.mentions AS mention_count, c.read_seq, c.peer_read_seq, \
     c.pinned, c.muted, c.hidden, um.seq, um.conv_type, um.conv_id, um.deleted, HEX(m.id) AS id_hex, \
     m.sender_id, m.sender_device_id, m.content_type, m.content, m.mentions, m.client_msg_id, \
     m.status, m.created_at";

const CONVERSATION_FROM: &str = " FROM conversations c \
     JOIN user_messages um ON um.user_id = c.user_id AND um.seq = c.last_seq \
     JOIN messages m ON m.id = um.message_id ";

/// Columns of a list row and its message, for [`ListEntry::from_row`].
pub(super) const ENTRY_COLUMNS: &str =
    "um.seq, um.conv_type, um.conv_id, um.prev_seq, um.deleted, HEX(m.id) AS id_hex, \
     m.sender_id, m.sender_device_id, m.content_type, m.content, m.mentions, m.client_msg_id, \
     m.status, m.created_at";

impl Conversation {
    fn from_row(row: &AnyRow) -> Result<Conversation> {
        let last = ListEntry::from_row(row)?;
        let flag = |col: &str| -> Result<bool> { Ok(row.try_get::<i64, _>(col)? != 0) };
        Ok(Conversation {
            conv_type: last.conv_type,
            conv_id: last.conv_id,
            last_seq: id(row, "last_seq")?,
            change_seq: id(row, "change_seq")?,
            unread: id(row, "unread")?,
            mentions: id(row, "mention_count")?,
            read_seq: id(row, "read_seq")?,
            peer_read_seq: id(row, "peer_read_seq")?,
            pinned: flag("pinned")?,
            muted: flag("muted")?,
            hidden: flag("hidden")?,
            last,
        })
    }
}

/// Up to `limit` rows of one conversation in `user_id`'s list, from the
/// row at `start` back along prev_seq while the seqs stay above `floor`,
/// newest first, joined with their messages ([`ENTRY_COLUMNS`]): `limit`
/// primary-key lookups. MySQL caps a recursion at 1,000 by default; a walk
/// takes at most [`MAX_WALK`] at once.
pub(super) async fn walk<'c, E>(
    e: E,
    user_id: u64,
    start: u64,
    floor: u64,
    limit: u32,
) -> Result<Vec<AnyRow>>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let sql = format!(
        "WITH RECURSIVE chain (seq, n) AS ( \
             SELECT CAST(? AS SIGNED), 1 \
             UNION ALL \
             SELECT p.prev_seq, chain.n + 1 FROM chain \
             JOIN user_messages p ON p.user_id = ? AND p.seq = chain.seq \
             WHERE p.prev_seq > ? AND chain.n < ? \
         ) \
         SELECT {ENTRY_COLUMNS} FROM chain \
         JOIN user_messages um ON um.user_id = ? AND um.seq = chain.seq \
         JOIN messages m ON m.id = um.message_id \
         ORDER BY um.seq DESC"
    );
    Ok(sqlx::query(&sql)
        .bind(start.min(i64::MAX as u64) as i64)
        .bind(user_id as i64)
        .bind(floor.min(i64::MAX as u64) as i64)
        .bind(i64::from(limit.min(MAX_WALK)))
        .bind(user_id as i64)
        .fetch_all(e)
        .await?)
}

/// The longest walk one statement takes (see [`walk`]).
pub(super) const MAX_WALK: u32 = 200;

impl Store {
    /// Up to `limit` of `user_id`'s conversations that are not hidden,
    /// pinned first, then by newest entry, starting after `after`.
    ///
    /// The page is sorted from the user's rows (no index follows every
    /// message's move to the top of the list): it costs a scan of the
    /// user's conversations and holds only `limit` of them at a time.
    pub async fn conversations_page(
        &self,
        user_id: u64,
        after: Option<ListCursor>,
        limit: u32,
    ) -> Result<Vec<Conversation>> {
        self.settle_conversations(user_id).await?;
        // Before the first page: after every conversation, pinned or not.
        let (pinned, last_seq) = after.map_or((2, i64::MAX), |c| {
            (i64::from(c.pinned), c.last_seq.min(i64::MAX as u64) as i64)
        });
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS}{CONVERSATION_FROM}\
             WHERE c.user_id = ? AND c.hidden = 0 \
             AND (c.pinned < ? OR (c.pinned = ? AND c.last_seq < ?)) \
             ORDER BY c.pinned DESC, c.last_seq DESC LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id as i64)
            .bind(pinned)
            .bind(pinned)
            .bind(last_seq)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(Conversation::from_row).collect()
    }

    /// The user's badge: unread summed over the conversations not muted.
    ///
    /// Read only: the entries the rows do not reflect yet are counted by
    /// the fold's rule in the same snapshot rather than folded in, so that
    /// a push notification's badge writes nothing.
    pub async fn total_unread(&self, user_id: u64) -> Result<u64> {
        let mut tx = self.pool().begin().await?;
        let unindexed: Option<(i64, i64)> =
            sqlx::query_as("SELECT seq, unindexed FROM user_seqs WHERE user_id = ?")
                .bind(user_id as i64)
                .fetch_optional(&mut *tx)
                .await?;
        let total: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(SUM(unread) AS SIGNED) FROM conversations WHERE user_id = ? AND muted = 0",
        )
        .bind(user_id as i64)
        .fetch_one(&mut *tx)
        .await?;
        let mut total = total.unwrap_or(0).max(0) as u64;
        if let Some((seq, unindexed)) = unindexed.filter(|(_, u)| *u > 0) {
            // A row not written yet is not muted: muting writes the row.
            let rows = sqlx::query(
                "SELECT m.sender_id, m.content_type, COALESCE(c.muted, 0) AS muted \
                 FROM user_messages um JOIN messages m ON m.id = um.message_id \
                 LEFT JOIN conversations c ON c.user_id = um.user_id \
                     AND c.conv_type = um.conv_type AND c.conv_id = um.conv_id \
                 WHERE um.user_id = ? AND um.seq > ?",
            )
            .bind(user_id as i64)
            .bind(seq - unindexed)
            .fetch_all(&mut *tx)
            .await?;
            for row in &rows {
                let content_type = row.try_get::<i64, _>("content_type")? as u32;
                if row.try_get::<i64, _>("muted")? == 0
                    && counts_as_unread(user_id, id(row, "sender_id")?, content_type)
                {
                    total += 1;
                }
            }
        }
        tx.rollback().await?;
        Ok(total)
    }

    /// Whether `user_id` muted a conversation (false without a row).
    pub async fn conversation_muted(
        &self,
        user_id: u64,
        conv_type: i32,
        conv_id: u64,
    ) -> Result<bool> {
        // No fold: a row not written yet is not muted, as muting writes it.
        let muted: Option<i64> = sqlx::query_scalar(
            "SELECT muted FROM conversations WHERE user_id = ? AND conv_type = ? AND conv_id = ?",
        )
        .bind(user_id as i64)
        .bind(i64::from(conv_type))
        .bind(conv_id as i64)
        .fetch_optional(self.pool())
        .await?;
        Ok(muted.is_some_and(|m| m != 0))
    }

    /// One of `user_id`'s conversations, hidden or not.
    pub async fn conversation(
        &self,
        user_id: u64,
        conv_type: i32,
        conv_id: u64,
    ) -> Result<Option<Conversation>> {
        self.settle_conversations(user_id).await?;
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS}{CONVERSATION_FROM}\
             WHERE c.user_id = ? AND c.conv_type = ? AND c.conv_id = ?"
        );
        let row = sqlx::query(&sql)
            .bind(user_id as i64)
            .bind(i64::from(conv_type))
            .bind(conv_id as i64)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(Conversation::from_row).transpose()
    }

    /// Up to `limit` entries of one conversation in `user_id`'s list with
    /// seqs below `before_seq` (0: from the newest), newest first.
    /// `before_seq` must be 0 or an entry of that conversation: the seq
    /// of an entry the client has, or a page's `next_before_seq`.
    pub async fn history(
        &self,
        user_id: u64,
        conv_type: i32,
        conv_id: u64,
        before_seq: u64,
        limit: u32,
    ) -> Result<std::result::Result<HistoryPage, HistoryError>> {
        let start = if before_seq == 0 {
            self.settle_conversations(user_id).await?;
            let last: Option<i64> = sqlx::query_scalar(
                "SELECT last_seq FROM conversations \
                 WHERE user_id = ? AND conv_type = ? AND conv_id = ?",
            )
            .bind(user_id as i64)
            .bind(i64::from(conv_type))
            .bind(conv_id as i64)
            .fetch_optional(self.pool())
            .await?;
            last.unwrap_or(0)
        } else {
            let row = sqlx::query(
                "SELECT prev_seq, conv_type, conv_id FROM user_messages \
                 WHERE user_id = ? AND seq = ?",
            )
            .bind(user_id as i64)
            .bind(before_seq.min(i64::MAX as u64) as i64)
            .fetch_optional(self.pool())
            .await?;
            let Some(row) = row else {
                return Ok(Err(HistoryError::NotInConversation));
            };
            let same = row.try_get::<i64, _>("conv_type")? == i64::from(conv_type)
                && id(&row, "conv_id")? == conv_id;
            if !same {
                return Ok(Err(HistoryError::NotInConversation));
            }
            row.try_get("prev_seq")?
        };
        if start == 0 || limit == 0 {
            return Ok(Ok(HistoryPage {
                entries: Vec::new(),
                next_before_seq: if limit == 0 { before_seq } else { 0 },
            }));
        }
        // Entries deleted for the user are skipped: walk on until the page
        // is full, the conversation's first entry, or a bound of lookups.
        let mut entries = Vec::new();
        let mut next = start as u64;
        let mut walked = 0u64;
        let mut next_before_seq = 0;
        while next != 0 && entries.len() < limit as usize && walked < u64::from(MAX_WALK) * 10 {
            let want = limit - entries.len() as u32;
            let rows = walk(self.pool(), user_id, next, 0, want).await?;
            next = 0;
            for row in &rows {
                walked += 1;
                let prev: i64 = row.try_get("prev_seq")?;
                next_before_seq = if prev != 0 { id(row, "seq")? } else { 0 };
                next = prev as u64;
                if row.try_get::<i64, _>("deleted")? == 0 {
                    entries.push(ListEntry::from_row(row)?);
                }
            }
        }
        Ok(Ok(HistoryPage {
            entries,
            next_before_seq,
        }))
    }
}
