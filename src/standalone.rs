//! Standalone mode: one process with a connect node and a logic node on the
//! in-process bus, SQLite storage and in-memory presence.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use tern_connect::{ConnectConfig, Node};
use tern_logic::store::Store;
use tern_logic::{Logic, LogicConfig, LogicServer, Shared};
use tern_public::bus::{Bus, MemoryBus};

/// Serves clients on `listener` until `shutdown` resolves; then the connect
/// node drains (KICKED(draining) to every client, flush, close) and logic
/// finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    connect: ConnectConfig,
    logic: LogicConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    Standalone::start(store, connect, logic)
        .await?
        .run(listener, shutdown)
        .await
}

/// A standalone server, started and ready to serve a listener. Its parts
/// are reachable for the admin API and tests.
pub struct Standalone {
    pub node: Node,
    pub logic: Arc<Logic>,
    server: LogicServer,
}

impl Standalone {
    /// Starts logic and subscribes it: requests from now on find it.
    pub async fn start(
        store: Store,
        connect: ConnectConfig,
        logic: LogicConfig,
    ) -> anyhow::Result<Standalone> {
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        let logic = Logic::start(logic, store, Shared::memory(), bus.clone());
        let server = LogicServer::subscribe(logic.clone()).await?;
        Ok(Standalone {
            node: Node::new(connect, bus),
            logic,
            server,
        })
    }

    /// Serves clients on `listener` until `shutdown` resolves, then drains.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let (stop_logic, logic_stopped) = watch::channel(false);
        let logic_task = tokio::spawn(self.server.run(async move {
            let mut rx = logic_stopped;
            let _ = rx.wait_for(|stop| *stop).await;
        }));
        self.node.run(listener, shutdown).await?;
        let _ = stop_logic.send(true);
        logic_task.await?;
        Ok(())
    }
}
