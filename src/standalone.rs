//! Standalone mode: one process with a connect node and a logic node on the
//! in-process bus, SQLite storage and in-memory presence.

use std::future::Future;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use tern_connect::{ConnectConfig, Node};
use tern_logic::store::Store;
use tern_logic::{api, LiveState, Logic, LogicConfig, LogicServer};
use tern_public::bus::{Bus, MemoryBus};
use tern_public::http::HttpConfig;

/// A standalone server, started and ready to serve a listener. Its parts
/// are reachable for the admin API and tests.
pub struct Standalone {
    pub node: Node,
    pub logic: Arc<Logic>,
    server: LogicServer,
    admin_token: Option<Arc<str>>,
    http: HttpConfig,
}

impl Standalone {
    /// Starts logic and subscribes it: requests from now on find it.
    pub async fn start(
        store: Store,
        connect: ConnectConfig,
        logic: LogicConfig,
        admin_token: Option<String>,
    ) -> anyhow::Result<Standalone> {
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        let logic = Logic::start(logic, store, LiveState::memory(), bus.clone());
        let server = match LogicServer::subscribe(logic.clone()).await {
            Ok(s) => s,
            Err(e) => {
                logic.shutdown().await;
                return Err(e.into());
            }
        };
        let http = HttpConfig {
            shutdown_grace: connect.drain_grace,
            ..HttpConfig::default()
        };
        Ok(Standalone {
            node: Node::new(connect, bus),
            logic,
            server,
            admin_token: admin_token.map(Arc::from),
            http,
        })
    }

    /// Bounds the HTTP port with `http` instead of the defaults (whose
    /// shutdown grace is the connect node's drain grace).
    pub fn with_http(mut self, http: HttpConfig) -> Standalone {
        self.http = http;
        self
    }

    /// Serves clients on `listener` and, when given, HTTP (health and the
    /// admin API) on `http`, until `shutdown` resolves; then the connect
    /// node drains (KICKED(draining) to every client, flush, close) while
    /// HTTP stops accepting and gives its requests in flight the shutdown
    /// grace, logic finishes the requests in flight, and its background
    /// tasks stop.
    pub async fn run(
        self,
        listener: TcpListener,
        http: Option<TcpListener>,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let logic_task = tokio::spawn(self.server.run(stop.clone().cancelled_owned()));
        // HTTP stops at the signal, not after the drain: its grace runs
        // alongside the drain's, so the process exits within one grace.
        let http_stop = CancellationToken::new();
        let http_task = http.map(|l| {
            let node = self.node.clone();
            let state = api::ApiState::new(self.logic.clone(), self.admin_token.clone(), |r| {
                node.register_metrics(r);
                self.http.metrics.register(r);
            });
            let stopped = http_stop.clone().cancelled_owned();
            tokio::spawn(api::serve(l, state, self.http.clone(), stopped))
        });
        let signalled = async {
            shutdown.await;
            http_stop.cancel();
        };
        let served = self.node.run(listener, signalled).await;
        http_stop.cancel();
        stop.cancel();
        // Wait for all three even if one panicked, then let group commit
        // and fan-out finish what they hold before reporting any failure.
        let logic_done = logic_task.await;
        let http = match http_task {
            Some(t) => t.await,
            None => Ok(()),
        };
        self.logic.shutdown().await;
        logic_done?;
        served?;
        http?;
        Ok(())
    }
}

/// The admin token kept in the data directory (`admin-token`, mode 0600),
/// made on first run; returns it and whether it was just made.
pub fn admin_token_in(data_dir: &Path) -> anyhow::Result<(String, bool)> {
    let path = data_dir.join("admin-token");
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok((t.trim().to_owned(), false)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let token = hex::encode(rand::random::<[u8; 32]>());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(token.as_bytes())?;
    f.write_all(b"\n")?;
    Ok((token, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_token_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (t1, made) = admin_token_in(dir.path()).unwrap();
        assert!(made);
        assert_eq!(t1.len(), 64);
        let meta = std::fs::metadata(dir.path().join("admin-token")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let (t2, made) = admin_token_in(dir.path()).unwrap();
        assert_eq!((t2, made), (t1, false));
    }
}
