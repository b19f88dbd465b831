//! The conversation index (DESIGN.md "Derived state").
//!
//! Per user and conversation, a row of `conversations` sums up what that
//! user's list holds for the conversation: its newest entry, the unread and
//! mention counts, the read position and the user's settings. Rows change
//! only in transactions that hold the user's list head (`user_seqs`), so
//! the index and the list never disagree: an append updates both, and so
//! will every read position or setting, which is itself a list entry.
//!
//! Each list row also links to the previous row of its conversation
//! (`user_messages.prev_seq`), so one conversation's history is a walk of
//! primary-key lookups from `last_seq`: the same cost at any depth of the
//! list, without a second index written on every list row.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::{Any, QueryBuilder, Row};

use super::messages::{ListEntry, NewMessage};
use super::{id, Result, Store, Tx};

/// Content types at and above this are system events (DESIGN.md "Message").
pub const FIRST_SYSTEM_CONTENT_TYPE: u32 = 1000;

/// The system events that count as unread: they wait for the user's answer.
/// Every other system event only records a change and never counts.
pub const SYSTEM_EVENTS_THAT_COUNT: &[u32] = &[FRIEND_REQUESTED];

/// `SystemContentType::FRIEND_REQUESTED` of client.proto.
const FRIEND_REQUESTED: u32 = 1001;

/// `SystemContentType::CONV_READ` and `CONV_PEER_READ` of client.proto.
pub const CONV_READ: u32 = 1301;
pub const CONV_PEER_READ: u32 = 1302;

/// Whether entries of `content_type` record a change of a conversation's
/// state (a read position, a receipt) rather than add to it: they are not
/// its newest entry, not in its history, and never count.
pub fn is_state_event(content_type: u32) -> bool {
    (1300..1400).contains(&content_type)
}

/// One conversation in one user's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConvKey {
    pub user_id: u64,
    pub conv_type: i32,
    pub conv_id: u64,
}

/// The part of a conversation row that an append changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Head {
    pub last_seq: u64,
    pub change_seq: u64,
    pub unread: u64,
    pub mentions: u64,
    pub hidden: bool,
}

/// Whether an entry from `sender` with `content_type` counts as unread in
/// `owner`'s list: never the owner's own, never a system event other than
/// those of [`SYSTEM_EVENTS_THAT_COUNT`].
pub fn counts_as_unread(owner: u64, sender: u64, content_type: u32) -> bool {
    sender != owner
        && (content_type < FIRST_SYSTEM_CONTENT_TYPE
            || SYSTEM_EVENTS_THAT_COUNT.contains(&content_type))
}

/// The mention of everyone in a group (@all): the system user's id, never
/// a member's.
pub const MENTION_ALL: u64 = 0;

/// Whether an entry that counts as unread also counts as a mention of
/// `owner`: by id, or as everyone.
pub fn mentions_owner(owner: u64, mentions: &[u64]) -> bool {
    mentions.contains(&owner) || mentions.contains(&MENTION_ALL)
}

/// One list row being appended: whose list, its seq, the message and the
/// conversation as the list's owner sees it.
pub(super) struct NewRow<'m> {
    pub user_id: u64,
    pub seq: u64,
    pub msg: &'m NewMessage,
    pub conv_id: u64,
}

impl NewRow<'_> {
    pub fn key(&self) -> ConvKey {
        ConvKey {
            user_id: self.user_id,
            conv_type: self.msg.conv_type,
            conv_id: self.conv_id,
        }
    }
}

/// What appending a batch's rows does to the index.
pub(super) struct Indexed {
    /// Per row, in the order given: the seq of the previous row of its
    /// conversation in the same list (0: the conversation's first); for a
    /// state row, the conversation's newest entry.
    pub prev_seqs: Vec<u64>,
    /// Each conversation touched, its head after the batch, and whether it
    /// had a row before (an UPDATE) or not (an INSERT).
    pub heads: BTreeMap<ConvKey, (Head, bool)>,
}

/// Folds `rows` (in seq order per user) into the heads they start from.
/// `known` has the current head of every conversation of `rows` that has a
/// row; the caller read it under the list heads' locks.
pub(super) fn index(rows: &[NewRow<'_>], known: &BTreeMap<ConvKey, Head>) -> Indexed {
    let mut heads: BTreeMap<ConvKey, (Head, bool)> = BTreeMap::new();
    let mut prev_seqs = Vec::with_capacity(rows.len());
    for row in rows {
        let key = row.key();
        let (head, _) = heads.entry(key).or_insert_with(|| match known.get(&key) {
            Some(h) => (*h, true),
            None => (Head::default(), false),
        });
        head.change_seq = row.seq;
        let m = row.msg;
        if is_state_event(m.content_type) {
            // Not a link of the history (no row links to it), but it links
            // to the conversation's newest entry, so that a history page
            // asked for below it goes on from there. The one who changed
            // the state writes the rest of it in the same transaction.
            prev_seqs.push(head.last_seq);
            continue;
        }
        prev_seqs.push(head.last_seq);
        head.last_seq = row.seq;
        let counts = counts_as_unread(row.user_id, m.sender_id, m.content_type);
        // A message, or an event that counts, brings a hidden conversation
        // back into the list; other events leave it hidden.
        if m.content_type < FIRST_SYSTEM_CONTENT_TYPE || counts {
            head.hidden = false;
        }
        if counts {
            head.unread += 1;
            if mentions_owner(row.user_id, &m.mentions) {
                head.mentions += 1;
            }
        }
    }
    Indexed { prev_seqs, heads }
}

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

    /// The user's badge: unread summed over the conversations not muted.
    pub async fn total_unread(&self, user_id: u64) -> Result<u64> {
        let total: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(SUM(unread) AS SIGNED) FROM conversations WHERE user_id = ? AND muted = 0",
        )
        .bind(user_id as i64)
        .fetch_one(self.pool())
        .await?;
        Ok(total.unwrap_or(0).max(0) as u64)
    }

    /// One of `user_id`'s conversations, hidden or not.
    pub async fn conversation(
        &self,
        user_id: u64,
        conv_type: i32,
        conv_id: u64,
    ) -> Result<Option<Conversation>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::messages::test_message;

    fn rows<'m>(msgs: &'m [NewMessage], first_seq: &mut BTreeMap<u64, u64>) -> Vec<NewRow<'m>> {
        let mut out = Vec::new();
        for m in msgs {
            for r in &m.recipients {
                let seq = first_seq.entry(r.user_id).or_insert(1);
                out.push(NewRow {
                    user_id: r.user_id,
                    seq: *seq,
                    msg: m,
                    conv_id: r.conv_id,
                });
                *seq += 1;
            }
        }
        out
    }

    #[test]
    fn own_messages_never_count_and_rows_link_per_conversation() {
        let mut to_2 = test_message(1, 2, None);
        to_2.mentions = vec![2];
        let msgs = vec![to_2, test_message(2, 1, None), test_message(1, 3, None)];
        let mut seqs = BTreeMap::new();
        let rows = rows(&msgs, &mut seqs);
        let known = BTreeMap::from([(
            ConvKey {
                user_id: 2,
                conv_type: 1,
                conv_id: 1,
            },
            Head {
                last_seq: 0,
                change_seq: 0,
                unread: 4,
                mentions: 1,
                hidden: true,
            },
        )]);
        let ix = index(&rows, &known);
        // User 1's list: 1 (to 2), 2 (from 2), 3 (to 3); user 2's: 1, 2.
        assert_eq!(ix.prev_seqs, vec![0, 0, 1, 1, 0, 0]);
        let head = |user_id, conv_id| {
            ix.heads[&ConvKey {
                user_id,
                conv_type: 1,
                conv_id,
            }]
        };
        assert_eq!(
            head(2, 1),
            (
                Head {
                    last_seq: 2,
                    change_seq: 2,
                    unread: 5,
                    mentions: 2,
                    hidden: false
                },
                true
            )
        );
        assert_eq!(
            head(1, 2),
            (
                Head {
                    last_seq: 2,
                    change_seq: 2,
                    unread: 1,
                    mentions: 0,
                    hidden: false
                },
                false
            )
        );
        assert_eq!(head(1, 3).0.unread, 0);
        assert_eq!(head(3, 1).0.unread, 1);
    }

    #[test]
    fn state_rows_move_only_the_change_seq() {
        let mut read = test_message(1, 2, None);
        read.content_type = CONV_READ;
        read.recipients.truncate(1);
        let msgs = vec![test_message(2, 1, None), read, test_message(2, 1, None)];
        let mut seqs = BTreeMap::new();
        let appended = rows(&msgs, &mut seqs);
        let ix = index(&appended, &BTreeMap::new());
        // User 1's list: 1 from 2, 2 the read entry, 3 from 2.
        assert_eq!(ix.prev_seqs, vec![0, 0, 1, 1, 1]);
        let (head, _) = ix.heads[&ConvKey {
            user_id: 1,
            conv_type: 1,
            conv_id: 2,
        }];
        assert_eq!((head.last_seq, head.change_seq, head.unread), (3, 3, 2));
        let mut only = test_message(1, 2, None);
        only.content_type = CONV_READ;
        only.recipients.truncate(1);
        let msgs = vec![test_message(2, 1, None), only];
        let appended = rows(&msgs, &mut BTreeMap::new());
        let (head, _) = index(&appended, &BTreeMap::new()).heads[&ConvKey {
            user_id: 1,
            conv_type: 1,
            conv_id: 2,
        }];
        assert_eq!((head.last_seq, head.change_seq, head.unread), (1, 2, 1));
    }

    #[test]
    fn system_events_count_only_when_they_wait_for_an_answer() {
        assert!(counts_as_unread(2, 1, 1));
        assert!(counts_as_unread(2, 1, 999));
        assert!(counts_as_unread(2, 1, FRIEND_REQUESTED));
        assert!(!counts_as_unread(2, 1, 1002));
        assert!(!counts_as_unread(2, 0, 1102));
        assert!(!counts_as_unread(2, 2, 1));
    }
}
