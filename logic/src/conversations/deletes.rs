//! DELETE_FOR_ME and CLEAR_CONVERSATION: entries of one conversation
//! deleted for the caller alone. The rows keep their seqs (lists stay
//! without gaps); SYNC returns them emptied, history and the counts skip
//! them, and a state entry tells the caller's other devices.

use tern_public::proto::client::{
    self as pb, ClearConversationRequest, ConvClearedEvent, DeleteForMeRequest,
    MessagesDeletedEvent, SystemContentType,
};

use super::{answer, commit, key, locked, own_event, target};
use crate::actor::Actor;
use crate::error::{LogicError, Result};
use crate::store::conversations::ConvKey;
use crate::store::read_positions::DeleteError;
use crate::system::{self, retry};
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

async fn delete_tx(logic: &Logic, actor: &Actor, key: ConvKey, what: Deletion<'_>) -> Result<()> {
    let store = &logic.store;
    let (mut tx, state) = locked(logic, key).await?;
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
            let event = own_event(actor, key, kind, &body);
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
            let event = own_event(actor, key, kind, &body);
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
    commit(logic, tx, events, appended).await
}
