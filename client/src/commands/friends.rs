//! FRIEND_*: requests, the friend list, blocking and remarks. Every change
//! also lands in the lists of the users concerned as a system message
//! (content type FRIEND_*), so other devices learn of it by SYNC.

use tern_public::proto::client::{
    FriendList, FriendListRequest, FriendRemark, FriendRequest, FriendTarget,
};
use tern_public::FrameType;

use crate::{Client, ClientError};

impl Client {
    /// Asks `user_id` to be friends, with a short note shown to them.
    /// If they had already asked the caller, this accepts.
    pub async fn friend_request(&self, user_id: u64, note: &str) -> Result<(), ClientError> {
        let req = FriendRequest {
            user_id,
            message: note.into(),
        };
        self.command(FrameType::FriendRequest, &req).await
    }

    /// Accepts the pending request from `user_id`.
    pub async fn friend_accept(&self, user_id: u64) -> Result<(), ClientError> {
        self.command(FrameType::FriendAccept, &FriendTarget { user_id })
            .await
    }

    /// Declines the pending request from `user_id`.
    pub async fn friend_decline(&self, user_id: u64) -> Result<(), ClientError> {
        self.command(FrameType::FriendDecline, &FriendTarget { user_id })
            .await
    }

    /// Ends a friendship, for both sides.
    pub async fn friend_delete(&self, user_id: u64) -> Result<(), ClientError> {
        self.command(FrameType::FriendDelete, &FriendTarget { user_id })
            .await
    }

    /// Blocks `user_id`: neither side can message the other until unblocked.
    pub async fn friend_block(&self, user_id: u64) -> Result<(), ClientError> {
        self.command(FrameType::FriendBlock, &FriendTarget { user_id })
            .await
    }

    /// Lifts a block set by [`Client::friend_block`].
    pub async fn friend_unblock(&self, user_id: u64) -> Result<(), ClientError> {
        self.command(FrameType::FriendUnblock, &FriendTarget { user_id })
            .await
    }

    /// Sets the caller's private name for a friend.
    pub async fn friend_set_remark(&self, user_id: u64, remark: &str) -> Result<(), ClientError> {
        let req = FriendRemark {
            user_id,
            remark: remark.into(),
        };
        self.command(FrameType::FriendSetRemark, &req).await
    }

    /// One page of the caller's friends, requests and blocks, ascending by
    /// user id after `after_user_id` (0 for the first page); `limit` 0
    /// takes the server's default.
    pub async fn friend_list(
        &self,
        after_user_id: u64,
        limit: u32,
    ) -> Result<FriendList, ClientError> {
        let req = FriendListRequest {
            after_user_id,
            limit,
        };
        self.request(FrameType::FriendList, &req).await
    }
}
