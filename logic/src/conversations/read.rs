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

use super::{answer, commit, key, locked, own_event, target};
use crate::actor::Actor;
use crate::error::Result;
use crate::store::conversations::ConvKey;
use crate::store::StoreError;
use crate::system::{self, retry};
use crate::Logic;

/// MARK_READ: raises the read position, then answers the conversation.
pub(crate) async fn mark_read(
    logic: &Logic,
    actor: &Actor,
    req: MarkReadRequest,
) -> Result<pb::Conversation> {
    let (conv_type, conv_id) = target(req.conv_type, req.conv_id)?;
    let key = key(actor, conv_type, conv_id);
    let read = retry!(logic, read_tx(logic, actor, key, req.up_to_seq))?;
    // The receipt in a transaction of its own, so that the recount above
    // never holds the other party's list. Should it fail, the reader's
    // next MARK_READ sends it.
    let peer = (key.conv_type == ConvType::User as i32 && key.conv_id != key.user_id)
        .then_some(key.conv_id);
    if let (Some(peer), Some(message)) = (peer, read) {
        retry!(logic, receipt_tx(logic, actor, key, peer, &message))?;
    }
    answer(logic, key).await
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
    let (mut tx, state) = locked(logic, key).await?;
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
    let events = vec![own_event(actor, key, SystemContentType::ConvRead, &body)];
    let appended = system::append(logic, &mut tx, &events).await?;
    store.set_read(&mut tx, key, read_seq, &after).await?;
    commit(logic, tx, events, appended).await?;
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
    let events = vec![own_event(
        actor,
        peer_key,
        SystemContentType::ConvPeerRead,
        &body,
    )];
    let appended = system::append(logic, &mut tx, &events).await?;
    store.set_peer_read(&mut tx, peer_key, seq).await?;
    commit(logic, tx, events, appended).await
}
