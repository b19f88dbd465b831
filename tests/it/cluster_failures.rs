//! Cluster nodes failing under traffic: a connect node or a logic node
//! killed with SIGKILL mid-traffic, a logic node stopped with SIGTERM, and
//! NATS restarted under connected clients. Every message sent must end up in every recipient's list
//! exactly once, with contiguous seqs. Real MariaDB, Redis and NATS.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::common::procs::{Proc, ALIVE_INTERVAL_MS};
use crate::common::*;

/// Messages each user sends to its partner.
const PER_USER: usize = 40;
/// The failure strikes once this many sends (of all users) are confirmed.
const STRIKE_AFTER: usize = 30;

/// Pairs of users chatting both ways; `a` users start on `a_addr`, `b`
/// users on `b_addr`; each falls back to the other node.
async fn pairs(
    n: usize,
    a_addr: std::net::SocketAddr,
    b_addr: std::net::SocketAddr,
    tag: &str,
) -> Vec<(Resilient, Resilient)> {
    let mut out = Vec::new();
    for i in 0..n {
        let a = Resilient::register(&format!("{tag}a{i}"), vec![a_addr, b_addr]).await;
        let b = Resilient::register(&format!("{tag}b{i}"), vec![b_addr, a_addr]).await;
        out.push((a, b));
    }
    out
}

/// Runs the traffic; `strike` is notified once `STRIKE_AFTER` sends are in.
/// Returns every user with what its list must hold.
async fn traffic(
    pairs: Vec<(Resilient, Resilient)>,
    strike: Arc<Notify>,
) -> Vec<(Resilient, Vec<(u64, String)>)> {
    let confirmed = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (a, b) in pairs {
        let expected: Vec<(u64, String)> = (0..PER_USER)
            .flat_map(|i| {
                [
                    (a.user_id(), format!("{}-{i}", a.user_id())),
                    (b.user_id(), format!("{}-{i}", b.user_id())),
                ]
            })
            .collect();
        let (a_id, b_id) = (a.user_id(), b.user_id());
        for (mut me, peer) in [(a, b_id), (b, a_id)] {
            let (confirmed, strike, expected) =
                (confirmed.clone(), strike.clone(), expected.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..PER_USER {
                    let id = format!("{}-{i}", me.user_id());
                    me.send(peer, &format!("msg {i}"), &id).await;
                    if confirmed.fetch_add(1, Ordering::SeqCst) + 1 == STRIKE_AFTER {
                        strike.notify_one();
                    }
                }
                (me, expected)
            }));
        }
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("sender task"));
    }
    out
}

/// Checks every list; returns (reconnects, retried sends) of all users.
async fn check_every_list(users: &mut [(Resilient, Vec<(u64, String)>)]) -> (usize, usize) {
    let (mut reconnects, mut retries) = (0, 0);
    for (u, expected) in users.iter_mut() {
        let list = u.list().await;
        check_list(u.user_id(), &list, expected);
        reconnects += u.reconnects;
        retries += u.retries;
    }
    println!("{reconnects} reconnects, {retries} sends retried; every list complete, once each");
    (reconnects, retries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connect_node_killed_mid_traffic_loses_nothing() {
    let services = Services::start().await;
    // Both logic nodes start at once against the empty database: one
    // applies the migrations, the other waits for its lock; both serve.
    let (_l1, _l2) = tokio::join!(Proc::logic(&services), Proc::logic(&services));
    let mut victim = Proc::connect(&services).await;
    let survivor = Proc::connect(&services).await;

    // A user on the victim that will not come back: its presence must go.
    let idle = Resilient::register("idle", vec![victim.addr]).await;
    assert_eq!(services.presence_of(idle.user_id()).await, 1);

    let users = pairs(3, victim.addr, survivor.addr, "k").await;
    let strike = Arc::new(Notify::new());
    let run = tokio::spawn(traffic(users, strike.clone()));
    strike.notified().await;
    victim.kill();
    let killed_at = Instant::now();

    let mut users = run.await.unwrap();
    let (reconnects, _) = check_every_list(&mut users).await;
    assert!(reconnects >= 3, "the victim's clients moved ({reconnects})");

    // Liveness TTL is 3 intervals; the sweep runs every 100 ms.
    let ttl = Duration::from_millis(3 * ALIVE_INTERVAL_MS);
    while services.presence_of(idle.user_id()).await > 0 {
        assert!(
            killed_at.elapsed() < ttl + Duration::from_secs(5),
            "the dead node's presence outlived its liveness"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "dead node's presence gone {:?} after the kill (TTL {ttl:?})",
        killed_at.elapsed()
    );
    // Only the dead node's devices: everyone connected to the survivor is still there.
    for (u, _) in &users {
        assert_eq!(
            services.presence_of(u.user_id()).await,
            1,
            "user {} lost presence on the surviving node",
            u.user_id()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_logic_node_killed_mid_traffic_loses_and_duplicates_nothing() {
    let services = Services::start().await;
    let (mut victim, _l2) = tokio::join!(Proc::logic(&services), Proc::logic(&services));
    let c1 = Proc::connect(&services).await;
    let c2 = Proc::connect(&services).await;

    let users = pairs(3, c1.addr, c2.addr, "l").await;
    let strike = Arc::new(Notify::new());
    let run = tokio::spawn(traffic(users, strike.clone()));
    strike.notified().await;
    victim.kill();
    let mut users = run.await.unwrap();
    check_every_list(&mut users).await;
}

/// SIGTERM instead of SIGKILL: the logic node stops taking commands,
/// finishes those in flight (their batches commit and are answered), and
/// exits cleanly, while the other node takes the traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_logic_node_stopped_mid_traffic_finishes_its_work_and_exits_cleanly() {
    let services = Services::start().await;
    let (mut victim, _l2) = tokio::join!(Proc::logic(&services), Proc::logic(&services));
    let c1 = Proc::connect(&services).await;
    let c2 = Proc::connect(&services).await;

    let users = pairs(3, c1.addr, c2.addr, "t").await;
    let strike = Arc::new(Notify::new());
    let run = tokio::spawn(traffic(users, strike.clone()));
    strike.notified().await;
    let stopping = Instant::now();
    let status = tokio::time::timeout(WAIT, victim.terminate())
        .await
        .expect("the logic node exits within the wait");
    assert!(status.success(), "the logic node exited with {status}");
    println!("logic node stopped in {:?}", stopping.elapsed());
    let mut users = run.await.unwrap();
    check_every_list(&mut users).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_flow_again_after_nats_restarts() {
    let mut services = Services::start().await;
    let server = services.cluster().await;
    let alice_addr = server.addrs()[0];
    let bob_addr = server.addrs()[1];
    let mut alice = register(alice_addr, "alice").await;
    let mut bob = register(bob_addr, "bob").await;
    alice
        .client
        .send_text(bob.user_id, "before", "m1")
        .await
        .unwrap();
    assert_eq!(text(&bob.next_push().await), "before");

    services.nats.restart();

    // The clients never disconnected; the nodes reconnect to NATS by
    // themselves. A send retried with the same id gets through once NATS
    // is back, and its PUSH crosses to the other connect node.
    let deadline = Instant::now() + WAIT;
    loop {
        match alice.client.send_text(bob.user_id, "after", "m2").await {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                assert_eq!(e.code(), Some(tern_client::Code::Unavailable), "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no send went through after NATS came back: {e}"),
        }
    }
    let got = bob.next_push().await;
    assert_eq!((text(&got), got.seq), ("after".to_owned(), 2));
    let back = bob.client.send_text(alice.user_id, "reply", "m3").await;
    assert!(back.is_ok(), "{back:?}");
    assert_eq!(text(&alice.next_push().await), "reply");
    server.stop().await;
}
