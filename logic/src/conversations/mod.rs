//! The conversation commands (docs/protocol.md "Conversations"): a user's
//! conversation list, one conversation, and one conversation's history.
//! MARK_READ (in `read`) changes the read position, CONV_SET (in
//! `settings`) the user's settings.

use tern_public::proto::client::{
    self as pb, ConvHistory, ConvHistoryRequest, ConvList, ConvListRequest, ConvTarget, ConvType,
    SystemContentType,
};

mod deletes;
mod read;
mod receipts;
mod settings;

pub(crate) use deletes::{clear, delete_for_me};
pub(crate) use read::mark_read;
pub(crate) use receipts::{read_counts, readers};
pub(crate) use settings::set;

use crate::actor::Actor;
use crate::error::{LogicError, Result};
use crate::store::conversations::ConvKey;
use crate::store::conversations::{HistoryError, ListCursor};
use crate::store::read_positions::ReadState;
use crate::store::{Appended, NewMessage, Recipient, Tx};
use crate::system::{self, Changes};
use crate::wire::{conversation, entry_message};
use crate::{paging, Logic};

/// Page sizes of CONV_LIST and CONV_HISTORY: the default and the cap.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

/// A conversation named by a client: USER or GROUP with a non-zero id, or
/// SYSTEM with any (the admin's system messages are SYSTEM 0).
pub(crate) fn target(conv_type: i32, conv_id: u64) -> Result<(i32, u64)> {
    match ConvType::try_from(conv_type) {
        Ok(ConvType::User | ConvType::Group) if conv_id != 0 => Ok((conv_type, conv_id)),
        Ok(ConvType::System) => Ok((conv_type, conv_id)),
        _ => Err(LogicError::bad_request(
            "a conversation is a conv_type (USER, GROUP or SYSTEM) and a conv_id, \
             non-zero for USER and GROUP",
        )),
    }
}

/// CONV_LIST: a page of the user's conversations that are not hidden.
pub(crate) async fn list(logic: &Logic, actor: &Actor, req: ConvListRequest) -> Result<ConvList> {
    list_of(logic, actor.user_id(), req).await
}

/// A page of `user`'s conversations that are not hidden (CONV_LIST, and
/// the admin API's view of them).
pub(crate) async fn list_of(logic: &Logic, user: u64, req: ConvListRequest) -> Result<ConvList> {
    let limit = paging::limit(req.limit, DEFAULT_PAGE, MAX_PAGE);
    let after = (req.after_last_seq != 0).then_some(ListCursor {
        pinned: req.after_pinned,
        last_seq: req.after_last_seq,
    });
    // The head first, with every row brought up to it: every conversation
    // is then at least as new as it, and a client applies only synced
    // entries above each change_seq.
    let max_seq = logic.store.settle_conversations(user).await?;
    let rows = logic
        .store
        .conversations_page(user, after, limit + 1)
        .await?;
    let (rows, more) = paging::page(rows, limit);
    let items = rows.into_iter().map(conversation).collect();
    let (conversations, cut) = paging::fit(items, logic.cfg.max_frame_len);
    Ok(ConvList {
        conversations,
        has_more: more || cut,
        max_seq,
        total_unread: logic.store.total_unread(user).await?,
    })
}

/// CONV_GET: one conversation of the user's, hidden or not.
pub(crate) async fn get(logic: &Logic, actor: &Actor, req: ConvTarget) -> Result<pb::Conversation> {
    let (conv_type, conv_id) = target(req.conv_type, req.conv_id)?;
    let found = logic
        .store
        .conversation(actor.user_id(), conv_type, conv_id)
        .await?;
    found
        .map(conversation)
        .ok_or(LogicError::NotFound("no such conversation in this list"))
}

/// CONV_HISTORY: a page of one conversation's entries, newest first.
pub(crate) async fn history(
    logic: &Logic,
    actor: &Actor,
    req: ConvHistoryRequest,
) -> Result<ConvHistory> {
    history_of(logic, actor.user_id(), req).await
}

/// A page of one of `user`'s conversations, newest first (CONV_HISTORY,
/// and the admin API's view of it).
pub(crate) async fn history_of(
    logic: &Logic,
    user: u64,
    req: ConvHistoryRequest,
) -> Result<ConvHistory> {
    let (conv_type, conv_id) = target(req.conv_type, req.conv_id)?;
    let limit = paging::limit(req.limit, DEFAULT_PAGE, MAX_PAGE);
    let page = logic
        .store
        .history(user, conv_type, conv_id, req.before_seq, limit)
        .await?
        .map_err(|HistoryError::NotInConversation| {
            LogicError::bad_request("before_seq is not an entry of this conversation")
        })?;
    let items: Vec<pb::Message> = page.entries.into_iter().map(entry_message).collect();
    let (messages, cut) = paging::fit(items, logic.cfg.max_frame_len);
    // A page cut to fit the frame goes on from its own oldest entry.
    let next_before_seq = match (cut, messages.last()) {
        (true, Some(oldest)) => oldest.seq,
        _ => page.next_before_seq,
    };
    Ok(ConvHistory {
        messages,
        next_before_seq,
    })
}

/// The caller's own conversation.
fn key(actor: &Actor, conv_type: i32, conv_id: u64) -> ConvKey {
    ConvKey {
        user_id: actor.user_id(),
        conv_type,
        conv_id,
    }
}

/// A change's answer: the conversation as it is after it.
async fn answer(logic: &Logic, key: ConvKey) -> Result<pb::Conversation> {
    let found = logic
        .store
        .conversation(key.user_id, key.conv_type, key.conv_id)
        .await?;
    found
        .map(conversation)
        .ok_or(LogicError::NotFound("no such conversation in this list"))
}

/// A write transaction holding `key.user_id`'s list head, taken before
/// anything is read so that a racing append waits for the change, and the
/// conversation's state under it.
async fn locked(logic: &Logic, key: ConvKey) -> Result<(Tx, ReadState)> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    store.lock_lists(&mut tx, &[key.user_id]).await?;
    let state = store
        .read_state(&mut tx, key)
        .await?
        .ok_or(LogicError::NotFound("no such conversation in this list"))?;
    Ok((tx, state))
}

/// A state entry (1300-1399) of conversation `key`, for the list of the
/// user whose conversation it is.
fn own_event(
    actor: &Actor,
    key: ConvKey,
    kind: SystemContentType,
    body: &impl prost::Message,
) -> NewMessage {
    let conv = ConvType::try_from(key.conv_type).unwrap_or(ConvType::User);
    let to = Recipient {
        user_id: key.user_id,
        conv_id: key.conv_id,
    };
    system::event(actor, conv, key.conv_id, kind, body, vec![to])
}

/// Commits a change of conversation state (it changes nobody's standing)
/// and hands its entries to fan-out.
async fn commit(
    logic: &Logic,
    tx: Tx,
    events: Vec<NewMessage>,
    appended: Vec<Appended>,
) -> Result<()> {
    let committed = system::commit_appended(logic, tx, events, appended, Changes::Lists).await?;
    logic.fanout.push(committed).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversations_are_users_groups_or_the_system() {
        let user = ConvType::User as i32;
        let system = ConvType::System as i32;
        assert!(target(user, 7).is_ok());
        assert!(target(ConvType::Group as i32, 7).is_ok());
        assert!(target(system, 0).is_ok(), "the admin's system messages");
        assert!(target(user, 0).is_err());
        assert!(target(ConvType::Group as i32, 0).is_err());
        assert!(target(0, 7).is_err());
        assert!(target(99, 7).is_err());
    }
}
