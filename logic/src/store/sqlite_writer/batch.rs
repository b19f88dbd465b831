//! One batch on the writer thread: seqs, the message, its list rows and
//! the conversation rows it changes (held, or written with the batch).

use std::collections::BTreeMap;
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::lag::{self, Held, Lag};
use super::WriterError;
use crate::store::conversations::{self, ConvKey, Head, NewRow};
use crate::store::messages::{assign_seqs, rows_per_user, Appended, MissingUsers, NewMessage};

/// Why a batch stored nothing, on the writer thread.
pub(super) enum Refusal {
    Missing(MissingUsers),
    Unindexed(Vec<u64>),
}

pub(super) fn append(
    conn: &mut Connection,
    lag: &mut Lag,
    msgs: &[Arc<NewMessage>],
    after_send: bool,
) -> Result<std::result::Result<Vec<Appended>, Refusal>, WriterError> {
    let counts = rows_per_user(msgs.iter().map(|m| &**m));
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // 1. Advance each head; the first of this batch's seqs follows the old
    // one. Every entry appended here waits unindexed until its rows are
    // written (below, or by a later batch).
    let mut next: BTreeMap<u64, u64> = BTreeMap::new();
    let mut held: BTreeMap<u64, Held> = BTreeMap::new();
    let mut missing = Vec::new();
    let mut unknown = Vec::new();
    {
        let mut advance = tx.prepare_cached(
            "UPDATE user_seqs SET seq = seq + ?1, unindexed = unindexed + ?1 \
             WHERE user_id = ?2 RETURNING seq, unindexed",
        )?;
        for (&user, &n) in &counts {
            let head: Option<(i64, i64)> = advance
                .query_row(params![n as i64, user as i64], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()?;
            let Some((head, unindexed)) = head else {
                missing.push(user);
                continue;
            };
            let (old_head, old_unindexed) = (head as u64 - n, unindexed as u64 - n);
            next.insert(user, old_head + 1);
            match lag.take(user, old_head, old_unindexed) {
                Some(Ok(h)) => {
                    held.insert(user, h);
                }
                // Entries this thread does not hold the rows of: folded
                // from the database by the store, and the batch sent again.
                _ if old_unindexed > 0 => unknown.push(user),
                _ => {
                    held.insert(
                        user,
                        Held {
                            head: old_head,
                            ..Held::default()
                        },
                    );
                }
            }
        }
    }
    if !missing.is_empty() || !unknown.is_empty() {
        // Dropping the transaction rolls it back; what was held is as valid
        // as before.
        for (user, h) in held {
            lag.hold(user, h);
        }
        return Ok(Err(match missing.is_empty() {
            false => Refusal::Missing(MissingUsers(missing)),
            true => Refusal::Unindexed(unknown),
        }));
    }
    // 2. Seqs in message order, so a connection's sends keep their order.
    let (appended, rows) = assign_seqs(msgs.iter().map(|m| &**m), &mut next);
    // 3. The conversations' heads (held, or read), then the message once,
    // its list rows and the index.
    let known = conversation_heads(&tx, &rows, &held)?;
    let indexed = conversations::index(&rows, &known);
    {
        let mut message = tx.prepare_cached(
            "INSERT INTO messages (id, sender_id, sender_device_id, conv_type, receiver_id, \
             content_type, content, mentions, client_msg_id, status, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10)",
        )?;
        for m in msgs {
            message.execute(params![
                &m.id[..],
                m.sender_id as i64,
                m.sender_device_id as i64,
                i64::from(m.conv_type),
                m.receiver_id as i64,
                i64::from(m.content_type),
                &m.content[..],
                crate::store::messages::encode_mentions(&m.mentions),
                m.client_msg_id.as_deref(),
                m.created_at,
            ])?;
        }
        let mut list_row = tx.prepare_cached(
            "INSERT INTO user_messages (user_id, seq, message_id, conv_type, conv_id, prev_seq) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (row, prev_seq) in rows.iter().zip(&indexed.prev_seqs) {
            list_row.execute(params![
                row.user_id as i64,
                row.seq as i64,
                row.message_id,
                i64::from(row.conv_type),
                row.conv_id as i64,
                *prev_seq as i64,
            ])?;
        }
        if after_send {
            let mut queue = tx.prepare_cached(
                "INSERT INTO webhook_outbox (message_id, created_at) VALUES (?1, ?2)",
            )?;
            for m in msgs {
                queue.execute(params![&m.id[..], m.created_at])?;
            }
        }
    }
    // 4. The rows changed join those held; a list whose entries have waited
    // long enough has its rows written.
    for (key, (head, existed)) in indexed.heads {
        let h = held.get_mut(&key.user_id).expect("a recipient's list");
        let existed = h.rows.get(&key).map_or(existed, |(_, e)| *e);
        h.rows.insert(key, (head, existed));
    }
    for (user, h) in held.iter_mut() {
        h.head = next[user] - 1;
        h.unindexed += counts[user];
    }
    let mut written = Vec::new();
    for (user, h) in &held {
        if h.unindexed >= lag::MAX_UNINDEXED {
            lag::write(&tx, *user, h)?;
            written.push(*user);
        }
    }
    for user in written {
        held.remove(&user);
    }
    let others = match lag.is_full() {
        true => lag.drain(),
        false => Vec::new(),
    };
    for (user, h) in &others {
        lag::write(&tx, *user, h)?;
    }
    tx.commit()?;
    for (user, h) in held {
        lag.hold(user, h);
    }
    Ok(Ok(appended))
}

/// The current head of each conversation `rows` append to, for those that
/// have one: as `held`, or as the database has it ([`Store::append_in`]
/// reads the same in chunks).
///
/// [`Store::append_in`]: crate::store::Store::append_in
fn conversation_heads(
    tx: &rusqlite::Transaction<'_>,
    rows: &[NewRow<'_>],
    held: &BTreeMap<u64, Held>,
) -> Result<BTreeMap<ConvKey, Head>, WriterError> {
    let mut read = tx.prepare_cached(
        "SELECT last_seq, change_seq, unread, mentions, hidden FROM conversations \
         WHERE user_id = ?1 AND conv_type = ?2 AND conv_id = ?3",
    )?;
    let mut known = BTreeMap::new();
    let mut asked = std::collections::BTreeSet::new();
    for row in rows {
        let key = row.key();
        if !asked.insert(key) {
            continue;
        }
        if let Some((head, _)) = held.get(&key.user_id).and_then(|h| h.rows.get(&key)) {
            known.insert(key, *head);
            continue;
        }
        let head = read
            .query_row(
                params![
                    key.user_id as i64,
                    i64::from(key.conv_type),
                    key.conv_id as i64
                ],
                |r| {
                    Ok(Head {
                        last_seq: r.get::<_, i64>(0)? as u64,
                        change_seq: r.get::<_, i64>(1)? as u64,
                        unread: r.get::<_, i64>(2)? as u64,
                        mentions: r.get::<_, i64>(3)? as u64,
                        hidden: r.get::<_, i64>(4)? != 0,
                    })
                },
            )
            .optional()?;
        if let Some(head) = head {
            known.insert(key, head);
        }
    }
    Ok(known)
}
