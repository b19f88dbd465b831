//! CONV_SET: the user's own settings of one conversation (pinned, muted,
//! hidden), never touching anyone else's. A change is a CONV_SETTINGS
//! entry of the user's list, so every device of the user learns it.

use tern_public::proto::client::{
    self as pb, ConvSetRequest, ConvSettingsEvent, ConvType, SystemContentType,
};

use super::target;
use crate::actor::Actor;
use crate::error::{LogicError, Result};
use crate::store::conversations::ConvKey;
use crate::store::read_positions::Settings;
use crate::store::{Recipient, StoreError};
use crate::system::{self, retry, Changes};
use crate::wire::conversation;
use crate::Logic;

/// CONV_SET: changes the fields given, then answers the conversation.
pub(crate) async fn set(
    logic: &Logic,
    actor: &Actor,
    req: ConvSetRequest,
) -> Result<pb::Conversation> {
    let (conv_type, conv_id) = target(req.conv_type, req.conv_id)?;
    let key = ConvKey {
        user_id: actor.user_id(),
        conv_type,
        conv_id,
    };
    retry!(logic, set_tx(logic, actor, key, &req))?;
    let found = logic
        .store
        .conversation(key.user_id, conv_type, conv_id)
        .await?;
    found
        .map(conversation)
        .ok_or(LogicError::NotFound("no such conversation in this list"))
}

async fn set_tx(logic: &Logic, actor: &Actor, key: ConvKey, req: &ConvSetRequest) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    store.lock_lists(&mut tx, &[key.user_id]).await?;
    let old = store
        .settings(&mut tx, key)
        .await?
        .ok_or(LogicError::NotFound("no such conversation in this list"))?;
    let new = Settings {
        pinned: req.pinned.unwrap_or(old.pinned),
        muted: req.muted.unwrap_or(old.muted),
        hidden: req.hidden.unwrap_or(old.hidden),
    };
    if new == old {
        // Nothing changes: nothing is appended.
        tx.rollback().await.map_err(StoreError::from)?;
        return Ok(());
    }
    let body = ConvSettingsEvent {
        conv_type: key.conv_type,
        conv_id: key.conv_id,
        pinned: new.pinned,
        muted: new.muted,
        hidden: new.hidden,
    };
    let to_self = Recipient {
        user_id: key.user_id,
        conv_id: key.conv_id,
    };
    let conv = ConvType::try_from(key.conv_type).unwrap_or(ConvType::User);
    let kind = SystemContentType::ConvSettings;
    let events = vec![system::event(
        actor,
        conv,
        key.conv_id,
        kind,
        &body,
        vec![to_self],
    )];
    let appended = system::append(logic, &mut tx, &events).await?;
    // After the append, which wrote the row's head back as it was.
    store.set_settings(&mut tx, key, new).await?;
    let committed = system::commit_appended(logic, tx, events, appended, Changes::Lists).await?;
    logic.fanout.push(committed).await;
    Ok(())
}
