//! The conversation index (DESIGN.md "Derived state").
//!
//! Per user and conversation, a row of `conversations` sums up what that
//! user's list holds for the conversation: its newest entry, the unread and
//! mention counts, the read position and the user's settings. Rows change
//! only in transactions that hold the user's list head (`user_seqs`), so
//! the index and the list never disagree: an append updates both, and so
//! does every read position or setting, which is itself a list entry. On
//! SQLite the batch writer may leave a user's rows a few entries behind
//! the list, counted in the same transaction, and everything else folds
//! those entries in before it reads or changes the rows (`unindexed`).
//!
//! Each list row also links to the previous row of its conversation
//! (`user_messages.prev_seq`), so one conversation's history is a walk of
//! primary-key lookups from `last_seq`: the same cost at any depth of the
//! list, without a second index written on every list row.
//!
//! This module holds the rules and the fold an append applies; the reads
//! (listing, one conversation, history) are in `conversation_reads`.

use std::collections::BTreeMap;

use super::messages::NewMessage;

pub use super::conversation_reads::{Conversation, HistoryError, HistoryPage, ListCursor};

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

/// One list row being appended, or one already in the list that the index
/// does not reflect yet: whose list, its seq, the conversation as the
/// list's owner sees it, and what of its message the index needs.
pub(super) struct NewRow<'m> {
    pub user_id: u64,
    pub seq: u64,
    pub conv_type: i32,
    pub conv_id: u64,
    pub message_id: &'m [u8],
    pub sender_id: u64,
    pub content_type: u32,
    pub mentions: &'m [u64],
}

impl<'m> NewRow<'m> {
    /// The row of `msg` in `user_id`'s list at `seq`.
    pub fn of(msg: &'m NewMessage, user_id: u64, seq: u64, conv_id: u64) -> NewRow<'m> {
        NewRow {
            user_id,
            seq,
            conv_type: msg.conv_type,
            conv_id,
            message_id: &msg.id,
            sender_id: msg.sender_id,
            content_type: msg.content_type,
            mentions: &msg.mentions,
        }
    }

    pub fn key(&self) -> ConvKey {
        ConvKey {
            user_id: self.user_id,
            conv_type: self.conv_type,
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
        if is_state_event(row.content_type) {
            // Not a link of the history (no row links to it), but it links
            // to the conversation's newest entry, so that a history page
            // asked for below it goes on from there. The one who changed
            // the state writes the rest of it in the same transaction.
            prev_seqs.push(head.last_seq);
            continue;
        }
        prev_seqs.push(head.last_seq);
        head.last_seq = row.seq;
        let counts = counts_as_unread(row.user_id, row.sender_id, row.content_type);
        // A message, or an event that counts, brings a hidden conversation
        // back into the list; other events leave it hidden.
        if row.content_type < FIRST_SYSTEM_CONTENT_TYPE || counts {
            head.hidden = false;
        }
        if counts {
            head.unread += 1;
            if mentions_owner(row.user_id, row.mentions) {
                head.mentions += 1;
            }
        }
    }
    Indexed { prev_seqs, heads }
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
                out.push(NewRow::of(m, r.user_id, *seq, r.conv_id));
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
