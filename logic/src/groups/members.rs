//! Membership and roles: add, remove, quit, transfer ownership, set role,
//! mute a member. Each locks the group row first.

use tern_public::proto::client::{
    GroupEvent, GroupMembersChange, GroupMuteRequest, GroupRole, GroupSetRoleRequest, GroupTarget,
    GroupTransferRequest, SystemContentType,
};
use tern_public::time::now_ms;

use super::{commit, existing_users, group_event, lock_as_member, rank};
use crate::error::{LogicError, Result};
use crate::rpc::Caller;
use crate::store::groups::{ADMIN, MEMBER, OWNER};
use crate::system::retry;
use crate::Logic;

/// ADD_MEMBERS: owner or admin, or any member when the group allows invites.
pub(crate) async fn add_members(
    logic: &Logic,
    caller: &Caller,
    req: GroupMembersChange,
) -> Result<()> {
    let users = existing_users(logic, &req.user_ids, caller.user_id).await?;
    if users.is_empty() {
        return Err(LogicError::bad_request("no users to add"));
    }
    retry!(logic, add_tx(logic, caller, req.group_id, &users))
}

async fn add_tx(logic: &Logic, caller: &Caller, group_id: u64, users: &[u64]) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    let (group, me) = lock_as_member(logic, &mut tx, caller, group_id).await?;
    if rank(&me.role) < rank(ADMIN) && !group.member_invite {
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
    let rows: Vec<(u64, &str)> = new.iter().map(|&u| (u, MEMBER)).collect();
    store
        .add_members(&mut tx, group_id, &rows, now_ms())
        .await?;
    let mut everyone = current;
    everyone.extend(&new);
    let body = GroupEvent {
        group_id,
        operator_id: caller.user_id,
        user_ids: new,
        ..Default::default()
    };
    let event = group_event(
        caller,
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
    caller: &Caller,
    req: GroupMembersChange,
) -> Result<()> {
    let mut users = req.user_ids.clone();
    users.sort_unstable();
    users.dedup();
    if users.is_empty() || users.contains(&caller.user_id) {
        return Err(LogicError::bad_request(
            "name other members to remove (use QUIT to leave)",
        ));
    }
    retry!(logic, remove_tx(logic, caller, req.group_id, &users))
}

async fn remove_tx(logic: &Logic, caller: &Caller, group_id: u64, users: &[u64]) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    let (_, me) = lock_as_member(logic, &mut tx, caller, group_id).await?;
    if rank(&me.role) < rank(ADMIN) {
        return Err(LogicError::Forbidden(
            "only the owner or an admin can remove members",
        ));
    }
    for &u in users {
        let target = store.member_in(&mut tx, group_id, u).await?;
        let target = target.ok_or(LogicError::NotFound("not a member"))?;
        if rank(&target.role) >= rank(&me.role) {
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
        operator_id: caller.user_id,
        user_ids: users.to_vec(),
        ..Default::default()
    };
    let event = group_event(
        caller,
        group_id,
        SystemContentType::GroupMembersRemoved,
        body,
        &everyone,
    );
    commit(logic, tx, group_id, event).await
}

/// QUIT: anyone but the owner, who must transfer ownership first.
pub(crate) async fn quit(logic: &Logic, caller: &Caller, req: GroupTarget) -> Result<()> {
    retry!(logic, quit_tx(logic, caller, req.group_id))
}

async fn quit_tx(logic: &Logic, caller: &Caller, group_id: u64) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    let (_, me) = lock_as_member(logic, &mut tx, caller, group_id).await?;
    if me.role == OWNER {
        return Err(LogicError::Forbidden(
            "the owner must transfer ownership before quitting",
        ));
    }
    let everyone = store.member_ids_in(&mut tx, group_id).await?;
    store
        .remove_members(&mut tx, group_id, &[caller.user_id])
        .await?;
    let body = GroupEvent {
        group_id,
        operator_id: caller.user_id,
        user_ids: vec![caller.user_id],
        ..Default::default()
    };
    let event = group_event(
        caller,
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
    caller: &Caller,
    req: GroupTransferRequest,
) -> Result<()> {
    if req.new_owner_id == caller.user_id {
        return Err(LogicError::bad_request("you already own the group"));
    }
    retry!(
        logic,
        transfer_tx(logic, caller, req.group_id, req.new_owner_id)
    )
}

async fn transfer_tx(logic: &Logic, caller: &Caller, group_id: u64, to: u64) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    let (_, me) = lock_as_member(logic, &mut tx, caller, group_id).await?;
    if me.role != OWNER {
        return Err(LogicError::Forbidden(
            "only the owner can transfer ownership",
        ));
    }
    store
        .member_in(&mut tx, group_id, to)
        .await?
        .ok_or(LogicError::NotFound("not a member"))?;
    store.set_role(&mut tx, group_id, to, OWNER).await?;
    store
        .set_role(&mut tx, group_id, caller.user_id, MEMBER)
        .await?;
    store.set_owner(&mut tx, group_id, to).await?;
    let everyone = store.member_ids_in(&mut tx, group_id).await?;
    let body = GroupEvent {
        group_id,
        operator_id: caller.user_id,
        user_ids: vec![to],
        ..Default::default()
    };
    let event = group_event(
        caller,
        group_id,
        SystemContentType::GroupOwnerTransferred,
        body,
        &everyone,
    );
    commit(logic, tx, group_id, event).await
}

/// SET_ROLE: the owner makes a member an admin or an admin a member.
pub(crate) async fn set_role(
    logic: &Logic,
    caller: &Caller,
    req: GroupSetRoleRequest,
) -> Result<()> {
    let role = match GroupRole::try_from(req.role) {
        Ok(GroupRole::Admin) => ADMIN,
        Ok(GroupRole::Member) => MEMBER,
        _ => {
            return Err(LogicError::bad_request(
                "role must be ADMIN or MEMBER (use TRANSFER_OWNER)",
            ))
        }
    };
    if req.user_id == caller.user_id {
        return Err(LogicError::bad_request("you cannot change your own role"));
    }
    retry!(
        logic,
        role_tx(logic, caller, req.group_id, req.user_id, role)
    )
}

async fn role_tx(
    logic: &Logic,
    caller: &Caller,
    group_id: u64,
    user: u64,
    role: &str,
) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    let (_, me) = lock_as_member(logic, &mut tx, caller, group_id).await?;
    if me.role != OWNER {
        return Err(LogicError::Forbidden("only the owner can change roles"));
    }
    store
        .member_in(&mut tx, group_id, user)
        .await?
        .ok_or(LogicError::NotFound("not a member"))?;
    store.set_role(&mut tx, group_id, user, role).await?;
    let everyone = store.member_ids_in(&mut tx, group_id).await?;
    let role_enum = if role == ADMIN {
        GroupRole::Admin
    } else {
        GroupRole::Member
    };
    let body = GroupEvent {
        group_id,
        operator_id: caller.user_id,
        user_ids: vec![user],
        role: role_enum as i32,
        ..Default::default()
    };
    let event = group_event(
        caller,
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
    caller: &Caller,
    req: GroupMuteRequest,
) -> Result<()> {
    if req.until_ms < 0 {
        return Err(LogicError::bad_request(
            "until_ms must be 0 (unmute) or a time",
        ));
    }
    if req.user_id == caller.user_id {
        return Err(LogicError::bad_request("you cannot mute yourself"));
    }
    retry!(logic, mute_tx(logic, caller, &req))
}

async fn mute_tx(logic: &Logic, caller: &Caller, req: &GroupMuteRequest) -> Result<()> {
    let store = &logic.store;
    let group_id = req.group_id;
    let mut tx = store.begin_write().await?;
    let (_, me) = lock_as_member(logic, &mut tx, caller, group_id).await?;
    if rank(&me.role) < rank(ADMIN) {
        return Err(LogicError::Forbidden(
            "only the owner or an admin can mute members",
        ));
    }
    let target = store
        .member_in(&mut tx, group_id, req.user_id)
        .await?
        .ok_or(LogicError::NotFound("not a member"))?;
    if rank(&target.role) >= rank(&me.role) {
        return Err(LogicError::Forbidden(
            "you can only mute members below your role",
        ));
    }
    store
        .set_muted_until(&mut tx, group_id, req.user_id, req.until_ms)
        .await?;
    let everyone = store.member_ids_in(&mut tx, group_id).await?;
    let body = GroupEvent {
        group_id,
        operator_id: caller.user_id,
        user_ids: vec![req.user_id],
        muted_until_ms: req.until_ms,
        ..Default::default()
    };
    let event = group_event(
        caller,
        group_id,
        SystemContentType::GroupMemberMuted,
        body,
        &everyone,
    );
    commit(logic, tx, group_id, event).await
}
