//! The server processes of a soak, stopped and started again in place (the
//! same ports, the same data) as a supervisor would, and the schedule of
//! failures that strikes them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::Duration;

use crate::common::procs::spawn_tern;
use crate::common::proxy::Proxy;
use crate::common::Services;

/// What a process is, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Connect,
    Logic,
    Standalone,
}

/// One `tern` process that can be stopped and started again with the same
/// arguments.
pub struct NodeProc {
    pub role: Role,
    args: Vec<String>,
    child: Option<Child>,
    /// The client address (connect, standalone) or the HTTP one (logic).
    pub addr: SocketAddr,
    /// The highest peak RSS (VmHWM) of any run of this process, in KiB.
    pub max_rss_kib: u64,
}

/// How long a stopped process may take to exit.
const EXIT_WITHIN: Duration = Duration::from_secs(60);

impl NodeProc {
    /// Starts `tern connect` listening on `port`.
    pub async fn connect(s: &Services, port: u16) -> NodeProc {
        let args = [
            "connect",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--nats",
            &s.nats.url(),
            "--alive-interval-ms",
            "300",
        ];
        NodeProc::start(Role::Connect, &args).await
    }

    /// Starts `tern logic` on the soak's MariaDB and Redis.
    pub async fn logic(s: &Services) -> NodeProc {
        let args = [
            "logic",
            "--nats",
            &s.nats.url(),
            "--database-url",
            &s.database_url,
            "--redis-url",
            &s.redis.url(),
            "--http",
            "127.0.0.1:0",
            "--node-sweep-interval-ms",
            "100",
        ];
        NodeProc::start(Role::Logic, &args).await
    }

    /// Starts `tern serve` on `port` with its data in `dir`.
    pub async fn standalone(dir: &Path, port: u16) -> NodeProc {
        let args = [
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--http",
            "127.0.0.1:0",
            "--data-dir",
            &dir.display().to_string(),
        ];
        NodeProc::start(Role::Standalone, &args).await
    }

    /// Every setting is the default but those above: the soak's clients
    /// behave like phones and must pass the default budgets.
    async fn start(role: Role, args: &[&str]) -> NodeProc {
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        // Restarts make the nodes complain (a peer went away); the summary
        // and a failed check say what matters.
        args.extend(["--log".into(), "error".into()]);
        let mut node = NodeProc {
            role,
            args,
            child: None,
            addr: "127.0.0.1:0".parse().expect("an address"),
            max_rss_kib: 0,
        };
        node.run().await;
        node
    }

    async fn run(&mut self) {
        let marker = match self.role {
            Role::Logic => "http:",
            Role::Connect | Role::Standalone => "clients (TCP):",
        };
        let args = self.args.clone();
        let (child, addr) = tokio::task::spawn_blocking(move || spawn_tern(&args, marker))
            .await
            .expect("spawning a node");
        self.child = Some(child);
        self.addr = addr;
    }

    /// Takes the peak RSS of the running process into [`Self::max_rss_kib`].
    pub fn sample_rss(&mut self) {
        let Some(child) = &self.child else { return };
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()));
        let peak = status.ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
        self.max_rss_kib = self.max_rss_kib.max(peak.unwrap_or(0));
    }

    /// Stops the process (SIGTERM: drain and exit; SIGKILL: gone) and
    /// starts it again; returns how the old one exited.
    pub async fn restart(&mut self, how: Stop) -> ExitStatus {
        self.sample_rss();
        let mut child = self.child.take().expect("a running process");
        let signal = match how {
            Stop::Term => "-TERM",
            Stop::Kill => "-KILL",
        };
        let sent = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill {signal} failed");
        let waited = tokio::task::spawn_blocking(move || child.wait());
        let status = tokio::time::timeout(EXIT_WITHIN, waited)
            .await
            .unwrap_or_else(|_| panic!("{:?} did not exit within {EXIT_WITHIN:?}", self.role))
            .expect("wait task")
            .expect("wait for the node");
        self.run().await;
        status
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Term,
    Kill,
}

/// What the soak breaks, in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A node of this role stopped with this signal and started again.
    Restart(Role, Stop),
    /// Every connection through the proxies dropped at once.
    CutProxies,
    /// The NATS server killed and started again.
    RestartNats,
}

impl Failure {
    fn name(self) -> String {
        match self {
            Failure::Restart(role, how) => format!("{role:?} {how:?}").to_lowercase(),
            Failure::CutProxies => "proxy cut".into(),
            Failure::RestartNats => "nats restart".into(),
        }
    }
}

/// The servers of one soak and what has been done to them.
pub struct Nodes {
    pub procs: Vec<NodeProc>,
    pub services: Option<Services>,
    pub proxies: Vec<Proxy>,
    /// Failures caused, by name.
    pub done: BTreeMap<String, u32>,
    turn: usize,
}

impl Nodes {
    pub fn new(procs: Vec<NodeProc>, services: Option<Services>, proxies: Vec<Proxy>) -> Nodes {
        Nodes {
            procs,
            services,
            proxies,
            done: BTreeMap::new(),
            turn: 0,
        }
    }

    /// The client addresses of the connect (or standalone) processes.
    pub fn client_addrs(&self) -> Vec<SocketAddr> {
        self.procs
            .iter()
            .filter(|p| p.role != Role::Logic)
            .map(|p| p.addr)
            .collect()
    }

    /// Causes `failure`, on the next process of its role in turn, and
    /// waits until the cluster is whole again.
    pub async fn strike(&mut self, failure: Failure) {
        match failure {
            Failure::Restart(role, how) => {
                let of_role: Vec<usize> = (0..self.procs.len())
                    .filter(|&i| self.procs[i].role == role)
                    .collect();
                let i = of_role[self.turn % of_role.len()];
                self.turn += 1;
                let status = self.procs[i].restart(how).await;
                if how == Stop::Term {
                    assert!(status.success(), "{role:?} exited with {status} on SIGTERM");
                }
            }
            Failure::CutProxies => self.proxies.iter().for_each(Proxy::cut),
            Failure::RestartNats => {
                let nats = &mut self.services.as_mut().expect("a cluster").nats;
                tokio::task::block_in_place(|| nats.restart());
            }
        }
        *self.done.entry(failure.name()).or_default() += 1;
    }

    /// The peak RSS of each role, in KiB.
    pub fn max_rss(&mut self) -> BTreeMap<Role, u64> {
        let mut out = BTreeMap::new();
        for p in &mut self.procs {
            p.sample_rss();
            let e = out.entry(p.role).or_insert(0);
            *e = (*e).max(p.max_rss_kib);
        }
        out
    }
}
