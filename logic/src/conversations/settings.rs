//! CONV_SET: the user's own settings of one conversation (pinned, muted,
//! hidden), never touching anyone else's. A change is a CONV_SETTINGS
//! entry of the user's list, so every device of the user learns it.

use tern_public::proto::client::{
    self as pb, ConvSetRequest, ConvSettingsEvent, SystemContentType,
};

use super::{answer, commit, key, locked, own_event, target};
use crate::actor::Actor;
use crate::error::Result;
use crate::store::conversations::ConvKey;
use crate::store::read_positions::Settings;
use crate::store::StoreError;
use crate::system::{self, retry};
use crate::Logic;

/// CONV_SET: changes the fields given, then answers the conversation.
pub(crate) async fn set(
    logic: &Logic,
    actor: &Actor,
    req: ConvSetRequest,
) -> Result<pb::Conversation> {
    let (conv_type, conv_id) = target(req.conv_type, req.conv_id)?;
    let key = key(actor, conv_type, conv_id);
    retry!(logic, set_tx(logic, actor, key, &req))?;
    answer(logic, key).await
}

async fn set_tx(logic: &Logic, actor: &Actor, key: ConvKey, req: &ConvSetRequest) -> Result<()> {
    let store = &logic.store;
    let (mut tx, state) = locked(logic, key).await?;
    let old = state.settings;
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
    let events = vec![own_event(
        actor,
        key,
        SystemContentType::ConvSettings,
        &body,
    )];
    let appended = system::append(logic, &mut tx, &events).await?;
    // After the append, which wrote the row's head back as it was.
    store.set_settings(&mut tx, key, new).await?;
    commit(logic, tx, events, appended).await
}
