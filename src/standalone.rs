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
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let logic = Logic::start(logic, store, Shared::memory(), bus.clone());
    // Subscribe before accepting: no client request may find logic absent.
    let logic_server = LogicServer::subscribe(logic).await?;
    let (stop_logic, logic_stopped) = watch::channel(false);
    let logic_task = tokio::spawn(logic_server.run(async move {
        let mut rx = logic_stopped;
        let _ = rx.wait_for(|stop| *stop).await;
    }));

    Node::new(connect, bus).run(listener, shutdown).await?;

    let _ = stop_logic.send(true);
    logic_task.await?;
    Ok(())
}
