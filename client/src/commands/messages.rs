//! SEND, RECALL, SYNC and ACK: the user's list.

use bytes::Bytes;
use tern_public::proto::client::{
    AckRequest, ConvType, Message, RecallRequest, SendReply, SendRequest, SyncReply, SyncRequest,
};
use tern_public::FrameType;

use crate::{Client, ClientError};

/// `content_type` of plain UTF-8 text.
pub const TEXT: u32 = 1;

impl Client {
    /// Sends a message. Sending again with the same `client_msg_id` (e.g.
    /// after a timeout) stores nothing new and answers with the first
    /// send's message id and seq.
    pub async fn send(&self, req: &SendRequest) -> Result<SendReply, ClientError> {
        self.request(FrameType::Send, req).await
    }

    /// Sends a text message to a user.
    pub async fn send_text(
        &self,
        to_user: u64,
        text: &str,
        client_msg_id: &str,
    ) -> Result<SendReply, ClientError> {
        self.send(&text_request(ConvType::User, to_user, text, client_msg_id))
            .await
    }

    /// Sends a text message to a group the caller is a member of.
    pub async fn send_group_text(
        &self,
        group_id: u64,
        text: &str,
        client_msg_id: &str,
    ) -> Result<SendReply, ClientError> {
        self.send(&text_request(
            ConvType::Group,
            group_id,
            text,
            client_msg_id,
        ))
        .await
    }

    /// Recalls a message (the 16-byte `message_id` of its SEND reply): the
    /// sender may within the server's recall window, a group's owner or
    /// admins at any time. Its content is cleared in every list that holds
    /// it, and each of those lists gets a MESSAGE_RECALLED entry.
    pub async fn recall(&self, message_id: impl Into<Bytes>) -> Result<(), ClientError> {
        let req = RecallRequest {
            message_id: message_id.into(),
        };
        self.command(FrameType::Recall, &req).await
    }

    /// One page of the caller's list after `after_seq`, ascending; `limit` 0
    /// takes the server's default page size.
    pub async fn sync(&self, after_seq: u64, limit: u32) -> Result<SyncReply, ClientError> {
        self.request(FrameType::Sync, &SyncRequest { after_seq, limit })
            .await
    }

    /// Syncs page by page until the server has nothing more after `after_seq`.
    pub async fn sync_all(&self, mut after_seq: u64) -> Result<Vec<Message>, ClientError> {
        let mut all = Vec::new();
        loop {
            let page = self.sync(after_seq, 0).await?;
            if let Some(last) = page.messages.last() {
                after_seq = last.seq;
            }
            all.extend(page.messages);
            if !page.has_more {
                return Ok(all);
            }
        }
    }

    /// Records that this device has handled its list up to `seq`.
    pub async fn ack(&self, seq: u64) -> Result<(), ClientError> {
        self.command(FrameType::Ack, &AckRequest { seq }).await
    }
}

fn text_request(conv: ConvType, conv_id: u64, text: &str, client_msg_id: &str) -> SendRequest {
    SendRequest {
        conv_type: conv as i32,
        conv_id,
        content_type: TEXT,
        content: Bytes::copy_from_slice(text.as_bytes()),
        client_msg_id: client_msg_id.into(),
        mentions: vec![],
    }
}
