//! USER_GET, USER_UPDATE, USER_SEARCH (types 70-72): what clients need to
//! show people.

use tern_public::proto::client::{UserGetRequest, UserList, UserSearchRequest};
use tern_public::time::now_ms;

use crate::actor::Actor;
use crate::domain::UserStatus;
use crate::error::{LogicError, Result};
use crate::store::User;
use crate::wire::profile;
use crate::{paging, Logic};

const MAX_GET: usize = 100;
const MAX_NICKNAME: usize = 64;
const MAX_AVATAR_URL: usize = 1024;
const DEFAULT_SEARCH: u32 = 20;
const MAX_SEARCH: u32 = 50;

/// USER_GET: profiles of live users; unknown and deleted ids are left out.
pub(crate) async fn get(logic: &Logic, req: UserGetRequest) -> Result<UserList> {
    if req.user_ids.len() > MAX_GET {
        return Err(LogicError::bad_request(format!(
            "at most {MAX_GET} users at once"
        )));
    }
    let users = logic.store.users_by_ids(&req.user_ids).await?;
    // A deleted account keeps its row (ids are never reused) but is gone:
    // like an unknown id, it is left out.
    let live = users.iter().filter(|u| u.status != UserStatus::Deleted);
    Ok(UserList {
        users: live.map(profile).collect(),
        has_more: false,
    })
}

/// USER_UPDATE: the actor changes its own nickname and/or avatar URL
/// (`None` keeps one).
pub(crate) async fn update(
    logic: &Logic,
    actor: &Actor,
    nickname: Option<&str>,
    avatar_url: Option<&str>,
) -> Result<User> {
    let nickname = nickname.map(str::trim);
    if let Some(n) = nickname {
        if n.is_empty() || n.chars().count() > MAX_NICKNAME {
            return Err(LogicError::bad_request(format!(
                "nickname must be 1-{MAX_NICKNAME} characters"
            )));
        }
    }
    if let Some(a) = avatar_url {
        if a.len() > MAX_AVATAR_URL {
            return Err(LogicError::bad_request(format!(
                "avatar_url longer than {MAX_AVATAR_URL} bytes"
            )));
        }
    }
    logic
        .store
        .update_profile(actor.user_id(), nickname, avatar_url, now_ms())
        .await?;
    let me = logic
        .store
        .user_by_id(actor.user_id())
        .await?
        .ok_or(LogicError::NotFound("no such user"))?;
    Ok(me)
}

pub(crate) async fn search(logic: &Logic, req: UserSearchRequest) -> Result<UserList> {
    let prefix = req.prefix.trim().to_lowercase();
    let valid = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
    };
    if prefix.is_empty() || prefix.len() > 32 || !valid(&prefix) {
        return Err(LogicError::bad_request(
            "prefix must be 1-32 characters of a-z, 0-9, '_', '.', '-'",
        ));
    }
    if req.after_username.len() > 32 {
        return Err(LogicError::bad_request(
            "after_username longer than 32 characters",
        ));
    }
    let limit = paging::limit(req.limit, DEFAULT_SEARCH, MAX_SEARCH);
    let users = logic
        .store
        .search_users(&prefix, &req.after_username, limit + 1)
        .await?;
    let (users, has_more) = paging::page(users, limit);
    let (users, cut) = paging::fit(users.iter().map(profile).collect(), logic.cfg.max_frame_len);
    Ok(UserList {
        users,
        has_more: has_more || cut,
    })
}
