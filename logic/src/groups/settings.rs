//! A group's life and settings: create, read, list, change, mute all,
//! dismiss.

use tern_public::proto::client::{GroupEvent, GroupList, GroupListRequest, SystemContentType};
use tern_public::time::now_ms;

use super::{
    check_text, commit, existing_users, group_event, lock_as_member, visible, DEFAULT_PAGE,
    MAX_INTRO, MAX_NAME, MAX_PAGE, MAX_URL, NO_GROUP,
};
use crate::actor::Actor;
use crate::domain::Role;
use crate::error::{LogicError, Result};
use crate::store::groups::{GroupChanges, GroupRow, NewGroup};
use crate::system::retry;
use crate::wire::info;
use crate::{friends, paging, Logic};

/// What a new group starts with.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewGroupSpec {
    pub name: String,
    pub avatar_url: String,
    pub introduction: String,
    /// Besides the creator, who becomes the owner.
    pub member_ids: Vec<u64>,
    /// Whether members (not only the owner and admins) may add members.
    pub member_invite: bool,
}

/// GROUP_CREATE: the actor creates a group and owns it, with members it
/// may reach (see [`friends::check_group_adds`]).
pub(crate) async fn create(logic: &Logic, actor: &Actor, req: NewGroupSpec) -> Result<GroupRow> {
    let name = req.name.trim();
    if name.is_empty() {
        return Err(LogicError::bad_request("a group needs a name"));
    }
    check_text("name", name, MAX_NAME)?;
    check_text("avatar_url", &req.avatar_url, MAX_URL)?;
    check_text("introduction", &req.introduction, MAX_INTRO)?;
    let members = existing_users(logic, &req.member_ids, actor.user_id()).await?;
    let max = logic.cfg.max_group_members;
    if members.len() + 1 > max as usize {
        return Err(LogicError::Forbidden("group is full"));
    }
    retry!(logic, create_tx(logic, actor, &req, name, &members, max))
}

async fn create_tx(
    logic: &Logic,
    actor: &Actor,
    req: &NewGroupSpec,
    name: &str,
    members: &[u64],
    max: u32,
) -> Result<GroupRow> {
    let store = &logic.store;
    let now = now_ms();
    let mut tx = store.begin_write().await?;
    let mut everyone = vec![actor.user_id()];
    everyone.extend(members);
    friends::check_group_adds(logic, &mut tx, actor, members, &everyone).await?;
    let group_id = store
        .create_group(
            &mut tx,
            NewGroup {
                name,
                avatar_url: &req.avatar_url,
                introduction: &req.introduction,
                owner_id: actor.user_id(),
                max_members: max,
                member_invite: req.member_invite,
                now,
            },
        )
        .await?;
    let mut rows: Vec<(u64, Role)> = vec![(actor.user_id(), Role::Owner)];
    rows.extend(members.iter().map(|&u| (u, Role::Member)));
    store.add_members(&mut tx, group_id, &rows, now).await?;
    let group = store
        .lock_group(&mut tx, group_id, now)
        .await?
        .ok_or(NO_GROUP)?;
    let body = GroupEvent {
        group_id,
        operator_id: actor.user_id(),
        user_ids: everyone.clone(),
        info: Some(info(&group)),
        ..Default::default()
    };
    let event = group_event(
        actor,
        group_id,
        SystemContentType::GroupCreated,
        body,
        &everyone,
    );
    commit(logic, tx, group_id, event).await?;
    Ok(group)
}

/// GROUP_INFO: a live group the actor belongs to.
pub(crate) async fn get(logic: &Logic, actor: &Actor, group_id: u64) -> Result<GroupRow> {
    Ok(visible(logic, actor, group_id).await?.0)
}

/// GROUP_LIST_MINE.
pub(crate) async fn list_mine(
    logic: &Logic,
    actor: &Actor,
    req: GroupListRequest,
) -> Result<GroupList> {
    let limit = paging::limit(req.limit, DEFAULT_PAGE, MAX_PAGE);
    let groups = logic
        .store
        .groups_of(actor.user_id(), req.after_group_id, limit + 1)
        .await?;
    let (groups, has_more) = paging::page(groups, limit);
    let (groups, cut) = paging::fit(groups.iter().map(info).collect(), logic.cfg.max_frame_len);
    Ok(GroupList {
        groups,
        has_more: has_more || cut,
    })
}

/// GROUP_UPDATE: the owner or an admin changes the settings present in
/// `req` (its `muted_all` is ignored: see [`set_muted_all`]).
pub(crate) async fn update(
    logic: &Logic,
    actor: &Actor,
    group_id: u64,
    req: GroupChanges,
) -> Result<GroupRow> {
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
        muted_all: None,
        ..req
    };
    retry!(
        logic,
        settings_tx(
            logic,
            actor,
            group_id,
            &changes,
            SystemContentType::GroupUpdated
        )
    )
}

/// GROUP_MUTE_ALL: the owner or an admin mutes or unmutes everyone below
/// admin.
pub(crate) async fn set_muted_all(
    logic: &Logic,
    actor: &Actor,
    group_id: u64,
    muted: bool,
) -> Result<GroupRow> {
    let changes = GroupChanges {
        muted_all: Some(muted),
        ..Default::default()
    };
    retry!(
        logic,
        settings_tx(
            logic,
            actor,
            group_id,
            &changes,
            SystemContentType::GroupMutedAll
        )
    )
}

/// Settings changes: owner or admin.
async fn settings_tx(
    logic: &Logic,
    actor: &Actor,
    group_id: u64,
    changes: &GroupChanges,
    kind: SystemContentType,
) -> Result<GroupRow> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    let (_, me) = lock_as_member(logic, &mut tx, actor, group_id).await?;
    if !me.role.is_manager() {
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
        operator_id: actor.user_id(),
        info: Some(info(&group)),
        muted_all: group.muted_all,
        ..Default::default()
    };
    let event = group_event(actor, group_id, kind, body, &everyone);
    commit(logic, tx, group_id, event).await?;
    Ok(group)
}

/// GROUP_DISMISS: the owner ends the group for everyone.
pub(crate) async fn dismiss(logic: &Logic, actor: &Actor, group_id: u64) -> Result<()> {
    retry!(logic, dismiss_tx(logic, actor, group_id))
}

async fn dismiss_tx(logic: &Logic, actor: &Actor, group_id: u64) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    let (_, me) = lock_as_member(logic, &mut tx, actor, group_id).await?;
    if me.role != Role::Owner {
        return Err(LogicError::Forbidden(
            "only the owner can dismiss the group",
        ));
    }
    let everyone = store.member_ids_in(&mut tx, group_id).await?;
    store.dismiss_group(&mut tx, group_id, now_ms()).await?;
    let body = GroupEvent {
        group_id,
        operator_id: actor.user_id(),
        user_ids: everyone.clone(),
        ..Default::default()
    };
    let event = group_event(
        actor,
        group_id,
        SystemContentType::GroupDismissed,
        body,
        &everyone,
    );
    commit(logic, tx, group_id, event).await
}
