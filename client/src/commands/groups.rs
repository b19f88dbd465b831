//! GROUP_*: creating and changing groups and their members. Every change
//! also lands in each member's list as a system message (content type
//! GROUP_*), so other devices learn of it by SYNC.

use tern_public::proto::client::{
    GroupCreateRequest, GroupInfo, GroupList, GroupListRequest, GroupMemberList,
    GroupMembersChange, GroupMembersRequest, GroupMuteAllRequest, GroupMuteRequest, GroupRole,
    GroupSetRoleRequest, GroupTarget, GroupTransferRequest, GroupUpdateRequest,
};
use tern_public::FrameType;

use crate::{Client, ClientError};

impl Client {
    /// Creates a group with the caller as owner and `req.member_ids` as members.
    pub async fn group_create(&self, req: &GroupCreateRequest) -> Result<GroupInfo, ClientError> {
        self.request(FrameType::GroupCreate, req).await
    }

    /// A group the caller is a member of.
    pub async fn group_info(&self, group_id: u64) -> Result<GroupInfo, ClientError> {
        self.request(FrameType::GroupInfo, &GroupTarget { group_id })
            .await
    }

    /// Changes name, avatar, introduction or member_invite (owner or
    /// admin); unset fields stay. Returns the group after the change.
    pub async fn group_update(&self, req: &GroupUpdateRequest) -> Result<GroupInfo, ClientError> {
        self.request(FrameType::GroupUpdate, req).await
    }

    /// One page of the caller's groups, ascending by id after
    /// `after_group_id` (0 for the first page); `limit` 0 takes the
    /// server's default.
    pub async fn group_list_mine(
        &self,
        after_group_id: u64,
        limit: u32,
    ) -> Result<GroupList, ClientError> {
        let req = GroupListRequest {
            after_group_id,
            limit,
        };
        self.request(FrameType::GroupListMine, &req).await
    }

    /// One page of a group's members, ascending by user id after `after_user_id`.
    pub async fn group_members(
        &self,
        group_id: u64,
        after_user_id: u64,
        limit: u32,
    ) -> Result<GroupMemberList, ClientError> {
        let req = GroupMembersRequest {
            group_id,
            after_user_id,
            limit,
        };
        self.request(FrameType::GroupMembers, &req).await
    }

    /// Adds users (owner or admin, or any member when member_invite is on).
    pub async fn group_add_members(
        &self,
        group_id: u64,
        user_ids: &[u64],
    ) -> Result<(), ClientError> {
        self.command(FrameType::GroupAddMembers, &change(group_id, user_ids))
            .await
    }

    /// Removes members (owner, or admin removing plain members).
    pub async fn group_remove_members(
        &self,
        group_id: u64,
        user_ids: &[u64],
    ) -> Result<(), ClientError> {
        self.command(FrameType::GroupRemoveMembers, &change(group_id, user_ids))
            .await
    }

    /// Leaves a group; the owner must transfer ownership or dismiss instead.
    pub async fn group_quit(&self, group_id: u64) -> Result<(), ClientError> {
        self.command(FrameType::GroupQuit, &GroupTarget { group_id })
            .await
    }

    /// Ends a group (owner only).
    pub async fn group_dismiss(&self, group_id: u64) -> Result<(), ClientError> {
        self.command(FrameType::GroupDismiss, &GroupTarget { group_id })
            .await
    }

    /// Makes another member the owner; the caller becomes a plain member.
    pub async fn group_transfer_owner(
        &self,
        group_id: u64,
        new_owner_id: u64,
    ) -> Result<(), ClientError> {
        let req = GroupTransferRequest {
            group_id,
            new_owner_id,
        };
        self.command(FrameType::GroupTransferOwner, &req).await
    }

    /// Makes a member an admin or a plain member again (owner only).
    pub async fn group_set_role(
        &self,
        group_id: u64,
        user_id: u64,
        role: GroupRole,
    ) -> Result<(), ClientError> {
        let req = GroupSetRoleRequest {
            group_id,
            user_id,
            role: role as i32,
        };
        self.command(FrameType::GroupSetRole, &req).await
    }

    /// Stops a member from sending until `until_ms` (Unix milliseconds);
    /// 0 unmutes.
    pub async fn group_mute_member(
        &self,
        group_id: u64,
        user_id: u64,
        until_ms: i64,
    ) -> Result<(), ClientError> {
        let req = GroupMuteRequest {
            group_id,
            user_id,
            until_ms,
        };
        self.command(FrameType::GroupMuteMember, &req).await
    }

    /// Mutes or unmutes every member but the owner and admins; returns the
    /// group after the change.
    pub async fn group_mute_all(
        &self,
        group_id: u64,
        muted: bool,
    ) -> Result<GroupInfo, ClientError> {
        let req = GroupMuteAllRequest { group_id, muted };
        self.request(FrameType::GroupMuteAll, &req).await
    }
}

fn change(group_id: u64, user_ids: &[u64]) -> GroupMembersChange {
    GroupMembersChange {
        group_id,
        user_ids: user_ids.to_vec(),
    }
}
