//! The client command table: which handler serves each frame type, how its
//! protobuf request becomes the handler's arguments and its result the
//! reply. This is the edge where handler errors become reply codes; the
//! handlers themselves speak the domain's types, so the admin API calls the
//! same functions without building protobuf requests.

use bytes::Bytes;
use prost::Message as _;
use tracing::debug;

use tern_public::proto::bus::{Bind, ConnReply, ConnRequest};
use tern_public::proto::client as pb;
use tern_public::{Code, FrameType};

use crate::actor::{Actor, Connection};
use crate::auth::account;
use crate::domain::Role;
use crate::error::{LogicError, Result};
use crate::groups::{self, Member, NewGroupSpec};
use crate::messages::Draft;
use crate::metrics::{CommandLabels, CommandOnly};
use crate::store::groups::GroupChanges;
use crate::wire::{self, profile};
use crate::{auth, conversations, friends, messages, paging, push, rooms, users, Logic};

/// Runs one client command and encodes its outcome.
pub(crate) async fn dispatch(logic: &Logic, req: ConnRequest) -> ConnReply {
    let conn = Connection {
        node_id: req.node_id,
        conn_id: req.conn_id,
        heartbeat_interval_secs: req.heartbeat_interval_secs,
        remote_addr: req.remote_addr,
    };
    // Identity is the connection's (bound at sign-in), never the payload's.
    let signed_in = (req.user_id != 0).then_some((req.user_id, req.device_id));
    let ty = u16::try_from(req.r#type).ok().and_then(FrameType::from_u16);
    let started = std::time::Instant::now();
    let result = run(logic, conn, signed_in, ty, req.payload)
        .await
        .map_err(|e| e.note_outage(logic.store.health()));
    let command = ty.map_or("unknown", FrameType::name);
    let code = result.as_ref().map_or_else(|e| e.code(), |_| Code::Ok);
    let m = &logic.metrics;
    m.requests
        .get_or_create(&CommandLabels {
            command,
            code: code.name(),
        })
        .inc();
    m.request_seconds
        .get_or_create(&CommandOnly { command })
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(answer) => ConnReply {
            code: Code::Ok.as_i32(),
            message: String::new(),
            payload: answer.payload.into(),
            bind: answer.bind,
            retry_after_ms: 0,
            then_kick: answer.then_kick.map_or(0, |r| r as u32),
        },
        Err(e) => {
            debug!(ty = ?ty, code = %e.code(), error = %e, "command failed");
            error_reply(&e)
        }
    }
}

/// What a command answers.
struct Answer {
    payload: Vec<u8>,
    /// The identity the connection is now signed in as (sign-in commands).
    bind: Option<Bind>,
    /// The command ended the device's session (LOGOUT, ACCOUNT_DELETE):
    /// connect sends KICKED with this reason after the reply, and closes.
    then_kick: Option<pb::KickReason>,
}

async fn run(
    logic: &Logic,
    conn: Connection,
    signed_in: Option<(u64, u64)>,
    ty: Option<FrameType>,
    payload: Bytes,
) -> Result<Answer> {
    let ty = ty.ok_or_else(|| LogicError::bad_request("unknown command"))?;
    match (ty.is_auth(), signed_in) {
        (true, None) => sign_in(logic, &conn, ty, payload).await,
        (true, Some(_)) => Err(LogicError::bad_request("already signed in")),
        (false, None) => Err(LogicError::Unauthenticated("sign in first")),
        (false, Some((user_id, device_id))) => {
            let actor = Actor::Device {
                user_id,
                device_id,
                conn,
            };
            command(logic, &actor, ty, payload).await
        }
    }
}

/// The commands that sign a connection in; their answer binds it.
async fn sign_in(logic: &Logic, conn: &Connection, ty: FrameType, p: Bytes) -> Result<Answer> {
    let (payload, bind) = match ty {
        FrameType::Register => auth::register(logic, conn, decode(p)?)
            .await
            .map(|(r, b)| (r.encode_to_vec(), b))?,
        FrameType::Login => auth::login(logic, conn, decode(p)?)
            .await
            .map(|(r, b)| (r.encode_to_vec(), b))?,
        _ => auth::sign_in(logic, conn, decode(p)?)
            .await
            .map(|(r, b)| (r.encode_to_vec(), b))?,
    };
    Ok(Answer {
        payload,
        bind: Some(bind),
        then_kick: None,
    })
}

/// The commands of a signed-in device.
async fn command(logic: &Logic, actor: &Actor, ty: FrameType, p: Bytes) -> Result<Answer> {
    use FrameType::*;
    Ok(match ty {
        Send => {
            let r: pb::SendRequest = decode(p)?;
            let draft = Draft {
                conv_type: r.conv_type,
                to: r.conv_id,
                content_type: r.content_type,
                content: r.content,
                mentions: r.mentions,
                client_msg_id: r.client_msg_id,
            };
            let sent = messages::send(logic, actor, draft).await?;
            reply(pb::SendReply {
                message_id: sent.message_id,
                seq: sent.seq,
                created_at_ms: sent.created_at,
            })
        }
        Sync => reply(messages::sync(logic, actor, decode(p)?).await?),
        Ack => empty(messages::ack(logic, actor, decode(p)?).await?),
        Recall => empty(messages::recall(logic, actor, decode(p)?).await?),
        FriendRequest => empty(friends::request(logic, actor, decode(p)?).await?),
        FriendAccept => empty(friends::accept(logic, actor, decode(p)?).await?),
        FriendDecline => empty(friends::decline(logic, actor, decode(p)?).await?),
        FriendDelete => {
            let r: pb::FriendTarget = decode(p)?;
            empty(friends::unfriend(logic, actor, r.user_id).await?)
        }
        FriendList => reply(friends::list(logic, actor, decode(p)?).await?),
        FriendBlock => empty(friends::block(logic, actor, decode(p)?).await?),
        FriendUnblock => empty(friends::unblock(logic, actor, decode(p)?).await?),
        FriendSetRemark => empty(friends::set_remark(logic, actor, decode(p)?).await?),
        GroupCreate => {
            let r: pb::GroupCreateRequest = decode(p)?;
            let spec = NewGroupSpec {
                name: r.name,
                avatar_url: r.avatar_url,
                introduction: r.introduction,
                member_ids: r.member_ids,
                member_invite: r.member_invite,
            };
            reply(wire::info(&groups::create(logic, actor, spec).await?))
        }
        GroupInfo => {
            let r: pb::GroupTarget = decode(p)?;
            reply(wire::info(&groups::get(logic, actor, r.group_id).await?))
        }
        GroupUpdate => {
            let r: pb::GroupUpdateRequest = decode(p)?;
            let changes = GroupChanges {
                name: r.name,
                avatar_url: r.avatar_url,
                introduction: r.introduction,
                member_invite: r.member_invite,
                member_mention_all: r.member_mention_all,
                muted_all: None,
            };
            let group = groups::update(logic, actor, r.group_id, changes).await?;
            reply(wire::info(&group))
        }
        GroupListMine => reply(groups::list_mine(logic, actor, decode(p)?).await?),
        GroupMembers => {
            let r: pb::GroupMembersRequest = decode(p)?;
            let (page, has_more) =
                groups::members_page(logic, actor, r.group_id, r.after_user_id, r.limit).await?;
            reply(member_list(logic, page, has_more))
        }
        GroupAddMembers => {
            let r: pb::GroupMembersChange = decode(p)?;
            empty(groups::add_members(logic, actor, r.group_id, &r.user_ids).await?)
        }
        GroupRemoveMembers => {
            let r: pb::GroupMembersChange = decode(p)?;
            empty(groups::remove_members(logic, actor, r.group_id, &r.user_ids).await?)
        }
        GroupQuit => {
            let r: pb::GroupTarget = decode(p)?;
            empty(groups::quit(logic, actor, r.group_id).await?)
        }
        GroupDismiss => {
            let r: pb::GroupTarget = decode(p)?;
            empty(groups::dismiss(logic, actor, r.group_id).await?)
        }
        GroupTransferOwner => {
            let r: pb::GroupTransferRequest = decode(p)?;
            empty(groups::transfer_owner(logic, actor, r.group_id, r.new_owner_id).await?)
        }
        GroupSetRole => {
            let r: pb::GroupSetRoleRequest = decode(p)?;
            let role = Role::from_wire(r.role);
            empty(groups::set_role(logic, actor, r.group_id, r.user_id, role).await?)
        }
        GroupMuteMember => {
            let r: pb::GroupMuteRequest = decode(p)?;
            empty(groups::mute_member(logic, actor, r.group_id, r.user_id, r.until_ms).await?)
        }
        GroupMuteAll => {
            let r: pb::GroupMuteAllRequest = decode(p)?;
            let group = groups::set_muted_all(logic, actor, r.group_id, r.muted).await?;
            reply(wire::info(&group))
        }
        RoomSend => empty(rooms::send(logic, actor, decode(p)?).await?),
        UserGet => reply(users::get(logic, decode(p)?).await?),
        UserUpdate => {
            let r: pb::UserUpdateRequest = decode(p)?;
            let me = users::update(logic, actor, r.nickname.as_deref(), r.avatar_url.as_deref());
            reply(profile(&me.await?))
        }
        UserSearch => reply(users::search(logic, decode(p)?).await?),
        ConvList => reply(conversations::list(logic, actor, decode(p)?).await?),
        ConvGet => reply(conversations::get(logic, actor, decode(p)?).await?),
        ConvHistory => reply(conversations::history(logic, actor, decode(p)?).await?),
        MarkRead => reply(conversations::mark_read(logic, actor, decode(p)?).await?),
        ConvSet => reply(conversations::set(logic, actor, decode(p)?).await?),
        GroupReadCounts => reply(conversations::read_counts(logic, actor, decode(p)?).await?),
        GroupReaders => reply(conversations::readers(logic, actor, decode(p)?).await?),
        DeleteForMe => reply(conversations::delete_for_me(logic, actor, decode(p)?).await?),
        ClearConversation => reply(conversations::clear(logic, actor, decode(p)?).await?),
        PasswordChange => empty(account::change_password(logic, actor, decode(p)?).await?),
        Logout => ended(account::logout(logic, actor).await?),
        DeviceList => reply(account::devices(logic, actor).await?),
        DeviceRevoke => {
            let r: pb::DeviceTarget = decode(p)?;
            empty(account::revoke(logic, actor, r.device_id).await?)
        }
        AccountDelete => ended(account::delete_account(logic, actor, decode(p)?).await?),
        TokenRefresh => reply(account::refresh_token(logic, actor).await?),
        PushTokenSet => empty(push::set_token(logic, actor, decode(p)?).await?),
        PushTokenRemove => empty(push::remove_token(logic, actor).await?),
        Register | Login | SignIn | Heartbeat | RoomJoin | RoomLeave | Reply | Push | RoomPush
        | Kicked => {
            return Err(LogicError::bad_request(format!(
                "{} is not a logic command",
                ty.name()
            )))
        }
    })
}

/// A page of members as the client protocol lists them, cut to fit a frame.
fn member_list(logic: &Logic, page: Vec<Member>, has_more: bool) -> pb::GroupMemberList {
    let members = page
        .into_iter()
        .map(|Member { row, user }| pb::GroupMember {
            profile: user.as_ref().map(profile),
            role: row.role.to_wire() as i32,
            alias: row.alias,
            muted_until_ms: row.muted_until,
            joined_at_ms: row.joined_at,
        })
        .collect();
    let (members, cut) = paging::fit(members, logic.cfg.max_frame_len);
    pb::GroupMemberList {
        members,
        has_more: has_more || cut,
    }
}

fn reply(msg: impl prost::Message) -> Answer {
    Answer {
        payload: msg.encode_to_vec(),
        bind: None,
        then_kick: None,
    }
}

fn empty(_: ()) -> Answer {
    reply(pb::Empty {})
}

/// An empty reply, after which the connection closes with `reason`.
fn ended(reason: pb::KickReason) -> Answer {
    Answer {
        then_kick: Some(reason),
        ..empty(())
    }
}

fn decode<M: prost::Message + Default>(payload: Bytes) -> Result<M> {
    M::decode(payload).map_err(|e| LogicError::bad_request(format!("payload does not decode: {e}")))
}

/// The reply to a command that failed.
pub(crate) fn error_reply(e: &LogicError) -> ConnReply {
    ConnReply {
        code: e.code().as_i32(),
        message: e.public_message(),
        payload: error_payload(e),
        bind: None,
        retry_after_ms: e.retry_after().map_or(0, retry_after_ms),
        then_kick: 0,
    }
}

/// What a failed reply carries beyond its code and message: the hook's
/// code and reason for REJECTED, so an app can act on them.
fn error_payload(e: &LogicError) -> Bytes {
    match e {
        LogicError::Rejected { code, reason } => pb::SendRejected {
            code: *code,
            reason: reason.clone(),
        }
        .encode_to_vec()
        .into(),
        _ => Bytes::new(),
    }
}

/// A wait in whole milliseconds for the wire, at least 1 so it is not "unsaid".
pub(crate) fn retry_after_ms(d: std::time::Duration) -> u32 {
    d.as_millis().clamp(1, u128::from(u32::MAX)) as u32
}
