//! The byte count of one connection's queue of frames from others.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of the frames others queued for one connection (pushes, room
/// pushes, broadcasts, a KICKED) and not yet taken by its task: shared by
/// its handles, which add, and its task, which takes.
#[derive(Debug)]
pub(crate) struct QueuedBytes {
    bytes: AtomicUsize,
    limit: usize,
}

impl QueuedBytes {
    /// A queue that holds at most `limit` bytes, or one frame of any size
    /// when it is empty (so a frame larger than the limit is never stuck).
    pub(crate) fn new(limit: usize) -> QueuedBytes {
        QueuedBytes {
            bytes: AtomicUsize::new(0),
            limit,
        }
    }

    /// Bytes queued now.
    pub(crate) fn get(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }

    /// Takes room for `len` bytes; false (and nothing taken) when the
    /// queue holds something and `len` more would pass the limit.
    pub(super) fn take(&self, len: usize) -> bool {
        let mut now = self.bytes.load(Ordering::Acquire);
        loop {
            if now > 0 && now.saturating_add(len) > self.limit {
                return false;
            }
            match self.bytes.compare_exchange_weak(
                now,
                now + len,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => now = actual,
            }
        }
    }

    /// Takes room for `len` bytes whatever the limit: for the one frame
    /// that says why the connection closes.
    pub(super) fn force(&self, len: usize) {
        self.bytes.fetch_add(len, Ordering::AcqRel);
    }

    /// Gives back the room of a frame the connection took off its queue
    /// (or that never made it in).
    pub(crate) fn release(&self, len: usize) {
        self.bytes.fetch_sub(len, Ordering::AcqRel);
    }
}
