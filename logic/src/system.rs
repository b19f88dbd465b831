//! System events (content_type >= 1000): state changes that other devices
//! learn about through the same per-user lists as chat messages. A change
//! and its events commit in one transaction, then go to fan-out.

use std::sync::Arc;

use tern_public::proto::client::{ConvType, SystemContentType};
use tern_public::time::now_ms;

use crate::actor::Actor;
use crate::error::{LogicError, Result};
use crate::fanout::Committed;
use crate::store::{Appended, NewMessage, Recipient, Tx};
use crate::Logic;

/// Runs `$op` (an expression producing a fresh transaction's future each
/// time) under the one retry policy ([`crate::retry`]).
macro_rules! retry {
    ($logic:expr, $op:expr) => {
        $crate::retry::run(&$logic.store, || $op).await
    };
}
pub(crate) use retry;

/// A system event by `actor`, in conversation (`conv_type`, `receiver_id`),
/// for `recipients`.
pub(crate) fn event(
    actor: &Actor,
    conv_type: ConvType,
    receiver_id: u64,
    kind: SystemContentType,
    body: &impl prost::Message,
    recipients: Vec<Recipient>,
) -> NewMessage {
    NewMessage {
        id: *uuid::Uuid::now_v7().as_bytes(),
        sender_id: actor.user_id(),
        sender_device_id: actor.device_id(),
        conv_type: conv_type as i32,
        receiver_id,
        content_type: kind as u32,
        content: body.encode_to_vec().into(),
        mentions: vec![],
        client_msg_id: None,
        created_at: now_ms(),
        recipients,
        push_to_sender_device: true,
    }
}

/// Appends `events` in `tx`, commits, and hands them to fan-out.
pub(crate) async fn commit(logic: &Logic, tx: Tx, events: Vec<NewMessage>) -> Result<()> {
    let committed = commit_only(logic, tx, events).await?;
    logic.fanout.push(committed).await;
    Ok(())
}

/// Appends `events` in `tx` and commits; the actor hands the result to fan-out.
pub(crate) async fn commit_only(
    logic: &Logic,
    mut tx: Tx,
    events: Vec<NewMessage>,
) -> Result<Vec<Committed>> {
    let appended = append(logic, &mut tx, &events).await?;
    commit_appended(logic, tx, events, appended, Changes::Standing).await
}

/// Appends `events` in `tx`, for a change that writes more after them
/// while it holds their lists' heads; [`commit_appended`] ends it.
pub(crate) async fn append(
    logic: &Logic,
    tx: &mut Tx,
    events: &[NewMessage],
) -> Result<Vec<Appended>> {
    let refs: Vec<&NewMessage> = events.iter().collect();
    match logic.store.append_in(tx, &refs).await? {
        Ok(a) => Ok(a),
        Err(_missing) => Err(LogicError::NotFound("no such user")),
    }
}

/// What a transaction changed besides list entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Changes {
    /// A status or relation that may decide who can send: the send
    /// standing caches are dropped, here and on every node.
    Standing,
    /// Only the lists and what is derived from them (a recall, a read
    /// position, a conversation setting): the caches stay.
    Lists,
}

/// Commits `tx`, in which [`append`] appended `events`.
pub(crate) async fn commit_appended(
    logic: &Logic,
    tx: Tx,
    events: Vec<NewMessage>,
    appended: Vec<Appended>,
    changes: Changes,
) -> Result<Vec<Committed>> {
    match changes {
        Changes::Standing => logic.store.commit(tx).await?,
        Changes::Lists => logic.store.commit_messages(tx).await?,
    }
    Ok(events
        .into_iter()
        .zip(appended)
        .map(|(msg, a)| Committed {
            msg: Arc::new(msg),
            seqs: a.seqs,
        })
        .collect())
}
