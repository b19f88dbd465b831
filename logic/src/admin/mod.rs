//! What the admin API does, over the same handlers and store paths as
//! client commands. An admin acting on a user's things acts as that user
//! (a send on behalf of a user is that user's send); on a group it acts with
//! the owner's authority, so every change makes the same events a client's
//! would, naming the owner as operator.

mod accounts;
mod conversations;
mod messages;
mod webhooks;

pub(crate) use messages::AdminSend;

use crate::actor::Actor;
use crate::error::{LogicError, Result};
use crate::Logic;

impl Logic {
    /// The owner of a live group, to act with its authority.
    pub(crate) async fn group_owner(&self, group_id: u64) -> Result<Actor> {
        let group = self
            .store
            .group(group_id)
            .await?
            .filter(|g| g.dismissed_at == 0)
            .ok_or(LogicError::NotFound("no such group"))?;
        Ok(Actor::AdminAs(group.owner_id))
    }
}
