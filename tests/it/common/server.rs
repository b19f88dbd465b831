//! A server for one test, in either shape: standalone (one process, SQLite,
//! in-process bus) or cluster (2 logic + 2 connect nodes on a real MariaDB,
//! Redis and NATS from tern-testkit). Clients spread over the connect nodes:
//! each [`Server::addr`] call hands out the next node's address.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use tern::cluster::{LogicBackends, LogicNode};
use tern::standalone::Standalone;
use tern_connect::{ConnectConfig, Node};
use tern_logic::store::Store;
use tern_logic::{Logic, LogicConfig};
use tern_public::bus::{Bus, NatsBus, NatsOptions, Subjects};

use super::{open_connect, open_logic, WAIT};

/// The admin token of the test servers.
pub const ADMIN_TOKEN: &str = "cluster-test-admin-token";

/// Which deployment a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Standalone,
    /// Two logic and two connect nodes on MariaDB, Redis and NATS.
    Cluster,
}

type Task = JoinHandle<anyhow::Result<()>>;

/// A running server; [`Server::stop`] drains it.
pub struct Server {
    addrs: Vec<SocketAddr>,
    /// HTTP addresses of the logic nodes (the one process in standalone).
    pub http: Vec<SocketAddr>,
    /// The connect nodes, in the order of [`Server::addrs`].
    pub connect: Vec<Node>,
    /// The logic nodes' state.
    pub logic: Vec<Arc<Logic>>,
    next: AtomicUsize,
    /// Stopped in this order: connect nodes drain before logic stops.
    nodes: Vec<(oneshot::Sender<()>, Task)>,
    _keep: Box<dyn std::any::Any + Send + Sync>,
}

impl Shape {
    pub async fn start(self) -> Server {
        self.start_with(open_connect(), open_logic()).await
    }

    pub async fn start_with(self, connect: ConnectConfig, logic: LogicConfig) -> Server {
        match self {
            Shape::Standalone => standalone(connect, logic).await,
            Shape::Cluster => cluster(connect, logic).await,
        }
    }
}

impl Server {
    /// A connect node's client address; successive calls go round the nodes.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[self.next.fetch_add(1, Ordering::Relaxed) % self.addrs.len()]
    }

    /// Every connect node's client address.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Drains every node (connect first) and waits for each to exit.
    pub async fn stop(self) {
        for (stop, task) in self.nodes {
            let _ = stop.send(());
            tokio::time::timeout(WAIT, task)
                .await
                .expect("node exits within the grace period")
                .expect("node task")
                .expect("node result");
        }
    }
}

fn spawn(run: impl FnOnce(oneshot::Receiver<()>) -> Task) -> (oneshot::Sender<()>, Task) {
    let (stop, stopped) = oneshot::channel();
    (stop, run(stopped))
}

async fn loopback() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let a = l.local_addr().unwrap();
    (l, a)
}

async fn standalone(connect: ConnectConfig, logic: LogicConfig) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_sqlite_dir(dir.path())
        .await
        .expect("sqlite store");
    let (listener, addr) = loopback().await;
    let (http, http_addr) = loopback().await;
    let server = Standalone::start(store, connect, logic, Some(ADMIN_TOKEN.to_owned()))
        .await
        .expect("standalone starts");
    let (node, logic) = (server.node.clone(), server.logic.clone());
    let task = spawn(|stopped| {
        tokio::spawn(server.run(listener, Some(http), async {
            let _ = stopped.await;
        }))
    });
    Server {
        addrs: vec![addr],
        http: vec![http_addr],
        connect: vec![node],
        logic: vec![logic],
        next: AtomicUsize::new(0),
        nodes: vec![task],
        _keep: Box::new(dir),
    }
}

/// The services a cluster test runs on; kept until the test ends.
pub struct Services {
    pub redis: tern_testkit::Service,
    pub nats: tern_testkit::Service,
    pub database_url: String,
}

impl Services {
    pub async fn start() -> Services {
        Services {
            redis: tern_testkit::redis_server(),
            nats: tern_testkit::nats_server(),
            database_url: tern_testkit::mysql_database().await,
        }
    }

    pub async fn bus(&self, name: &str) -> Arc<dyn Bus> {
        Arc::new(
            NatsBus::connect(NatsOptions {
                url: self.nats.url(),
                name: name.into(),
                op_timeout: Duration::from_secs(5),
            })
            .await
            .expect("connect to NATS"),
        )
    }

    /// How many devices of `user_id` presence in Redis holds.
    pub async fn presence_of(&self, user_id: u64) -> usize {
        let client = redis::Client::open(self.redis.url()).expect("redis url");
        let mut c = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to Redis");
        redis::cmd("HLEN")
            .arg(format!("tern:presence:{user_id}"))
            .query_async(&mut c)
            .await
            .expect("HLEN")
    }

    /// A logic node, subscribed and ready when this returns, and the
    /// address its HTTP side will serve on.
    pub async fn logic_node(&self, cfg: LogicConfig) -> (LogicNode, SocketAddr) {
        let backends = LogicBackends::open(
            &self.database_url,
            Some((&self.redis.url(), "tern")),
            Duration::from_secs(60),
        )
        .await
        .expect("logic backends");
        let (http, http_addr) = loopback().await;
        let token = Some(ADMIN_TOKEN.to_owned());
        let node = LogicNode::start(cfg, backends, self.bus("logic").await, http, token)
            .await
            .expect("logic node starts");
        (node, http_addr)
    }
}

async fn cluster(connect: ConnectConfig, logic: LogicConfig) -> Server {
    let services = Services::start().await;
    let mut server = cluster_on(&services, connect, logic).await;
    server._keep = Box::new(services);
    server
}

impl Services {
    /// 2 logic + 2 connect nodes on these services, which the caller keeps
    /// (to kill or restart them).
    pub async fn cluster(&self) -> Server {
        self.cluster_with(open_connect(), open_logic()).await
    }

    pub async fn cluster_with(&self, connect: ConnectConfig, logic: LogicConfig) -> Server {
        cluster_on(self, connect, logic).await
    }
}

async fn cluster_on(services: &Services, connect: ConnectConfig, logic: LogicConfig) -> Server {
    let mut http_addrs = Vec::new();
    let mut logic_nodes = Vec::new();
    let mut logic_states = Vec::new();
    for _ in 0..2 {
        let (node, http) = services.logic_node(logic.clone()).await;
        http_addrs.push(http);
        logic_states.push(node.logic());
        logic_nodes.push(spawn(|stopped| {
            tokio::spawn(node.run(async {
                let _ = stopped.await;
            }))
        }));
    }
    let mut nodes = Vec::new();
    let mut addrs = Vec::new();
    let mut connect_nodes = Vec::new();
    for i in 1..=2 {
        let cfg = ConnectConfig {
            node_id: format!("c{i}-{:06x}", rand::random::<u32>() & 0xff_ffff),
            subjects: Subjects::default(),
            ..connect.clone()
        };
        let bus = services.bus(&cfg.node_id).await;
        let (listener, addr) = loopback().await;
        addrs.push(addr);
        let node = Node::new(cfg, bus);
        connect_nodes.push(node.clone());
        nodes.push(spawn(|stopped| {
            tokio::spawn(async move {
                node.run(listener, async {
                    let _ = stopped.await;
                })
                .await?;
                Ok(())
            })
        }));
    }
    nodes.extend(logic_nodes);
    Server {
        addrs,
        http: http_addrs,
        connect: connect_nodes,
        logic: logic_states,
        next: AtomicUsize::new(0),
        nodes,
        _keep: Box::new(()),
    }
}

/// Runs each `async fn $case(Shape)` of the calling test file twice, as
/// `standalone::$case` and `cluster::$case`, with the given test attribute.
#[macro_export]
macro_rules! in_both_shapes {
    ($(#[$attr:meta] $case:ident),* $(,)?) => {
        mod standalone {
            $(
                #[$attr]
                async fn $case() {
                    super::$case($crate::common::Shape::Standalone).await;
                }
            )*
        }
        mod cluster {
            $(
                #[$attr]
                async fn $case() {
                    super::$case($crate::common::Shape::Cluster).await;
                }
            )*
        }
    };
}
