//! The database in trouble: a full disk under a standalone server (a small
//! tmpfs the test mounts, filled up with a file and then freed again), and
//! a MariaDB whose connections are cut mid-commit, that restarts, and that
//! is switched read-only. While nothing can be written, requests are
//! answered UNAVAILABLE with a retry hint and `/readyz` says why; once the
//! cause is gone, writes recover by themselves, without a restart, and
//! every retried SEND is stored exactly once.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::common::proxy::Proxy;
use crate::common::*;
use tern::standalone::Standalone;
use tern_logic::store::Store;
use tern_public::Code;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs the privilege to: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes zeros to `path` until the filesystem is full.
fn fill(path: &Path) -> PathBuf {
    let mut f = std::fs::File::create(path).expect("create the filler");
    let block = vec![0u8; 64 * 1024];
    loop {
        match f.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    let _ = f.sync_all();
    path.to_owned()
}

/// `tern_store_failures_total` for `cause` on a logic node's /metrics.
async fn failures(http: std::net::SocketAddr, cause: &str) -> u64 {
    let (_, _, metrics) = http::call(http, "GET", "/metrics", None).await;
    let prefix = format!("tern_store_failures_total{{cause=\"{cause}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
        .unwrap_or(0)
}

async fn readyz(addr: std::net::SocketAddr) -> (u16, serde_json::Value) {
    let (status, body, _) = http::call(addr, "GET", "/readyz", None).await;
    (status, body)
}

#[tokio::test]
async fn a_full_disk_answers_unavailable_and_writes_recover_when_space_returns() {
    let fs = Tmpfs::mount("24m");
    let store = Store::open_sqlite_dir(fs.path()).await.expect("store");
    let server = Standalone::start(
        store,
        open_connect(),
        open_logic(),
        Some(ADMIN_TOKEN.into()),
    )
    .await
    .expect("start");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let http_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = http_l.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(listener, Some(http_l), async {
        let _ = stopped.await;
    }));

    let alice = register(addr, "alice").await;
    let bob = register(addr, "bob").await;
    assert_eq!(readyz(http).await.0, 200);

    let filler = fill(&fs.path().join("filler"));
    // Many senders at once, so that group commit writes large batches: a
    // batch that no longer fits fails inside its transaction as well as at
    // its commit.
    let text = "x".repeat(32 * 1024);
    let client = alice.client.clone();
    let mut senders = tokio::task::JoinSet::new();
    for s in 0..16 {
        let (client, text, to) = (client.clone(), text.clone(), bob.user_id);
        senders.spawn(async move {
            for i in 0..200 {
                let cmid = format!("s{s}-{i}");
                if let Err(e) = client.send_text(to, &text, &cmid).await {
                    return Some((cmid, e));
                }
            }
            None
        });
    }
    let mut refused = Vec::new();
    while let Some(r) = senders.join_next().await {
        refused.extend(r.unwrap());
    }
    assert!(!refused.is_empty(), "a full disk refuses SENDs");
    for (_, e) in &refused {
        assert_eq!(e.code(), Some(Code::Unavailable), "{e}");
        assert!(
            e.retry_after().is_some(),
            "UNAVAILABLE carries retry_after_ms"
        );
    }
    let (status, body) = readyz(http).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["database"], false, "{body}");
    let cause = body["causes"]["database"].as_str().unwrap_or_default();
    assert!(
        cause.contains("disk is full"),
        "readyz names the cause: {body}"
    );
    let counted = failures(http, "disk_full").await;
    assert!(counted >= 1, "the refused writes are counted: {counted}");
    // The admin API is refused the same way, and its failure is counted
    // (and logged) by the store's health, once, not by each request.
    let (status, body, _) = http::call(
        http,
        "POST",
        "/api/v1/users",
        Some(serde_json::json!({"username": "carol", "password": "a long password"})),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let after = failures(http, "disk_full").await;
    assert!(
        after > counted,
        "the API's refused write is counted: {counted} -> {after}"
    );

    std::fs::remove_file(&filler).expect("free the space");
    // With no client writing, /readyz itself finds that writes work again.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = readyz(http).await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still 503 15 s after space returned: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Each client retries its refused SEND, as UNAVAILABLE tells it to.
    let deadline = Instant::now() + Duration::from_secs(15);
    for (cmid, _) in refused {
        loop {
            match client.send_text(bob.user_id, &text, &cmid).await {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline => {
                    assert_eq!(e.code(), Some(Code::Unavailable), "{e}");
                    tokio::time::sleep(e.retry_after().unwrap_or(Duration::from_millis(100))).await;
                }
                Err(e) => panic!("writes did not recover within 15 s of space returning: {e}"),
            }
        }
    }
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

/// Sends `n` messages from `from` to `to` with client_msg_ids `{tag}-{i}`,
/// retrying each after UNAVAILABLE as the reply says, for at most `WAIT`
/// each; any other failure fails the test. Adds a permit to `counters.0`
/// per message sent and to `counters.1` per UNAVAILABLE.
async fn send_through(
    from: std::sync::Arc<tern_client::Client>,
    to: u64,
    tag: String,
    n: usize,
    counters: (Arc<Semaphore>, Arc<Semaphore>),
) {
    let (sent, refusals) = counters;
    for i in 0..n {
        let cmid = format!("{tag}-{i}");
        let deadline = Instant::now() + WAIT;
        loop {
            match from.send_text(to, &cmid, &cmid).await {
                Ok(_) => break,
                Err(e) if e.code() == Some(Code::Unavailable) && Instant::now() < deadline => {
                    refusals.add_permits(1);
                    let wait = e.retry_after().expect("UNAVAILABLE carries retry_after_ms");
                    tokio::time::sleep(wait.min(Duration::from_millis(200))).await;
                }
                Err(e) => panic!("{cmid}: {e} (only UNAVAILABLE, retried, is expected)"),
            }
        }
        sent.add_permits(1);
    }
}

#[tokio::test]
async fn a_mysql_cut_mid_commit_restarted_or_read_only_answers_unavailable_and_recovers() {
    // A server of this test's own, so that it can be restarted and switched
    // read-only; the logic nodes reach it through a proxy that can cut
    // their connections.
    let mut db = tern_testkit::mariadb_server().await;
    let proxy = Proxy::start(([127, 0, 0, 1], db.port()).into()).await;
    let direct = format!("127.0.0.1:{}", db.port());
    let services = Services {
        redis: tern_testkit::redis_server(),
        nats: tern_testkit::nats_server(),
        database_url: db.url().replace(&direct, &proxy.addr.to_string()),
    };
    let server = services.cluster().await;
    let bob = register(server.addr(), "bob").await;
    // One connection each, so that several commits are in flight at once.
    let mut senders = Vec::new();
    for s in 0..8 {
        senders.push(register(server.addr(), &format!("sender{s}")).await);
    }

    // 1. Every connection to the database cut while 8 senders commit, then
    //    the server killed and restarted.
    let sent = Arc::new(Semaphore::new(0));
    let refusals = Arc::new(Semaphore::new(0));
    let mut sending = tokio::task::JoinSet::new();
    for (s, sender) in senders.iter().enumerate() {
        let (from, to) = (sender.client.clone(), bob.user_id);
        let counters = (sent.clone(), refusals.clone());
        sending.spawn(send_through(from, to, format!("cut{s}"), 40, counters));
    }
    let until = |n| tokio::time::timeout(WAIT * 2, sent.acquire_many(n));
    until(40)
        .await
        .expect("40 sends before the cut")
        .unwrap()
        .forget();
    proxy.cut();
    until(40)
        .await
        .expect("40 sends after the cut")
        .unwrap()
        .forget();
    db.kill().await;
    tokio::time::timeout(WAIT, refusals.acquire())
        .await
        .expect("a SEND is refused while the database is down")
        .unwrap()
        .forget();
    let down = ready_statuses(&server).await;
    assert!(
        down.contains(&503),
        "/readyz while the database is down: {down:?}"
    );
    db.restart().await;
    while let Some(r) = sending.join_next().await {
        r.unwrap();
    }

    // 2. The server read-only.
    db.set_read_only(true).await;
    let refused = senders[0]
        .client
        .send_text(bob.user_id, "ro-0", "ro-0")
        .await;
    let e = refused.expect_err("a read-only server refuses a SEND");
    assert_eq!(e.code(), Some(Code::Unavailable), "{e}");
    // Each node probes with a write once its last commit is a second old
    // (and reuses an answer for a second: one from the restart may come
    // first).
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = readyz(server.http[0]).await;
        let cause = body["causes"]["database"].as_str().unwrap_or_default();
        if status == 503 && cause.contains("read-only") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz did not name a read-only server: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let counted =
        failures(server.http[0], "read_only").await + failures(server.http[1], "read_only").await;
    assert!(counted >= 1, "the refusals are counted");
    db.set_read_only(false).await;
    let counters = (Arc::new(Semaphore::new(0)), Arc::new(Semaphore::new(0)));
    send_through(
        senders[0].client.clone(),
        bob.user_id,
        "ro".into(),
        1,
        counters,
    )
    .await;
    // A node's probe answer is reused for a second.
    let deadline = Instant::now() + WAIT;
    while ready_statuses(&server).await != [200, 200] {
        assert!(
            Instant::now() < deadline,
            "/readyz stayed 503 once writable"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every SEND that was confirmed is in bob's list exactly once.
    let mut expected: Vec<(u64, String)> = senders
        .iter()
        .enumerate()
        .flat_map(|(s, d)| (0..40).map(move |i| (d.user_id, format!("cut{s}-{i}"))))
        .collect();
    expected.push((senders[0].user_id, "ro-0".to_owned()));
    let list = bob.client.sync_all(0).await.expect("sync");
    check_list(bob.user_id, &list, &expected);
    server.stop().await;
}

async fn ready_statuses(server: &Server) -> Vec<u16> {
    let mut statuses = Vec::new();
    for http in &server.http {
        statuses.push(readyz(*http).await.0);
    }
    statuses
}

#[tokio::test]
async fn a_read_only_data_directory_is_refused_at_start_naming_the_path_and_cause() {
    let fs = Tmpfs::mount("64m");
    let dir = fs.path().to_owned();
    // A server killed -9 with users in its database leaves its WAL behind.
    let (mut child, addr) = tokio::task::spawn_blocking(move || {
        let args = [
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--data-dir",
        ];
        let mut args: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
        args.push(dir.into());
        crate::common::procs::spawn_tern(&args, "clients (TCP):")
    })
    .await
    .unwrap();
    register(addr, "alice").await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        fs.path().join("tern.db-wal").exists(),
        "the WAL is left behind"
    );

    let remount = |mode: &str| {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(fs.path())
            .status()
            .unwrap();
        assert!(status.success(), "remount {mode}");
    };
    remount("ro");
    let started = Instant::now();
    let mut again = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(fs.path())
        .env("TERN_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let exited = loop {
        if let Some(status) = again.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > WAIT {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    if exited.is_none() {
        let _ = again.kill();
    }
    let out = again.wait_with_output().unwrap();
    remount("rw");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let status =
        exited.unwrap_or_else(|| panic!("tern started on a read-only data directory: {stderr}"));
    assert!(!status.success());
    assert!(
        stderr.contains(&fs.path().display().to_string()),
        "the error names the path: {stderr}"
    );
    assert!(
        stderr.contains("Read-only file system"),
        "the error names the cause: {stderr}"
    );
}
