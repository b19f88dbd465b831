//! Group read receipts: how many members have read each message, and who
//! has read a message of one's own, for groups up to
//! `group_receipts_max_members` (default 200).
//!
//! Nothing is written for them: a member has read a message when their
//! read position in the group (MARK_READ) is at or past it in their own
//! list, so a count is exact whenever read positions are, and reading a
//! thousand messages is still one MARK_READ. The cost is on asking: one
//! lookup per member for each message asked about.

use std::collections::HashMap;

use tern_public::proto::client::{
    GroupReadCounts, GroupReadCountsRequest, GroupReaders, GroupReadersRequest,
};

use crate::actor::Actor;
use crate::error::{LogicError, Result};
use crate::groups::visible;
use crate::store::read_positions::GroupRead;
use crate::Logic;

/// Most messages one GROUP_READ_COUNTS asks about.
const MAX_MESSAGES: usize = 100;

/// GROUP_READ_COUNTS: readers of each message asked about, in order.
pub(crate) async fn read_counts(
    logic: &Logic,
    actor: &Actor,
    req: GroupReadCountsRequest,
) -> Result<GroupReadCounts> {
    if req.message_ids.len() > MAX_MESSAGES {
        return Err(LogicError::bad_request(format!(
            "at most {MAX_MESSAGES} messages at once"
        )));
    }
    let ids: Vec<Vec<u8>> = req.message_ids.iter().map(|b| b.to_vec()).collect();
    let reads = reads(logic, actor, req.group_id, &ids).await?;
    let counts = ids
        .iter()
        .map(|id| reads[id].readers.len() as u32)
        .collect();
    Ok(GroupReadCounts { counts })
}

/// GROUP_READERS: who has read a message the caller sent to the group.
pub(crate) async fn readers(
    logic: &Logic,
    actor: &Actor,
    req: GroupReadersRequest,
) -> Result<GroupReaders> {
    let id = req.message_id.to_vec();
    let mut reads = reads(logic, actor, req.group_id, std::slice::from_ref(&id)).await?;
    let read = reads.remove(&id).expect("every id asked is answered");
    if read.sender_id != actor.user_id() {
        return Err(LogicError::Forbidden(
            "only its sender may ask who has read a message",
        ));
    }
    Ok(GroupReaders {
        user_ids: read.readers,
    })
}

/// Who has read each of `ids`, after checking the caller, the group's size
/// and that every id is a message of the group.
async fn reads(
    logic: &Logic,
    actor: &Actor,
    group_id: u64,
    ids: &[Vec<u8>],
) -> Result<HashMap<Vec<u8>, GroupRead>> {
    if ids.iter().any(|id| id.len() != 16) {
        return Err(LogicError::bad_request("a message id is 16 bytes"));
    }
    let (group, _me) = visible(logic, actor, group_id).await?;
    let max = logic.cfg.group_receipts_max_members;
    if group.member_count > max {
        return Err(LogicError::Forbidden(
            "read receipts are off for groups of this size",
        ));
    }
    let found: HashMap<Vec<u8>, GroupRead> = logic
        .store
        .group_reads(group_id, ids)
        .await?
        .into_iter()
        .map(|r| (r.message_id.clone(), r))
        .collect();
    if ids.iter().any(|id| !found.contains_key(id)) {
        return Err(LogicError::NotFound("not a message of this group"));
    }
    Ok(found)
}
