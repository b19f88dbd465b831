//! The `tern` binary as a user runs it: starts with defaults, prints where it
//! listens, drains on SIGTERM, and keeps every message across a restart.

use crate::common;

use std::net::SocketAddr;
use std::process::{Child, Command};

use crate::common::*;
use tern_client::proto::KickReason;
use tern_client::Event;

struct Running {
    child: Child,
    addr: SocketAddr,
}

fn spawn(data_dir: &std::path::Path) -> Running {
    let args = [
        std::ffi::OsStr::new("--listen"),
        "127.0.0.1:0".as_ref(),
        "--http".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data-dir".as_ref(),
        data_dir.as_os_str(),
    ];
    let (child, addr) = common::procs::spawn_tern(&args, "clients (TCP):");
    // The admin token is made on first run and kept for the next.
    let token = std::fs::read_to_string(data_dir.join("admin-token")).expect("admin token file");
    assert_eq!(token.trim().len(), 64);
    Running { child, addr }
}

fn terminate(mut r: Running) {
    let status = Command::new("kill")
        .args(["-TERM", &r.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = r.child.wait().unwrap();
    assert!(exit.success(), "tern exits cleanly after a drain: {exit:?}");
}

#[tokio::test]
async fn the_binary_serves_drains_on_sigterm_and_keeps_messages_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn(dir.path());
    let mut alice = register(server.addr, "alice").await;
    let mut bob = register(server.addr, "bob").await;
    // The binary runs the default friends-only policy.
    befriend(&mut alice, &mut bob).await;
    let sent = alice
        .client
        .send_text(bob.user_id, "survives restarts", "m1")
        .await
        .unwrap();
    let pushed = bob.next_push().await;
    assert_eq!(&pushed.id[..], &sent.message_id[..]);

    terminate(server);
    match bob.next_event().await {
        Event::Kicked(k) => assert_eq!(k.reason, KickReason::Draining as i32),
        other => panic!("expected KICKED(draining), got {other:?}"),
    }

    let server = spawn(dir.path());
    let (bob2, session) = sign_in(server.addr, &bob.creds()).await;
    let list = bob2.client.sync_all(0).await.unwrap();
    // Two friend events, then the message.
    assert_eq!(session.max_seq, 3, "the token and the list survived");
    assert_eq!(list.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3]);
    let last = &list[2];
    assert_eq!(
        (&last.id[..], text(last).as_str()),
        (&sent.message_id[..], "survives restarts")
    );
    terminate(server);
}

#[tokio::test]
async fn a_cluster_connect_node_serves_its_metrics() {
    let nats = tern_testkit::nats_server();
    let args = [
        "connect",
        "--nats",
        &nats.url(),
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    let (mut child, metrics) = common::procs::spawn_tern(&args, "metrics (HTTP):");
    // The connect node's own metrics: an idle node has no connections.
    let (status, _, text) = common::http::call(metrics, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(text.contains("tern_connections 0"), "{text}");
    let (status, _, _) = common::http::call(metrics, "GET", "/healthz", None).await;
    assert_eq!(status, 200);
    let (status, _, _) = common::http::call(metrics, "GET", "/api/v1/stats", None).await;
    assert_eq!(status, 404, "a connect node serves no admin API");
    let _ = child.kill();
    let _ = child.wait();
}
