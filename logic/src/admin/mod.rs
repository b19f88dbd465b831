//! What the admin API does, over the same handlers and store paths as
//! client commands. An admin acting on a user's things acts as that user
//! (a send on behalf of a user is that user's send); on a group it acts with
//! the owner's authority, so every change makes the same events a client's
//! would, naming the owner as operator.

mod accounts;
mod messages;

pub(crate) use messages::{AdminSend, Sender};

use crate::error::{LogicError, Result};
use crate::rpc::Caller;
use crate::Logic;

/// The node id admin actions carry where a connection's would be.
const ADMIN_NODE: &str = "admin-api";

/// A caller with `user_id`'s identity and no connection or device.
impl Caller {
    /// Whether the admin API acts through this caller (no client connection).
    pub(crate) fn is_admin(&self) -> bool {
        self.node_id == ADMIN_NODE && self.conn_id == 0
    }
}

pub(crate) fn acting_as(user_id: u64) -> Caller {
    Caller {
        node_id: ADMIN_NODE.to_owned(),
        conn_id: 0,
        user_id,
        device_id: 0,
        heartbeat_interval_secs: 0,
        remote_addr: String::new(),
    }
}

impl Logic {
    /// The owner of a live group, to act with its authority.
    pub(crate) async fn group_owner(&self, group_id: u64) -> Result<Caller> {
        let group = self
            .store
            .group(group_id)
            .await?
            .filter(|g| g.dismissed_at == 0)
            .ok_or(LogicError::NotFound("no such group"))?;
        Ok(acting_as(group.owner_id))
    }
}
