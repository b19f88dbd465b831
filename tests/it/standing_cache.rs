//! Each logic node of a cluster caches what a one-to-one SEND reads (the
//! receiver's status, the relation both ways). Those caches are exact: a
//! block, an unblock or a status change answered by one node is in force on
//! every node for the next SEND. Real MariaDB, Redis and NATS.

use tern_client::Code;
use tern_logic::{LogicConfig, SendPolicy};

use crate::common::*;

/// SENDs per step: the bus hands each to either logic node, so both nodes
/// see some of them (all on one node: 2 chances in 2^16).
const SENDS: usize = 16;

/// `SENDS` sends from `from` to `to`, each answered with `expected`.
async fn sends(from: &Device, to: u64, tag: &str, expected: Option<Code>) {
    for i in 0..SENDS {
        let cmid = format!("{tag}-{i}");
        let sent = from.client.send_text(to, &cmid, &cmid).await;
        assert_eq!(sent.err().and_then(|e| e.code()), expected, "send {cmid}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_answered_by_one_logic_node_holds_for_the_next_send_on_every_node() {
    let logic = LogicConfig {
        send_policy: SendPolicy::Open,
        ..open_logic()
    };
    let server = Shape::Cluster.start_with(open_connect(), logic).await;
    let alice = register(server.addrs()[0], "alice").await;
    let bob = register(server.addrs()[1], "bob").await;

    // Both nodes cache alice → bob.
    sends(&alice, bob.user_id, "before", None).await;
    bob.client.friend_block(alice.user_id).await.unwrap();
    sends(&alice, bob.user_id, "blocked", Some(Code::Blocked)).await;
    bob.client.friend_unblock(alice.user_id).await.unwrap();
    sends(&alice, bob.user_id, "unblocked", None).await;

    // A status change by the admin API of the first node.
    let path = format!("/api/v1/users/{}/disable", bob.user_id);
    let (status, _, _) = http::call(server.http[0], "POST", &path, None).await;
    assert_eq!(status, 200);
    sends(&alice, bob.user_id, "disabled", Some(Code::NotFound)).await;
    server.stop().await;
}
