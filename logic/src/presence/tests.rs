//! One behaviour, two registries: every case runs on the in-memory
//! presence and on Redis (a real server from tern-testkit). Cases take two
//! handles, as two logic nodes would hold; in memory both are the same.

use std::sync::Arc;

use super::*;
use crate::liveness::NodeLiveness;
use crate::redis_conn::RedisConn;

fn at(node: &str, conn: u64) -> Location {
    Location {
        node_id: node.into(),
        conn_id: conn,
    }
}

async fn compare_and_delete_and_moves_between_nodes(p1: &dyn Presence, p2: &dyn Presence) {
    assert_eq!(p1.online(1, 10, at("a", 1)).await.unwrap(), None);
    assert_eq!(
        p1.online(1, 10, at("a", 1)).await.unwrap(),
        None,
        "same connection again"
    );
    assert_eq!(
        p2.online(1, 10, at("b", 2)).await.unwrap(),
        Some(at("a", 1))
    );
    assert!(
        !p1.offline(1, 10, &at("a", 1)).await.unwrap(),
        "stale close ignored"
    );
    assert_eq!(p1.locate(&[1]).await.unwrap()[0].at, at("b", 2));
    // The device left node a: a going down must not touch it.
    assert_eq!(p1.node_down("a").await.unwrap(), 0);
    assert_eq!(p2.locate(&[1]).await.unwrap().len(), 1);
    assert!(p2.offline(1, 10, &at("b", 2)).await.unwrap());
    assert!(p1.locate(&[1, 2]).await.unwrap().is_empty());
}

async fn node_down_clears_every_device_of_that_node_only(p: &dyn Presence, _: &dyn Presence) {
    // More than one slice of the Redis script.
    let n = 1_207;
    for u in 1..=n {
        p.online(u, u * 10, at("dead", u)).await.unwrap();
        p.online(u, u * 10 + 1, at("live", u)).await.unwrap();
    }
    assert_eq!(p.node_down("dead").await.unwrap(), n as usize);
    let users: Vec<u64> = (1..=n).collect();
    let left = p.locate(&users).await.unwrap();
    assert_eq!(left.len(), n as usize);
    assert!(left.iter().all(|d| d.at.node_id == "live"));
    assert_eq!(p.node_down("dead").await.unwrap(), 0, "idempotent");
}

async fn restore_fills_only_missing_entries(p1: &dyn Presence, p2: &dyn Presence) {
    p1.online(1, 11, at("b", 2)).await.unwrap();
    assert!(
        !p2.restore(1, 11, at("a", 3)).await.unwrap(),
        "a newer sign-in wins"
    );
    assert!(p2.restore(1, 10, at("a", 1)).await.unwrap());
    assert_eq!(p1.locate(&[1]).await.unwrap().len(), 2);
    // Restored entries belong to their node: its death clears them.
    assert_eq!(p1.node_down("a").await.unwrap(), 1);
    assert_eq!(p2.locate(&[1]).await.unwrap()[0].at, at("b", 2));
}

/// Runs each case as `<case>::memory` and `<case>::redis`.
macro_rules! on_both_registries {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use super::*;

            #[tokio::test]
            async fn memory() {
                let p = MemoryPresence::new();
                super::$case(&p, &p).await;
            }

            #[tokio::test]
            async fn redis() {
                let server = tern_testkit::redis_server();
                let conn = || async { RedisConn::connect(&server.url(), "t").await.unwrap() };
                let p1 = Arc::new(RedisPresence::new(conn().await));
                let p2 = Arc::new(RedisPresence::new(conn().await));
                super::$case(&*p1, &*p2).await;
            }
        }
    )*};
}

/// Redis counts connections of the nodes whose liveness is watched, as
/// every announcing node's is.
async fn online_stats_count_connections_per_node_and_distinct_users(
    p1: &dyn Presence,
    p2: &dyn Presence,
    nodes: &dyn NodeLiveness,
) {
    let ttl = std::time::Duration::from_secs(30);
    nodes.node_alive("a", ttl).await.unwrap();
    nodes.node_alive("b", ttl).await.unwrap();
    p1.online(1, 10, at("a", 1)).await.unwrap();
    p1.online(1, 11, at("b", 2)).await.unwrap();
    p2.online(2, 20, at("b", 3)).await.unwrap();
    let stats = p1.online_stats().await.unwrap();
    assert_eq!(stats.nodes, vec![("a".into(), 1), ("b".into(), 2)]);
    assert_eq!(stats.users, 2);
    p2.offline(1, 10, &at("a", 1)).await.unwrap();
    let stats = p2.online_stats().await.unwrap();
    assert_eq!((stats.nodes, stats.users), (vec![("b".into(), 2)], 2));
}

mod online_stats_count_connections_per_node_and_distinct_users {
    use super::*;
    use crate::liveness::{MemoryLiveness, RedisLiveness};

    #[tokio::test]
    async fn memory() {
        let p = MemoryPresence::new();
        let nodes = MemoryLiveness::new();
        super::online_stats_count_connections_per_node_and_distinct_users(&p, &p, &nodes).await;
    }

    #[tokio::test]
    async fn redis() {
        let server = tern_testkit::redis_server();
        let conn = || async { RedisConn::connect(&server.url(), "t").await.unwrap() };
        let p1 = Arc::new(RedisPresence::new(conn().await));
        let p2 = Arc::new(RedisPresence::new(conn().await));
        let nodes = RedisLiveness::new(conn().await);
        super::online_stats_count_connections_per_node_and_distinct_users(&*p1, &*p2, &nodes).await;
    }
}

on_both_registries!(
    compare_and_delete_and_moves_between_nodes,
    node_down_clears_every_device_of_that_node_only,
    restore_fills_only_missing_entries,
);
