//! The whole connection state machine: arbitrary sequences of frames (any
//! type, any request payload, sometimes raw garbage) from one client
//! against an in-process standalone server (SQLite in a temporary
//! directory, the in-process bus). A panic in any server task aborts the
//! process, so libFuzzer records it; after each input the server must
//! still answer a HEARTBEAT on a fresh connection.

#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

use tern::standalone::Standalone;
use tern_connect::ConnectConfig;
use tern_logic::store::Store;
use tern_logic::LogicConfig;
use tern_public::proto::client::{Empty, Reply, Request};
use tern_public::{Frame, FrameType};

/// Frame types a fuzz input picks from: every client command, the
/// server-to-client types (which a client must not send) and two unknown ones.
const TYPES: &[u16] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 20, 21, 22, 23, 24, 25, 26, 27, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49,
    50, 51, 52, 60, 61, 62, 70, 71, 72, 100, 101, 102, 103, 0, 9999,
];

fn server() -> &'static (Runtime, SocketAddr) {
    static SERVER: OnceLock<(Runtime, SocketAddr)> = OnceLock::new();
    SERVER.get_or_init(|| {
        // A panic anywhere, in any task, is a finding.
        std::panic::set_hook(Box::new(|info| {
            eprintln!("{info}");
            std::process::abort();
        }));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let addr = rt.block_on(async {
            let dir = std::env::temp_dir().join(format!("tern-fuzz-{}", std::process::id()));
            let store = Store::open_sqlite_dir(&dir).await.expect("store");
            let connect = ConnectConfig {
                handshake_timeout: Duration::from_secs(2),
                ..Default::default()
            };
            let logic = LogicConfig {
                // Every input comes from 127.0.0.1.
                auth_attempts_per_addr_per_min: 0,
                login_attempts_per_user_per_min: 0,
                max_concurrent_hashes: 1,
                ..Default::default()
            };
            let server = Standalone::start(store, connect, logic, None)
                .await
                .expect("server");
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(server.run(listener, None, std::future::pending()));
            addr
        });
        (rt, addr)
    })
}

/// Frames from fuzz bytes: per frame a type selector, a request id byte, a
/// payload length byte and the payload; selector 255 sends the rest raw.
fn frames(mut data: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    while let [sel, id, len, rest @ ..] = data {
        if *sel == 255 {
            out.put_slice(&data[1..]);
            break;
        }
        let n = usize::from(*len).min(rest.len());
        let (payload, tail) = rest.split_at(n);
        let ty = TYPES[usize::from(*sel) % TYPES.len()];
        let req = Request {
            request_id: u64::from(*id),
            payload: payload.to_vec().into(),
        };
        out.put_slice(&Frame::from_message(ty, &req).to_bytes());
        data = tail;
    }
    out
}

async fn read_until_closed(s: &mut TcpStream, within: Duration) {
    let mut buf = vec![0; 64 * 1024];
    let _ = tokio::time::timeout(within, async {
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// A new connection gets a REPLY to a HEARTBEAT.
async fn still_serving(addr: SocketAddr) {
    let mut s = TcpStream::connect(addr).await.expect("the server accepts");
    let req = Request {
        request_id: 1,
        payload: Empty {}.encode_to_vec().into(),
    };
    let frame = Frame::from_message(FrameType::Heartbeat.as_u16(), &req).to_bytes();
    s.write_all(&frame).await.expect("write");
    let mut header = [0u8; 6];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut header))
        .await
        .expect("a reply in time")
        .expect("read");
    let len = u32::from_be_bytes([header[2], header[3], header[4], header[5]]) as usize;
    let mut value = vec![0; len];
    s.read_exact(&mut value).await.expect("reply value");
    let reply = Reply::decode(value.as_slice()).expect("a Reply");
    assert_eq!((reply.request_id, reply.code), (1, 0), "heartbeat answered");
}

fuzz_target!(|data: &[u8]| {
    let (rt, addr) = server();
    rt.block_on(async {
        let mut s = TcpStream::connect(*addr).await.expect("connect");
        let _ = s.write_all(&frames(data)).await;
        let _ = s.shutdown().await;
        read_until_closed(&mut s, Duration::from_secs(3)).await;
        still_serving(*addr).await;
    });
});
