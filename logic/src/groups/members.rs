//! Membership and roles: the member list, add, remove, quit, transfer
//! ownership, set role, mute a member. Each change locks the group row first.

use tern_public::proto::client::{GroupEvent, SystemContentType};
use tern_public::time::now_ms;

use super::{commit, existing_users, group_event, lock_as_member, visible, DEFAULT_PAGE, MAX_PAGE};
use crate::actor::Actor;
use crate::domain::Role;
use crate::error::{LogicError, Result};
use crate::store::groups::MemberRow;
use crate::store::User;
use crate::system::retry;
use crate::{friends, paging, Logic};

/// One member of a group, with the account when it still exists.
pub(crate) struct Member {
    pub row: MemberRow,
    pub user: Option<User>,
}

/// GROUP_MEMBERS: members of a group the actor belongs to, after user id
/// `after`, ascending, at most `limit` (0 for the default); true if more
/// follow.
pub(crate) async fn members_page(
    logic: &Logic,
    actor: &Actor,
    group_id: u64,
    after: u64,
    limit: u32,
) -> Result<(Vec<Member>, bool)> {
    visible(logic, actor, group_id).await?;
    let limit = paging::limit(limit, DEFAULT_PAGE, MAX_PAGE);
    let rows = logic.store.members_page(group_id, after, limit + 1).await?;
    let (rows, has_more) = paging::page(rows, limit);
    let ids: Vec<u64> = rows.iter().map(|m| m.user_id).collect();
    let mut users = paging::users_by_id(logic, &ids).await?;
    let page = rows
        .into_iter()
        .map(|row| Member {
            user: users.remove(&row.user_id),
            row,
        })
        .collect();
    Ok((page, has_more))
}

/// ADD_MEMBERS: owner or admin, or any member when the group allows
/// invites; only users the actor may reach (see [`friends::check_group_adds`]).
pub(crate) async fn add_members(
    logic: &Logic,
    actor: &Actor,
    group_id: u64,
    user_ids: &[u64],
) -> Result<()> {
    let users = existing_users(logic, user_ids, actor.user_id()).await?;
    if users.is_empty() {
        // Someone outside the group learns nothing of it, even from a
        // request that names no one else.
        visible(logic, actor, group_id).await?;
        return Err(LogicError::bad_request("no users to add"));
    }
    retry!(logic, add_tx(logic, actor, group_id, &users))
}

async fn add_tx(logic: &Logic, actor: &Actor, group_id: u64, users: &[u64]) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    let (group, me) = lock_as_member(logic, &mut tx, actor, group_id).await?;
    if !me.role.is_manager() && !group.member_invite {
        return Err(LogicError::Forbidden(
            "only the owner or an admin can add members",
        ));
    }
    let current = store.member_ids_in(&mut tx, group_id).await?;
    let new: Vec<u64> = users
        .iter()
        .copied()
        .filter(|u| current.binary_search(u).is_err())
        .collect();
    if new.is_empty() {
        return Err(LogicError::Conflict("already members"));
    }
    if current.len() + new.len() > group.max_members as usize {
        return Err(LogicError::Forbidden("group is full"));
    }
    let mut everyone = current;
    everyone.extend(&new);
    friends::check_group_adds(logic, &mut tx, actor, &new, &everyone).await?;
    let rows: Vec<(u64, Role)> = new.iter().map(|&u| (u, Role::Member)).collect();
    store
        .add_members(&mut tx, group_id, &rows, now_ms())
        .await?;
    let body = GroupEvent {
        group_id,
        operator_id: actor.user_id(),
        user_ids: new,
        ..Default::default()
    };
    let event = group_event(
        actor,
        group_id,
        SystemContentType::GroupMembersAdded,
        body,
        &everyone,
    );
    commit(logic, tx, group_id, event).await
}

/// REMOVE_MEMBERS: the owner removes anyone else, an admin removes members.
pub(crate) async fn remove_members(
    logic: &Logic,
    actor: &Actor,
    group_id: u64,
    user_ids: &[u64],
) -> Result<()> {
    let mut users = user_ids.to_vec();
    users.sort_unstable();
    users.dedup();
    if users.is_empty() || users.contains(&actor.user_id()) {
        return Err(LogicError::bad_request(
            "name other members to remove (use QUIT to leave)",
        ));
    }
    retry!(logic, remove_tx(logic, actor, group_id, &users))
}

async fn remove_tx(logic: &Logic, actor: &Actor, group_id: u64, users: &[u64]) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    let (_, me) = lock_as_member(logic, &mut tx, actor, group_id).await?;
    if !me.role.is_manager() {
        return Err(LogicError::Forbidden(
            "only the owner or an admin can remove members",
        ));
    }
    for &u in users {
        let target = store.member_in(&mut tx, group_id, u).await?;
        let target = target.ok_or(LogicError::NotFound("not a member"))?;
        if target.role >= me.role {
            return Err(LogicError::Forbidden(
                "you can only remove members below your role",
            ));
        }
    }
    // Everyone, the removed included, learns of it.
    let everyone = store.member_ids_in(&mut tx, group_id).await?;
    store.remove_members(&mut tx, group_id, users).await?;
    let body = GroupEvent {
        group_id,
        operator_id: actor.user_id(),
        user_ids: users.to_vec(),
        ..Default::default()
    };
    let event = group_event(
        actor,
        group_id,
        SystemContentType::GroupMembersRemoved,
        body,
        &everyone,
    );
    commit(logic, tx, group_id, event).await
}

/// QUIT: anyone but the owner, who must transfer ownership first.
pub(crate) async fn quit(logic: &Logic, actor: &Actor, group_id: u64) -> Result<()> {
    retry!(logic, quit_tx(logic, actor, group_id))
}

async fn quit_tx(logic: &Logic, actor: &Actor, group_id: u64) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    let (_, me) = lock_as_member(logic, &mut tx, actor, group_id).await?;
    if me.role == Role::Owner {
        return Err(LogicError::Forbidden(
            "the owner must transfer ownership before quitting",
        ));
    }
    let everyone = store.member_ids_in(&mut tx, group_id).await?;
    store
        .remove_members(&mut tx, group_id, &[actor.user_id()])
        .await?;
    let body = GroupEvent {
        group_id,
        operator_id: actor.user_id(),
        user_ids: vec![actor.user_id()],
        ..Default::default()
    };
    let event = group_event(
        actor,
        group_id,
        SystemContentType::GroupMemberQuit,
        body,
        &everyone,
    );
    commit(logic, tx, group_id, event).await
}

/// TRANSFER_OWNER: the owner hands over to another member and becomes a member.
pub(crate) async fn transfer_owner(
    logic: &Logic,
    actor: &Actor,
    group_id: u64,
    new_owner: u64,
) -> Result<()> {
    if new_owner == actor.user_id() {
        return Err(LogicError::bad_request("you already own the group"));
    }
    retry!(logic, transfer_tx(logic, actor, group_id, new_owner))
}

async fn transfer_tx(logic: &Logic, actor: &Actor, group_id: u64, to: u64) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    let (_, me) = lock_as_member(logic, &mut tx, actor, group_id).await?;
    if me.role != Role::Owner {
        return Err(LogicError::Forbidden(
            "only the owner can transfer ownership",
        ));
    }
    store
        .member_in(&mut tx, group_id, to)
        .await?
        .ok_or(LogicError::NotFound("not a member"))?;
    store.set_role(&mut tx, group_id, to, Role::Owner).await?;
    store
        .set_role(&mut tx, group_id, actor.user_id(), Role::Member)
        .await?;
    store.set_owner(&mut tx, group_id, to).await?;
    let everyone = store.member_ids_in(&mut tx, group_id).await?;
    let body = GroupEvent {
        group_id,
        operator_id: actor.user_id(),
        user_ids: vec![to],
        ..Default::default()
    };
    let event = group_event(
        actor,
        group_id,
        SystemContentType::GroupOwnerTransferred,
        body,
        &everyone,
    );
    commit(logic, tx, group_id, event).await
}

/// SET_ROLE: the owner makes a member an admin or an admin a member.
/// `role` is `None` when the client named none or an unknown one.
pub(crate) async fn set_role(
    logic: &Logic,
    actor: &Actor,
    group_id: u64,
    user: u64,
    role: Option<Role>,
) -> Result<()> {
    let role = match role {
        Some(r @ (Role::Admin | Role::Member)) => r,
        Some(Role::Owner) | None => {
            return Err(LogicError::bad_request(
                "role must be ADMIN or MEMBER (use TRANSFER_OWNER)",
            ))
        }
    };
    if user == actor.user_id() {
        return Err(LogicError::bad_request("you cannot change your own role"));
    }
    retry!(logic, role_tx(logic, actor, group_id, user, role))
}

async fn role_tx(logic: &Logic, actor: &Actor, group_id: u64, user: u64, role: Role) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    let (_, me) = lock_as_member(logic, &mut tx, actor, group_id).await?;
    if me.role != Role::Owner {
        return Err(LogicError::Forbidden("only the owner can change roles"));
    }
    store
        .member_in(&mut tx, group_id, user)
        .await?
        .ok_or(LogicError::NotFound("not a member"))?;
    store.set_role(&mut tx, group_id, user, role).await?;
    let everyone = store.member_ids_in(&mut tx, group_id).await?;
    let body = GroupEvent {
        group_id,
        operator_id: actor.user_id(),
        user_ids: vec![user],
        role: role.to_wire() as i32,
        ..Default::default()
    };
    let event = group_event(
        actor,
        group_id,
        SystemContentType::GroupRoleChanged,
        body,
        &everyone,
    );
    commit(logic, tx, group_id, event).await
}

/// MUTE_MEMBER: the owner or an admin mutes someone below their role until a time.
pub(crate) async fn mute_member(
    logic: &Logic,
    actor: &Actor,
    group_id: u64,
    user: u64,
    until_ms: i64,
) -> Result<()> {
    if until_ms < 0 {
        return Err(LogicError::bad_request(
            "until_ms must be 0 (unmute) or a time",
        ));
    }
    if user == actor.user_id() {
        return Err(LogicError::bad_request("you cannot mute yourself"));
    }
    retry!(logic, mute_tx(logic, actor, group_id, user, until_ms))
}

async fn mute_tx(
    logic: &Logic,
    actor: &Actor,
    group_id: u64,
    user: u64,
    until_ms: i64,
) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    let (_, me) = lock_as_member(logic, &mut tx, actor, group_id).await?;
    if !me.role.is_manager() {
        return Err(LogicError::Forbidden(
            "only the owner or an admin can mute members",
        ));
    }
    let target = store
        .member_in(&mut tx, group_id, user)
        .await?
        .ok_or(LogicError::NotFound("not a member"))?;
    if target.role >= me.role {
        return Err(LogicError::Forbidden(
            "you can only mute members below your role",
        ));
    }
    store
        .set_muted_until(&mut tx, group_id, user, until_ms)
        .await?;
    let everyone = store.member_ids_in(&mut tx, group_id).await?;
    let body = GroupEvent {
        group_id,
        operator_id: actor.user_id(),
        user_ids: vec![user],
        muted_until_ms: until_ms,
        ..Default::default()
    };
    let event = group_event(
        actor,
        group_id,
        SystemContentType::GroupMemberMuted,
        body,
        &everyone,
    );
    commit(logic, tx, group_id, event).await
}
