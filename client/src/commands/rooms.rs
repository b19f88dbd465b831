//! ROOM_JOIN, ROOM_LEAVE and ROOM_SEND: live rooms, nothing stored.

use bytes::Bytes;
use tern_public::proto::client::{RoomSendRequest, RoomTarget};
use tern_public::FrameType;

use crate::{Client, ClientError};

impl Client {
    /// Joins a live room: ROOM_PUSH frames of the room then arrive as
    /// [`Event::RoomPush`](crate::Event::RoomPush) until
    /// [`Client::room_leave`] or the connection closes.
    pub async fn room_join(&self, room_id: &str) -> Result<(), ClientError> {
        let req = RoomTarget {
            room_id: room_id.into(),
        };
        self.command(FrameType::RoomJoin, &req).await
    }

    /// Leaves a live room; leaving a room this connection is not in is not an error.
    pub async fn room_leave(&self, room_id: &str) -> Result<(), ClientError> {
        let req = RoomTarget {
            room_id: room_id.into(),
        };
        self.command(FrameType::RoomLeave, &req).await
    }

    /// Sends a live message to every other connection in a room this
    /// connection has joined; nothing is stored.
    pub async fn room_send(
        &self,
        room_id: &str,
        content_type: u32,
        content: impl Into<Bytes>,
    ) -> Result<(), ClientError> {
        let req = RoomSendRequest {
            room_id: room_id.into(),
            content_type,
            content: content.into(),
        };
        self.command(FrameType::RoomSend, &req).await
    }
}
