//! MARK_READ: the reader's read position in one conversation, and in a
//! one-to-one conversation a receipt for the other party.
//!
//! The position only rises. Both changes are entries of the lists they
//! change (CONV_READ in the reader's, CONV_PEER_READ in the other party's),
//! so every device of either user learns them by the sync it already does,
//! and a receipt costs one entry however many messages it covers.

use tern_public::proto::client::{
    self as pb, ConvPeerReadEvent, ConvReadEvent, ConvType, MarkReadRequest, SystemContentType,
};

use super::target;
use crate::actor::Actor;
use crate::error::{LogicError, Result};
use crate::store::conversations::ConvKey;
use crate::store::{Recipient, StoreError};
use crate::system::{self, retry, Changes};
use crate::wire::conversation;
use crate::Logic;

/// MARK_READ: raises the read position, then answers the conversation.
pub(crate) async fn mark_read(
    logic: &Logic,
    actor: &Actor,
    req: MarkReadRequest,
) -> Result<pb::Conversation> {
    let (conv_type, conv_id) = target(req.conv_type, req.conv_id)?;
    let key = ConvKey {
        user_id: actor.user_id(),
        conv_type,
        conv_id,
    };
    let read = retry!(logic, read_tx(logic, actor, key, req.up_to_seq))?;
    // The receipt in a transaction of its own, so that the recount above
    // never holds the other party's list. Should it fail, the reader's
    // next MARK_READ sends it.
    let peer = (key.conv_type == ConvType::User as i32 && key.conv_id != key.user_id)
        .then_some(key.conv_id);
    if let (Some(peer), Some(message)) = (peer, read) {
        retry!(logic, receipt_tx(logic, actor, key, peer, &message))?;
    }
    let found = logic
        .store
        .conversation(key.user_id, conv_type, conv_id)
        .await?;
    found
        .map(conversation)
        .ok_or(LogicError::NotFound("no such conversation in this list"))
}

/// Raises the reader's position; returns the message of the newest entry
/// now read, if the position rose and there is one.
async fn read_tx(
    logic: &Logic,
    actor: &Actor,
    key: ConvKey,
    up_to_seq: u64,
) -> Result<Option<Vec<u8>>> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    // Before reading anything: a racing append then waits for this change.
    store.lock_lists(&mut tx, &[key.user_id]).await?;
    let state = store
        .read_state(&mut tx, key)
        .await?
        .ok_or(LogicError::NotFound("no such conversation in this list"))?;
    let read_seq = match up_to_seq {
        0 => state.last_seq,
        n => n.min(state.last_seq),
    };
    if read_seq <= state.read_seq {
        // Already read that far: nothing changes, nothing is appended.
        tx.rollback().await.map_err(StoreError::from)?;
        return Ok(None);
    }
    let after = store
        .after_read(&mut tx, key.user_id, state.last_seq, read_seq)
        .await?;
    let body = ConvReadEvent {
        conv_type: key.conv_type,
        conv_id: key.conv_id,
        read_seq,
        unread: after.unread,
        mentions: after.mentions,
    };
    let to_reader = Recipient {
        user_id: key.user_id,
        conv_id: key.conv_id,
    };
    let conv = ConvType::try_from(key.conv_type).unwrap_or(ConvType::User);
    let kind = SystemContentType::ConvRead;
    let events = vec![system::event(
        actor,
        conv,
        key.conv_id,
        kind,
        &body,
        vec![to_reader],
    )];
    let appended = system::append(logic, &mut tx, &events).await?;
    store.set_read(&mut tx, key, read_seq, &after).await?;
    let committed = system::commit_appended(logic, tx, events, appended, Changes::Lists).await?;
    logic.fanout.push(committed).await;
    Ok(after.read_message)
}

/// Tells `peer` that the reader has read `message` and everything before
/// it in their one-to-one conversation, in the peer's own seqs, if that is
/// further than the peer had heard.
async fn receipt_tx(
    logic: &Logic,
    actor: &Actor,
    key: ConvKey,
    peer: u64,
    message: &[u8],
) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    store.lock_lists(&mut tx, &[peer]).await?;
    let peer_key = ConvKey {
        user_id: peer,
        conv_type: key.conv_type,
        conv_id: key.user_id,
    };
    let theirs = store.read_state(&mut tx, peer_key).await?;
    let seq = store.seq_of(&mut tx, peer, message).await?;
    let (Some(theirs), Some(seq)) = (theirs, seq) else {
        tx.rollback().await.map_err(StoreError::from)?;
        return Ok(());
    };
    if seq <= theirs.peer_read_seq {
        tx.rollback().await.map_err(StoreError::from)?;
        return Ok(());
    }
    let body = ConvPeerReadEvent {
        conv_type: key.conv_type,
        conv_id: key.user_id,
        peer_read_seq: seq,
    };
    let to_peer = Recipient {
        user_id: peer,
        conv_id: key.user_id,
    };
    let kind = SystemContentType::ConvPeerRead;
    let events = vec![system::event(
        actor,
        ConvType::User,
        peer,
        kind,
        &body,
        vec![to_peer],
    )];
    let appended = system::append(logic, &mut tx, &events).await?;
    store.set_peer_read(&mut tx, peer_key, seq).await?;
    let committed = system::commit_appended(logic, tx, events, appended, Changes::Lists).await?;
    logic.fanout.push(committed).await;
    Ok(())
}
