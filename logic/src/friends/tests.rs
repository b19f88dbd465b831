//! Rows an older version left: its BLOCK changed only the blocker's side,
//! so a blocked user may still hold ACCEPTED or PENDING beside the block.
//! They must grant nothing, and UNBLOCK must still leave strangers.

use std::sync::Arc;

use tern_public::bus::MemoryBus;
use tern_public::proto::client::FriendTarget;
use tern_public::Code;

use crate::actor::Actor;
use crate::domain::FriendState::{self, *};
use crate::store::tests::on_both_engines;
use crate::store::Store;
use crate::{LiveState, Logic, LogicConfig};

on_both_engines!(rows_an_older_block_left_behind_grant_nothing);

/// The one-to-one send check, as SEND reads and applies it.
async fn check_send(logic: &Logic, sender: u64, receiver: u64) -> crate::error::Result<()> {
    let standing = logic.store.send_standing(sender, receiver).await?;
    let standing = standing.expect("the receiver exists");
    super::check_relation(logic, standing.mine, standing.theirs)
}

async fn relation(logic: &Logic, a: u64, b: u64) -> (Option<FriendState>, Option<FriendState>) {
    (
        logic.store.friend_state(a, b).await.unwrap(),
        logic.store.friend_state(b, a).await.unwrap(),
    )
}

async fn rows_an_older_block_left_behind_grant_nothing(store: Store) {
    let ids = crate::store::tests::users(&store, &["ann", "ben", "cat"]).await;
    let (ann, ben, cat) = (ids[0], ids[1], ids[2]);
    // Ben blocked his friend Ann; Cat blocked Ann after asking her.
    let mut tx = store.begin_write().await.unwrap();
    for (user, other, state) in [
        (ann, ben, Accepted),
        (ben, ann, Blocked),
        (ann, cat, Pending),
        (cat, ann, Blocked),
    ] {
        store
            .put_friend(&mut tx, user, other, state, 1)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let logic = Logic::start(
        LogicConfig::default(),
        store,
        LiveState::memory(),
        Arc::new(MemoryBus::new()),
    );
    let code = |r: crate::error::Result<()>| r.err().map(|e| e.code());

    assert_eq!(
        code(check_send(&logic, ann, ben).await),
        Some(Code::Blocked)
    );
    let as_ann = Actor::AdminAs(ann);
    let accept = super::accept(&logic, &as_ann, FriendTarget { user_id: cat }).await;
    assert_eq!(
        code(accept),
        Some(Code::NotFound),
        "a PENDING beside a block accepts nothing"
    );
    assert_eq!(relation(&logic, cat, ann).await.0, Some(Blocked));

    for blocker in [ben, cat] {
        super::unblock(
            &logic,
            &Actor::AdminAs(blocker),
            FriendTarget { user_id: ann },
        )
        .await
        .unwrap();
        assert_eq!(relation(&logic, ann, blocker).await, (None, None));
        assert_eq!(
            code(check_send(&logic, ann, blocker).await),
            Some(Code::NotFriends),
            "strangers after UNBLOCK"
        );
    }
}
