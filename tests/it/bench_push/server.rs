//! The server of a benchmark run: a `tern` process of its own, so that
//! its CPU time is the server's alone.

use std::net::SocketAddr;
use std::process::Child;
use std::time::Duration;

use tern_testkit::push::ApnsStandIn;

use crate::common::procs::spawn_tern;
use crate::common::ADMIN_TOKEN;

/// CPU time (user + system) process `pid` has used so far, from
/// /proc/PID/stat.
fn cpu_time(pid: u32) -> Duration {
    // /proc counts in USER_HZ, 100 on every Linux tern runs on.
    const TICKS_PER_SEC: u64 = 100;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // The command name, in parentheses, may hold spaces: fields are
    // counted after it (state is field 3, utime 14, stime 15).
    let rest = stat.rsplit_once(')').expect("a command name").1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> u64 { fields[n - 3].parse().expect("a tick count") };
    Duration::from_millis((field(14) + field(15)) * 1000 / TICKS_PER_SEC)
}

/// One standalone `tern` process on a fresh data directory, killed when
/// dropped.
pub struct Tern {
    child: Child,
    /// Where clients connect.
    pub addr: SocketAddr,
    /// The admin API.
    pub http: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Tern {
    /// Starts a server; with `apns`, its notifications go to that stand-in
    /// (its key in a `.p8` file, as in production).
    pub async fn start(apns: Option<&ApnsStandIn>) -> Tern {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let http: SocketAddr = ([127, 0, 0, 1], tern_testkit::restartable_port()).into();
        let data = dir.path().join("data");
        let mut args: Vec<String> = [
            "--data-dir",
            data.to_str().expect("a UTF-8 path"),
            "--listen",
            "127.0.0.1:0",
            "--http",
            &http.to_string(),
            "--admin-token",
            ADMIN_TOKEN,
            "--send-policy",
            "open",
            "--frames-per-second",
            "0",
            "--bytes-per-second",
            "0",
            "--user-sends-per-second",
            "0",
            "--login-attempts-per-user-per-minute",
            "0",
            "--auth-attempts-per-address-per-minute",
            "0",
            "--connections-per-address",
            "0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(s) = apns {
            let key = dir.path().join("apns.p8");
            std::fs::write(&key, s.key_pem()).expect("write the .p8 key");
            let key = key.to_str().expect("a UTF-8 path").to_owned();
            let url = s.url();
            for (flag, value) in [
                ("--apns-key-file", key.as_str()),
                ("--apns-key-id", s.key_id()),
                ("--apns-team-id", s.team_id()),
                ("--apns-topic", s.topic()),
                ("--apns-url", &url),
                ("--apns-sandbox-url", &url),
            ] {
                args.extend([flag.to_owned(), value.to_owned()]);
            }
        }
        let (child, addr) =
            tokio::task::spawn_blocking(move || spawn_tern(&args, "clients (TCP):"))
                .await
                .expect("starting tern");
        Tern {
            child,
            addr,
            http,
            _dir: dir,
        }
    }

    /// The CPU time it has used so far.
    pub fn cpu(&self) -> Duration {
        cpu_time(self.child.id())
    }
}

impl Drop for Tern {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
