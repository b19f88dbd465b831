//! Back-pressure from a connection's output to its input: its requests are
//! read only while the bytes it owes the client stay under
//! `write_queue_bytes` (`--write-queue-bytes`).
//!
//! What it owes: the output buffer, the frames others queued for it (pushes,
//! room pushes, a KICKED), and the replies of the requests it read and has
//! not answered yet. Those are not written yet, so each counts as much as
//! its reply may take: a page (SYNC, lists, searches) as a whole frame,
//! anything else as [`SMALL_REPLY`]. A client that asks and never reads so
//! stops being read once a bound's worth of answers is pending, and its
//! further requests wait in its own socket; it is closed by the write
//! timeout, as a client that stops reading always was. Reading resumes as
//! soon as the output drains below the bound; with nothing pending one
//! request is always read, so a reply larger than the whole bound still
//! goes out.

use bytes::Bytes;

use tern_public::FrameType;

use super::Connection;

/// What a request answered with one small object (an id, a session, a
/// profile, a group) counts as until its reply arrives; the reply then
/// counts as what it is.
const SMALL_REPLY: usize = 8 * 1024;

/// Bytes the reply to a request of type `ty` may take.
pub(super) fn reply_reserve(ty: FrameType, max_frame_len: usize) -> usize {
    match ty {
        // Pages: logic fills them up to the frame limit.
        FrameType::Sync
        | FrameType::FriendList
        | FrameType::GroupListMine
        | FrameType::GroupMembers
        | FrameType::UserGet
        | FrameType::UserSearch
        | FrameType::ConvList
        | FrameType::ConvHistory => max_frame_len,
        // One conversation, with its newest message whole.
        FrameType::ConvGet => max_frame_len,
        _ => SMALL_REPLY,
    }
}

impl Connection {
    /// Bytes the connection owes its client: written soon, queued by
    /// others, or promised to requests in flight.
    fn output_pending(&self) -> usize {
        self.out.len() + self.handle.queued_bytes() + self.reserved
    }

    /// Whether the output leaves room to read another request; keeps the
    /// paused gauge and the pause counter.
    pub(super) fn output_has_room(&mut self) -> bool {
        let room = self.output_pending() < self.node.cfg.write_queue_bytes;
        if room == self.output_paused {
            self.output_paused = !room;
            let m = &self.node.metrics;
            if room {
                m.output_paused.dec();
            } else {
                m.output_paused.inc();
                m.output_pauses.inc();
            }
        }
        room
    }

    /// Counts a request of type `ty` as owing its reply.
    pub(super) fn hold_reply(&mut self, ty: FrameType) -> usize {
        let bytes = reply_reserve(ty, self.node.cfg.max_frame_len);
        self.reserved += bytes;
        bytes
    }

    /// The request that held `bytes` is answered (or dropped).
    pub(super) fn release_reply(&mut self, bytes: usize) {
        self.reserved = self.reserved.saturating_sub(bytes);
    }

    /// Moves a frame others queued (taken off the queue) into the output buffer.
    pub(super) fn take_queued(&mut self, frame: &Bytes) {
        self.out.extend_from_slice(frame);
    }

    /// The connection ends: it no longer counts as paused.
    pub(super) fn end_pause(&mut self) {
        if self.output_paused {
            self.output_paused = false;
            self.node.metrics.output_paused.dec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_hold_a_whole_frame_and_everything_else_a_little() {
        assert_eq!(reply_reserve(FrameType::Sync, 1000), 1000);
        assert_eq!(reply_reserve(FrameType::UserSearch, 1000), 1000);
        assert_eq!(reply_reserve(FrameType::Send, 1000), SMALL_REPLY);
        assert_eq!(reply_reserve(FrameType::SignIn, 1000), SMALL_REPLY);
    }
}
