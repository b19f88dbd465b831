//! Events from connect nodes keep presence right.

use std::sync::Arc;

use prost::Message as _;

use tern_public::bus::MemoryBus;
use tern_public::proto::bus::{logic_event, DeviceOffline, LogicEvent, NodeEvent, NodeState};

use crate::presence::{Location, MemoryPresence, Presence};
use crate::store::Store;
use crate::{Logic, LogicConfig};

async fn logic() -> (Arc<Logic>, Arc<MemoryPresence>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite_dir(dir.path()).await.unwrap();
    let presence = Arc::new(MemoryPresence::new());
    let logic = Logic::start(
        LogicConfig::default(),
        store,
        crate::LiveState {
            presence: presence.clone(),
            ..crate::LiveState::memory()
        },
        Arc::new(MemoryBus::new()),
    );
    (logic, presence, dir)
}

fn at(node: &str, conn: u64) -> Location {
    Location {
        node_id: node.into(),
        conn_id: conn,
    }
}

fn event(e: logic_event::Event) -> bytes::Bytes {
    LogicEvent { event: Some(e) }.encode_to_vec().into()
}

/// A node lifecycle event with no connections and a 1 s alive interval.
fn node(id: &str, state: NodeState) -> bytes::Bytes {
    event(logic_event::Event::Node(NodeEvent {
        node_id: id.into(),
        state: state as i32,
        connections: 0,
        alive_interval_ms: 1000,
    }))
}

#[tokio::test]
async fn device_offline_removes_only_the_connection_that_closed() {
    let (logic, presence, _d) = logic().await;
    presence.online(1, 10, at("n1", 7)).await.unwrap();
    // A stale close (older connection 6) changes nothing.
    let stale = DeviceOffline {
        node_id: "n1".into(),
        conn_id: 6,
        user_id: 1,
        device_id: 10,
    };
    super::handle(&logic, event(logic_event::Event::DeviceOffline(stale))).await;
    assert_eq!(presence.locate(&[1]).await.unwrap().len(), 1);
    let current = DeviceOffline {
        node_id: "n1".into(),
        conn_id: 7,
        user_id: 1,
        device_id: 10,
    };
    super::handle(&logic, event(logic_event::Event::DeviceOffline(current))).await;
    assert!(presence.locate(&[1]).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_node_that_starts_or_stops_leaves_no_presence_behind() {
    let (logic, presence, _d) = logic().await;
    presence.online(1, 10, at("n1", 1)).await.unwrap();
    presence.online(2, 20, at("n2", 1)).await.unwrap();
    presence.online(3, 30, at("n1", 2)).await.unwrap();
    // ALIVE and DRAINING change nothing.
    super::handle(&logic, node("n1", NodeState::Alive)).await;
    super::handle(&logic, node("n1", NodeState::Draining)).await;
    assert_eq!(presence.locate(&[1, 2, 3]).await.unwrap().len(), 3);
    super::handle(&logic, node("n1", NodeState::Down)).await;
    let left = presence.locate(&[1, 2, 3]).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].user_id, 2);
    // A restarted node's stale entries go too.
    super::handle(&logic, node("n2", NodeState::Up)).await;
    assert!(presence.locate(&[2]).await.unwrap().is_empty());
    // Garbage is ignored, not a panic.
    super::handle(&logic, bytes::Bytes::from_static(&[0xff, 0x01])).await;
}

#[tokio::test]
async fn a_node_that_stops_announcing_loses_its_devices_after_three_intervals() {
    let (logic, presence, _d) = logic().await;
    // The store is open; from here on only presence and timers run.
    tokio::time::pause();
    let alive = |id: &str| {
        event(logic_event::Event::Node(NodeEvent {
            node_id: id.into(),
            state: NodeState::Alive as i32,
            connections: 1,
            alive_interval_ms: 1000,
        }))
    };
    presence.online(1, 10, at("killed", 1)).await.unwrap();
    presence.online(2, 20, at("healthy", 1)).await.unwrap();
    super::handle(&logic, alive("killed")).await;
    super::handle(&logic, alive("healthy")).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let sweeper = tokio::spawn({
        let logic = logic.clone();
        let stop = stop.clone();
        async move { super::sweep_dead_nodes(&logic, stop).await }
    });
    // "healthy" keeps announcing; "killed" went silent at t=0.
    for _ in 0..2 {
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        super::handle(&logic, alive("healthy")).await;
        assert_eq!(
            presence.locate(&[1, 2]).await.unwrap().len(),
            2,
            "within the TTL"
        );
    }
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        super::handle(&logic, alive("healthy")).await;
    }
    let left = presence.locate(&[1, 2]).await.unwrap();
    assert_eq!(left.len(), 1, "the silent node's device is gone: {left:?}");
    assert_eq!(left[0].user_id, 2);
    stop.cancel();
    sweeper.await.unwrap();
}

/// Only a node that says it is alive is asked to re-announce its devices
/// when logic does not know it; a draining one whose DOWN was handled
/// first is left to go.
#[tokio::test]
async fn only_an_unknown_alive_node_is_asked_to_re_announce() {
    let (logic, _presence, _d) = logic().await;
    let subjects = tern_public::bus::Subjects::default();
    let mut to_gone = logic
        .bus
        .subscribe(&subjects.node("gone"), None)
        .await
        .unwrap();
    let mut to_back = logic
        .bus
        .subscribe(&subjects.node("back"), None)
        .await
        .unwrap();
    super::handle(&logic, node("gone", NodeState::Down)).await;
    super::handle(&logic, node("gone", NodeState::Draining)).await;
    super::handle(&logic, node("back", NodeState::Alive)).await;
    let next = |s: &mut tern_public::bus::Subscription| {
        futures::FutureExt::now_or_never(s.next()).flatten()
    };
    assert!(
        next(&mut to_gone).is_none(),
        "a draining node was asked to re-announce"
    );
    let asked = next(&mut to_back).expect("the unknown alive node is asked");
    let msg = tern_public::proto::bus::NodeMessage::decode(asked.payload).unwrap();
    assert!(matches!(
        msg.body,
        Some(tern_public::proto::bus::node_message::Body::Reannounce(_))
    ));
}
