//! Cluster nodes as real `tern connect` / `tern logic` processes, for tests
//! that kill them. Each is killed (SIGKILL) when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use super::server::Services;

/// A connect node's liveness interval in these tests: its devices count as
/// offline 3 intervals after it dies.
pub const ALIVE_INTERVAL_MS: u64 = 300;

/// One `tern` node process.
pub struct Proc {
    child: Option<Child>,
    /// The client address of a connect node, the HTTP address of a logic node.
    pub addr: SocketAddr,
}

impl Proc {
    /// Starts `tern connect`; returns once it listens.
    pub async fn connect(s: &Services) -> Proc {
        let args = vec![
            "connect".to_owned(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--nats".into(),
            s.nats.url(),
            "--alive-interval-ms".into(),
            ALIVE_INTERVAL_MS.to_string(),
            "--request-timeout-secs".into(),
            "2".into(),
            // Delivery tests: no per-connection budget (tests/it/abuse.rs has its own).
            "--frames-per-second".into(),
            "0".into(),
            "--bytes-per-second".into(),
            "0".into(),
            "--connections-per-address".into(),
            "0".into(),
        ];
        spawn(args, "clients (TCP):").await
    }

    /// Starts `tern logic` on the test's MariaDB and Redis; returns once it serves.
    pub async fn logic(s: &Services) -> Proc {
        Proc::logic_with(s, &[]).await
    }

    /// [`Proc::logic`] with more flags.
    pub async fn logic_with(s: &Services, extra: &[String]) -> Proc {
        let mut args = vec![
            "logic".to_owned(),
            "--nats".into(),
            s.nats.url(),
            "--database-url".into(),
            s.database_url.clone(),
            "--redis-url".into(),
            s.redis.url(),
            "--http".into(),
            "127.0.0.1:0".into(),
            "--send-policy".into(),
            "open".into(),
            "--node-sweep-interval-ms".into(),
            "100".into(),
            // Delivery tests: no send or sign-in budgets (tests/it/abuse.rs has its own).
            "--user-sends-per-second".into(),
            "0".into(),
            "--login-attempts-per-user-per-minute".into(),
            "0".into(),
            "--auth-attempts-per-address-per-minute".into(),
            "0".into(),
        ];
        args.extend(extra.iter().cloned());
        spawn(args, "http:").await
    }

    /// SIGTERM: the node shuts down in order; returns once it has exited,
    /// with its exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("a running process");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        tokio::task::spawn_blocking(move || c.wait().expect("wait for the node"))
            .await
            .expect("wait task")
    }

    /// kill -9: no drain, no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn spawn(args: Vec<String>, marker: &'static str) -> Proc {
    tokio::task::spawn_blocking(move || {
        let (child, addr) = spawn_tern(&args, marker);
        Proc {
            child: Some(child),
            addr,
        }
    })
    .await
    .expect("spawning a node")
}

/// Starts the `tern` binary with `args` and waits (blocking) for the line
/// `<marker> <address>` it prints once it serves; returns the child and
/// that address. Its output keeps being drained so it never blocks.
pub fn spawn_tern(args: &[impl AsRef<std::ffi::OsStr>], marker: &str) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(args)
        .env("TERN_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the tern binary");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = match lines.next() {
            Some(Ok(l)) => l,
            _ => panic!("tern exited before printing {marker:?}"),
        };
        if let Some(rest) = line.trim().strip_prefix(marker) {
            break rest.trim().parse().expect("a socket address");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}
