//! Friends (types 20-27). One row per direction; every change the other side
//! must learn about is a system event in both lists, committed with the
//! change. A request to someone who blocked you fails with BLOCKED and
//! tells nothing else.

use tern_public::proto::client::{
    ConvType, Friend, FriendEvent, FriendList, FriendListRequest, FriendRemark, FriendRequest,
    FriendState, FriendTarget, SystemContentType,
};
use tern_public::time::now_ms;

use crate::error::{LogicError, Result};
use crate::rpc::Caller;
use crate::store::friends::{FriendRow, ACCEPTED, BLOCKED, PENDING, REQUESTED};
use crate::store::{Recipient, Tx};
use crate::system::{self, retry};
use crate::users::profile;
use crate::{paging, Logic};

const MAX_NOTE: usize = 256;
const MAX_REMARK: usize = 64;
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 500;

/// Who a friend event goes to.
enum Audience {
    Both,
    OnlyMe,
}

fn friend_event(
    caller: &Caller,
    other: u64,
    kind: SystemContentType,
    message: &str,
    to: Audience,
) -> crate::store::NewMessage {
    let body = FriendEvent {
        from_user_id: caller.user_id,
        to_user_id: other,
        message: message.to_owned(),
    };
    let mut recipients = vec![Recipient {
        user_id: caller.user_id,
        conv_id: other,
    }];
    if let Audience::Both = to {
        recipients.push(Recipient {
            user_id: other,
            conv_id: caller.user_id,
        });
    }
    system::event(caller, ConvType::System, other, kind, &body, recipients)
}

/// The other user of a friend command: not the caller, and existing.
async fn other_user(logic: &Logic, caller: &Caller, user_id: u64) -> Result<u64> {
    if user_id == caller.user_id {
        return Err(LogicError::bad_request("that is you"));
    }
    match logic.store.user_by_id(user_id).await? {
        Some(u) if u.is_active() => Ok(u.id),
        _ => Err(LogicError::NotFound("no such user")),
    }
}

/// Sets both directions of a relation to `state`.
async fn set_both(logic: &Logic, tx: &mut Tx, a: u64, b: u64, state: &str) -> Result<()> {
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

fn state(row: &Option<FriendRow>) -> Option<&str> {
    row.as_ref().map(|r| r.state.as_str())
}

pub(crate) async fn request(logic: &Logic, caller: &Caller, req: FriendRequest) -> Result<()> {
    if req.message.chars().count() > MAX_NOTE {
        return Err(LogicError::bad_request(format!(
            "message longer than {MAX_NOTE} characters"
        )));
    }
    let other = other_user(logic, caller, req.user_id).await?;
    retry!(logic, request_tx(logic, caller, other, &req.message))
}

async fn request_tx(logic: &Logic, caller: &Caller, other: u64, note: &str) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    store.lock_pair(&mut tx, caller.user_id, other).await?;
    let (mine, theirs) = store.friend_pair(&mut tx, caller.user_id, other).await?;
    if state(&theirs) == Some(BLOCKED) || state(&mine) == Some(BLOCKED) {
        return Err(LogicError::Blocked("blocked"));
    }
    let now = now_ms();
    let event = match state(&mine) {
        Some(ACCEPTED) => return Err(LogicError::Conflict("already friends")),
        Some(REQUESTED) => return Err(LogicError::Conflict("request already sent")),
        // They asked first: asking back accepts.
        Some(PENDING) => {
            set_both(logic, &mut tx, caller.user_id, other, ACCEPTED).await?;
            friend_event(
                caller,
                other,
                SystemContentType::FriendAccepted,
                "",
                Audience::Both,
            )
        }
        _ => {
            store
                .put_friend(&mut tx, caller.user_id, other, REQUESTED, now)
                .await?;
            store
                .put_friend(&mut tx, other, caller.user_id, PENDING, now)
                .await?;
            friend_event(
                caller,
                other,
                SystemContentType::FriendRequested,
                note,
                Audience::Both,
            )
        }
    };
    system::commit(logic, tx, vec![event]).await
}

pub(crate) async fn accept(logic: &Logic, caller: &Caller, req: FriendTarget) -> Result<()> {
    let other = other_user(logic, caller, req.user_id).await?;
    retry!(logic, answer_tx(logic, caller, other, true))
}

pub(crate) async fn decline(logic: &Logic, caller: &Caller, req: FriendTarget) -> Result<()> {
    let other = other_user(logic, caller, req.user_id).await?;
    retry!(logic, answer_tx(logic, caller, other, false))
}

async fn answer_tx(logic: &Logic, caller: &Caller, other: u64, accept: bool) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    store.lock_pair(&mut tx, caller.user_id, other).await?;
    let (mine, _) = store.friend_pair(&mut tx, caller.user_id, other).await?;
    if state(&mine) != Some(PENDING) {
        return Err(LogicError::NotFound("no friend request from that user"));
    }
    let event = if accept {
        set_both(logic, &mut tx, caller.user_id, other, ACCEPTED).await?;
        friend_event(
            caller,
            other,
            SystemContentType::FriendAccepted,
            "",
            Audience::Both,
        )
    } else {
        delete_both(logic, &mut tx, caller.user_id, other).await?;
        friend_event(
            caller,
            other,
            SystemContentType::FriendDeclined,
            "",
            Audience::Both,
        )
    };
    system::commit(logic, tx, vec![event]).await
}

pub(crate) async fn delete(logic: &Logic, caller: &Caller, req: FriendTarget) -> Result<()> {
    let other = other_user(logic, caller, req.user_id).await?;
    retry!(logic, delete_tx(logic, caller, other))
}

async fn delete_tx(logic: &Logic, caller: &Caller, other: u64) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    store.lock_pair(&mut tx, caller.user_id, other).await?;
    let (mine, _) = store.friend_pair(&mut tx, caller.user_id, other).await?;
    if state(&mine) != Some(ACCEPTED) {
        return Err(LogicError::NotFound("not friends"));
    }
    delete_both(logic, &mut tx, caller.user_id, other).await?;
    let event = friend_event(
        caller,
        other,
        SystemContentType::FriendDeleted,
        "",
        Audience::Both,
    );
    system::commit(logic, tx, vec![event]).await
}

pub(crate) async fn block(logic: &Logic, caller: &Caller, req: FriendTarget) -> Result<()> {
    let other = other_user(logic, caller, req.user_id).await?;
    retry!(logic, block_tx(logic, caller, other))
}

async fn block_tx(logic: &Logic, caller: &Caller, other: u64) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    store.lock_pair(&mut tx, caller.user_id, other).await?;
    let (mine, _) = store.friend_pair(&mut tx, caller.user_id, other).await?;
    if state(&mine) == Some(BLOCKED) {
        return Err(LogicError::Conflict("already blocked"));
    }
    // Only my side changes: the blocked user's view stays as it was, so
    // nothing but BLOCKED answers tells them.
    store
        .put_friend(&mut tx, caller.user_id, other, BLOCKED, now_ms())
        .await?;
    let event = friend_event(
        caller,
        other,
        SystemContentType::FriendBlocked,
        "",
        Audience::OnlyMe,
    );
    system::commit(logic, tx, vec![event]).await
}

pub(crate) async fn unblock(logic: &Logic, caller: &Caller, req: FriendTarget) -> Result<()> {
    let other = other_user(logic, caller, req.user_id).await?;
    retry!(logic, unblock_tx(logic, caller, other))
}

async fn unblock_tx(logic: &Logic, caller: &Caller, other: u64) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    store.lock_pair(&mut tx, caller.user_id, other).await?;
    let (mine, theirs) = store.friend_pair(&mut tx, caller.user_id, other).await?;
    if state(&mine) != Some(BLOCKED) {
        return Err(LogicError::NotFound("not blocked"));
    }
    // My side follows theirs again: a friendship or their request resumes.
    match state(&theirs) {
        Some(ACCEPTED) => {
            store
                .put_friend(&mut tx, caller.user_id, other, ACCEPTED, now_ms())
                .await?
        }
        Some(REQUESTED) => {
            store
                .put_friend(&mut tx, caller.user_id, other, PENDING, now_ms())
                .await?
        }
        _ => store.delete_friend(&mut tx, caller.user_id, other).await?,
    }
    let event = friend_event(
        caller,
        other,
        SystemContentType::FriendUnblocked,
        "",
        Audience::OnlyMe,
    );
    system::commit(logic, tx, vec![event]).await
}

pub(crate) async fn set_remark(logic: &Logic, caller: &Caller, req: FriendRemark) -> Result<()> {
    if req.remark.chars().count() > MAX_REMARK {
        return Err(LogicError::bad_request(format!(
            "remark longer than {MAX_REMARK} characters"
        )));
    }
    let other = other_user(logic, caller, req.user_id).await?;
    retry!(logic, remark_tx(logic, caller, other, &req.remark))
}

async fn remark_tx(logic: &Logic, caller: &Caller, other: u64, remark: &str) -> Result<()> {
    let store = &logic.store;
    let mut tx = store.begin_write().await?;
    store.lock_pair(&mut tx, caller.user_id, other).await?;
    if !store
        .set_remark(&mut tx, caller.user_id, other, remark, now_ms())
        .await?
    {
        return Err(LogicError::NotFound("no relation with that user"));
    }
    let event = friend_event(
        caller,
        other,
        SystemContentType::FriendRemarkSet,
        remark,
        Audience::OnlyMe,
    );
    system::commit(logic, tx, vec![event]).await
}

pub(crate) async fn list(
    logic: &Logic,
    caller: &Caller,
    req: FriendListRequest,
) -> Result<FriendList> {
    let limit = paging::limit(req.limit, DEFAULT_PAGE, MAX_PAGE);
    let rows = logic
        .store
        .friends_of(caller.user_id, req.after_user_id, limit + 1)
        .await?;
    let (rows, has_more) = paging::page(rows, limit);
    let ids: Vec<u64> = rows.iter().map(|r| r.friend_id).collect();
    let users = paging::users_by_id(logic, &ids).await?;
    let friends = rows
        .into_iter()
        .filter_map(|r| {
            let user = users.get(&r.friend_id)?;
            Some(Friend {
                profile: Some(profile(user)),
                state: friend_state(&r.state) as i32,
                remark: r.remark,
                updated_at_ms: r.updated_at,
            })
        })
        .collect::<Vec<_>>();
    let (friends, cut) = paging::fit(friends, logic.cfg.max_frame_len);
    Ok(FriendList {
        friends,
        has_more: has_more || cut,
    })
}

fn friend_state(s: &str) -> FriendState {
    match s {
        REQUESTED => FriendState::Requested,
        PENDING => FriendState::Pending,
        ACCEPTED => FriendState::Accepted,
        BLOCKED => FriendState::Blocked,
        _ => FriendState::Unspecified,
    }
}

/// Whether `sender` may message `receiver` one-to-one under `policy`.
pub(crate) async fn check_send(logic: &Logic, sender: u64, receiver: u64) -> Result<()> {
    if sender == receiver {
        return Ok(());
    }
    let mine = logic.store.friend_state(sender, receiver).await?;
    let theirs = logic.store.friend_state(receiver, sender).await?;
    if mine.as_deref() == Some(BLOCKED) || theirs.as_deref() == Some(BLOCKED) {
        return Err(LogicError::Blocked("blocked"));
    }
    if logic.cfg.send_policy == crate::SendPolicy::FriendsOnly && mine.as_deref() != Some(ACCEPTED)
    {
        return Err(LogicError::NotFriends(
            "only friends can message each other",
        ));
    }
    Ok(())
}
