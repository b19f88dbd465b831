//! Offline push survives a sender killed with SIGKILL mid-stream: the
//! standalone server, and one logic node of a cluster. Every notification
//! of a confirmed message reaches the webhook stand-in at least once, and
//! every delivery is signed; duplicates carry the same message id.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use tern_client::{Client, PushTarget};
use tern_testkit::push::WebhookReceiver;

use crate::common::procs::{spawn_tern, Proc};
use crate::common::*;

/// Messages sent in all; the kill strikes after `STRIKE` are confirmed.
const MESSAGES: usize = 60;
const STRIKE: usize = 20;

fn push_flags(hook: &WebhookReceiver) -> Vec<String> {
    [
        "--push-webhook-url",
        &hook.url(),
        "--push-webhook-secret",
        hook.secret(),
        "--push-preview",
        "--push-lease-secs",
        "1",
        "--push-sweep-ms",
        "100",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A device of `bob` that registers for push, then leaves: nobody is
/// connected as it when the messages come.
async fn phone(addr: SocketAddr, bob: &Creds) {
    let (client, events) = Client::connect(addr).await.unwrap();
    let auth = client.login("bob", PASSWORD, None).await.unwrap();
    assert_eq!(auth.user_id, bob.user_id);
    let target = PushTarget::Webhook {
        token: "bob-phone".into(),
    };
    client.set_push_token(target).await.unwrap();
    drop((client, events));
    // Offline before the first message: another device of bob's watches.
    let (watcher, _events) = Client::connect(addr).await.unwrap();
    watcher.login("bob", PASSWORD, None).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let list = watcher.devices().await.unwrap().devices;
        let online = list
            .iter()
            .any(|d| d.device_id == auth.device_id && d.online);
        if !online {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the phone stays online"
        );
        // Presence changes when connect reports the close: poll it.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every text in `sent` has a signed delivery.
async fn all_notified(hook: &WebhookReceiver, sent: &BTreeSet<String>) {
    let deadline = tokio::time::Instant::now() + WAIT * 3;
    loop {
        let got = hook.deliveries();
        assert!(got.iter().all(|d| d.verified), "an unsigned delivery");
        let bodies: BTreeSet<String> = got
            .iter()
            .filter_map(|d| d.json["body"].as_str().map(str::to_owned))
            .collect();
        let missing: Vec<&String> = sent.difference(&bodies).collect();
        if missing.is_empty() {
            // At least once: a duplicate is the same message again.
            let ids: Vec<&str> = got
                .iter()
                .filter_map(|d| d.json["message_id"].as_str())
                .collect();
            let distinct: BTreeSet<&str> = ids.iter().copied().collect();
            assert!(distinct.len() >= sent.len());
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {} notifications never came: {missing:?}",
            missing.len(),
            sent.len()
        );
        // The stand-in records as deliveries come: poll it.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standalone_server_killed_mid_stream_loses_no_notification() {
    let hook = WebhookReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = tern_testkit::restartable_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args: Vec<String> = [
        "--listen",
        &listen,
        "--http",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--send-policy",
        "open",
        "--user-sends-per-second",
        "0",
        "--frames-per-second",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(push_flags(&hook));
    let start = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || spawn_tern(&args, "clients (TCP):").0)
    };
    let mut server = start(args.clone()).await.unwrap();
    let addr: SocketAddr = listen.parse().unwrap();
    let mut ann = Resilient::register("ann", vec![addr]).await;
    let bob = Resilient::register("bob", vec![addr]).await;
    // bob's first connection closes with the register helper's client
    // when the server dies; before that, only the phone registers.
    phone(addr, &bob.creds).await;

    let mut sent = BTreeSet::new();
    for i in 0..MESSAGES {
        if i == STRIKE {
            let _ = server.kill();
            let _ = server.wait();
            server = start(args.clone()).await.unwrap();
        }
        let text = format!("m{i}");
        ann.send(bob.user_id(), &text, &text).await;
        sent.insert(text);
    }
    all_notified(&hook, &sent).await;
    let _ = server.kill();
    let _ = server.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_logic_node_killed_mid_stream_loses_no_notification() {
    let hook = WebhookReceiver::start().await;
    let services = Services::start().await;
    let flags = push_flags(&hook);
    let (mut victim, _other) = tokio::join!(
        Proc::logic_with(&services, &flags),
        Proc::logic_with(&services, &flags)
    );
    let c1 = Proc::connect(&services).await;
    let c2 = Proc::connect(&services).await;
    let mut ann = Resilient::register("ann", vec![c1.addr, c2.addr]).await;
    let bob = Resilient::register("bob", vec![c2.addr, c1.addr]).await;
    phone(c1.addr, &bob.creds).await;
    // bob stays connected on c2 as his first device; the phone is gone.

    let mut sent = BTreeSet::new();
    for i in 0..MESSAGES {
        if i == STRIKE {
            victim.kill();
        }
        let text = format!("m{i}");
        ann.send(bob.user_id(), &text, &text).await;
        sent.insert(text);
    }
    all_notified(&hook, &sent).await;
}
