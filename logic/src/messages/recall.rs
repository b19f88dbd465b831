//! RECALL: the sender within the recall window, or an owner or admin of the
//! message's group, recalls a message. Its content is cleared, its status
//! becomes RECALLED, and a recall event lands in every list that holds it.
//! Where it counted as unread, it stops counting.

use tern_public::proto::client::{ConvType, RecallEvent, RecallRequest, SystemContentType};
use tern_public::time::now_ms;

use super::FIRST_SYSTEM_CONTENT_TYPE;
use crate::actor::Actor;
use crate::error::{LogicError, Result};
use crate::system::{self, retry, Changes};
use crate::Logic;

pub(crate) async fn recall(logic: &Logic, actor: &Actor, req: RecallRequest) -> Result<()> {
    if req.message_id.len() != 16 {
        return Err(LogicError::bad_request("message_id must be 16 bytes"));
    }
    let meta = logic.store.message_meta(&req.message_id).await?;
    let meta = meta.ok_or(LogicError::NotFound("no such message"))?;
    if meta.content_type >= FIRST_SYSTEM_CONTENT_TYPE {
        return Err(LogicError::bad_request("system events cannot be recalled"));
    }
    let own_in_time = meta.sender_id == actor.user_id()
        && now_ms() - meta.created_at < logic.cfg.recall_window.as_millis() as i64;
    let group_admin = meta.conv_type == ConvType::Group as i32
        && logic
            .store
            .member(meta.receiver_id, actor.user_id())
            .await?
            .is_some_and(|m| m.role.is_manager());
    if !own_in_time && !group_admin {
        // A message the actor cannot see looks like no message at all.
        let holds = logic.store.holds(actor.user_id(), &req.message_id).await?;
        return Err(if holds {
            LogicError::Forbidden(
                "only the sender within the recall window, or a group owner or admin, can recall",
            )
        } else {
            LogicError::NotFound("no such message")
        });
    }
    let conv_type = ConvType::try_from(meta.conv_type).unwrap_or(ConvType::User);
    retry!(
        logic,
        recall_tx(logic, actor, &req.message_id, conv_type, meta.receiver_id)
    )
}

pub(crate) async fn recall_tx(
    logic: &Logic,
    actor: &Actor,
    id: &[u8],
    conv_type: ConvType,
    receiver_id: u64,
) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    if !store.mark_recalled(&mut tx, id).await? {
        // Already recalled: nothing more to tell anyone.
        return Ok(());
    }
    let holders = store.holders(&mut tx, id).await?;
    let body = RecallEvent {
        message_id: id.to_vec().into(),
        recalled_by: actor.user_id(),
    };
    let event = system::event(
        actor,
        conv_type,
        receiver_id,
        SystemContentType::MessageRecalled,
        &body,
        holders,
    );
    let events = vec![event];
    let appended = system::append(logic, &mut tx, &events).await?;
    // After the append, which holds every holder's list head: an append
    // racing this one cannot write its count over the decrement.
    store.uncount_recalled(&mut tx, id).await?;
    let committed = system::commit_appended(logic, tx, events, appended, Changes::Lists).await?;
    logic.fanout.push(committed).await;
    Ok(())
}
