//! DELETE_FOR_ME and CLEAR_CONVERSATION: entries of one conversation
//! deleted for the caller alone. The rows keep their seqs (lists stay
//! without gaps); SYNC returns them emptied, history and the counts skip
//! them, and a state entry tells the caller's other devices.

use tern_public::proto::client::{
    self as pb, ClearConversationRequest, ConvClearedEvent, ConvType, DeleteForMeRequest,
    MessagesDeletedEvent, SystemContentType,
};

use super::target;
use crate::actor::Actor;
use crate::error::{LogicError, Result};
use crate::store::conversations::ConvKey;
use crate::store::read_positions::DeleteError;
use crate::store::Recipient;
use crate::system::{self, retry, Changes};
use crate::wire::conversation;
use crate::Logic;

/// Most entries one DELETE_FOR_ME names.
const MAX_SEQS: usize = 100;

/// What is deleted.
#[derive(Clone, Copy)]
enum Deletion<'a> {
    Entries(&'a [u64]),
    UpTo(u64),
}

/// DELETE_FOR_ME: the entries named, then the conversation as it is.
pub(crate) async fn delete_for_me(
    logic: &Logic,
    actor: &Actor,
    req: DeleteForMeRequest,
) -> Result<pb::Conversation> {
    let (conv_type, conv_id) = target(req.conv_type, req.conv_id)?;
    if req.seqs.is_empty() || req.seqs.len() > MAX_SEQS {
        return Err(LogicError::bad_request(format!(
            "name 1-{MAX_SEQS} entries to delete"
        )));
    }
    let mut seqs = req.seqs;
    seqs.sort_unstable();
    seqs.dedup();
    let key = key(actor, conv_type, conv_id);
    retry!(
        logic,
        delete_tx(logic, actor, key, Deletion::Entries(&seqs))
    )?;
    answer(logic, key).await
}

/// CLEAR_CONVERSATION: every entry up to a seq, read too.
pub(crate) async fn clear(
    logic: &Logic,
    actor: &Actor,
    req: ClearConversationRequest,
) -> Result<pb::Conversation> {
    let (conv_type, conv_id) = target(req.conv_type, req.conv_id)?;
    let key = key(actor, conv_type, conv_id);
    retry!(
        logic,
        delete_tx(logic, actor, key, Deletion::UpTo(req.up_to_seq))
    )?;
    answer(logic, key).await
}

fn key(actor: &Actor, conv_type: i32, conv_id: u64) -> ConvKey {
    ConvKey {
        user_id: actor.user_id(),
        conv_type,
        conv_id,
    }
}

async fn answer(logic: &Logic, key: ConvKey) -> Result<pb::Conversation> {
    let found = logic
        .store
        .conversation(key.user_id, key.conv_type, key.conv_id)
        .await?;
    found
        .map(conversation)
        .ok_or(LogicError::NotFound("no such conversation in this list"))
}

async fn delete_tx(logic: &Logic, actor: &Actor, key: ConvKey, what: Deletion<'_>) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    store.lock_lists(&mut tx, &[key.user_id]).await?;
    let state = store
        .read_state(&mut tx, key)
        .await?
        .ok_or(LogicError::NotFound("no such conversation in this list"))?;
    let conv = ConvType::try_from(key.conv_type).unwrap_or(ConvType::User);
    let to_self = || {
        vec![Recipient {
            user_id: key.user_id,
            conv_id: key.conv_id,
        }]
    };
    let (read_seq, event) = match what {
        Deletion::Entries(seqs) => {
            store.delete_entries(&mut tx, key, seqs).await?.map_err(
                |DeleteError::NotInConversation(seq)| {
                    LogicError::bad_request(format!(
                        "seq {seq} is not an entry of this conversation"
                    ))
                },
            )?;
            let body = MessagesDeletedEvent {
                conv_type: key.conv_type,
                conv_id: key.conv_id,
                seqs: seqs.to_vec(),
            };
            let kind = SystemContentType::MessagesDeleted;
            let event = system::event(actor, conv, key.conv_id, kind, &body, to_self());
            (state.read_seq, event)
        }
        Deletion::UpTo(up_to) => {
            let up_to = match up_to {
                0 => state.last_seq,
                n => n.min(state.last_seq),
            };
            store.clear_entries(&mut tx, key, up_to).await?;
            let body = ConvClearedEvent {
                conv_type: key.conv_type,
                conv_id: key.conv_id,
                up_to_seq: up_to,
            };
            let kind = SystemContentType::ConvCleared;
            let event = system::event(actor, conv, key.conv_id, kind, &body, to_self());
            // What is cleared is read.
            (state.read_seq.max(up_to), event)
        }
    };
    // Deleted entries no longer count: count again after the position.
    let after = store
        .after_read(&mut tx, key.user_id, state.last_seq, read_seq)
        .await?;
    let events = vec![event];
    let appended = system::append(logic, &mut tx, &events).await?;
    store.set_read(&mut tx, key, read_seq, &after).await?;
    let committed = system::commit_appended(logic, tx, events, appended, Changes::Lists).await?;
    logic.fanout.push(committed).await;
    Ok(())
}
