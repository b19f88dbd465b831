//! TLS on the client listener: chat over TLS (one-shot clients and a
//! Session), refusal of plain and untrusting clients, and a certificate
//! reload that new connections see while open ones carry on.

use crate::common;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tern_client::{Client, ClientError, Credentials, Session, SessionEvent, SessionOptions};
use tern_connect::{ConnectConfig, Tls};

use crate::common::tls::TestCa;
use crate::common::*;

async fn tls_server(files: &common::tls::ServerFiles) -> (Server, Arc<Tls>) {
    let tls = Arc::new(Tls::load(&files.cert, &files.key).expect("load certificate"));
    let connect = ConnectConfig {
        tls: Some(tls.clone()),
        ..Default::default()
    };
    (
        Shape::Standalone.start_with(connect, open_logic()).await,
        tls,
    )
}

/// Registers `name` over TLS.
async fn register_tls(server: &Server, ca: &TestCa, name: &str) -> Device {
    let (client, events) = Client::connect_tls(server.addr(), &ca.client())
        .await
        .expect("TLS connect");
    let auth = client
        .register(name, PASSWORD, name)
        .await
        .expect("register over TLS");
    device(client, events, auth)
}

#[tokio::test]
async fn clients_chat_over_tls_and_plain_or_untrusting_clients_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "one");
    let (server, _tls) = tls_server(&ca.issue(dir.path())).await;

    let alice = register_tls(&server, &ca, "alice").await;
    let mut bob = register_tls(&server, &ca, "bob").await;
    let sent = alice
        .client
        .send_text(bob.user_id, "over TLS", "t1")
        .await
        .expect("send");
    let got = bob.next_push().await;
    assert_eq!((&got.id, text(&got)), (&sent.message_id, "over TLS".into()));

    // A plain client's frames are not a TLS handshake: no answer, closed.
    let (mut plain, _events) = Client::connect(server.addr()).await.unwrap();
    plain.set_request_timeout(Duration::from_secs(5));
    let refused = plain.register("mallory", PASSWORD, "m").await;
    assert!(
        matches!(refused, Err(ClientError::Closed | ClientError::Io(_))),
        "a plain client got {refused:?}"
    );

    // A client that trusts another CA refuses the server's certificate.
    let other = TestCa::new(dir.path(), "other");
    let untrusting = Client::connect_tls(server.addr(), &other.client()).await;
    assert!(
        matches!(untrusting, Err(ClientError::Tls(_))),
        "{:?}",
        untrusting.err()
    );
    assert_still_serving_tls(&server, &ca, "after refusals").await;
    server.stop().await;
}

async fn assert_still_serving_tls(server: &Server, ca: &TestCa, tag: &str) {
    let a = register_tls(server, ca, &format!("ok-a-{}", tag.len())).await;
    let mut b = register_tls(server, ca, &format!("ok-b-{}", tag.len())).await;
    a.client.send_text(b.user_id, tag, "1").await.expect(tag);
    assert_eq!(text(&b.next_push().await), tag);
}

#[tokio::test]
async fn a_reloaded_certificate_serves_new_connections_and_spares_open_ones() {
    let dir = tempfile::tempdir().unwrap();
    let old_ca = TestCa::new(dir.path(), "old");
    let (server, tls) = tls_server(&old_ca.issue(dir.path())).await;
    let alice = register_tls(&server, &old_ca, "alice").await;
    let mut bob = register_tls(&server, &old_ca, "bob").await;

    // Renewal: the files now hold a certificate from another CA.
    let new_ca = TestCa::new(dir.path(), "new");
    new_ca.issue(dir.path());
    tls.reload().expect("reload");

    let refused = Client::connect_tls(server.addr(), &old_ca.client()).await;
    assert!(
        matches!(refused, Err(ClientError::Tls(_))),
        "old CA still accepted"
    );
    let carol = register_tls(&server, &new_ca, "carol").await;
    // Connections opened before the reload keep working.
    alice
        .client
        .send_text(bob.user_id, "still here", "r1")
        .await
        .expect("send on an old connection");
    assert_eq!(text(&bob.next_push().await), "still here");
    carol
        .client
        .send_text(bob.user_id, "new here", "r2")
        .await
        .expect("send on a new connection");
    assert_eq!(text(&bob.next_push().await), "new here");

    // A broken file is refused and the current certificate stays.
    std::fs::write(dir.path().join("server-key.pem"), "not a key").unwrap();
    assert!(tls.reload().is_err());
    register_tls(&server, &new_ca, "dave").await;
    server.stop().await;
}

#[tokio::test]
async fn a_session_stays_signed_in_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "s");
    let (server, _tls) = tls_server(&ca.issue(dir.path())).await;
    let alice = register_tls(&server, &ca, "alice").await;
    let bob = register_tls(&server, &ca, "bob").await;
    let creds = Credentials {
        user_id: bob.user_id,
        device_id: bob.device_id,
        token: bob.token.clone(),
    };
    drop(bob);
    let opts = SessionOptions {
        tls: Some(ca.client()),
        ..Default::default()
    };
    let bob_id = creds.user_id;
    let (_session, mut events) = Session::start(vec![server.addr()], creds, 0, opts);
    match tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("event")
    {
        Some(SessionEvent::Connected(addr)) => assert_eq!(addr, server.addr()),
        other => panic!("expected Connected, got {other:?}"),
    }
    alice
        .client
        .send_text(bob_id, "hi", "s1")
        .await
        .expect("send");
    loop {
        match tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("event")
        {
            Some(SessionEvent::Message(m)) => {
                assert_eq!(text(&m), "hi");
                break;
            }
            Some(SessionEvent::Ended(why)) => panic!("session ended: {why}"),
            Some(_) => {}
            None => panic!("session stopped"),
        }
    }
    server.stop().await;
}

/// A child process killed when the test ends, even by a panic.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tern serve --tls-cert --tls-key` speaks TLS and reads the files again
/// on SIGHUP; one flag without the other is refused at start.
#[tokio::test]
async fn the_binary_serves_tls_and_reloads_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let old_ca = TestCa::new(dir.path(), "old");
    let files = old_ca.issue(dir.path());
    let data = dir.path().join("data");
    let args = [
        std::ffi::OsStr::new("--listen"),
        "127.0.0.1:0".as_ref(),
        "--http".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
        "--tls-cert".as_ref(),
        files.cert.as_os_str(),
        "--tls-key".as_ref(),
        files.key.as_os_str(),
    ];
    let (child, addr) = common::procs::spawn_tern(&args, "clients (TLS):");
    let server = KillOnDrop(child);
    let (client, _events) = Client::connect_tls(addr, &old_ca.client())
        .await
        .expect("TLS connect");
    client.heartbeat().await.expect("heartbeat over TLS");

    let new_ca = TestCa::new(dir.path(), "new");
    new_ca.issue(dir.path());
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    // The reload happens when the signal task runs: try until it has.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok((c, _)) = Client::connect_tls(addr, &new_ca.client()).await {
            c.heartbeat()
                .await
                .expect("heartbeat with the new certificate");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reload on SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
        .heartbeat()
        .await
        .expect("the old connection carries on");

    // tern chat over TLS: signs in and the session connects.
    let mut chat = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["chat", "--addr", &addr.to_string(), "--tls-ca"])
        .arg(&new_ca.pem_path)
        .env("TERN_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = chat.stdin.take().unwrap();
    writeln!(stdin, "/register zed zeds-password").unwrap();
    drop(stdin);
    let out = chat.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("signed in as zed"), "{out}");

    drop(server);

    let half = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&files.cert)
        .output()
        .unwrap();
    assert!(!half.status.success());
    let err = String::from_utf8_lossy(&half.stderr);
    assert!(err.contains("--tls-key"), "{err}");
}
