//! Bad input from clients: each case gets the answer DESIGN.md names, changes
//! nothing, and the server keeps serving other clients.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message as _;
use tokio::io::AsyncWriteExt;

use crate::common::*;
use tern_client::proto::{
    ConvType, LoginRequest, RegisterRequest, SendRequest, SignInRequest, SyncRequest,
};
use tern_client::{ClientError, Code};
use tern_connect::ConnectConfig;
use tern_logic::LogicConfig;
use tern_public::FrameType;

fn code(r: &tern_client::proto::Reply) -> Option<Code> {
    Code::from_i32(r.code)
}

#[tokio::test]
async fn protocol_violations_are_answered_and_the_connection_kept_where_designed() {
    let server = start().await;
    let mut raw = Raw::connect(server.addr()).await;

    // Commands before sign-in.
    raw.request(FrameType::Sync.as_u16(), 7, SyncRequest::default())
        .await;
    let r = raw.reply().await;
    assert_eq!((r.request_id, code(&r)), (7, Some(Code::Unauthenticated)));
    raw.request(FrameType::Send.as_u16(), 8, SendRequest::default())
        .await;
    assert_eq!(code(&raw.reply().await), Some(Code::Unauthenticated));

    // Unknown type: BAD_REQUEST carrying the request id; the connection stays.
    raw.request(55, 9, SyncRequest::default()).await;
    let r = raw.reply().await;
    assert_eq!((r.request_id, code(&r)), (9, Some(Code::BadRequest)));
    // A server-to-client type sent by a client is just as unknown.
    raw.request(FrameType::Push.as_u16(), 10, SyncRequest::default())
        .await;
    assert_eq!(code(&raw.reply().await), Some(Code::BadRequest));

    // A value that is not a Request: BAD_REQUEST with request id 0.
    raw.send_frame(
        FrameType::Heartbeat.as_u16(),
        Bytes::from_static(&[0xff, 0xff, 0xff]),
    )
    .await;
    let r = raw.reply().await;
    assert_eq!((r.request_id, code(&r)), (0, Some(Code::BadRequest)));
    // A Request whose payload does not decode as the command's message.
    let req = tern_client::proto::Request {
        request_id: 11,
        payload: Bytes::from_static(&[0x0a, 0xff]),
    };
    raw.send_frame(FrameType::Login.as_u16(), req.encode_to_vec())
        .await;
    let r = raw.reply().await;
    assert_eq!((r.request_id, code(&r)), (11, Some(Code::BadRequest)));

    // A frame written one byte at a time is still one frame.
    let req = tern_client::proto::Request {
        request_id: 12,
        payload: Bytes::new(),
    };
    let value = req.encode_to_vec();
    let mut wire = BytesMut::new();
    wire.put_u16(FrameType::Heartbeat.as_u16());
    wire.put_u32(value.len() as u32);
    wire.put_slice(&value);
    for b in wire.iter() {
        let io = raw.framed.get_mut();
        io.write_all(&[*b]).await.unwrap();
        io.flush().await.unwrap();
    }
    let r = raw.reply().await;
    assert_eq!(
        (r.request_id, code(&r)),
        (12, Some(Code::Ok)),
        "byte-by-byte heartbeat answered"
    );

    // An oversized frame: TOO_LARGE, then the server closes. Only the header
    // is sent: the server must not wait for 300 KiB to decide.
    let io = raw.framed.get_mut();
    io.write_all(&[0, 7, 0, 0x04, 0xB0, 0x00]).await.unwrap();
    let r = raw.reply().await;
    assert_eq!(code(&r), Some(Code::TooLarge));
    raw.closed().await;

    assert_still_serving(server.addr(), "proto").await;
    server.stop().await;
}

#[tokio::test]
async fn bad_credentials_and_bad_registrations_are_refused() {
    let server = start().await;
    let alice = register(server.addr(), "alice").await;
    let bob = register(server.addr(), "bob").await;
    let mut raw = Raw::connect(server.addr()).await;
    let login = |username: &str, password: &str| LoginRequest {
        username: username.into(),
        password: password.into(),
        ..Default::default()
    };

    raw.request(
        FrameType::Login.as_u16(),
        1,
        login("alice", "wrong password"),
    )
    .await;
    let wrong = raw.reply().await;
    assert_eq!(code(&wrong), Some(Code::Unauthenticated));
    raw.request(
        FrameType::Login.as_u16(),
        2,
        login("nobody", "wrong password"),
    )
    .await;
    let unknown = raw.reply().await;
    assert_eq!(code(&unknown), Some(Code::Unauthenticated));
    assert_eq!(
        wrong.message, unknown.message,
        "unknown user and wrong password look the same"
    );

    let sign_in = |user_id, device_id, token: &str| SignInRequest {
        user_id,
        device_id,
        token: token.into(),
    };
    raw.request(
        FrameType::SignIn.as_u16(),
        3,
        sign_in(alice.user_id, alice.device_id, &"0".repeat(64)),
    )
    .await;
    assert_eq!(
        code(&raw.reply().await),
        Some(Code::Unauthenticated),
        "forged token"
    );
    // Bob's real token presented for Alice's device, and Alice's for a device that does not exist.
    raw.request(
        FrameType::SignIn.as_u16(),
        4,
        sign_in(alice.user_id, alice.device_id, &bob.token),
    )
    .await;
    assert_eq!(code(&raw.reply().await), Some(Code::Unauthenticated));
    raw.request(
        FrameType::SignIn.as_u16(),
        5,
        sign_in(bob.user_id, alice.device_id, &alice.token),
    )
    .await;
    assert_eq!(
        code(&raw.reply().await),
        Some(Code::Unauthenticated),
        "token of another user's device"
    );
    raw.request(
        FrameType::SignIn.as_u16(),
        6,
        sign_in(alice.user_id, 999_999, &alice.token),
    )
    .await;
    assert_eq!(code(&raw.reply().await), Some(Code::Unauthenticated));

    let reg = |u: &str, p: &str, n: &str| RegisterRequest {
        username: u.into(),
        password: p.into(),
        nickname: n.into(),
        device: None,
    };
    for (i, bad) in [
        reg("ab", PASSWORD, ""),
        reg("has space", PASSWORD, ""),
        reg("carol", "short", ""),
        reg("carol", &"p".repeat(129), ""),
        reg("carol", PASSWORD, &"n".repeat(65)),
    ]
    .into_iter()
    .enumerate()
    {
        raw.request(FrameType::Register.as_u16(), 10 + i as u64, bad)
            .await;
        assert_eq!(code(&raw.reply().await), Some(Code::BadRequest), "case {i}");
    }
    raw.request(FrameType::Register.as_u16(), 20, reg("ALICE", PASSWORD, ""))
        .await;
    assert_eq!(
        code(&raw.reply().await),
        Some(Code::Conflict),
        "usernames are case-insensitive"
    );

    // Still not signed in after all that.
    raw.request(FrameType::Sync.as_u16(), 21, SyncRequest::default())
        .await;
    assert_eq!(code(&raw.reply().await), Some(Code::Unauthenticated));

    // Once signed in, a second sign-in on the same connection is refused.
    let err = alice
        .client
        .login("alice", PASSWORD, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::BadRequest));

    assert_still_serving(server.addr(), "creds").await;
    server.stop().await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let logic = LogicConfig {
        token_ttl: Duration::ZERO,
        ..open_logic()
    };
    let server = start_with(ConnectConfig::default(), logic).await;
    let alice = register(server.addr(), "alice").await;
    let (client, _events) = tern_client::Client::connect(server.addr()).await.unwrap();
    let err = client
        .sign_in(alice.user_id, alice.device_id, &alice.token)
        .await
        .unwrap_err();
    match err {
        ClientError::Server { code, message, .. } => {
            assert_eq!(Code::from_i32(code), Some(Code::Unauthenticated));
            assert!(message.contains("expired"), "{message}");
        }
        other => panic!("expected UNAUTHENTICATED, got {other}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn bad_sends_are_refused_and_store_nothing() {
    let logic = LogicConfig {
        max_content_len: 1024,
        max_mentions: 3,
        ..open_logic()
    };
    let server = start_with(ConnectConfig::default(), logic).await;
    let alice = register(server.addr(), "alice").await;
    let bob = register(server.addr(), "bob").await;
    let ok = SendRequest {
        conv_type: ConvType::User as i32,
        conv_id: bob.user_id,
        content_type: 1,
        content: Bytes::from_static(b"hi"),
        client_msg_id: "c".into(),
        mentions: vec![],
    };
    let cases = [
        (
            SendRequest {
                content_type: 0,
                ..ok.clone()
            },
            Code::BadRequest,
        ),
        (
            SendRequest {
                content_type: 1000,
                ..ok.clone()
            },
            Code::BadRequest,
        ),
        (
            SendRequest {
                content: vec![0u8; 1025].into(),
                ..ok.clone()
            },
            Code::TooLarge,
        ),
        (
            SendRequest {
                client_msg_id: "x".repeat(65),
                ..ok.clone()
            },
            Code::BadRequest,
        ),
        (
            SendRequest {
                mentions: vec![1, 2, 3, 4],
                ..ok.clone()
            },
            Code::BadRequest,
        ),
        (
            SendRequest {
                conv_id: 0,
                ..ok.clone()
            },
            Code::NotFound,
        ),
        (
            SendRequest {
                conv_id: 987_654,
                ..ok.clone()
            },
            Code::NotFound,
        ),
        (
            SendRequest {
                conv_type: 0,
                ..ok.clone()
            },
            Code::BadRequest,
        ),
        (
            SendRequest {
                conv_type: 77,
                ..ok.clone()
            },
            Code::BadRequest,
        ),
    ];
    for (i, (req, want)) in cases.into_iter().enumerate() {
        let err = alice.client.send(&req).await.unwrap_err();
        assert_eq!(err.code(), Some(want), "case {i}: {err}");
    }
    assert_eq!(
        alice.client.sync(0, 0).await.unwrap().max_seq,
        0,
        "nothing stored for alice"
    );
    assert_eq!(
        bob.client.sync(0, 0).await.unwrap().max_seq,
        0,
        "nothing stored for bob"
    );
    // The same connection still sends fine, and the exact limit is allowed.
    let at_limit = SendRequest {
        content: vec![7u8; 1024].into(),
        ..ok
    };
    assert_eq!(alice.client.send(&at_limit).await.unwrap().seq, 1);
    server.stop().await;
}
