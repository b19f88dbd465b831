//! Conversions from the domain and the store to the client protocol's
//! messages, shared by the command table, fan-out and the admin API.

use bytes::Bytes;

use tern_public::proto::client::{self as pb, GroupInfo, Message, UserProfile};

use crate::store::conversations::Conversation;
use crate::store::groups::GroupRow;
use crate::store::{ListEntry, NewMessage, User};

/// A user's public profile.
pub(crate) fn profile(u: &User) -> UserProfile {
    UserProfile {
        user_id: u.id,
        username: u.username.clone(),
        nickname: u.nickname.clone(),
        avatar_url: u.avatar_url.clone(),
    }
}

/// A group as the client protocol describes it.
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
        member_mention_all: g.member_mention_all,
        created_at_ms: g.created_at,
    }
}

/// The client form of a list entry read back from the store.
pub(crate) fn entry_message(e: ListEntry) -> Message {
    let m = e.message;
    Message {
        id: m.id.into(),
        seq: e.seq,
        sender_id: m.sender_id,
        sender_device_id: m.sender_device_id,
        conv_type: e.conv_type,
        conv_id: e.conv_id,
        content_type: m.content_type,
        content: m.content.into(),
        mentions: m.mentions,
        client_msg_id: m.client_msg_id,
        created_at_ms: m.created_at,
        status: m.status,
    }
}

/// The client form of a conversation of a user's index.
pub(crate) fn conversation(c: Conversation) -> pb::Conversation {
    pb::Conversation {
        conv_type: c.conv_type,
        conv_id: c.conv_id,
        last_seq: c.last_seq,
        change_seq: c.change_seq,
        unread: c.unread,
        mentions: c.mentions,
        read_seq: c.read_seq,
        pinned: c.pinned,
        muted: c.muted,
        hidden: c.hidden,
        peer_read_seq: c.peer_read_seq,
        last_message: Some(entry_message(c.last)),
    }
}

/// The client form of a just-committed message in one recipient's list.
pub(crate) fn new_message(m: &NewMessage, seq: u64, conv_id: u64) -> Message {
    Message {
        id: Bytes::copy_from_slice(&m.id),
        seq,
        sender_id: m.sender_id,
        sender_device_id: m.sender_device_id,
        conv_type: m.conv_type,
        conv_id,
        content_type: m.content_type,
        content: m.content.clone(),
        mentions: m.mentions.clone(),
        client_msg_id: m.client_msg_id.clone().unwrap_or_default(),
        created_at_ms: m.created_at,
        status: 0,
    }
}
