//! SEND, SYNC, ACK and RECALL: the write fan-out model of DESIGN.md.

mod batch;
pub(crate) mod moderation;
mod recall;

pub(crate) use batch::{Batcher, Outcome};
pub(crate) use recall::{recall, recall_tx};

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;

use tern_public::proto::client::{AckRequest, ConvType, SyncReply, SyncRequest};
use tern_public::time::now_ms;

use crate::actor::Actor;
use crate::domain::UserStatus;
use crate::error::{LogicError, Result};
use crate::store::conversations::MENTION_ALL;
use crate::store::{NewMessage, Recipient};
use crate::wire::entry_message;
use crate::Logic;

/// Longest client_msg_id accepted.
pub(crate) const MAX_CLIENT_MSG_ID: usize = 64;
/// Content types at and above this are system events, never sent by clients.
pub(crate) const FIRST_SYSTEM_CONTENT_TYPE: u32 = 1000;
/// Room for the Reply and SyncReply envelopes around the messages of a page.
const PAGE_ENVELOPE: usize = 1024;

/// A message as its sender wrote it, before it has an id or recipients.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    /// USER or GROUP (the client's number, checked by [`send`]).
    pub conv_type: i32,
    /// The receiving user or group.
    pub to: u64,
    pub content_type: u32,
    pub content: Bytes,
    pub mentions: Vec<u64>,
    /// Empty: no idempotency key.
    pub client_msg_id: String,
}

/// Where a send landed: the answer to its sender, and to a retry of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sent {
    pub message_id: Bytes,
    /// In the sender's own list; 0 when the system sent it.
    pub seq: u64,
    pub created_at: i64,
}

/// SEND: validates, asks the before-send hook (when configured), stores
/// through the group-commit batcher, answers with the sender's seq. A
/// repeated client_msg_id answers the first send again.
pub(crate) async fn send(logic: &Logic, actor: &Actor, mut draft: Draft) -> Result<Sent> {
    let conv_type = match ConvType::try_from(draft.conv_type) {
        Ok(t @ (ConvType::User | ConvType::Group)) => t,
        _ => return Err(LogicError::bad_request("conv_type must be USER or GROUP")),
    };
    check_content(&logic.cfg, &draft)?;
    // A retry of a stored send is caught by the unique (sender,
    // client_msg_id) index when its batch commits, so the common case reads
    // nothing first. Only a send refused here looks for a first send: a
    // retry answers with it, even if the sender may no longer send (muted,
    // removed, unfriended, over the rate) since.
    let mentions_all = draft.mentions.contains(&MENTION_ALL);
    let checked = async {
        crate::limits::check_send(logic, actor).await?;
        match conv_type {
            ConvType::Group => group_recipients(logic, actor, draft.to, mentions_all).await,
            _ if mentions_all => Err(LogicError::bad_request(
                "everyone (mention 0) can be mentioned only in a group",
            )),
            _ => user_recipients(logic, actor, draft.to).await,
        }
    };
    let recipients = match checked.await {
        Ok(r) => r,
        Err(refused) if !draft.client_msg_id.is_empty() => {
            return match logic
                .store
                .find_by_client_msg_id(actor.user_id(), &draft.client_msg_id)
                .await?
            {
                Some(existing) => Ok(duplicate(existing)),
                None => Err(refused),
            };
        }
        Err(refused) => return Err(refused),
    };
    if let Some(hook) = moderation::hook_for(logic, actor) {
        // A retry of a stored send is answered from the store without
        // asking the hook again (which might answer otherwise this time).
        // The read costs little beside the hook's round trip; two retries
        // racing each other may both ask, and the batch then stores one.
        if let Some(sent) = stored_before(logic, actor.user_id(), &draft).await? {
            return Ok(sent);
        }
        moderation::moderate(logic, hook, actor, conv_type, &mut draft).await?;
    }
    let msg = chat_message(
        (actor.user_id(), actor.device_id()),
        conv_type,
        draft,
        recipients,
    );
    let started = std::time::Instant::now();
    let outcome = logic.batcher.submit(msg.clone()).await?;
    logic
        .metrics
        .send_commit_seconds
        .observe(started.elapsed().as_secs_f64());
    match outcome {
        // The sender is always the first recipient.
        Outcome::Stored { seqs } => Ok(Sent {
            message_id: Bytes::copy_from_slice(&msg.id),
            seq: seqs[0],
            created_at: msg.created_at,
        }),
        Outcome::Duplicate(existing) => Ok(duplicate(existing)),
    }
}

/// A chat message from `(sender, device)` as `draft` describes it, for `recipients`.
pub(crate) fn chat_message(
    (sender_id, sender_device_id): (u64, u64),
    conv_type: ConvType,
    draft: Draft,
    recipients: Vec<Recipient>,
) -> Arc<NewMessage> {
    Arc::new(NewMessage {
        id: *uuid::Uuid::now_v7().as_bytes(),
        sender_id,
        sender_device_id,
        conv_type: conv_type as i32,
        receiver_id: draft.to,
        content_type: draft.content_type,
        content: draft.content,
        mentions: draft.mentions,
        client_msg_id: Some(draft.client_msg_id).filter(|c| !c.is_empty()),
        created_at: now_ms(),
        recipients,
        push_to_sender_device: false,
    })
}

/// The checks every send passes, whoever sends.
pub(crate) fn check_content(cfg: &crate::LogicConfig, req: &Draft) -> Result<()> {
    if req.content_type == 0 || req.content_type >= FIRST_SYSTEM_CONTENT_TYPE {
        return Err(LogicError::bad_request("content_type must be 1-999"));
    }
    if req.content.len() > cfg.max_content_len {
        return Err(LogicError::TooLarge(format!(
            "content of {} bytes exceeds {}",
            req.content.len(),
            cfg.max_content_len
        )));
    }
    if req.client_msg_id.len() > MAX_CLIENT_MSG_ID {
        return Err(LogicError::bad_request(format!(
            "client_msg_id longer than {MAX_CLIENT_MSG_ID} bytes"
        )));
    }
    if req.mentions.len() > cfg.max_mentions {
        return Err(LogicError::bad_request(format!(
            "more than {} mentions",
            cfg.max_mentions
        )));
    }
    Ok(())
}

/// One-to-one: the sender's list and the receiver's, if policy allows. The
/// receiver and the relation both ways are read in one query.
async fn user_recipients(logic: &Logic, actor: &Actor, to: u64) -> Result<Vec<Recipient>> {
    let standing = match to {
        0 => None,
        id => logic.store.send_standing(actor.user_id(), id).await?,
    };
    let standing = standing
        .filter(|s| s.receiver_status == UserStatus::Active)
        .ok_or(LogicError::NotFound("no such user"))?;
    let mut recipients = vec![Recipient {
        user_id: actor.user_id(),
        conv_id: to,
    }];
    if to != actor.user_id() {
        crate::friends::check_relation(logic, standing.mine, standing.theirs)?;
        recipients.push(Recipient {
            user_id: to,
            conv_id: actor.user_id(),
        });
    }
    Ok(recipients)
}

/// A group: every member's list, the sender's first (its seq is the reply's).
async fn group_recipients(
    logic: &Logic,
    actor: &Actor,
    group_id: u64,
    mentions_all: bool,
) -> Result<Vec<Recipient>> {
    crate::groups::check_send(logic, actor, group_id, mentions_all).await?;
    let members = crate::groups::member_ids(logic, group_id).await?;
    let mut recipients = Vec::with_capacity(members.len() + 1);
    recipients.push(Recipient {
        user_id: actor.user_id(),
        conv_id: group_id,
    });
    recipients.extend(
        members
            .iter()
            .filter(|&&u| u != actor.user_id())
            .map(|&u| Recipient {
                user_id: u,
                conv_id: group_id,
            }),
    );
    Ok(recipients)
}

/// The first send's answer when `sender` already stored `draft`'s client_msg_id.
pub(crate) async fn stored_before(
    logic: &Logic,
    sender: u64,
    draft: &Draft,
) -> Result<Option<Sent>> {
    if draft.client_msg_id.is_empty() {
        return Ok(None);
    }
    Ok(logic
        .store
        .find_by_client_msg_id(sender, &draft.client_msg_id)
        .await?
        .map(duplicate))
}

/// The first send's answer, for a retry of it.
pub(crate) fn duplicate(existing: crate::store::Existing) -> Sent {
    Sent {
        message_id: existing.id.into(),
        seq: existing.sender_seq,
        created_at: existing.created_at,
    }
}

/// SYNC: a page of the actor's list after `after_seq`, ascending, capped in
/// count and kept under the frame limit.
pub(crate) async fn sync(logic: &Logic, actor: &Actor, req: SyncRequest) -> Result<SyncReply> {
    let cfg = &logic.cfg;
    let limit = match req.limit {
        0 => cfg.sync_default_limit,
        n => n.min(cfg.sync_max_limit),
    };
    let entries = logic
        .store
        .list_after(actor.user_id(), req.after_seq, limit + 1)
        .await?;
    // Read the head after the page: list rows and the head commit together,
    // so max_seq is never below a seq in the page.
    let max_seq = logic.store.max_seq(actor.user_id()).await?;
    let budget = cfg.max_frame_len.saturating_sub(PAGE_ENVELOPE);
    let mut has_more = entries.len() > limit as usize;
    let mut used = 0;
    let mut messages = Vec::with_capacity(entries.len().min(limit as usize));
    for entry in entries.into_iter().take(limit as usize) {
        let m = entry_message(entry);
        let len = m.encoded_len();
        let size = 1 + prost::length_delimiter_len(len) + len;
        if used + size > budget && !messages.is_empty() {
            has_more = true;
            break;
        }
        used += size;
        messages.push(m);
    }
    Ok(SyncReply {
        messages,
        has_more,
        max_seq,
    })
}

/// ACK: raises this device's ack_seq; a seq beyond the list's head is refused.
pub(crate) async fn ack(logic: &Logic, actor: &Actor, req: AckRequest) -> Result<()> {
    let max_seq = logic.store.max_seq(actor.user_id()).await?;
    if req.seq > max_seq {
        return Err(LogicError::bad_request(format!(
            "seq {} is beyond the list head {max_seq}",
            req.seq
        )));
    }
    logic.store.ack(actor.device_id(), req.seq).await?;
    Ok(())
}
