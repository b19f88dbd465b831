//! Node lifecycle on the bus: UP at start, ALIVE every interval, DRAINING and
//! DOWN on shutdown; device offline when a signed-in connection closes.

use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use tern_public::bus::{Bus, MemoryBus, Subscription};
use tern_public::proto::bus::{logic_event, LogicEvent, NodeState};

use crate::{ConnectConfig, Node};

async fn next_state(events: &mut Subscription) -> NodeState {
    loop {
        let msg = events.next().await.expect("bus open");
        if let Some(logic_event::Event::Node(n)) = LogicEvent::decode(msg.payload).unwrap().event {
            assert_eq!(n.node_id, "n1");
            return NodeState::try_from(n.state).unwrap();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_node_announces_up_alive_draining_and_down() {
    let cfg = ConnectConfig {
        node_id: "n1".into(),
        alive_interval: Duration::from_secs(5),
        ..Default::default()
    };
    let bus = MemoryBus::new();
    let mut events = bus
        .subscribe(&cfg.subjects.logic_events(), None)
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let node = Node::new(cfg, Arc::new(bus.clone()));
    let run = tokio::spawn(node.run(listener, async {
        let _ = stopped.await;
    }));

    assert_eq!(next_state(&mut events).await, NodeState::Up);
    let t = tokio::time::Instant::now();
    assert_eq!(next_state(&mut events).await, NodeState::Alive);
    assert_eq!(
        t.elapsed(),
        Duration::from_secs(5),
        "alive after one interval"
    );
    assert_eq!(next_state(&mut events).await, NodeState::Alive);

    stop.send(()).unwrap();
    assert_eq!(next_state(&mut events).await, NodeState::Draining);
    assert_eq!(next_state(&mut events).await, NodeState::Down);
    run.await.unwrap().unwrap();
    // The node no longer listens for deliveries.
    let node_subject = tern_public::bus::Subjects::default().node("n1");
    let err = bus
        .request(&node_subject, bytes::Bytes::new(), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, tern_public::bus::BusError::NoResponders(_)));
}

/// A connection's task and what it awaits live as long as the connection,
/// so their size is memory every idle connection holds (issue 16: at most
/// 4 KiB per idle signed-in connection in all). The bounds are wide: the
/// task used to be one allocation as large as a TLS connection's largest
/// state, about 9 KiB, whether the connection was TLS or not.
#[tokio::test]
async fn a_connection_holds_little_in_its_task() {
    use super::admission::Refusal;

    let node = Node::new(ConnectConfig::default(), Arc::new(MemoryBus::new()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let _client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (socket, _) = listener.accept().await.unwrap();
    let task = node
        .clone()
        .serve_socket(socket, "peer".into(), Err(Refusal::NodeFull));
    let task_size = std::mem::size_of_val(&task);
    assert!(task_size <= 1024, "the task holds {task_size} bytes");
    let (_client, pipe) = tokio::io::duplex(64);
    let served = node.settle(pipe, "peer".into(), Err(Refusal::NodeFull));
    let served_size = std::mem::size_of_val(&served);
    assert!(
        served_size <= 2048,
        "a served connection holds {served_size} bytes"
    );
}
