//! Cluster mode: connect and logic nodes as separate processes meeting on
//! NATS, storing in MySQL and sharing presence in Redis (DESIGN.md). The
//! `tern connect` and `tern logic` subcommands and the cluster tests all
//! start nodes through these functions.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use tern_connect::{ConnectConfig, Node};
use tern_logic::peers::{self, Mode};
use tern_logic::store::{Dialect, Store};
use tern_logic::{api, LiveState, Logic, LogicConfig, LogicServer, RedisConn, RedisGeneration};
use tern_public::bus::Bus;
use tern_public::http::HttpConfig;

/// Refuses a frame limit the bus cannot carry: a client request and a
/// pushed frame each travel in one bus message with a small envelope.
pub fn check_bus_limits(bus: &dyn Bus, max_frame_len: usize) -> anyhow::Result<()> {
    let max = bus.max_payload();
    if max_frame_len.saturating_add(8192) > max {
        anyhow::bail!(
            "--max-frame-len {max_frame_len} does not fit the bus: NATS carries at most {max} bytes \
             per message; lower --max-frame-len to {} or raise max_payload in nats-server",
            max.saturating_sub(8192)
        );
    }
    Ok(())
}

/// Runs a connect node on `listener`, and its metrics endpoint within the
/// bounds of `http` on `metrics` when given, until `shutdown` resolves;
/// then the node drains while the endpoint shuts down.
pub async fn run_connect(
    listener: TcpListener,
    metrics: Option<TcpListener>,
    http: HttpConfig,
    cfg: ConnectConfig,
    bus: Arc<dyn Bus>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let node = Node::new(cfg, bus);
    // The endpoint stops at the signal: its grace runs alongside the drain.
    let stop = CancellationToken::new();
    let metrics_task = metrics.map(|l| {
        let mut registry = prometheus_client::registry::Registry::default();
        node.register_metrics(&mut registry);
        http.metrics.register(&mut registry);
        let stopped = stop.clone().cancelled_owned();
        tokio::spawn(tern_connect::metrics::serve(l, registry, http, stopped))
    });
    let signalled = async {
        shutdown.await;
        stop.cancel();
    };
    let served = node.run(listener, signalled).await;
    stop.cancel();
    if let Some(t) = metrics_task {
        t.await.context("metrics server")?;
    }
    Ok(served?)
}

/// Where a logic node keeps shared state, decided from its URLs.
pub struct LogicBackends {
    pub store: Store,
    pub live: LiveState,
    pub mode: Mode,
}

impl LogicBackends {
    /// Opens the database (applying migrations) and, when given, Redis.
    /// Presence in memory or a SQLite database allow one logic node only.
    pub async fn open(
        database_url: &str,
        redis: Option<(&str, &str)>,
        member_ttl: std::time::Duration,
    ) -> anyhow::Result<LogicBackends> {
        let mut store = Store::connect(database_url)
            .await
            .context("opening the database")?;
        let (live, presence_mode) = match redis {
            Some((url, prefix)) => {
                let conn = RedisConn::connect(url, prefix)
                    .await
                    .with_context(|| format!("connecting to Redis at {}", without_password(url)))?;
                // Every node's send standing cache, kept exact through Redis.
                store.share_standing(Arc::new(RedisGeneration::new(conn.clone())));
                (LiveState::redis(conn, member_ttl), None)
            }
            None => (
                LiveState::memory(),
                Some("in-memory presence (no --redis-url)"),
            ),
        };
        let mode = match (store.dialect(), presence_mode) {
            (Dialect::Sqlite, _) => Mode::Exclusive("a SQLite database".into()),
            (_, Some(why)) => Mode::Exclusive(why.into()),
            (Dialect::MySql, None) => Mode::Shared,
        };
        Ok(LogicBackends { store, live, mode })
    }
}

/// A logic node that has joined the cluster and is subscribed: requests
/// sent from now on reach it. [`LogicNode::run`] serves them.
pub struct LogicNode {
    logic: Arc<Logic>,
    server: LogicServer,
    http: TcpListener,
    http_cfg: HttpConfig,
    admin_token: Option<Arc<str>>,
    /// The node's own tasks (answering other nodes, HTTP), stopped by `stop`.
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl LogicNode {
    /// Refuses to start beside nodes it cannot share state with, then
    /// starts the logic state and subscribes on the bus.
    pub async fn start(
        cfg: LogicConfig,
        backends: LogicBackends,
        bus: Arc<dyn Bus>,
        http: TcpListener,
        admin_token: Option<String>,
    ) -> anyhow::Result<LogicNode> {
        let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
        peers::join(
            bus.clone(),
            &cfg.subjects,
            backends.mode,
            &tasks,
            stop.clone(),
        )
        .await?;
        let logic = Logic::start(cfg, backends.store, backends.live, bus);
        let server = match LogicServer::subscribe(logic.clone()).await {
            Ok(s) => s,
            Err(e) => {
                stop.cancel();
                logic.shutdown().await;
                tasks.close();
                tasks.wait().await;
                return Err(anyhow::Error::new(e).context("subscribing on the bus"));
            }
        };
        Ok(LogicNode {
            logic,
            server,
            http,
            http_cfg: HttpConfig::default(),
            admin_token: admin_token.map(Arc::from),
            tasks,
            stop,
        })
    }

    /// Bounds the HTTP port with `http` instead of the defaults.
    pub fn with_http(mut self, http: HttpConfig) -> LogicNode {
        self.http_cfg = http;
        self
    }

    /// The node's logic state (for the admin API and tests).
    pub fn logic(&self) -> Arc<Logic> {
        self.logic.clone()
    }

    /// Serves commands from the bus and HTTP until `shutdown` resolves,
    /// then finishes the requests in flight (HTTP ones within its shutdown
    /// grace) and stops every task it started.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let LogicNode {
            logic,
            server,
            http,
            http_cfg,
            admin_token,
            tasks,
            stop,
        } = self;
        let state =
            api::ApiState::new(logic.clone(), admin_token, |r| http_cfg.metrics.register(r));
        // HTTP stops at the signal: its grace runs alongside the bus drain.
        let http_stop = CancellationToken::new();
        let stopped = http_stop.clone().cancelled_owned();
        let http_task = tasks.spawn(api::serve(http, state, http_cfg, stopped));
        server
            .run(async {
                shutdown.await;
                http_stop.cancel();
            })
            .await;
        http_stop.cancel();
        stop.cancel();
        tasks.close();
        let http = http_task.await;
        tasks.wait().await;
        // Nothing takes requests any more: let group commit and fan-out finish.
        logic.shutdown().await;
        http.context("HTTP server")?;
        Ok(())
    }
}

/// `url` with any user and password left out, for messages and logs.
fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_in_messages_carry_no_password() {
        assert_eq!(
            super::without_password("redis://:s3cret@cache:6379/0"),
            "redis://cache:6379/0"
        );
        assert_eq!(
            super::without_password("redis://cache:6379"),
            "redis://cache:6379"
        );
    }
}
