//! Groups (types 40-52). Roles owner > admin > member. Every membership or
//! settings change locks the group row, applies, and appends a GroupEvent to
//! the lists of every member concerned (including one being removed), in
//! one transaction; the member cache is dropped after each change.
//! Someone who is not a member gets NOT_FOUND, as if the group did not exist.
//! A user puts into a group (at CREATE or ADD_MEMBERS) only users they may
//! message one-to-one: never one blocked either way, and under friends-only
//! only accepted friends; the admin API is not limited by this.

mod members;
mod settings;

pub(crate) use members::{
    add_members, members_page, mute_member, quit, remove_members, set_role, transfer_owner, Member,
};
pub(crate) use settings::{create, dismiss, get, list_mine, set_muted_all, update, NewGroupSpec};

use std::sync::Arc;

use tracing::{debug, warn};

use tern_public::proto::client::{ConvType, GroupEvent, SystemContentType};
use tern_public::time::now_ms;

use crate::actor::Actor;
use crate::cache::Lookup;
use crate::error::{LogicError, Result};
use crate::store::groups::{GroupRow, MemberRow};
use crate::store::{NewMessage, Recipient, Tx};
use crate::{system, Logic};

const MAX_NAME: usize = 64;
const MAX_URL: usize = 1024;
const MAX_INTRO: usize = 1024;
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 500;

const NO_GROUP: LogicError = LogicError::NotFound("no such group");

/// A group event for `audience`, in the group's conversation.
pub(crate) fn group_event(
    actor: &Actor,
    group_id: u64,
    kind: SystemContentType,
    body: GroupEvent,
    audience: &[u64],
) -> NewMessage {
    let recipients = audience
        .iter()
        .map(|&u| Recipient {
            user_id: u,
            conv_id: group_id,
        })
        .collect();
    system::event(actor, ConvType::Group, group_id, kind, &body, recipients)
}

/// Locks a live group for a change and returns it with the actor's membership.
pub(crate) async fn lock_as_member(
    logic: &Logic,
    tx: &mut Tx,
    actor: &Actor,
    group_id: u64,
) -> Result<(GroupRow, MemberRow)> {
    let group = logic.store.lock_group(tx, group_id, now_ms()).await?;
    let group = group.filter(|g| g.dismissed_at == 0).ok_or(NO_GROUP)?;
    let me = logic
        .store
        .member_in(tx, group_id, actor.user_id())
        .await?
        .ok_or(NO_GROUP)?;
    Ok((group, me))
}

/// Commits a change with its event and drops the cached member list.
pub(crate) async fn commit(logic: &Logic, tx: Tx, group_id: u64, event: NewMessage) -> Result<()> {
    let committed = system::commit_only(logic, tx, vec![event]).await;
    // Right after the commit, before the events are handed to fan-out: no
    // send may use the old member list from here on.
    if let Err(e) = logic.members.invalidate(group_id).await {
        // The cached list expires by its TTL; until then sends may use it.
        warn!(group_id, error = %e, "member cache invalidation failed");
    }
    logic.fanout.push(committed?).await;
    Ok(())
}

fn check_text(name: &str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max {
        return Err(LogicError::bad_request(format!(
            "{name} longer than {max} characters"
        )));
    }
    Ok(())
}

/// Distinct user ids, without `except`, all existing and active.
pub(crate) async fn existing_users(logic: &Logic, ids: &[u64], except: u64) -> Result<Vec<u64>> {
    let mut ids: Vec<u64> = ids.iter().copied().filter(|&u| u != except).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() > logic.cfg.max_group_members as usize {
        return Err(LogicError::Forbidden("more users than a group can hold"));
    }
    let found = logic.store.users_by_ids(&ids).await?;
    if found.len() != ids.len() || found.iter().any(|u| !u.is_active()) {
        return Err(LogicError::NotFound("no such user"));
    }
    Ok(ids)
}

/// A live group the actor belongs to, read without locking.
pub(crate) async fn visible(
    logic: &Logic,
    actor: &Actor,
    group_id: u64,
) -> Result<(GroupRow, MemberRow)> {
    let group = logic
        .store
        .group(group_id)
        .await?
        .filter(|g| g.dismissed_at == 0)
        .ok_or(NO_GROUP)?;
    let me = logic
        .store
        .member(group_id, actor.user_id())
        .await?
        .ok_or(NO_GROUP)?;
    Ok((group, me))
}

/// The members a group message goes to, from the cache when possible.
pub(crate) async fn member_ids(logic: &Logic, group_id: u64) -> Result<Arc<Vec<u64>>> {
    let epoch = match logic.members.get(group_id).await {
        Ok(Lookup::Hit(ids)) => return Ok(ids),
        Ok(Lookup::Miss(epoch)) => Some(epoch),
        Err(e) => {
            debug!(group_id, error = %e, "member cache unavailable; reading the store");
            None
        }
    };
    let ids = Arc::new(logic.store.member_ids(group_id).await?);
    if let Some(epoch) = epoch {
        if let Err(e) = logic.members.put(group_id, epoch, ids.clone()).await {
            debug!(group_id, error = %e, "member cache put failed");
        }
    }
    Ok(ids)
}

/// Who may send to a group: a member that is not muted, and when the whole
/// group is muted, only the owner and admins.
pub(crate) async fn check_send(
    logic: &Logic,
    actor: &Actor,
    group_id: u64,
    mentions_all: bool,
) -> Result<()> {
    let (group, me) = visible(logic, actor, group_id).await?;
    if me.muted_until > now_ms() {
        return Err(LogicError::Muted("you are muted in this group"));
    }
    if group.muted_all && !me.role.is_manager() {
        return Err(LogicError::Muted("the group is muted"));
    }
    if mentions_all && !me.role.is_manager() && !group.member_mention_all {
        return Err(LogicError::Forbidden(
            "only the owner and admins may mention everyone in this group",
        ));
    }
    Ok(())
}
