//! Helpers of the group suites.

use bytes::Bytes;
use futures::{stream, StreamExt};

use tern_client::proto::{
    ConvType, GroupCreateRequest, GroupInfo, GroupMemberList, GroupMembersRequest, GroupTarget,
    SendRequest,
};
use tern_client::{ClientError, Code};
use tern_public::FrameType;

use super::{register, Device};

pub async fn call<R: prost::Message + Default>(
    d: &Device,
    ty: FrameType,
    body: &impl prost::Message,
) -> Result<R, ClientError> {
    d.client.request(ty, body).await
}

pub async fn create(owner: &Device, members: &[u64]) -> GroupInfo {
    let req = GroupCreateRequest {
        name: "g".into(),
        member_ids: members.to_vec(),
        ..Default::default()
    };
    call(owner, FrameType::GroupCreate, &req)
        .await
        .expect("group create")
}

pub fn group_text(group_id: u64, text: &str, cmid: &str) -> SendRequest {
    SendRequest {
        conv_type: ConvType::Group as i32,
        conv_id: group_id,
        content_type: 1,
        content: Bytes::copy_from_slice(text.as_bytes()),
        client_msg_id: cmid.into(),
        mentions: vec![],
    }
}

pub fn code<T: std::fmt::Debug>(r: Result<T, ClientError>) -> Option<Code> {
    r.expect_err("refused").code()
}

pub async fn register_many(addr: std::net::SocketAddr, prefix: &str, n: usize) -> Vec<Device> {
    let mut users: Vec<(usize, Device)> = stream::iter(0..n)
        .map(|i| async move { (i, register(addr, &format!("{prefix}{i}")).await) })
        .buffer_unordered(8)
        .collect()
        .await;
    users.sort_by_key(|(i, _)| *i);
    users.into_iter().map(|(_, d)| d).collect()
}

/// A group's visible state, to check that refused commands changed nothing.
pub async fn snapshot(d: &Device, group_id: u64) -> (GroupInfo, Vec<(u64, i32, i64)>, u64) {
    let info: GroupInfo = call(d, FrameType::GroupInfo, &GroupTarget { group_id })
        .await
        .unwrap();
    let members: GroupMemberList = call(
        d,
        FrameType::GroupMembers,
        &GroupMembersRequest {
            group_id,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let members = members
        .members
        .iter()
        .map(|m| {
            (
                m.profile.as_ref().unwrap().user_id,
                m.role,
                m.muted_until_ms,
            )
        })
        .collect();
    let head = d.client.sync(0, 1).await.unwrap().max_seq;
    (info, members, head)
}
