//! A user's conversations as the admin reads them: the same pages the
//! user's devices get.

use tern_public::proto::client::{ConvHistory, ConvHistoryRequest, ConvList, ConvListRequest};

use crate::conversations::{history_of, list_of};
use crate::error::Result;
use crate::Logic;

impl Logic {
    /// A page of a live user's conversations (CONV_LIST's).
    pub(crate) async fn admin_conversations(
        &self,
        user_id: u64,
        req: ConvListRequest,
    ) -> Result<ConvList> {
        self.admin_user(user_id).await?;
        list_of(self, user_id, req).await
    }

    /// A page of one of a live user's conversations (CONV_HISTORY's).
    pub(crate) async fn admin_history(
        &self,
        user_id: u64,
        req: ConvHistoryRequest,
    ) -> Result<ConvHistory> {
        self.admin_user(user_id).await?;
        history_of(self, user_id, req).await
    }
}
