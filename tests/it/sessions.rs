//! Session lifecycle: replacing a device's connection, and drain on shutdown.

use crate::common::*;
use tern_client::proto::KickReason;
use tern_client::{ClientError, Event};

async fn the_same_device_signing_in_twice_kicks_the_first_connection(shape: Shape) {
    let server = shape.start().await;
    // In a cluster the two sign-ins land on different connect nodes, so the
    // kick crosses the bus.
    let (here, there) = (server.addrs()[0], *server.addrs().last().unwrap());
    let mut first = register(here, "alice").await;
    let bob = register(here, "bob").await;

    let (mut second, session) = sign_in(there, &first.creds()).await;
    assert_eq!(session.device_id, first.device_id);

    match first.next_event().await {
        Event::Kicked(k) => assert_eq!(k.reason, KickReason::SignedInElsewhere as i32),
        other => panic!("expected KICKED, got {other:?}"),
    }
    assert!(
        matches!(first.next_event().await, Event::Closed),
        "closed after KICKED"
    );
    // Requests on the closed connection fail at once rather than time out.
    assert!(matches!(
        first.client.heartbeat().await,
        Err(ClientError::Closed)
    ));

    // Pushes go to the new connection.
    bob.client
        .send_text(second.user_id, "to the new one", "1")
        .await
        .unwrap();
    let got = second.next_push().await;
    assert_eq!((got.seq, text(&got).as_str()), (1, "to the new one"));
    server.stop().await;
}

async fn shutdown_drains_every_client_with_kicked_draining(shape: Shape) {
    let server = shape.start().await;
    let mut a = register(server.addr(), "ann").await;
    let mut b = register(server.addr(), "ben").await;
    let mut unauthenticated = Raw::connect(server.addr()).await;
    // One round trip: the server has accepted it, it is not just in the backlog.
    unauthenticated
        .request(
            tern_public::FrameType::Heartbeat.as_u16(),
            1,
            tern_client::proto::Empty {},
        )
        .await;
    assert_eq!(unauthenticated.reply().await.code, 0);
    server.stop().await;
    for d in [&mut a, &mut b] {
        match d.next_event().await {
            Event::Kicked(k) => assert_eq!(k.reason, KickReason::Draining as i32),
            other => panic!("expected KICKED(draining), got {other:?}"),
        }
        assert!(matches!(d.next_event().await, Event::Closed));
    }
    let f = unauthenticated
        .next_frame()
        .await
        .expect("KICKED before the close");
    assert_eq!(f.ty, tern_public::FrameType::Kicked.as_u16());
    unauthenticated.closed().await;
}

in_both_shapes! {
    #[tokio::test] the_same_device_signing_in_twice_kicks_the_first_connection,
    #[tokio::test] shutdown_drains_every_client_with_kicked_draining,
}
