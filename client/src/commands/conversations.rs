//! CONV_LIST, CONV_GET, CONV_HISTORY, MARK_READ, CONV_SET and the group
//! read receipts: the signed-in user's conversations.

use tern_public::proto::client::{
    ClearConversationRequest, ConvHistory, ConvHistoryRequest, ConvList, ConvListRequest,
    ConvSetRequest, ConvTarget, ConvType, Conversation, DeleteForMeRequest, GroupReadCounts,
    GroupReadCountsRequest, GroupReaders, GroupReadersRequest, MarkReadRequest,
};
use tern_public::FrameType;

use crate::{Client, ClientError};

impl Client {
    /// A page of the caller's conversations that are not hidden: pinned
    /// first, then by newest entry. `after` is the last conversation of the
    /// previous page (`None` for the first); `limit` 0 takes the server's
    /// default.
    pub async fn conv_list(
        &self,
        after: Option<&Conversation>,
        limit: u32,
    ) -> Result<ConvList, ClientError> {
        let req = ConvListRequest {
            limit,
            after_pinned: after.is_some_and(|c| c.pinned),
            after_last_seq: after.map_or(0, |c| c.last_seq),
        };
        self.request(FrameType::ConvList, &req).await
    }

    /// One of the caller's conversations, hidden or not.
    pub async fn conv_get(
        &self,
        conv_type: ConvType,
        conv_id: u64,
    ) -> Result<Conversation, ClientError> {
        let req = ConvTarget {
            conv_type: conv_type as i32,
            conv_id,
        };
        self.request(FrameType::ConvGet, &req).await
    }

    /// A page of one conversation's entries, newest first, below
    /// `before_seq` (0: from the newest; else an entry of the conversation
    /// or the previous page's `next_before_seq`).
    pub async fn conv_history(
        &self,
        conv_type: ConvType,
        conv_id: u64,
        before_seq: u64,
        limit: u32,
    ) -> Result<ConvHistory, ClientError> {
        let req = ConvHistoryRequest {
            conv_type: conv_type as i32,
            conv_id,
            before_seq,
            limit,
        };
        self.request(FrameType::ConvHistory, &req).await
    }

    /// Marks a conversation read up to `up_to_seq` (0: everything). The
    /// read position only rises; the caller's other devices learn it from
    /// a CONV_READ entry, and in a one-to-one conversation the other party
    /// from a CONV_PEER_READ entry. Answers the conversation as it is then.
    pub async fn mark_read(
        &self,
        conv_type: ConvType,
        conv_id: u64,
        up_to_seq: u64,
    ) -> Result<Conversation, ClientError> {
        let req = MarkReadRequest {
            conv_type: conv_type as i32,
            conv_id,
            up_to_seq,
        };
        self.request(FrameType::MarkRead, &req).await
    }

    /// Changes the caller's own settings of a conversation; `None` leaves a
    /// setting as it is. The caller's other devices learn the change from
    /// a CONV_SETTINGS entry. Answers the conversation as it is then.
    pub async fn conv_set(
        &self,
        conv_type: ConvType,
        conv_id: u64,
        pinned: Option<bool>,
        muted: Option<bool>,
        hidden: Option<bool>,
    ) -> Result<Conversation, ClientError> {
        let req = ConvSetRequest {
            conv_type: conv_type as i32,
            conv_id,
            pinned,
            muted,
            hidden,
        };
        self.request(FrameType::ConvSet, &req).await
    }

    /// How many members have read each of `message_ids` (at most 100, all
    /// of the group), in order; the sender is not counted. Groups up to
    /// the server's receipt size only.
    pub async fn group_read_counts(
        &self,
        group_id: u64,
        message_ids: &[bytes::Bytes],
    ) -> Result<Vec<u32>, ClientError> {
        let req = GroupReadCountsRequest {
            group_id,
            message_ids: message_ids.to_vec(),
        };
        let counts: GroupReadCounts = self.request(FrameType::GroupReadCounts, &req).await?;
        Ok(counts.counts)
    }

    /// Who has read a message the caller sent to a group, ascending.
    pub async fn group_readers(
        &self,
        group_id: u64,
        message_id: bytes::Bytes,
    ) -> Result<Vec<u64>, ClientError> {
        let req = GroupReadersRequest {
            group_id,
            message_id,
        };
        let readers: GroupReaders = self.request(FrameType::GroupReaders, &req).await?;
        Ok(readers.user_ids)
    }

    /// Deletes entries (1-100 seqs of the caller's list, all of one
    /// conversation) for the caller alone; the caller's other devices learn
    /// it from a MESSAGES_DELETED entry. Answers the conversation.
    pub async fn delete_for_me(
        &self,
        conv_type: ConvType,
        conv_id: u64,
        seqs: &[u64],
    ) -> Result<Conversation, ClientError> {
        let req = DeleteForMeRequest {
            conv_type: conv_type as i32,
            conv_id,
            seqs: seqs.to_vec(),
        };
        self.request(FrameType::DeleteForMe, &req).await
    }

    /// Deletes every entry of a conversation up to `up_to_seq` (0: all)
    /// for the caller alone, and reads it that far. Answers the conversation.
    pub async fn clear_conversation(
        &self,
        conv_type: ConvType,
        conv_id: u64,
        up_to_seq: u64,
    ) -> Result<Conversation, ClientError> {
        let req = ClearConversationRequest {
            conv_type: conv_type as i32,
            conv_id,
            up_to_seq,
        };
        self.request(FrameType::ClearConversation, &req).await
    }
}
