//! Live rooms, logic's part: ROOM_SEND checks the content and publishes one
//! pre-encoded ROOM_PUSH on `tern.room.<id>`, where only connect nodes with
//! members listen (they keep membership). Nothing is stored: a room message
//! is live only. Broadcast publishes one frame for every connection.

use bytes::Bytes;
use prost::Message as _;

use tern_public::frame::valid_room_id;
use tern_public::proto::bus::{Broadcast, RoomDeliver};
use tern_public::proto::client::{RoomMessage, RoomSendRequest};
use tern_public::time::now_ms;
use tern_public::{Frame, FrameType};

use crate::actor::Actor;
use crate::error::{LogicError, Result};
use crate::Logic;

/// ROOM_SEND: to every member of the room but the sending connection.
pub(crate) async fn send(logic: &Logic, actor: &Actor, req: RoomSendRequest) -> Result<()> {
    check_room_id(&req.room_id)?;
    check_content(logic, &req.content)?;
    let frame = room_frame(&req.room_id, actor.user_id(), req.content_type, req.content);
    // The sending connection has its message already; the admin has none.
    let (except_node_id, except_conn_id) = actor
        .connection()
        .map_or((String::new(), 0), |c| (c.node_id.clone(), c.conn_id));
    let deliver = RoomDeliver {
        frame,
        except_node_id,
        except_conn_id,
    };
    logic
        .bus
        .publish(
            &logic.cfg.subjects.room(&req.room_id),
            deliver.encode_to_vec().into(),
        )
        .await
        .map_err(|e| LogicError::Unavailable(e.to_string()))
}

fn check_room_id(room_id: &str) -> Result<()> {
    if valid_room_id(room_id) {
        Ok(())
    } else {
        Err(LogicError::bad_request(
            "room_id must be 1-64 characters of a-z, A-Z, 0-9, '_', '-'",
        ))
    }
}

fn check_content(logic: &Logic, content: &[u8]) -> Result<()> {
    if content.len() > logic.cfg.max_content_len {
        return Err(LogicError::TooLarge(format!(
            "content larger than {} bytes",
            logic.cfg.max_content_len
        )));
    }
    Ok(())
}

fn room_frame(room_id: &str, sender_id: u64, content_type: u32, content: Bytes) -> Bytes {
    let msg = RoomMessage {
        room_id: room_id.to_owned(),
        sender_id,
        content_type,
        content,
        created_at_ms: now_ms(),
    };
    Frame::from_message(FrameType::RoomPush.as_u16(), &msg).to_bytes()
}

impl Logic {
    /// Pushes a ROOM_PUSH from the system (sender 0) to every member of a
    /// room on every node.
    pub async fn room_push(&self, room_id: &str, content_type: u32, content: Bytes) -> Result<()> {
        check_room_id(room_id)?;
        check_content(self, &content)?;
        let deliver = RoomDeliver {
            frame: room_frame(room_id, 0, content_type, content),
            ..Default::default()
        };
        self.bus
            .publish(
                &self.cfg.subjects.room(room_id),
                deliver.encode_to_vec().into(),
            )
            .await
            .map_err(|e| LogicError::Unavailable(e.to_string()))
    }

    /// Members of a room across all connect nodes.
    pub async fn room_online(&self, room_id: &str) -> Result<u64> {
        check_room_id(room_id)?;
        self.room_counts
            .room_online(room_id)
            .await
            .map_err(|e| LogicError::Unavailable(e.to_string()))
    }

    /// The rooms with the most members, most first.
    pub async fn top_rooms(&self, limit: usize) -> Result<Vec<(String, u64)>> {
        self.room_counts
            .top_rooms(limit)
            .await
            .map_err(|e| LogicError::Unavailable(e.to_string()))
    }

    /// Pushes a ROOM_PUSH (room_id empty, sender 0 = the system) to every
    /// signed-in connection of every connect node, each node at `speed`
    /// connections a second (0: as fast as it can).
    pub async fn broadcast(&self, content_type: u32, content: Bytes, speed: u32) -> Result<()> {
        check_content(self, &content)?;
        let frame = room_frame("", 0, content_type, content);
        self.bus
            .publish(
                &self.cfg.subjects.broadcast(),
                Broadcast { frame, speed }.encode_to_vec().into(),
            )
            .await
            .map_err(|e| LogicError::Unavailable(e.to_string()))
    }
}
