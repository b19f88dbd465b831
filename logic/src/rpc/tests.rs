//! The bus edge of logic: a node told to stop still answers every request
//! the bus had already handed to it.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use prost::Message as _;
use tokio::sync::oneshot;

use tern_public::bus::{Bus, MemoryBus, Subjects};
use tern_public::proto::bus::{ConnReply, ConnRequest};
use tern_public::proto::client::RegisterRequest;
use tern_public::{Code, FrameType};

use crate::store::Store;
use crate::{LiveState, Logic, LogicConfig, LogicServer};

#[tokio::test]
async fn a_stopping_node_answers_the_requests_it_was_handed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite_dir(dir.path()).await.unwrap();
    let bus = Arc::new(MemoryBus::new());
    // One request at a time: the rest wait in the subscription's buffer.
    let cfg = LogicConfig {
        max_concurrent_requests: 1,
        ..Default::default()
    };
    let logic = Logic::start(cfg, store, LiveState::memory(), bus.clone());
    let server = LogicServer::subscribe(logic).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    // REGISTERs, each a password hash long, all published at once.
    let subject = Subjects::default().logic_rpc();
    let mut calls: FuturesUnordered<_> = (0..12)
        .map(|i| {
            let req = ConnRequest {
                node_id: "n1".into(),
                conn_id: i + 1,
                r#type: u32::from(FrameType::Register.as_u16()),
                payload: RegisterRequest {
                    username: format!("user{i}"),
                    password: "correct horse battery".into(),
                    ..Default::default()
                }
                .encode_to_vec()
                .into(),
                ..Default::default()
            };
            let (bus, subject) = (bus.clone(), subject.clone());
            async move {
                bus.request(
                    &subject,
                    req.encode_to_vec().into(),
                    Duration::from_secs(20),
                )
                .await
            }
        })
        .collect();

    // Stop once the first is answered: most are still buffered then.
    let mut answered = vec![calls.next().await.expect("twelve calls")];
    stop.send(()).unwrap();
    while let Some(r) = calls.next().await {
        answered.push(r);
    }
    run.await.unwrap();
    for r in answered {
        let reply = ConnReply::decode(r.expect("answered, not dropped")).unwrap();
        assert_eq!(reply.code, Code::Ok.as_i32(), "{reply:?}");
    }
}
