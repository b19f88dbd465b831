//! Messages from the admin API: sends as the system or on behalf of a user
//! (through the group-commit batcher, like every client send), a user's
//! list, and recall without the sender's time window.

use bytes::Bytes;

use tern_public::proto::client::{ConvType, Message};

use crate::actor::{Actor, SYSTEM_USER};
use crate::error::{LogicError, Result};
use crate::messages::{
    self, chat_message, check_content, duplicate, moderation, Draft, Outcome, Sent,
};
use crate::store::Recipient;
use crate::wire::entry_message;
use crate::{groups, paging, Logic};

/// A message to send.
#[derive(Debug, Clone)]
pub(crate) struct AdminSend {
    /// [`Actor::System`]: no list row for the sender, conv type SYSTEM for
    /// one-to-one targets. [`Actor::AdminAs`]: exactly as if one of the
    /// user's devices had sent it.
    pub from: Actor,
    /// Its conv type is USER or GROUP.
    pub draft: Draft,
}

impl Logic {
    /// Sends a message; a repeated client_msg_id (per sender) answers the
    /// first send again and stores nothing.
    pub(crate) async fn admin_send(&self, m: AdminSend) -> Result<Sent> {
        match m.from {
            Actor::System => self.system_send(m.draft).await,
            from => {
                let user = self.admin_user(from.user_id()).await?;
                if !user.is_active() {
                    return Err(LogicError::Forbidden("the sender is disabled"));
                }
                messages::send(self, &from, m.draft).await
            }
        }
    }

    async fn system_send(&self, mut req: Draft) -> Result<Sent> {
        check_content(&self.cfg, &req)?;
        if let Some(sent) = messages::stored_before(self, SYSTEM_USER, &req).await? {
            return Ok(sent);
        }
        let (conv_type, recipients) = match ConvType::try_from(req.conv_type) {
            Ok(ConvType::Group) => {
                self.group_owner(req.to).await?;
                let members = groups::member_ids(self, req.to).await?;
                let to = members.iter().map(|&user_id| Recipient {
                    user_id,
                    conv_id: req.to,
                });
                (ConvType::Group, to.collect())
            }
            _ => {
                self.admin_user(req.to).await?;
                let to = Recipient {
                    user_id: req.to,
                    conv_id: SYSTEM_USER,
                };
                (ConvType::System, vec![to])
            }
        };
        if let Some(hook) = moderation::hook_for(self, &Actor::System) {
            moderation::moderate(self, hook, &Actor::System, conv_type, &mut req).await?;
        }
        let msg = chat_message((SYSTEM_USER, 0), conv_type, req, recipients);
        match self.batcher.submit(msg.clone()).await? {
            Outcome::Stored { .. } => Ok(Sent {
                message_id: Bytes::copy_from_slice(&msg.id),
                seq: 0,
                created_at: msg.created_at,
            }),
            Outcome::Duplicate(existing) => Ok(duplicate(existing)),
        }
    }

    /// A page of a user's list after `after_seq`, ascending; true if more follow.
    pub(crate) async fn admin_list(
        &self,
        user_id: u64,
        after_seq: u64,
        limit: u32,
    ) -> Result<(Vec<Message>, bool)> {
        self.admin_user(user_id).await?;
        let rows = self.store.list_after(user_id, after_seq, limit + 1).await?;
        let (rows, more) = paging::page(rows, limit);
        Ok((rows.into_iter().map(entry_message).collect(), more))
    }

    /// Recalls any message that is not a system event, at any age.
    pub(crate) async fn admin_recall(&self, message_id: &[u8]) -> Result<()> {
        if message_id.len() != 16 {
            return Err(LogicError::bad_request("message_id must be 16 bytes"));
        }
        let meta = self
            .store
            .message_meta(message_id)
            .await?
            .ok_or(LogicError::NotFound("no such message"))?;
        if meta.content_type >= messages::FIRST_SYSTEM_CONTENT_TYPE {
            return Err(LogicError::bad_request("system events cannot be recalled"));
        }
        let conv_type = ConvType::try_from(meta.conv_type).unwrap_or(ConvType::User);
        crate::system::retry!(
            self,
            messages::recall_tx(
                self,
                &Actor::System,
                message_id,
                conv_type,
                meta.receiver_id
            )
        )
    }
}
