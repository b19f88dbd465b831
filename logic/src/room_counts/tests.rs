//! One behaviour, two registries: every case runs in memory and on Redis
//! (a real server from tern-testkit). Cases take two handles, as two logic
//! nodes would hold; in memory both are the same.

use std::sync::Arc;

use super::*;
use crate::redis_conn::RedisConn;

async fn room_counts_add_up_across_nodes_and_expire(p1: &dyn RoomCounts, p2: &dyn RoomCounts) {
    let long = std::time::Duration::from_secs(60);
    let counts = |v: &[(&str, u32)]| -> Vec<(String, u32)> {
        v.iter().map(|(r, n)| (r.to_string(), *n)).collect()
    };
    p1.record("a", &counts(&[("lobby", 2), ("kitchen", 1)]), long)
        .await
        .unwrap();
    p2.record("b", &counts(&[("lobby", 3)]), long)
        .await
        .unwrap();
    assert_eq!(p1.room_online("lobby").await.unwrap(), 5);
    assert_eq!(p2.room_online("nowhere").await.unwrap(), 0);
    assert_eq!(
        p1.top_rooms(10).await.unwrap(),
        [("lobby".to_owned(), 5), ("kitchen".to_owned(), 1)]
    );
    // A room that emptied on a node is reported with 0.
    p1.record("a", &counts(&[("lobby", 0)]), long)
        .await
        .unwrap();
    assert_eq!(p2.room_online("lobby").await.unwrap(), 3);
    // A node that stops reporting (it died) drops out after its TTL.
    p2.record(
        "c",
        &counts(&[("kitchen", 4)]),
        std::time::Duration::from_millis(150),
    )
    .await
    .unwrap();
    assert_eq!(p1.room_online("kitchen").await.unwrap(), 5);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while p1.room_online("kitchen").await.unwrap() != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "expired counts still counted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(p2.top_rooms(1).await.unwrap(), [("lobby".to_owned(), 3)]);
}

mod room_counts_add_up_across_nodes_and_expire {
    use super::*;

    #[tokio::test]
    async fn memory() {
        let p = MemoryRoomCounts::new();
        super::room_counts_add_up_across_nodes_and_expire(&p, &p).await;
    }

    #[tokio::test]
    async fn redis() {
        let server = tern_testkit::redis_server();
        let conn = || async { RedisConn::connect(&server.url(), "t").await.unwrap() };
        let p1 = Arc::new(RedisRoomCounts::new(conn().await));
        let p2 = Arc::new(RedisRoomCounts::new(conn().await));
        super::room_counts_add_up_across_nodes_and_expire(&*p1, &*p2).await;
    }
}
