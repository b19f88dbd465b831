//! Friends (types 20-27). One row per direction; every change the other side
//! must learn about is a system event in both lists, committed with the
//! change. A request to someone who blocked you fails with BLOCKED and
//! tells nothing else. BLOCK ends the relation on both sides: the blocked
//! user's list gets what an unfriend or a declined request would give it,
//! nothing that names the block; UNBLOCK leaves two strangers.

mod rules;
#[cfg(test)]
mod tests;

pub(crate) use rules::{check_group_adds, check_relation};

use tern_public::proto::client::{
    ConvType, Friend, FriendEvent, FriendList, FriendListRequest, FriendRemark, FriendRequest,
    FriendTarget, SystemContentType,
};
use tern_public::time::now_ms;

use crate::actor::Actor;
use crate::domain::FriendState::{self, Accepted, Blocked, Pending, Requested};
use crate::error::{LogicError, Result};
use crate::store::friends::FriendRow;
use crate::store::User;
use crate::store::{Recipient, Tx};
use crate::system::{self, retry};
use crate::wire::profile;
use crate::{paging, Logic};

const MAX_NOTE: usize = 256;
const MAX_REMARK: usize = 64;
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 500;

/// Who a friend event goes to.
enum Audience {
    Both,
    OnlyMe,
    OnlyThem,
}

fn friend_event(
    actor: &Actor,
    other: u64,
    kind: SystemContentType,
    message: &str,
    to: Audience,
) -> crate::store::NewMessage {
    let body = FriendEvent {
        from_user_id: actor.user_id(),
        to_user_id: other,
        message: message.to_owned(),
    };
    let me = Recipient {
        user_id: actor.user_id(),
        conv_id: other,
    };
    let them = Recipient {
        user_id: other,
        conv_id: actor.user_id(),
    };
    let recipients = match to {
        Audience::Both => vec![me, them],
        Audience::OnlyMe => vec![me],
        Audience::OnlyThem => vec![them],
    };
    system::event(actor, ConvType::System, other, kind, &body, recipients)
}

/// The other user of a friend command: not the actor, and existing.
async fn other_user(logic: &Logic, actor: &Actor, user_id: u64) -> Result<u64> {
    if user_id == actor.user_id() {
        return Err(LogicError::bad_request("that is you"));
    }
    match logic.store.user_by_id(user_id).await? {
        Some(u) if u.is_active() => Ok(u.id),
        _ => Err(LogicError::NotFound("no such user")),
    }
}

/// Sets both directions of a relation to `state`.
async fn set_both(logic: &Logic, tx: &mut Tx, a: u64, b: u64, state: FriendState) -> Result<()> {
    let now = now_ms();
    logic.store.put_friend(tx, a, b, state, now).await?;
    logic.store.put_friend(tx, b, a, state, now).await?;
    Ok(())
}

/// Removes both directions of a relation.
async fn delete_both(logic: &Logic, tx: &mut Tx, a: u64, b: u64) -> Result<()> {
    logic.store.delete_friend(tx, a, b).await?;
    logic.store.delete_friend(tx, b, a).await?;
    Ok(())
}

fn state(row: &Option<FriendRow>) -> Option<FriendState> {
    row.as_ref().map(|r| r.state)
}

pub(crate) async fn request(logic: &Logic, actor: &Actor, req: FriendRequest) -> Result<()> {
    if req.message.chars().count() > MAX_NOTE {
        return Err(LogicError::bad_request(format!(
            "message longer than {MAX_NOTE} characters"
        )));
    }
    let other = other_user(logic, actor, req.user_id).await?;
    retry!(logic, request_tx(logic, actor, other, &req.message))
}

async fn request_tx(logic: &Logic, actor: &Actor, other: u64, note: &str) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    store.lock_pair(&mut tx, actor.user_id(), other).await?;
    let (mine, theirs) = store.friend_pair(&mut tx, actor.user_id(), other).await?;
    if state(&theirs) == Some(Blocked) || state(&mine) == Some(Blocked) {
        return Err(LogicError::Blocked("blocked"));
    }
    let now = now_ms();
    let event = match state(&mine) {
        Some(Accepted) => return Err(LogicError::Conflict("already friends")),
        Some(Requested) => return Err(LogicError::Conflict("request already sent")),
        // They asked first: asking back accepts.
        Some(Pending) => {
            set_both(logic, &mut tx, actor.user_id(), other, Accepted).await?;
            friend_event(
                actor,
                other,
                SystemContentType::FriendAccepted,
                "",
                Audience::Both,
            )
        }
        _ => {
            store
                .put_friend(&mut tx, actor.user_id(), other, Requested, now)
                .await?;
            store
                .put_friend(&mut tx, other, actor.user_id(), Pending, now)
                .await?;
            friend_event(
                actor,
                other,
                SystemContentType::FriendRequested,
                note,
                Audience::Both,
            )
        }
    };
    system::commit(logic, tx, vec![event]).await
}

pub(crate) async fn accept(logic: &Logic, actor: &Actor, req: FriendTarget) -> Result<()> {
    let other = other_user(logic, actor, req.user_id).await?;
    retry!(logic, answer_tx(logic, actor, other, true))
}

pub(crate) async fn decline(logic: &Logic, actor: &Actor, req: FriendTarget) -> Result<()> {
    let other = other_user(logic, actor, req.user_id).await?;
    retry!(logic, answer_tx(logic, actor, other, false))
}

async fn answer_tx(logic: &Logic, actor: &Actor, other: u64, accept: bool) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    store.lock_pair(&mut tx, actor.user_id(), other).await?;
    let (mine, theirs) = store.friend_pair(&mut tx, actor.user_id(), other).await?;
    // Both halves of the request, so that accepting never overrides a
    // block an older version left beside a PENDING row.
    if state(&mine) != Some(Pending) || state(&theirs) != Some(Requested) {
        return Err(LogicError::NotFound("no friend request from that user"));
    }
    let event = if accept {
        set_both(logic, &mut tx, actor.user_id(), other, Accepted).await?;
        friend_event(
            actor,
            other,
            SystemContentType::FriendAccepted,
            "",
            Audience::Both,
        )
    } else {
        delete_both(logic, &mut tx, actor.user_id(), other).await?;
        friend_event(
            actor,
            other,
            SystemContentType::FriendDeclined,
            "",
            Audience::Both,
        )
    };
    system::commit(logic, tx, vec![event]).await
}

/// FRIEND_DELETE: ends the actor's friendship with `other` on both sides.
pub(crate) async fn unfriend(logic: &Logic, actor: &Actor, other: u64) -> Result<()> {
    let other = other_user(logic, actor, other).await?;
    retry!(logic, delete_tx(logic, actor, other))
}

async fn delete_tx(logic: &Logic, actor: &Actor, other: u64) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    store.lock_pair(&mut tx, actor.user_id(), other).await?;
    let (mine, theirs) = store.friend_pair(&mut tx, actor.user_id(), other).await?;
    if state(&mine) != Some(Accepted) {
        return Err(LogicError::NotFound("not friends"));
    }
    store.delete_friend(&mut tx, actor.user_id(), other).await?;
    // An ACCEPTED row beside their block was left by an older version,
    // whose BLOCK changed only the blocker's side: their block stays.
    if state(&theirs) != Some(Blocked) {
        store.delete_friend(&mut tx, other, actor.user_id()).await?;
    }
    let event = friend_event(
        actor,
        other,
        SystemContentType::FriendDeleted,
        "",
        Audience::Both,
    );
    system::commit(logic, tx, vec![event]).await
}

pub(crate) async fn block(logic: &Logic, actor: &Actor, req: FriendTarget) -> Result<()> {
    let other = other_user(logic, actor, req.user_id).await?;
    retry!(logic, block_tx(logic, actor, other))
}

async fn block_tx(logic: &Logic, actor: &Actor, other: u64) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    store.lock_pair(&mut tx, actor.user_id(), other).await?;
    let (mine, theirs) = store.friend_pair(&mut tx, actor.user_id(), other).await?;
    if state(&mine) == Some(Blocked) {
        return Err(LogicError::Conflict("already blocked"));
    }
    store
        .put_friend(&mut tx, actor.user_id(), other, Blocked, now_ms())
        .await?;
    let mut events = vec![friend_event(
        actor,
        other,
        SystemContentType::FriendBlocked,
        "",
        Audience::OnlyMe,
    )];
    events.extend(end_their_side(logic, &mut tx, actor, other, state(&theirs)).await?);
    system::commit(logic, tx, events).await
}

/// Ends the other user's side of a relation the actor is leaving (by BLOCK,
/// or UNBLOCK finding a side an older version left behind): a friendship or
/// a request in either direction is gone for them too, and their list gets
/// the event an unfriend or a declined request would give, which names no
/// block. Their own block of the actor stays.
async fn end_their_side(
    logic: &Logic,
    tx: &mut Tx,
    actor: &Actor,
    other: u64,
    theirs: Option<FriendState>,
) -> Result<Option<crate::store::NewMessage>> {
    let kind = match theirs {
        None | Some(Blocked) => return Ok(None),
        Some(Accepted) => SystemContentType::FriendDeleted,
        Some(Requested | Pending) => SystemContentType::FriendDeclined,
    };
    logic
        .store
        .delete_friend(tx, other, actor.user_id())
        .await?;
    Ok(Some(friend_event(
        actor,
        other,
        kind,
        "",
        Audience::OnlyThem,
    )))
}

pub(crate) async fn unblock(logic: &Logic, actor: &Actor, req: FriendTarget) -> Result<()> {
    let other = other_user(logic, actor, req.user_id).await?;
    retry!(logic, unblock_tx(logic, actor, other))
}

async fn unblock_tx(logic: &Logic, actor: &Actor, other: u64) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    store.lock_pair(&mut tx, actor.user_id(), other).await?;
    let (mine, theirs) = store.friend_pair(&mut tx, actor.user_id(), other).await?;
    if state(&mine) != Some(Blocked) {
        return Err(LogicError::NotFound("not blocked"));
    }
    // The block ended everything between them: they are strangers now, and
    // a friendship starts again only by a new request.
    store.delete_friend(&mut tx, actor.user_id(), other).await?;
    let mut events = vec![friend_event(
        actor,
        other,
        SystemContentType::FriendUnblocked,
        "",
        Audience::OnlyMe,
    )];
    events.extend(end_their_side(logic, &mut tx, actor, other, state(&theirs)).await?);
    system::commit(logic, tx, events).await
}

pub(crate) async fn set_remark(logic: &Logic, actor: &Actor, req: FriendRemark) -> Result<()> {
    if req.remark.chars().count() > MAX_REMARK {
        return Err(LogicError::bad_request(format!(
            "remark longer than {MAX_REMARK} characters"
        )));
    }
    let other = other_user(logic, actor, req.user_id).await?;
    retry!(logic, remark_tx(logic, actor, other, &req.remark))
}

async fn remark_tx(logic: &Logic, actor: &Actor, other: u64, remark: &str) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    store.lock_pair(&mut tx, actor.user_id(), other).await?;
    if !store
        .set_remark(&mut tx, actor.user_id(), other, remark, now_ms())
        .await?
    {
        return Err(LogicError::NotFound("no relation with that user"));
    }
    let event = friend_event(
        actor,
        other,
        SystemContentType::FriendRemarkSet,
        remark,
        Audience::OnlyMe,
    );
    system::commit(logic, tx, vec![event]).await
}

/// FRIEND_LIST.
pub(crate) async fn list(
    logic: &Logic,
    actor: &Actor,
    req: FriendListRequest,
) -> Result<FriendList> {
    let (page, has_more) = relations(logic, actor, req.after_user_id, req.limit).await?;
    let friends = page
        .into_iter()
        .map(|Relation { row, user }| Friend {
            profile: Some(profile(&user)),
            state: row.state.to_wire() as i32,
            remark: row.remark,
            updated_at_ms: row.updated_at,
        })
        .collect::<Vec<_>>();
    let (friends, cut) = paging::fit(friends, logic.cfg.max_frame_len);
    Ok(FriendList {
        friends,
        has_more: has_more || cut,
    })
}

/// One of a user's relations, with the other user's account.
pub(crate) struct Relation {
    pub row: FriendRow,
    pub user: User,
}

/// The actor's relations after friend id `after`, ascending, at most
/// `limit` (0 for the default); true if more follow.
pub(crate) async fn relations(
    logic: &Logic,
    actor: &Actor,
    after: u64,
    limit: u32,
) -> Result<(Vec<Relation>, bool)> {
    let limit = paging::limit(limit, DEFAULT_PAGE, MAX_PAGE);
    let rows = logic
        .store
        .friends_of(actor.user_id(), after, limit + 1)
        .await?;
    let (rows, has_more) = paging::page(rows, limit);
    let ids: Vec<u64> = rows.iter().map(|r| r.friend_id).collect();
    let mut users = paging::users_by_id(logic, &ids).await?;
    let page = rows
        .into_iter()
        .filter_map(|row| {
            let user = users.remove(&row.friend_id)?;
            Some(Relation { row, user })
        })
        .collect();
    Ok((page, has_more))
}
