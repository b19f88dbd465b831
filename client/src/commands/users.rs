//! USER_GET, USER_UPDATE and USER_SEARCH: profiles.

use tern_public::proto::client::{
    UserGetRequest, UserList, UserProfile, UserSearchRequest, UserUpdateRequest,
};
use tern_public::FrameType;

use crate::{Client, ClientError};

impl Client {
    /// Profiles of up to 100 users; unknown ids are left out.
    pub async fn user_get(&self, user_ids: &[u64]) -> Result<Vec<UserProfile>, ClientError> {
        let req = UserGetRequest {
            user_ids: user_ids.to_vec(),
        };
        let list: UserList = self.request(FrameType::UserGet, &req).await?;
        Ok(list.users)
    }

    /// Changes the caller's own profile; `None` leaves a field as it is.
    pub async fn user_update(
        &self,
        nickname: Option<&str>,
        avatar_url: Option<&str>,
    ) -> Result<UserProfile, ClientError> {
        let req = UserUpdateRequest {
            nickname: nickname.map(Into::into),
            avatar_url: avatar_url.map(Into::into),
        };
        self.request(FrameType::UserUpdate, &req).await
    }

    /// Users whose username starts with `prefix`, ascending by username,
    /// after `after_username` (empty for the first page); `limit` 0 takes
    /// the server's default.
    pub async fn user_search(
        &self,
        prefix: &str,
        after_username: &str,
        limit: u32,
    ) -> Result<UserList, ClientError> {
        let req = UserSearchRequest {
            prefix: prefix.into(),
            after_username: after_username.into(),
            limit,
        };
        self.request(FrameType::UserSearch, &req).await
    }
}
