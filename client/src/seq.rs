//! The one place that keeps a device's list in order: which seq the app has
//! seen last, what a pushed message means given that, and which messages of
//! a SYNC page are new. Pure bookkeeping, no I/O, so every case is a unit
//! test.

use tern_public::proto::client::Message;

/// The highest seq of the device's list handed to the app.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqTracker {
    applied: u64,
}

/// What to do with a pushed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// The next one: hand it to the app.
    Apply,
    /// Seen already (a push racing a SYNC, or a replay): drop it.
    Duplicate,
    /// Something is missing before it: SYNC after [`SeqTracker::applied`];
    /// the page will carry this message too, so drop the push.
    Gap,
}

impl SeqTracker {
    /// Starts after `applied` (0 for a device that has seen nothing).
    pub fn new(applied: u64) -> SeqTracker {
        SeqTracker { applied }
    }

    /// The seq to SYNC after.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Classifies a pushed message; applies it when it is the next one.
    pub fn on_push(&mut self, seq: u64) -> Incoming {
        if seq <= self.applied {
            Incoming::Duplicate
        } else if seq == self.applied + 1 {
            self.applied = seq;
            Incoming::Apply
        } else {
            Incoming::Gap
        }
    }

    /// The messages of a SYNC page (ascending) the app has not seen, in
    /// order. A page that skips a seq (it should not) is cut there, so the
    /// next SYNC starts at the hole instead of jumping over it.
    pub fn take_new(&mut self, page: Vec<Message>) -> Vec<Message> {
        let mut out = Vec::with_capacity(page.len());
        for m in page {
            match self.on_push(m.seq) {
                Incoming::Apply => out.push(m),
                Incoming::Duplicate => {}
                Incoming::Gap => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(seqs: &[u64]) -> Vec<Message> {
        seqs.iter()
            .map(|&seq| Message {
                seq,
                ..Default::default()
            })
            .collect()
    }

    fn seqs(m: &[Message]) -> Vec<u64> {
        m.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn the_next_push_applies_and_advances() {
        let mut t = SeqTracker::new(4);
        assert_eq!(t.on_push(5), Incoming::Apply);
        assert_eq!(t.on_push(6), Incoming::Apply);
        assert_eq!(t.applied(), 6);
    }

    #[test]
    fn an_old_or_repeated_push_is_a_duplicate_and_changes_nothing() {
        let mut t = SeqTracker::new(4);
        assert_eq!(t.on_push(4), Incoming::Duplicate);
        assert_eq!(t.on_push(1), Incoming::Duplicate);
        assert_eq!(t.applied(), 4);
    }

    #[test]
    fn a_push_past_a_hole_is_a_gap_and_is_not_applied() {
        let mut t = SeqTracker::new(4);
        assert_eq!(t.on_push(7), Incoming::Gap);
        assert_eq!(t.applied(), 4, "sync from 4, not from 7");
        // The sync page fills the hole and carries 7 itself.
        assert_eq!(seqs(&t.take_new(msgs(&[5, 6, 7]))), [5, 6, 7]);
        assert_eq!(t.on_push(7), Incoming::Duplicate, "the late push of 7");
    }

    #[test]
    fn a_sync_page_drops_what_was_seen_and_keeps_order() {
        let mut t = SeqTracker::new(0);
        assert_eq!(t.on_push(1), Incoming::Apply);
        assert_eq!(t.on_push(2), Incoming::Apply);
        assert_eq!(seqs(&t.take_new(msgs(&[1, 2, 3, 4]))), [3, 4]);
        assert_eq!(seqs(&t.take_new(msgs(&[3, 4]))), Vec::<u64>::new());
        assert_eq!(t.applied(), 4);
    }

    #[test]
    fn a_page_with_a_hole_is_cut_at_the_hole() {
        let mut t = SeqTracker::new(0);
        assert_eq!(seqs(&t.take_new(msgs(&[1, 2, 5, 6]))), [1, 2]);
        assert_eq!(t.applied(), 2);
    }

    #[test]
    fn an_empty_page_changes_nothing() {
        let mut t = SeqTracker::new(9);
        assert!(t.take_new(Vec::new()).is_empty());
        assert_eq!(t.applied(), 9);
    }
}
