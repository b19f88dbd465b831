//! Who may reach whom: one-to-one sends and putting someone into a group
//! follow the same rule, so a block cannot be walked around through a
//! group. A block in either direction refuses (BLOCKED); under the
//! friends-only policy so does anyone who is not an accepted friend
//! (NOT_FRIENDS). The admin API, acting for a user, is not limited by it.

use crate::actor::Actor;
use crate::domain::FriendState::{self, Accepted, Blocked};
use crate::error::{LogicError, Result};
use crate::store::Tx;
use crate::{Logic, SendPolicy};

/// How two users stand, read from both directions of their relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// One of them blocked the other.
    Blocked,
    /// Both directions are ACCEPTED.
    Friends,
    /// Anything else: no relation, or a request not (yet) accepted.
    Strangers,
}

impl Standing {
    /// The standing of `mine` (my row about them) and `theirs`. Friends
    /// needs both directions: one ACCEPTED row whose other half is gone or
    /// different is not a friendship.
    pub(crate) fn of(mine: Option<FriendState>, theirs: Option<FriendState>) -> Standing {
        if mine == Some(Blocked) || theirs == Some(Blocked) {
            Standing::Blocked
        } else if mine == Some(Accepted) && theirs == Some(Accepted) {
            Standing::Friends
        } else {
            Standing::Strangers
        }
    }
}

/// The refusal for reaching someone of `standing` under `policy`, if any.
fn refusal(
    policy: SendPolicy,
    standing: Standing,
    not_friends: &'static str,
) -> Option<LogicError> {
    match (standing, policy) {
        (Standing::Blocked, _) => Some(LogicError::Blocked("blocked")),
        (Standing::Strangers, SendPolicy::FriendsOnly) => Some(LogicError::NotFriends(not_friends)),
        _ => None,
    }
}

/// Whether a one-to-one send may go where the sender's relation is `mine`
/// and the receiver's is `theirs` (read together with the receiver by
/// `Store::send_standing`).
pub(crate) fn check_relation(
    logic: &Logic,
    mine: Option<FriendState>,
    theirs: Option<FriendState>,
) -> Result<()> {
    match refusal(
        logic.cfg.send_policy,
        Standing::of(mine, theirs),
        "only friends can message each other",
    ) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Whether `actor` may put `users` into a group (GROUP_CREATE's members,
/// ADD_MEMBERS' new members), inside the change's transaction; `everyone`
/// is every member the change's event goes to. One user who may not be
/// added refuses the whole request, as an unknown id does: BLOCKED if any
/// of them blocked the actor or was blocked by them (whoever else the
/// request names), else NOT_FRIENDS under friends-only if any is not a
/// friend.
pub(crate) async fn check_group_adds(
    logic: &Logic,
    tx: &mut Tx,
    actor: &Actor,
    users: &[u64],
    everyone: &[u64],
) -> Result<()> {
    if actor.is_admin() || users.is_empty() {
        return Ok(());
    }
    // The heads the change's event takes anyway, taken now in the same
    // ascending order: a BLOCK or UNFRIEND takes the pair's heads too, so
    // it runs wholly before this read or after this commit, never between.
    logic.store.lock_heads(tx, everyone).await?;
    let relations = logic.store.relations_in(tx, actor.user_id(), users).await?;
    let standings: Vec<Standing> = users
        .iter()
        .map(|u| {
            relations
                .get(u)
                .map_or(Standing::Strangers, |&(mine, theirs)| {
                    Standing::of(mine, theirs)
                })
        })
        .collect();
    // A block wins over every other refusal, as it does for a send.
    let worst = if standings.contains(&Standing::Blocked) {
        Standing::Blocked
    } else if standings.contains(&Standing::Strangers) {
        Standing::Strangers
    } else {
        Standing::Friends
    };
    match refusal(
        logic.cfg.send_policy,
        worst,
        "only your friends can be added to a group",
    ) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FriendState::{Pending, Requested};

    #[test]
    fn a_block_either_way_wins_and_friends_need_both_directions() {
        let all = [
            None,
            Some(Requested),
            Some(Pending),
            Some(Accepted),
            Some(Blocked),
        ];
        for mine in all {
            for theirs in all {
                let want = if mine == Some(Blocked) || theirs == Some(Blocked) {
                    Standing::Blocked
                } else if (mine, theirs) == (Some(Accepted), Some(Accepted)) {
                    Standing::Friends
                } else {
                    Standing::Strangers
                };
                assert_eq!(Standing::of(mine, theirs), want, "{mine:?} {theirs:?}");
            }
        }
    }

    #[test]
    fn policies_refuse_blocks_always_and_strangers_only_when_friends_only() {
        use SendPolicy::*;
        let code = |p, s| refusal(p, s, "x").map(|e| e.code());
        for p in [FriendsOnly, Open] {
            assert_eq!(code(p, Standing::Blocked), Some(tern_public::Code::Blocked));
            assert_eq!(code(p, Standing::Friends), None);
        }
        assert_eq!(
            code(FriendsOnly, Standing::Strangers),
            Some(tern_public::Code::NotFriends)
        );
        assert_eq!(code(Open, Standing::Strangers), None);
    }
}
