//! Soak: phones' mixed traffic for a bounded time while clients drop and
//! server processes are stopped (SIGTERM, SIGKILL) and started again, in
//! both shapes; then every user's list and every device's stream are
//! checked against what the server confirmed: nothing lost, nothing twice,
//! each sender's messages in order. Conversation rows are checked against
//! a model of them built from the list after each failure and at the end,
//! and each device's conversation view against the rows. The servers run
//! with their default limits, which phone-paced clients must never hit.
//!
//! `TERN_SOAK_SECS` sets how long the traffic runs (30 s by default);
//! `scripts/test.sh` runs 600, and `scripts/soak.sh --secs N` any length.

// The integration tests' helpers, compiled here a second time rather than
// moved into tern-testkit: they drive tern-client, tern-connect and
// tern-logic, which tern-logic's own tests would then build twice through
// testkit. The soak uses a few of them; the `it` binary, which uses all of
// them, is where an unused helper is reported.
#[allow(dead_code, unused_imports)]
#[path = "../it/common/mod.rs"]
mod common;

mod check;
mod conversations;
mod nodes;
mod traffic;
mod users;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tern_client::proto::Message;

use common::proxy::Proxy;
use common::Services;
use nodes::{Failure, NodeProc, Nodes, Role, Stop};
use tern_testkit::restartable_port;
use traffic::Ledger;
use users::User;

/// How long the traffic runs.
fn length() -> Duration {
    let secs = std::env::var("TERN_SOAK_SECS")
        .ok()
        .map(|v| v.parse::<u64>().expect("TERN_SOAK_SECS: whole seconds"))
        .unwrap_or(30);
    Duration::from_secs(secs)
}

/// Two logic and two connect processes on MariaDB, Redis and NATS; half
/// the devices reach the connect nodes through proxies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_cluster() {
    let services = Services::start().await;
    let (l1, l2) = tokio::join!(NodeProc::logic(&services), NodeProc::logic(&services));
    let c1 = NodeProc::connect(&services, restartable_port()).await;
    let c2 = NodeProc::connect(&services, restartable_port()).await;
    let proxies = vec![Proxy::start(c1.addr).await, Proxy::start(c2.addr).await];
    let nodes = Nodes::new(vec![l1, l2, c1, c2], Some(services), proxies);
    let failures = [
        Failure::Restart(Role::Connect, Stop::Term),
        Failure::Restart(Role::Logic, Stop::Term),
        Failure::CutProxies,
        Failure::Restart(Role::Connect, Stop::Kill),
        Failure::Restart(Role::Logic, Stop::Kill),
        Failure::RestartNats,
    ];
    soak("cluster", nodes, 20, &failures).await;
}

/// One `tern serve` process on SQLite, stopped and killed in turn: what it
/// confirmed before either must be there after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_standalone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = NodeProc::standalone(dir.path(), restartable_port()).await;
    let proxies = vec![Proxy::start(server.addr).await];
    let nodes = Nodes::new(vec![server], None, proxies);
    let failures = [
        Failure::Restart(Role::Standalone, Stop::Term),
        Failure::CutProxies,
        Failure::Restart(Role::Standalone, Stop::Kill),
    ];
    soak("standalone", nodes, 12, &failures).await;
}

/// Longest the end of a soak may wait for one list or one device.
pub(crate) const SETTLE_WITHIN: Duration = Duration::from_secs(90);

async fn soak(name: &str, mut nodes: Nodes, n_users: usize, failures: &[Failure]) {
    let length = length();
    let direct = nodes.client_addrs();
    let proxied: Vec<_> = nodes.proxies.iter().map(|p| p.addr).collect();
    let (users, ledger) = users::setup(&direct, &proxied, n_users, &format!("{name}u")).await;

    let seed: u64 = rand::random();
    let deadline = Instant::now() + length;
    // One device per user, to check conversations after each failure.
    let probes: Vec<(u64, Arc<tern_client::Session>)> = users
        .iter()
        .map(|u| (u.id, Arc::clone(&u.devices[0].session)))
        .collect();
    let tasks: Vec<_> = users
        .into_iter()
        .enumerate()
        .map(|(i, u)| tokio::spawn(traffic::act(u, ledger.clone(), deadline, seed + i as u64)))
        .collect();
    // A failure every twentieth of the run (3–20 s apart), each kind in turn.
    let every = (length / 20).clamp(Duration::from_secs(3), Duration::from_secs(20));
    for (n, failure) in failures.iter().cycle().enumerate() {
        if Instant::now() + every >= deadline {
            break;
        }
        tokio::time::sleep(every).await;
        nodes.strike(*failure).await;
        // The conversation rows of one user against the model of its
        // list, as soon as the failure lets them be read.
        let (id, session) = &probes[n % probes.len()];
        conversations::read_and_check(*id, session, false).await;
    }
    drop(probes);
    let mut users = Vec::new();
    for t in tasks {
        users.push(t.await.expect("a user's traffic"));
    }

    // Pushes are best effort and the list is the truth: an app resyncs when
    // it comes back to the foreground. After that every device must have
    // seen its whole list.
    for d in users.iter().flat_map(|u| &u.devices) {
        d.session.reconnect();
    }
    let ledger: Ledger = Arc::try_unwrap(ledger)
        .ok()
        .expect("the traffic is over")
        .into_inner()
        .expect("ledger lock");
    let mut totals = check::ListStats::default();
    for u in &users {
        let list = read_list(u).await;
        let stats = check::check_list(u.id, &list, &ledger);
        totals.entries += stats.entries;
        totals.chat += stats.chat;
        totals.events += stats.events;
        for d in &u.devices {
            settle(d, list.len() as u64).await;
            check::check_stream(u.id, d.creds.device_id, &d.stream, &list);
        }
        // With no traffic: every row, every conversation listed, and each
        // device's view equal to the server's rows.
        conversations::read_and_check(u.id, &u.devices[0].session, true).await;
        let client = u.devices[0].session.client().await.expect("signed in");
        let mut server = Vec::new();
        loop {
            let page = client
                .conv_list(server.last(), 200)
                .await
                .expect("CONV_LIST");
            let more = page.has_more;
            server.extend(page.conversations);
            if !more {
                break;
            }
        }
        for d in &u.devices {
            conversations::check_view(u.id, d.creds.device_id, &d.session.conversations(), &server);
        }
    }
    summary(name, length, seed, &users, &ledger, totals, &mut nodes);
}

/// A user's whole list, read through its first device.
async fn read_list(u: &User) -> Vec<Message> {
    let started = Instant::now();
    loop {
        let read = match u.devices[0].session.client().await {
            Ok(c) => c.sync_all(0).await,
            Err(e) => Err(e),
        };
        match read {
            Ok(list) => return list,
            Err(e) if started.elapsed() < SETTLE_WITHIN => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("user {}: the list cannot be read: {e}", u.id),
        }
    }
}

/// Waits until the device's stream reaches `head`.
async fn settle(d: &users::Device, head: u64) {
    let until = Instant::now() + SETTLE_WITHIN;
    loop {
        let changed = d.stream.changed.notified();
        if d.stream.head() >= head {
            return;
        }
        if tokio::time::timeout_at(until, changed).await.is_err() {
            panic!(
                "device {}: stream at {} of {head} after {SETTLE_WITHIN:?}",
                d.creds.device_id,
                d.stream.head()
            );
        }
    }
}

fn summary(
    name: &str,
    length: Duration,
    seed: u64,
    users: &[User],
    ledger: &Ledger,
    totals: check::ListStats,
    nodes: &mut Nodes,
) {
    let devices: Vec<_> = users.iter().flat_map(|u| &u.devices).collect();
    let sign_ins: u64 = devices
        .iter()
        .map(|d| d.stream.connects.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    let count = |k: &str| ledger.counts.get(k).copied().unwrap_or(0);
    let restarts: Vec<String> = nodes.done.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let rss: BTreeMap<Role, u64> = nodes.max_rss();
    let rss: Vec<String> = rss
        .iter()
        .map(|(role, kib)| format!("{role:?} {:.1} MiB", *kib as f64 / 1024.0))
        .collect();
    println!(
        "soak {name}: {}s of traffic, {} users x 2 devices, seed {seed}\n\
         \x20 confirmed: {} one-to-one and {} group messages, {} recalls, {} room messages ({} lost to a drop), {} acks, {} conversations marked read\n\
         \x20 checked: {} lists, {} entries ({} messages, {} events); 0 lost, 0 duplicated, 0 out of order; {} device streams equal to their lists; conversation rows equal to the model after each failure and at the end, and {} device views equal to the rows\n\
         \x20 disconnects: {} by clients, {} sign-ins after the first; {} sends retried in transit, {} confirmed after a failure (slowest {:.1} s)\n\
         \x20 failures: {}\n\
         \x20 max RSS: {}",
        length.as_secs(),
        users.len(),
        count("one-to-one messages"),
        count("group messages"),
        count("recalls"),
        count("room messages"),
        count("room messages lost to a drop"),
        count("acks"),
        count("marks read"),
        users.len(),
        totals.entries,
        totals.chat,
        totals.events,
        devices.len(),
        devices.len(),
        count("client reconnects"),
        sign_ins.saturating_sub(devices.len() as u64),
        count("send attempts failed in transit"),
        count("sends confirmed after a failure"),
        ledger.slowest_send.as_secs_f64(),
        restarts.join(", "),
        rss.join(", "),
    );
}
