//! The bounds of the HTTP ports on the `tern` binary: a half-sent request
//! cannot hold `serve`, `logic` or `connect` past the drain grace on
//! SIGTERM, and the header and idle timeouts come from their flags. The serving loop's own tests
//! (every bound, the connection limit) are in `public/src/http/tests.rs`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A `tern serve` process, killed when dropped (a failed test leaves none).
struct Tern(Option<Child>);

impl Drop for Tern {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `tern serve` with `flags`; returns it and its HTTP address.
fn serve(data_dir: &std::path::Path, flags: &[&str]) -> (Tern, SocketAddr) {
    let dir = data_dir.to_str().expect("a UTF-8 path");
    let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"];
    args.extend(["--data-dir", dir]);
    args.extend(flags);
    spawn(&args, "http:")
}

/// Starts `tern` with `args`; returns it and the address on the line it
/// prints starting with `marker` (the first word after it), once it serves.
fn spawn(args: &[&str], marker: &str) -> (Tern, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(args)
        .env("TERN_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the tern binary");
    let stdout = child.stdout.take().expect("stdout");
    let tern = Tern(Some(child));
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = match lines.next() {
            Some(Ok(l)) => l,
            _ => panic!("tern exited before printing {marker:?}"),
        };
        if let Some(rest) = line.trim().strip_prefix(marker) {
            let addr = rest.split_whitespace().next().expect("an address");
            break addr.parse().expect("a socket address");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (tern, addr)
}

/// SIGTERM, then the exit status if the process ends within `deadline`;
/// past it the process is killed and the test fails.
async fn terminate_within(mut tern: Tern, deadline: Duration) -> ExitStatus {
    let mut child = tern.0.take().expect("a running process");
    let pid = child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let waited = tokio::task::spawn_blocking(move || child.wait().expect("wait for tern"));
    tokio::pin!(waited);
    match tokio::time::timeout(deadline, &mut waited).await {
        Ok(status) => status.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            let _ = waited.await;
            panic!("tern did not exit within {deadline:?} of SIGTERM");
        }
    }
}

/// One whole request, answered, on a connection kept alive.
async fn get_healthz(s: &mut TcpStream) {
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"\r\n\r\nok") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the answer");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"), "{got:?}");
}

/// Waits (at most 5 s) for the server to close `s`; returns how long it took.
async fn closed_within_5s(s: &mut TcpStream) -> Duration {
    let t = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Err(_) => panic!("the connection is still open after 5 s"),
            Ok(Ok(0) | Err(_)) => return t.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn sigterm_with_a_half_sent_http_request_exits_within_the_drain_grace() {
    let dir = tempfile::tempdir().unwrap();
    // The header timeout (10 s by default) is longer than the deadline
    // below: only the grace can end the half-sent request in time.
    let (tern, http) = serve(dir.path(), &["--drain-grace-secs", "1"]);
    // The first request of a connection, half sent: in flight as far as a
    // graceful shutdown can tell.
    let mut half = half_sent_request(http).await;

    let status = terminate_within(tern, Duration::from_secs(1 + 5)).await;
    assert!(status.success(), "tern exits cleanly: {status:?}");
    closed_within_5s(&mut half).await;
}

/// Half-sends the first request of a connection to `http`, and returns
/// once the server has accepted it.
async fn half_sent_request(http: SocketAddr) -> TcpStream {
    let mut half = TcpStream::connect(http).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\nx-wait: ")
        .await
        .unwrap();
    // Connections are accepted in order: once a later one is answered,
    // the half-sent one is accepted too (not left in the backlog, which
    // closing the listener would reset).
    let mut later = TcpStream::connect(http).await.unwrap();
    get_healthz(&mut later).await;
    half
}

#[tokio::test]
async fn cluster_nodes_with_a_half_sent_http_request_exit_within_the_drain_grace() {
    let nats = tern_testkit::nats_server();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}?mode=rwc", dir.path().join("t.db").display());
    let (logic, logic_http) = spawn(
        &[
            "logic",
            "--nats",
            &nats.url(),
            "--database-url",
            &db,
            "--http",
            "127.0.0.1:0",
            "--drain-grace-secs",
            "1",
        ],
        "http:",
    );
    let (connect, metrics) = spawn(
        &[
            "connect",
            "--nats",
            &nats.url(),
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--drain-grace-secs",
            "1",
        ],
        "metrics (HTTP):",
    );
    let mut to_logic = half_sent_request(logic_http).await;
    let mut to_connect = half_sent_request(metrics).await;

    let (connect_exit, logic_exit) = tokio::join!(
        terminate_within(connect, Duration::from_secs(1 + 5)),
        terminate_within(logic, Duration::from_secs(1 + 5)),
    );
    assert!(
        connect_exit.success(),
        "connect exits cleanly: {connect_exit:?}"
    );
    assert!(logic_exit.success(), "logic exits cleanly: {logic_exit:?}");
    closed_within_5s(&mut to_logic).await;
    closed_within_5s(&mut to_connect).await;
}

#[tokio::test]
async fn the_admin_port_takes_its_header_and_idle_timeouts_from_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (tern, http) = serve(
        dir.path(),
        &[
            "--http-header-timeout-secs",
            "1",
            "--http-idle-timeout-secs",
            "4",
        ],
    );
    let mut half = TcpStream::connect(http).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n")
        .await
        .unwrap();
    let mut kept = TcpStream::connect(http).await.unwrap();
    get_healthz(&mut kept).await;

    // Closed by the header timeout (1 s), not the idle one (4 s).
    let took = closed_within_5s(&mut half).await;
    assert!(took < Duration::from_secs(3), "header timeout: {took:?}");
    closed_within_5s(&mut kept).await;
    let (status, _, text) = crate::common::http::call(http, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    for reason in ["header_timeout", "idle_timeout"] {
        let line = format!("tern_http_connections_closed_by_bound_total{{reason=\"{reason}\"}} 1");
        assert!(text.contains(&line), "no {line:?} in {text}");
    }
    terminate_within(tern, Duration::from_secs(15)).await;
}
