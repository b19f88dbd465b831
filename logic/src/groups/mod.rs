//! Groups (types 40-52). Roles owner > admin > member. Every membership or
//! settings change locks the group row, applies, and appends a GroupEvent to
//! the lists of every member concerned (including one being removed), in
//! one transaction; the member cache is dropped after each change.
//! Someone who is not a member gets NOT_FOUND, as if the group did not exist.

mod members;

pub(crate) use members::{
    add_members, mute_member, quit, remove_members, set_role, transfer_owner,
};

use std::sync::Arc;

use tracing::{debug, warn};

use tern_public::proto::client::{
    ConvType, GroupCreateRequest, GroupEvent, GroupInfo, GroupList, GroupListRequest, GroupMember,
    GroupMemberList, GroupMembersRequest, GroupMuteAllRequest, GroupRole, GroupTarget,
    GroupUpdateRequest, SystemContentType,
};
use tern_public::time::now_ms;

use crate::cache::Lookup;
use crate::error::{LogicError, Result};
use crate::rpc::Caller;
use crate::store::groups::{GroupChanges, GroupRow, MemberRow, NewGroup, ADMIN, MEMBER, OWNER};
use crate::store::{NewMessage, Recipient, Tx};
use crate::system::{self, retry};
use crate::users::profile;
use crate::{paging, Logic};

const MAX_NAME: usize = 64;
const MAX_URL: usize = 1024;
const MAX_INTRO: usize = 1024;
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 500;

const NO_GROUP: LogicError = LogicError::NotFound("no such group");

pub(crate) fn rank(role: &str) -> u8 {
    match role {
        OWNER => 3,
        ADMIN => 2,
        _ => 1,
    }
}

fn role_enum(role: &str) -> GroupRole {
    match role {
        OWNER => GroupRole::Owner,
        ADMIN => GroupRole::Admin,
        _ => GroupRole::Member,
    }
}

pub(crate) fn info(g: &GroupRow) -> GroupInfo {
    GroupInfo {
        group_id: g.id,
        name: g.name.clone(),
        avatar_url: g.avatar_url.clone(),
        introduction: g.introduction.clone(),
        owner_id: g.owner_id,
        member_count: g.member_count,
        max_members: g.max_members,
        muted_all: g.muted_all,
        member_invite: g.member_invite,
        created_at_ms: g.created_at,
    }
}

/// A group event for `audience`, in the group's conversation.
pub(crate) fn group_event(
    caller: &Caller,
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
    system::event(caller, ConvType::Group, group_id, kind, &body, recipients)
}

/// Locks a live group for a change and returns it with the caller's membership.
pub(crate) async fn lock_as_member(
    logic: &Logic,
    tx: &mut Tx,
    caller: &Caller,
    group_id: u64,
) -> Result<(GroupRow, MemberRow)> {
    let group = logic.store.lock_group(tx, group_id, now_ms()).await?;
    let group = group.filter(|g| g.dismissed_at == 0).ok_or(NO_GROUP)?;
    let me = logic
        .store
        .member_in(tx, group_id, caller.user_id)
        .await?
        .ok_or(NO_GROUP)?;
    Ok((group, me))
}

/// Commits a change with its event and drops the cached member list.
pub(crate) async fn commit(logic: &Logic, tx: Tx, group_id: u64, event: NewMessage) -> Result<()> {
    let committed = system::commit_only(logic, tx, vec![event]).await;
    // Right after the commit, before fan-out (which may wait on a full
    // queue): no send may use the old member list from here on.
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

pub(crate) async fn create(
    logic: &Logic,
    caller: &Caller,
    req: GroupCreateRequest,
) -> Result<GroupInfo> {
    let name = req.name.trim();
    if name.is_empty() {
        return Err(LogicError::bad_request("a group needs a name"));
    }
    check_text("name", name, MAX_NAME)?;
    check_text("avatar_url", &req.avatar_url, MAX_URL)?;
    check_text("introduction", &req.introduction, MAX_INTRO)?;
    let members = existing_users(logic, &req.member_ids, caller.user_id).await?;
    let max = logic.cfg.max_group_members;
    if members.len() + 1 > max as usize {
        return Err(LogicError::Forbidden("group is full"));
    }
    retry!(logic, create_tx(logic, caller, &req, name, &members, max))
}

async fn create_tx(
    logic: &Logic,
    caller: &Caller,
    req: &GroupCreateRequest,
    name: &str,
    members: &[u64],
    max: u32,
) -> Result<GroupInfo> {
    let store = &logic.store;
    let now = now_ms();
    let mut tx = store.begin_write().await?;
    let group_id = store
        .create_group(
            &mut tx,
            NewGroup {
                name,
                avatar_url: &req.avatar_url,
                introduction: &req.introduction,
                owner_id: caller.user_id,
                max_members: max,
                member_invite: req.member_invite,
                now,
            },
        )
        .await?;
    let mut rows: Vec<(u64, &str)> = vec![(caller.user_id, OWNER)];
    rows.extend(members.iter().map(|&u| (u, MEMBER)));
    store.add_members(&mut tx, group_id, &rows, now).await?;
    let group = store
        .lock_group(&mut tx, group_id, now)
        .await?
        .ok_or(NO_GROUP)?;
    let everyone: Vec<u64> = rows.iter().map(|(u, _)| *u).collect();
    let body = GroupEvent {
        group_id,
        operator_id: caller.user_id,
        user_ids: everyone.clone(),
        info: Some(info(&group)),
        ..Default::default()
    };
    let event = group_event(
        caller,
        group_id,
        SystemContentType::GroupCreated,
        body,
        &everyone,
    );
    commit(logic, tx, group_id, event).await?;
    Ok(info(&group))
}

/// A live group the caller belongs to, read without locking.
async fn visible(logic: &Logic, caller: &Caller, group_id: u64) -> Result<(GroupRow, MemberRow)> {
    let group = logic
        .store
        .group(group_id)
        .await?
        .filter(|g| g.dismissed_at == 0)
        .ok_or(NO_GROUP)?;
    let me = logic
        .store
        .member(group_id, caller.user_id)
        .await?
        .ok_or(NO_GROUP)?;
    Ok((group, me))
}

pub(crate) async fn get_info(
    logic: &Logic,
    caller: &Caller,
    req: GroupTarget,
) -> Result<GroupInfo> {
    Ok(info(&visible(logic, caller, req.group_id).await?.0))
}

pub(crate) async fn list_mine(
    logic: &Logic,
    caller: &Caller,
    req: GroupListRequest,
) -> Result<GroupList> {
    let limit = paging::limit(req.limit, DEFAULT_PAGE, MAX_PAGE);
    let groups = logic
        .store
        .groups_of(caller.user_id, req.after_group_id, limit + 1)
        .await?;
    let (groups, has_more) = paging::page(groups, limit);
    let (groups, cut) = paging::fit(groups.iter().map(info).collect(), logic.cfg.max_frame_len);
    Ok(GroupList {
        groups,
        has_more: has_more || cut,
    })
}

pub(crate) async fn members_page(
    logic: &Logic,
    caller: &Caller,
    req: GroupMembersRequest,
) -> Result<GroupMemberList> {
    visible(logic, caller, req.group_id).await?;
    let limit = paging::limit(req.limit, DEFAULT_PAGE, MAX_PAGE);
    let rows = logic
        .store
        .members_page(req.group_id, req.after_user_id, limit + 1)
        .await?;
    let (rows, has_more) = paging::page(rows, limit);
    let ids: Vec<u64> = rows.iter().map(|m| m.user_id).collect();
    let users = paging::users_by_id(logic, &ids).await?;
    let members = rows
        .iter()
        .map(|m| GroupMember {
            profile: users.get(&m.user_id).map(profile),
            role: role_enum(&m.role) as i32,
            alias: m.alias.clone(),
            muted_until_ms: m.muted_until,
            joined_at_ms: m.joined_at,
        })
        .collect();
    let (members, cut) = paging::fit(members, logic.cfg.max_frame_len);
    Ok(GroupMemberList {
        members,
        has_more: has_more || cut,
    })
}

pub(crate) async fn update(
    logic: &Logic,
    caller: &Caller,
    req: GroupUpdateRequest,
) -> Result<GroupInfo> {
    if let Some(n) = &req.name {
        if n.trim().is_empty() {
            return Err(LogicError::bad_request("a group needs a name"));
        }
        check_text("name", n.trim(), MAX_NAME)?;
    }
    if let Some(a) = &req.avatar_url {
        check_text("avatar_url", a, MAX_URL)?;
    }
    if let Some(i) = &req.introduction {
        check_text("introduction", i, MAX_INTRO)?;
    }
    let changes = GroupChanges {
        name: req.name.as_ref().map(|n| n.trim().to_owned()),
        avatar_url: req.avatar_url.clone(),
        introduction: req.introduction.clone(),
        member_invite: req.member_invite,
        muted_all: None,
    };
    retry!(
        logic,
        settings_tx(
            logic,
            caller,
            req.group_id,
            &changes,
            SystemContentType::GroupUpdated
        )
    )
}

pub(crate) async fn mute_all(
    logic: &Logic,
    caller: &Caller,
    req: GroupMuteAllRequest,
) -> Result<GroupInfo> {
    let changes = GroupChanges {
        muted_all: Some(req.muted),
        ..Default::default()
    };
    retry!(
        logic,
        settings_tx(
            logic,
            caller,
            req.group_id,
            &changes,
            SystemContentType::GroupMutedAll
        )
    )
}

/// Settings changes: owner or admin.
async fn settings_tx(
    logic: &Logic,
    caller: &Caller,
    group_id: u64,
    changes: &GroupChanges,
    kind: SystemContentType,
) -> Result<GroupInfo> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    let (_, me) = lock_as_member(logic, &mut tx, caller, group_id).await?;
    if rank(&me.role) < rank(ADMIN) {
        return Err(LogicError::Forbidden(
            "only the owner or an admin can change the group",
        ));
    }
    store.update_group(&mut tx, group_id, changes).await?;
    let group = store
        .lock_group(&mut tx, group_id, now_ms())
        .await?
        .ok_or(NO_GROUP)?;
    let everyone = store.member_ids_in(&mut tx, group_id).await?;
    let body = GroupEvent {
        group_id,
        operator_id: caller.user_id,
        info: Some(info(&group)),
        muted_all: group.muted_all,
        ..Default::default()
    };
    let event = group_event(caller, group_id, kind, body, &everyone);
    commit(logic, tx, group_id, event).await?;
    Ok(info(&group))
}

pub(crate) async fn dismiss(logic: &Logic, caller: &Caller, req: GroupTarget) -> Result<()> {
    retry!(logic, dismiss_tx(logic, caller, req.group_id))
}

async fn dismiss_tx(logic: &Logic, caller: &Caller, group_id: u64) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    let (_, me) = lock_as_member(logic, &mut tx, caller, group_id).await?;
    if me.role != OWNER {
        return Err(LogicError::Forbidden(
            "only the owner can dismiss the group",
        ));
    }
    let everyone = store.member_ids_in(&mut tx, group_id).await?;
    store.dismiss_group(&mut tx, group_id, now_ms()).await?;
    let body = GroupEvent {
        group_id,
        operator_id: caller.user_id,
        user_ids: everyone.clone(),
        ..Default::default()
    };
    let event = group_event(
        caller,
        group_id,
        SystemContentType::GroupDismissed,
        body,
        &everyone,
    );
    commit(logic, tx, group_id, event).await
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
pub(crate) async fn check_send(logic: &Logic, caller: &Caller, group_id: u64) -> Result<()> {
    let (group, me) = visible(logic, caller, group_id).await?;
    if me.muted_until > now_ms() {
        return Err(LogicError::Muted("you are muted in this group"));
    }
    if group.muted_all && rank(&me.role) < rank(ADMIN) {
        return Err(LogicError::Muted("the group is muted"));
    }
    Ok(())
}
