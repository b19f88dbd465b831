//! Redis and NATS servers, one per test that asks: they start in
//! milliseconds, so each test gets its own and can stop or restart it.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::process::{
    data_dir, kill, require, restartable_port, spawn_tied, wait_for_port, wait_for_port_closed,
};

const START_WITHIN: Duration = Duration::from_secs(20);

/// A server process of one test, killed when dropped.
#[derive(Debug)]
pub struct Service {
    kind: Kind,
    port: u16,
    dir: PathBuf,
    pid: Option<u32>,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Redis,
    Nats,
}

/// Starts a `redis-server` on a free loopback port (no persistence).
/// Panics naming the Debian package when the binary is missing.
pub fn redis_server() -> Service {
    Service::start(Kind::Redis).unwrap_or_else(|e| panic!("Redis for tests: {e}"))
}

/// Starts a `nats-server` on a free loopback port.
/// Panics naming the Debian package when the binary is missing.
pub fn nats_server() -> Service {
    Service::start(Kind::Nats).unwrap_or_else(|e| panic!("NATS for tests: {e}"))
}

impl Service {
    fn start(kind: Kind) -> Result<Service, String> {
        let mut s = Service {
            kind,
            // Some tests restart it on the same port.
            port: restartable_port(),
            dir: instance_dir(kind),
            pid: None,
        };
        s.spawn()?;
        Ok(s)
    }

    /// `redis://127.0.0.1:<port>` or `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        match self.kind {
            Kind::Redis => format!("redis://127.0.0.1:{}", self.port),
            Kind::Nats => format!("nats://127.0.0.1:{}", self.port),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(pid) = self.pid.take() {
            kill(pid);
            wait_for_port_closed(self.port, START_WITHIN)
                .unwrap_or_else(|e| panic!("{:?} did not die: {e}", self.kind));
        }
    }

    /// Starts the server again on the same port after [`Service::kill`].
    pub fn restart(&mut self) {
        self.kill();
        self.spawn()
            .unwrap_or_else(|e| panic!("restarting {:?}: {e}", self.kind));
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .map_err(|e| e.to_string())?;
        let port = self.port.to_string();
        let mut cmd = match self.kind {
            Kind::Redis => {
                let mut cmd = Command::new(require("redis-server", "redis-server")?);
                cmd.args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
                    .args(["--appendonly", "no", "--protected-mode", "no"])
                    .arg("--dir")
                    .arg(&self.dir);
                cmd
            }
            Kind::Nats => {
                let mut cmd = Command::new(require("nats-server", "nats-server")?);
                cmd.args(["-a", "127.0.0.1", "-p", &port]);
                cmd
            }
        };
        cmd.stdout(Stdio::null()).stderr(log);
        self.pid = Some(spawn_tied(cmd)?);
        wait_for_port(self.port, START_WITHIN).map_err(|e| {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            format!("{e}; server log:\n{log}")
        })
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            kill(pid);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn instance_dir(kind: Kind) -> PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = BASE.get_or_init(|| data_dir("services"));
    let dir = base.join(format!("{kind:?}-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).expect("creating a test server directory");
    dir
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

    fn greeting(port: u16, send: &[u8]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(START_WITHIN)).unwrap();
        s.write_all(send).unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn redis_answers_and_dies_on_kill() {
        let mut r = redis_server();
        assert_eq!(greeting(r.port(), b"PING\r\n"), "+PONG\r\n");
        r.kill();
        assert!(TcpStream::connect(("127.0.0.1", r.port())).is_err());
    }

    #[test]
    fn nats_restarts_on_the_same_port() {
        let mut n = nats_server();
        assert!(greeting(n.port(), b"").starts_with("INFO "));
        n.restart();
        assert!(greeting(n.port(), b"").starts_with("INFO "));
    }
}
