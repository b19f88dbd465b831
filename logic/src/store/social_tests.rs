//! Friends, groups, recall and user search SQL on SQLite and MariaDB.

use super::groups::{GroupChanges, NewGroup};
use super::messages::test_message;
use super::tests::on_both_engines;
use super::*;
use crate::domain::{FriendState::*, Role};

on_both_engines!(
    friend_rows_per_direction,
    relations_with_many_users_read_both_directions,
    a_send_to_or_from_a_user_with_too_many_relations_to_cache_reads_the_pair,
    group_membership_and_settings,
    recall_marks_and_finds_holders,
    search_and_profiles,
    unknown_stored_states_read_as_the_least_they_could_grant
);

async fn users(s: &Store, names: &[&str]) -> Vec<u64> {
    let mut ids = Vec::new();
    for n in names {
        ids.push(
            s.create_user(NewUser {
                username: n,
                password_hash: "h",
                nickname: n,
                now_ms: 1,
            })
            .await
            .unwrap(),
        );
    }
    ids
}

async fn friend_rows_per_direction(s: Store) {
    let ids = users(&s, &["ann", "ben"]).await;
    let (a, b) = (ids[0], ids[1]);
    let mut tx = s.begin_write().await.unwrap();
    s.put_friend(&mut tx, a, b, Requested, 5).await.unwrap();
    s.put_friend(&mut tx, b, a, Pending, 5).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = s.begin_write().await.unwrap();
    let (ab, ba) = s.friend_pair(&mut tx, a, b).await.unwrap();
    assert_eq!((ab.unwrap().state, ba.unwrap().state), (Requested, Pending));
    s.put_friend(&mut tx, a, b, Accepted, 6).await.unwrap();
    assert!(s.set_remark(&mut tx, a, b, "Benny", 7).await.unwrap());
    s.delete_friend(&mut tx, b, a).await.unwrap();
    tx.commit().await.unwrap();
    let rows = s.friends_of(a, 0, 10).await.unwrap();
    assert_eq!(
        (rows.len(), rows[0].state, rows[0].remark.as_str()),
        (1, Accepted, "Benny")
    );
    assert_eq!(s.friend_state(b, a).await.unwrap(), None);
}

async fn group_membership_and_settings(s: Store) {
    let ids = users(&s, &["own", "adm", "mem"]).await;
    let mut tx = s.begin_write().await.unwrap();
    let g = s
        .create_group(
            &mut tx,
            NewGroup {
                name: "g",
                avatar_url: "",
                introduction: "hi",
                owner_id: ids[0],
                max_members: 10,
                member_invite: false,
                now: 1,
            },
        )
        .await
        .unwrap();
    s.add_members(
        &mut tx,
        g,
        &[
            (ids[0], Role::Owner),
            (ids[1], Role::Admin),
            (ids[2], Role::Member),
        ],
        1,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut tx = s.begin_write().await.unwrap();
    let row = s.lock_group(&mut tx, g, 2).await.unwrap().unwrap();
    assert_eq!(
        (row.member_count, row.owner_id, row.introduction.as_str()),
        (3, ids[0], "hi")
    );
    s.update_group(
        &mut tx,
        g,
        &GroupChanges {
            name: Some("renamed".into()),
            muted_all: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    s.set_muted_until(&mut tx, g, ids[2], 99).await.unwrap();
    s.remove_members(&mut tx, g, &[ids[1]]).await.unwrap();
    assert_eq!(
        s.member_ids_in(&mut tx, g).await.unwrap(),
        vec![ids[0], ids[2]]
    );
    tx.commit().await.unwrap();
    let row = s.group(g).await.unwrap().unwrap();
    assert_eq!(
        (row.name.as_str(), row.muted_all, row.member_count),
        ("renamed", true, 2)
    );
    assert_eq!(s.member(g, ids[2]).await.unwrap().unwrap().muted_until, 99);
    assert_eq!(s.members_page(g, ids[0], 10).await.unwrap().len(), 1);
    assert_eq!(s.groups_of(ids[2], 0, 10).await.unwrap()[0].id, g);
    let mut tx = s.begin_write().await.unwrap();
    s.dismiss_group(&mut tx, g, 3).await.unwrap();
    tx.commit().await.unwrap();
    assert!(s.groups_of(ids[2], 0, 10).await.unwrap().is_empty());
    assert_eq!(s.group(g).await.unwrap().unwrap().dismissed_at, 3);
}

async fn recall_marks_and_finds_holders(s: Store) {
    let ids = users(&s, &["ann", "ben"]).await;
    let m = test_message(ids[0], ids[1], Some("r"));
    s.append(vec![Arc::new(m.clone())]).await.unwrap().unwrap();
    let meta = s.message_meta(&m.id).await.unwrap().unwrap();
    assert_eq!((meta.sender_id, meta.status), (ids[0], 0));
    let mut tx = s.begin_write().await.unwrap();
    assert!(s.mark_recalled(&mut tx, &m.id).await.unwrap());
    assert!(!s.mark_recalled(&mut tx, &m.id).await.unwrap(), "only once");
    let holders = s.holders(&mut tx, &m.id).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        holders,
        vec![
            Recipient {
                user_id: ids[0],
                conv_id: ids[1]
            },
            Recipient {
                user_id: ids[1],
                conv_id: ids[0]
            }
        ]
    );
    let e = &s.list_after(ids[1], 0, 1).await.unwrap()[0];
    assert_eq!(
        (e.message.status, e.message.content.len()),
        (recall::RECALLED, 0)
    );
}

async fn search_and_profiles(s: Store) {
    let ids = users(&s, &["ann", "anna", "annabel", "bob"]).await;
    let names = |v: Vec<User>| v.into_iter().map(|u| u.username).collect::<Vec<_>>();
    assert_eq!(
        names(s.search_users("ann", "", 10).await.unwrap()),
        ["ann", "anna", "annabel"]
    );
    assert_eq!(
        names(s.search_users("ann", "anna", 10).await.unwrap()),
        ["annabel"]
    );
    assert_eq!(
        names(s.search_users("anna", "", 1).await.unwrap()),
        ["anna"]
    );
    s.update_profile(ids[0], Some("Ann"), None, 9)
        .await
        .unwrap();
    let got = s.users_by_ids(&[ids[0], 12345]).await.unwrap();
    assert_eq!((got.len(), got[0].nickname.as_str()), (1, "Ann"));
}

/// MySQL runs friend changes at READ COMMITTED: only the pair lock keeps a
/// REQUEST from overwriting a concurrent BLOCK. A second transaction must not
/// get the pair while the first holds it. (SQLite serialises every write
/// transaction already.)
#[tokio::test]
async fn lock_pair_excludes_a_second_transaction_on_mysql() {
    let (s, _guard) = super::tests::mysql().await;
    let ids = users(&s, &["ann", "ben", "cid"]).await;
    let mut first = s.begin_write().await.unwrap();
    s.lock_pair(&mut first, ids[1], ids[0]).await.unwrap();

    let mut second = s.begin_write().await.unwrap();
    sqlx::query("SET SESSION innodb_lock_wait_timeout = 1")
        .execute(&mut *second)
        .await
        .unwrap();
    let blocked = s.lock_pair(&mut second, ids[0], ids[1]).await;
    assert!(
        blocked.is_err(),
        "the pair was taken while another transaction held it"
    );
    second.rollback().await.unwrap();

    // Another pair is independent, and the pair is free once the first commits.
    let mut other = s.begin_write().await.unwrap();
    s.lock_pair(&mut other, ids[2], ids[2]).await.unwrap();
    other.commit().await.unwrap();
    first.commit().await.unwrap();
    let mut third = s.begin_write().await.unwrap();
    s.lock_pair(&mut third, ids[0], ids[1]).await.unwrap();
    third.commit().await.unwrap();
}

/// What group checks read: each named user's rows in both directions, and
/// nothing about anyone not named.
async fn relations_with_many_users_read_both_directions(s: Store) {
    let ids = users(&s, &["me", "pal", "fan", "foe", "nemo", "else"]).await;
    let (me, pal, fan, foe, nemo, other) = (ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]);
    let mut tx = s.begin_write().await.unwrap();
    s.put_friend(&mut tx, me, pal, Accepted, 1).await.unwrap();
    s.put_friend(&mut tx, pal, me, Accepted, 1).await.unwrap();
    s.put_friend(&mut tx, fan, me, Requested, 1).await.unwrap();
    s.put_friend(&mut tx, me, fan, Pending, 1).await.unwrap();
    s.put_friend(&mut tx, foe, me, Blocked, 1).await.unwrap();
    s.put_friend(&mut tx, other, pal, Blocked, 1).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = s.begin_write().await.unwrap();
    s.lock_heads(&mut tx, &[nemo, me, pal, fan, foe, me])
        .await
        .unwrap();
    let got = s
        .relations_in(&mut tx, me, &[pal, fan, foe, nemo])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[&pal], (Some(Accepted), Some(Accepted)));
    assert_eq!(got[&fan], (Some(Pending), Some(Requested)));
    assert_eq!(got[&foe], (None, Some(Blocked)));
    assert!(!got.contains_key(&nemo) && !got.contains_key(&other));
}

async fn a_send_to_or_from_a_user_with_too_many_relations_to_cache_reads_the_pair(s: Store) {
    let ids = users(&s, &["star", "fan"]).await;
    let (star, fan) = (ids[0], ids[1]);
    // More relations than a cache entry holds (the ids need no user row).
    let strangers: Vec<u64> = (0..super::standing::MAX_RELATIONS as u64 + 1)
        .map(|i| 1_000_000 + i)
        .collect();
    let mut tx = s.begin_write().await.unwrap();
    for chunk in strangers.chunks(500) {
        let mut q = sqlx::QueryBuilder::<sqlx::Any>::new(
            "INSERT INTO friends (user_id, friend_id, state, remark, created_at, updated_at) ",
        );
        q.push_values(chunk, |mut b, id| {
            b.push_bind(star as i64)
                .push_bind(*id as i64)
                .push_bind("requested")
                .push_bind("")
                .push_bind(1i64)
                .push_bind(1i64);
        });
        q.build().execute(&mut *tx).await.unwrap();
    }
    s.put_friend(&mut tx, fan, star, Blocked, 1).await.unwrap();
    s.commit(tx).await.unwrap();
    for _ in 0..2 {
        let to_star = s.send_standing(fan, star).await.unwrap().unwrap();
        assert_eq!((to_star.mine, to_star.theirs), (Some(Blocked), None));
        let to_fan = s.send_standing(star, fan).await.unwrap().unwrap();
        assert_eq!((to_fan.mine, to_fan.theirs), (None, Some(Blocked)));
    }
}

/// A group change that takes its members' heads waits for a friend change
/// of any of them (which takes the pair's), so a BLOCK never lands between
/// a group's check of who may be added and its commit.
#[tokio::test]
async fn lock_heads_waits_for_a_pair_lock_on_mysql() {
    let (s, _guard) = super::tests::mysql().await;
    let ids = users(&s, &["ann", "ben", "cid", "dan"]).await;
    let mut block = s.begin_write().await.unwrap();
    s.lock_pair(&mut block, ids[2], ids[0]).await.unwrap();

    let mut group = s.begin_write().await.unwrap();
    sqlx::query("SET SESSION innodb_lock_wait_timeout = 1")
        .execute(&mut *group)
        .await
        .unwrap();
    let waited = s.lock_heads(&mut group, &[ids[1], ids[2], ids[3]]).await;
    assert!(waited.is_err(), "took a head another transaction held");
    group.rollback().await.unwrap();
    block.commit().await.unwrap();
    let mut group = s.begin_write().await.unwrap();
    s.lock_heads(&mut group, &[ids[1], ids[2], ids[3]])
        .await
        .unwrap();
    group.commit().await.unwrap();
}

/// A value written by hand or by a newer version must not break every read
/// of its row, nor grant anything: it reads as the state that grants least.
async fn unknown_stored_states_read_as_the_least_they_could_grant(s: Store) {
    let ids = users(&s, &["own", "odd"]).await;
    let (own, odd) = (ids[0], ids[1]);
    let mut tx = s.begin_write().await.unwrap();
    let g = s
        .create_group(
            &mut tx,
            NewGroup {
                name: "g",
                avatar_url: "",
                introduction: "",
                owner_id: own,
                max_members: 10,
                member_invite: false,
                now: 1,
            },
        )
        .await
        .unwrap();
    s.add_members(&mut tx, g, &[(own, Role::Owner), (odd, Role::Admin)], 1)
        .await
        .unwrap();
    s.put_friend(&mut tx, own, odd, Accepted, 1).await.unwrap();
    tx.commit().await.unwrap();
    for sql in [
        "UPDATE group_members SET role = 'moderator' WHERE user_id = ?",
        "UPDATE friends SET state = 'muted' WHERE friend_id = ?",
        "UPDATE users SET status = 'suspended' WHERE id = ?",
    ] {
        sqlx::query(sql)
            .bind(odd as i64)
            .execute(s.pool())
            .await
            .unwrap();
    }
    let member = s.member(g, odd).await.unwrap().unwrap();
    assert_eq!(member.role, Role::Member);
    assert_eq!(s.friend_state(own, odd).await.unwrap(), Some(Requested));
    let user = s.user_by_id(odd).await.unwrap().unwrap();
    assert!(!user.is_active());
    assert_eq!(user.status, crate::domain::UserStatus::Disabled);
}
