//! Keyset paging shared by the list commands: a requested limit (0 = the
//! default, capped), and one extra row read to tell whether more follow.

use std::collections::HashMap;

use crate::error::Result;
use crate::store::User;
use crate::Logic;

/// The page size to use for a requested `limit`.
pub(crate) fn limit(requested: u32, default: u32, max: u32) -> u32 {
    match requested {
        0 => default,
        n => n.min(max),
    }
}

/// Cuts rows read with `limit + 1` to the page, and says whether more follow.
pub(crate) fn page<T>(mut rows: Vec<T>, limit: u32) -> (Vec<T>, bool) {
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    (rows, has_more)
}

/// The users among `ids`, by id, for attaching profiles to a page.
pub(crate) async fn users_by_id(logic: &Logic, ids: &[u64]) -> Result<HashMap<u64, User>> {
    Ok(logic
        .store
        .users_by_ids(ids)
        .await?
        .into_iter()
        .map(|u| (u.id, u))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_cap_and_pages_report_more() {
        assert_eq!(
            (limit(0, 20, 50), limit(7, 20, 50), limit(500, 20, 50)),
            (20, 7, 50)
        );
        assert_eq!(page(vec![1, 2, 3], 2), (vec![1, 2], true));
        assert_eq!(page(vec![1, 2], 2), (vec![1, 2], false));
    }
}

/// Room for the Reply envelope around a page.
const ENVELOPE: usize = 1024;

/// Keeps the leading items whose encoding fits in a reply under the frame
/// limit; true if any were cut (so more follow).
pub(crate) fn fit<T: prost::Message>(mut items: Vec<T>, max_frame_len: usize) -> (Vec<T>, bool) {
    let budget = max_frame_len.saturating_sub(ENVELOPE);
    let mut used = 0;
    for (i, item) in items.iter().enumerate() {
        let len = item.encoded_len();
        used += 1 + prost::length_delimiter_len(len) + len;
        if used > budget && i > 0 {
            items.truncate(i);
            return (items, true);
        }
    }
    (items, false)
}

#[cfg(test)]
mod fit_tests {
    use super::*;
    use tern_public::proto::client::UserProfile;

    #[test]
    fn pages_are_cut_at_the_byte_budget() {
        let big = |i| UserProfile {
            user_id: i,
            nickname: "x".repeat(500),
            ..Default::default()
        };
        let (kept, cut) = fit((0..100).map(big).collect(), 4096);
        assert!(cut);
        assert!(!kept.is_empty() && kept.len() < 10, "{}", kept.len());
        let (kept, cut) = fit((0..3).map(big).collect(), 256 * 1024);
        assert_eq!((kept.len(), cut), (3, false));
    }
}
